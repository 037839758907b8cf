import Foundation
import Testing
import Torch

/// Inputs that once crashed the process or silently produced garbage (found by review); each must now
/// be a thrown Swift error with a message that says what is wrong.
@Suite struct RobustnessTests {
  @Test func aGradientOfTheWrongShapeIsRefused() throws {
    let x = try Tensor.zeros([16]).requiringGrad()
    let error = #expect(throws: TorchError.self) { try x.setGrad(Tensor.ones([1])) }
    #expect("\(error!)".contains("assigned grad has sizes [1]"))
    #expect(throws: TorchError.self) { try x.setGrad(Tensor.ones([16], dtype: .float64)) }
    try x.setGrad(Tensor.ones([16]))
    #expect(x.grad != nil)
  }

  @Test(arguments: [
    ("max_pool3d", 0), ("avg_pool3d", 1), ("adaptive_avg_pool3d", 2), ("interpolate3d", 3), ("conv3d", 4),
  ])
  func perAxisArgumentsNeedThreeValues(op: String, which: Int) throws {
    let x = try Tensor.randn([1, 1, 4, 4, 4], generator: Generator(seed: 0))
    let error = #expect(throws: TorchError.self) {
      switch which {
      case 0: _ = try Functional.maxPool3d(x, kernelSize: [])
      case 1: _ = try Functional.avgPool3d(x, kernelSize: [2, 2])
      case 2: _ = try Functional.adaptiveAvgPool3d(x, outputSize: [1])
      case 3: _ = try Functional.interpolate3d(x, size: [2])
      default: _ = try Functional.conv3d(x, weight: Tensor.ones([1, 1, 1, 1, 1]), stride: [1])
      }
    }
    #expect("\(error!)".contains(op) && "\(error!)".contains("needs 3 values"))
  }

  @Test func batchNormTrainingOnOneValuePerChannelIsAnError() throws {
    let x = try Tensor.randn([1, 4, 1, 1, 1])
    let error = #expect(throws: TorchError.self) {
      _ = try Functional.batchNorm(x, runningMean: Tensor.zeros([4]), runningVar: Tensor.ones([4]), weight: nil,
                                   bias: nil, training: true)
    }
    #expect("\(error!)".contains("more than 1 value per channel"))
    // Evaluation mode uses the running statistics and is fine.
    _ = try Functional.batchNorm(x, runningMean: Tensor.zeros([4]), runningVar: Tensor.ones([4]), weight: nil,
                                 bias: nil, training: false)
  }

  @Test func autocastAcceptsOnlyHalfPrecisionTypes() throws {
    #expect(throws: TorchError.self) { try withAutocast(dtype: .int64) {} }
    #expect(throws: TorchError.self) { try withAutocast(dtype: .float64) {} }
  }

  @Test func threadCountsOutsideTheRangeAreRefused() throws {
    #expect(throws: TorchError.self) { try LibTorch.setThreadCount(0) }
    #expect(throws: TorchError.self) { try LibTorch.setThreadCount(LibTorch.maxThreadCount + 1) }
    #expect(throws: TorchError.self) { try Device(parsing: "cuda:3000000000") }
  }

  @Test func savedTensorsStartAtAMultipleOfTheirElementSize() throws {
    try withTemporaryDirectory { dir in
      let url = dir.appendingPathComponent("aligned.safetensors")
      // Names chosen so that name order alone would misalign the int64 and float64 tensors.
      try SafeTensors.save(["a": Tensor.ones([3], dtype: .uint8), "b": Tensor.ones([1], dtype: .int64),
                            "c": Tensor.ones([3], dtype: .int16), "d": Tensor.ones([2], dtype: .float64),
                            "e": Tensor.ones([1], dtype: .float32)], to: url)
      let raw = try RawSafeTensors(url)
      for (name, entry) in raw.entries {
        let size = ["U8": 1, "I16": 2, "F32": 4, "F64": 8, "I64": 8][entry.dtype]!
        #expect(entry.begin % size == 0, "\(name) (\(entry.dtype)) starts at byte \(entry.begin)")
      }
      // The reference writer's order: descending dtype rank (I64, F64, F32, I16, U8), then name.
      #expect(raw.entries.sorted { $0.value.begin < $1.value.begin }.map(\.key) == ["b", "d", "e", "c", "a"])
    }
  }
}
