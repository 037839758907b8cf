import Foundation
import Testing
import Torch

/// libtorch's C++ exceptions arrive as `TorchError.libtorch` with libtorch's message, and the process
/// keeps running; devices and files fail with typed errors that name what went wrong.
@Suite("Errors")
struct ErrorTests {
  @Test("a conv3d whose weight channels disagree with the input throws libtorch's message; work goes on")
  func conv3dChannelMismatch() throws {
    let g = Generator(seed: 1)
    let x = try Tensor.randn([2, 3, 6, 7, 8], generator: g)
    let weight = try Tensor.randn([4, 2, 3, 3, 3], generator: g)
    let error = #expect(throws: TorchError.self) { try Functional.conv3d(x, weight: weight, padding: [1, 1, 1]) }
    guard case let .libtorch(op, message) = error else {
      Issue.record("expected TorchError.libtorch, got \(String(describing: error))")
      return
    }
    #expect(op.contains("conv3d"), "op: \(op)")
    #expect(message.contains("expected input"), "message: \(message)")
    #expect(message.contains("channels"), "message: \(message)")
    #expect(!message.contains("Exception raised from"), "the C++ backtrace is left out: \(message)")

    // The process, the thread and libtorch are fine afterwards.
    let good = try Tensor.randn([4, 3, 3, 3, 3], generator: g)
    let y = try Functional.conv3d(x, weight: good, padding: [1, 1, 1])
    #expect(y.shape == [2, 4, 6, 7, 8])
  }

  static let libtorchFailures: [String] = [
    "reshape to a different element count", "matmul of incompatible shapes", "values that do not fill the shape",
    "index out of range", "backward through a tensor without gradient", "cat of mismatched shapes",
    "cross-entropy with a class index out of range",
  ]

  @Test("libtorch failures become TorchError.libtorch with a message", arguments: libtorchFailures)
  func libtorchFailure(_ name: String) throws {
    let error = #expect(throws: TorchError.self) {
      switch name {
      case "reshape to a different element count": _ = try Tensor.zeros([2, 3]).reshape([4, 2])
      case "matmul of incompatible shapes": _ = try Tensor.ones([2, 3]).matmul(Tensor.ones([2, 3]))
      case "values that do not fill the shape": _ = try Tensor([1, 2, 3] as [Float], shape: [2, 2])
      case "index out of range": _ = try Tensor.zeros([3]).select(dim: 0, index: 5)
      case "backward through a tensor without gradient": try Tensor.ones([2]).sum().backward()
      case "cat of mismatched shapes": _ = try Tensor.cat([Tensor.ones([2, 3]), Tensor.ones([2, 4])], dim: 0)
      case "cross-entropy with a class index out of range":
        _ = try Functional.crossEntropy(Tensor.zeros([2, 3]), targets: Tensor([0, 7] as [Int64]))
      default: Issue.record("unknown case \(name)")
      }
    }
    guard case let .libtorch(_, message) = error else {
      Issue.record("\(name): expected TorchError.libtorch, got \(String(describing: error))")
      return
    }
    #expect(!message.isEmpty)
  }

  @Test("the error message belongs to the thread that failed")
  func errorsOnSeveralThreads() async throws {
    try await withThrowingTaskGroup(of: String.self) { group in
      for i in 0..<8 {
        group.addTask {
          do {
            _ = try Tensor.zeros([i + 1]).reshape([i + 2])
            return "no error"
          } catch let TorchError.libtorch(_, message) {
            return message
          }
        }
      }
      var messages: [String] = []
      for try await m in group { messages.append(m) }
      for i in 0..<8 {
        #expect(messages.contains { $0.contains("[\(i + 2)]") && $0.contains("\(i + 1)") }, "\(messages)")
      }
    }
  }

  @Test("Device(parsing:) accepts cpu, cuda and cuda:N", arguments: [
    ("cpu", Device.cpu), ("CPU", .cpu), ("cuda", .cuda(0)), ("cuda:0", .cuda(0)), ("cuda:3", .cuda(3)),
    ("CUDA:1", .cuda(1)),
  ])
  func deviceParsing(_ text: String, _ device: Device) throws {
    #expect(try Device(parsing: text) == device)
    #expect(try Device(parsing: device.description) == device)
  }

  @Test("Device(parsing:) refuses anything else, naming it",
        arguments: ["", "gpu", "cuda:", "cuda:-1", "cuda:x", "cuda:1:2", "cpu:0", " cpu", "mps"])
  func deviceParsingErrors(_ text: String) {
    let error = #expect(throws: TorchError.self) { try Device(parsing: text) }
    guard case let .invalidArgument(message) = error else {
      Issue.record("'\(text)': expected invalidArgument, got \(String(describing: error))")
      return
    }
    #expect(message.contains("'\(text)'"), "\(message)")
  }

  @Test("CUDA devices are refused by a CPU-only build, and tensors cannot be made there",
        .enabled(if: LibTorch.cudaDeviceCount == 0, "this libtorch has CUDA"))
  func cudaOnCPUOnlyBuild() throws {
    #expect(throws: Never.self) { try Device.cpu.validate() }
    let error = #expect(throws: TorchError.self) { try Device.cuda(0).validate() }
    guard case let .invalidArgument(message) = error else {
      Issue.record("expected invalidArgument, got \(String(describing: error))")
      return
    }
    #expect(message.contains("cuda:0"), "\(message)")
    #expect(throws: TorchError.self) { try Tensor.zeros([2], device: .cuda(0)) }
    #expect(throws: TorchError.self) { try Tensor.zeros([2]).to(Device.cuda(0)) }
  }

  @Test("a CUDA index past the last device is refused")
  func cudaIndexPastTheEnd() {
    #expect(throws: TorchError.self) { try Device.cuda(LibTorch.cudaDeviceCount + 1).validate() }
  }

  @Test("reading the bytes of a non-contiguous tensor in place is refused")
  func unsafeBytesNeedContiguous() throws {
    let t = try Tensor.zeros([3, 4]).t()
    #expect(throws: TorchError.self) { try t.withUnsafeRawBytes { _ in () } }
    #expect(try t.contiguous().withUnsafeRawBytes { $0.count } == 48)
  }
}
