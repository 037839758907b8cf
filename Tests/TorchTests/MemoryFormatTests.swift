import Foundation
import Testing
import Torch

/// Channels-last parameters (`Tensor.setMemoryFormat`, used by the trainer under bf16 on the CPU) and AdamW over
/// them. AdamW's fused kernel walks parameter, gradient and state in one flat storage order, so a layout mix-up
/// would silently pair the wrong elements: these tests compare against the same updates on contiguous tensors.
@Suite("Memory formats: channels-last parameters and AdamW")
struct MemoryFormatTests {
  @Test("setMemoryFormat keeps the tensor and its values; a 1-channel weight gets channels-last strides")
  func setMemoryFormatInPlace() throws {
    let g = Generator(seed: 5)
    let weight = try Tensor.randn([4, 1, 2, 2, 2], generator: g).requiringGrad()
    let wide = try Tensor.randn([3, 4, 2, 2, 2], generator: g).requiringGrad()
    let x = try Tensor.randn([1, 1, 4, 6, 6], generator: g)
    let before = try weight.scalars(as: Float.self), wideBefore = try wide.scalars(as: Float.self)
    // Under bf16 autocast, where the CPU convolution always runs in oneDNN (which follows the weight's layout).
    func conv() throws -> Tensor {
      try withAutocast(dtype: .bfloat16) { try Functional.conv3d(x, weight: weight, stride: [2, 2, 2]) }
    }
    let yBefore = try conv()
    #expect(!yBefore.isContiguous(.channelsLast3d))

    try weight.setMemoryFormat(.channelsLast3d)
    try wide.setMemoryFormat(.channelsLast3d)
    #expect(weight.isLeaf && weight.requiresGrad && wide.isLeaf && wide.requiresGrad)
    let after = try weight.scalars(as: Float.self), wideAfter = try wide.scalars(as: Float.self)
    #expect(after == before && wideAfter == wideBefore)
    #expect(wide.isContiguous(.channelsLast3d) && !wide.isContiguous())
    // The 1-channel weight's strides fit both layouts; after the conversion the convolution's output must be
    // channels-last (what PyTorch's Module.to(memory_format=) gives), or the network stays contiguous from the stem.
    let y = try conv()
    #expect(y.isContiguous(.channelsLast3d) && !y.isContiguous())
    try expectClose(y.to(.float32), yBefore.to(.float32), .bfloat16, "output after the conversion")

    try wide.setMemoryFormat(.contiguous)
    let wideBack = try wide.scalars(as: Float.self)
    #expect(wide.isContiguous() && wideBack == wideBefore)
  }

  @Test("AdamW on channels-last parameters makes the same updates as on contiguous ones, and its state round-trips")
  func adamWChannelsLast() throws {
    let g = Generator(seed: 9)
    let shape = [3, 4, 2, 3, 3]
    let plain = try Tensor.randn(shape, generator: g).requiringGrad()
    let last = try plain.detach().clone().requiringGrad()
    try last.setMemoryFormat(.channelsLast3d)
    let a = try AdamW(parameters: [("w", plain)], learningRate: 1e-2, weightDecay: 0.1)
    let b = try AdamW(parameters: [("w", last)], learningRate: 1e-2, weightDecay: 0.1)
    for step in 0..<3 {
      let grad = try Tensor.randn(shape, generator: g)
      try plain.setGrad(grad.clone())
      // Step 1 hands the channels-last parameter a contiguous gradient (as the data-parallel helpers may): the
      // optimizer must copy it into the parameter's layout rather than pair elements by storage offset.
      try last.setGrad(step == 1 ? grad.clone() : grad.contiguous(.channelsLast3d))
      try a.step()
      try b.step()
      let (x, y) = (try last.scalars(as: Float.self), try plain.scalars(as: Float.self))
      #expect(x == y, "after step \(step + 1)")
    }
    // The saved state is read by value; loading it for another channels-last parameter continues identically.
    let state = try b.stateDict()
    let resumed = try last.detach().clone().requiringGrad()
    try resumed.setMemoryFormat(.channelsLast3d)
    let c = try AdamW(parameters: [("w", resumed)], learningRate: 1e-2, weightDecay: 0.1)
    try c.loadStateDict(state)
    let grad = try Tensor.randn(shape, generator: g)
    try plain.setGrad(grad.clone())
    try resumed.setGrad(grad.contiguous(.channelsLast3d))
    try a.step()
    try c.step()
    let (x, y) = (try resumed.scalars(as: Float.self), try plain.scalars(as: Float.self))
    #expect(x == y, "after resuming")
    try expectClose(try #require(c.stateDict()["w.exp_avg"]), try #require(a.stateDict()["w.exp_avg"]), .exact,
                    "first moment after resuming")
  }
}
