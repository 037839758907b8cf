import Foundation
import Testing
import Torch

/// The process's resident memory in bytes, from `/proc/self/statm` (Linux).
func residentBytes() throws -> Int {
  let text = try String(contentsOfFile: "/proc/self/statm", encoding: .utf8)
  let fields = text.split(separator: " ")
  let pages = try #require(fields.count > 1 ? Int(fields[1]) : nil, "unexpected /proc/self/statm: \(text)")
  return pages * Int(sysconf(Int32(_SC_PAGESIZE)))
}

/// Every `Tensor` frees its libtorch handle: many create / compute / free cycles keep the resident
/// memory flat. Serialized so that the suite's own tests do not overlap.
///
/// The bound was checked by injecting a leak (keeping one alias of the 64 KB input per cycle): the test
/// then fails with about 85 MB of growth per block of 1,000 cycles, thirteen times the bound.
@Suite("Handle leaks", .serialized)
struct LeakTests {
  static let hasProcStatm = FileManager.default.fileExists(atPath: "/proc/self/statm")

  /// One cycle: a 64 KB float32 tensor (16,384 values) that requires grad, a few operations including a
  /// matmul, a reduction and a backward pass, a read-back, and a libtorch error that is caught.
  static func cycle(_ generator: Generator) throws {
    let x = try Tensor.randn([128, 128], generator: generator).requiringGrad()
    let w = try Tensor.full([128, 128], value: 0.01)
    let y = try ((x.matmul(w) + 1).sigmoid() * x).sum()
    try y.backward()
    let g = try #require(x.grad)
    _ = try g.mean().item()
    _ = try x.narrow(dim: 0, start: 3, length: 5).permute([1, 0]).contiguous().scalars(as: Float.self)
    try x.setGrad(nil)
    do {
      _ = try x.reshape([3, 5])
      Issue.record("reshape should have failed")
    } catch TorchError.libtorch {}
  }

  @Test("10,000 cycles of 64 KB tensors with autograd keep resident memory flat",
        .enabled(if: hasProcStatm, "needs /proc/self/statm (Linux)"))
  func createComputeFreeCyclesDoNotLeak() throws {
    let generator = Generator(seed: 1)
    // Warm up: libtorch's allocator caches, thread pools and Swift's metadata reach their steady state.
    for _ in 0..<1_000 { try Self.cycle(generator) }
    // 10 blocks of 1,000 cycles. A leak grows every block alike; other test suites running in parallel in
    // this process (swift test without --no-parallel) can raise or lower a few blocks, so the median
    // block decides.
    let blocks = 10
    let cyclesPerBlock = 1_000
    var growths: [Int] = []
    var last = try residentBytes()
    let first = last
    for _ in 0..<blocks {
      for _ in 0..<cyclesPerBlock { try Self.cycle(generator) }
      let now = try residentBytes()
      growths.append(now - last)
      last = now
    }
    let median = growths.sorted()[blocks / 2]
    // One leaked 64 KB tensor per cycle would add 64 MB per block (640 MB in all); the bound is a tenth.
    let boundPerBlock = (64 << 20) / blocks
    #expect(median < boundPerBlock,
            """
            resident memory grew by a median \(median >> 10) KB per \(cyclesPerBlock) cycles (bound \(boundPerBlock >> 10) KB); \
            blocks: \(growths.map { $0 >> 10 }) KB, \((last - first) >> 10) KB in all
            """)
  }
}
