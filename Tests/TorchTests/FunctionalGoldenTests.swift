import Foundation
import Testing
import Torch

/// `Functional` against `torch.nn.functional` (values from scripts/golden/make_torch_golden.py).
@Suite("Functional against PyTorch")
struct FunctionalGoldenTests {
  struct ConvParams: Decodable {
    let stride: [Int]
    let padding: [Int]
  }

  /// A conv3d case's input, weight and bias (requiring gradients) and its settings, as decoded `P`.
  static func convCase<P: Decodable>(_ name: String, _ golden: GoldenFile, as: P.Type)
    throws -> (params: P, x: Tensor, w: Tensor, b: Tensor)
  {
    (try golden.json("\(name).params", as: P.self), try golden.tensor("\(name).x").requiringGrad(),
     try golden.tensor("\(name).weight").requiringGrad(), try golden.tensor("\(name).bias").requiringGrad())
  }

  @Test("conv3d forward and input, weight and bias gradients of sum(y · g)",
        arguments: ["conv3d.a", "conv3d.patch4"])
  func conv3d(_ name: String) throws {
    let golden = try GoldenFile.load()
    let (p, x, w, b) = try Self.convCase(name, golden, as: ConvParams.self)

    let y = try Functional.conv3d(x, weight: w, bias: b, stride: p.stride, padding: p.padding)
    try expectClose(y, golden.tensor("\(name).y"), .float32, "\(name) output")

    try (y * golden.tensor("\(name).grad_out")).sum().backward()
    try expectClose(#require(x.grad), golden.tensor("\(name).grad_x"), .float32, "\(name) input gradient")
    try expectClose(#require(w.grad), golden.tensor("\(name).grad_weight"), .float32, "\(name) weight gradient")
    try expectClose(#require(b.grad), golden.tensor("\(name).grad_bias"), .float32, "\(name) bias gradient")
  }

  struct DepthLastParams: Decodable {
    let stride: [Int]
    let padding: [Int]
    let errorY: Double
    let errorGradX: Double
    let errorGradWeight: Double
  }

  /// Batch 1 with N·C·D·H ≤ 20480 < N·C·H·W: `ct_conv3d` runs it through oneDNN with the depth axis last, which sums
  /// in another order than PyTorch's im2col path that made the golden values. Each result must lie within 5× the
  /// error of PyTorch's own float32 result against float64 (the file's `error_*`) of the golden float32 values
  /// (so within 6× that error of the float64 answer).
  @Test("conv3d rerouted to oneDNN (batch 1, depth last): as exact as PyTorch's own float32 path")
  func conv3dDepthLast() throws {
    let name = "conv3d.depthlast"
    let golden = try GoldenFile.load()
    let (p, x, w, b) = try Self.convCase(name, golden, as: DepthLastParams.self)
    #expect(x.shape[0] * x.shape[1] * x.shape[2] * x.shape[3] <= 20480 && x.shape[1] * x.shape[3] * x.shape[4] > 20480)
    let y = try Functional.conv3d(x, weight: w, bias: b, stride: p.stride, padding: p.padding)
    try expectClose(y, golden.tensor("\(name).y"), Tolerance(rtol: 0, atol: 5 * p.errorY), "\(name) output")
    try (y * golden.tensor("\(name).grad_out")).sum().backward()
    try expectClose(#require(x.grad), golden.tensor("\(name).grad_x"), Tolerance(rtol: 0, atol: 5 * p.errorGradX),
                    "\(name) input gradient")
    try expectClose(#require(w.grad), golden.tensor("\(name).grad_weight"),
                    Tolerance(rtol: 0, atol: 5 * p.errorGradWeight), "\(name) weight gradient")
    try expectClose(#require(b.grad), golden.tensor("\(name).grad_bias"), .float32, "\(name) bias gradient")
  }

  /// Convolutions over an input depth above 1 and below the kernel's (3×3×3 over depth 2; 4×3×3 over depth 3 at
  /// depth-stride 2) under bfloat16 autocast. oneDNN's bfloat16 weight gradient is wrong for these shapes on AVX-512
  /// BF16 CPUs (errors up to 10³⁶ of the gradient's scale, or NaN;
  /// bench/bf16_conv_check.py), so `ct_conv3d` runs it in float32 and casts the output to bfloat16: the output must
  /// be bfloat16 and within bfloat16 rounding of PyTorch's float32 answer, and the gradients within 1 % of the
  /// largest float32 gradient (only `grad_out`'s rounding to bfloat16 separates them).
  @Test("conv3d over an input depth below the kernel's under bf16 autocast: bfloat16 output, gradients as in float32",
        arguments: ["conv3d.bf16depth2", "conv3d.bf16depth3s2"])
  func conv3dShallowDepthUnderBF16Autocast(_ name: String) throws {
    let golden = try GoldenFile.load()
    let (p, x, w, b) = try Self.convCase(name, golden, as: ConvParams.self)
    #expect(x.shape[2] > 1 && x.shape[2] < w.shape[2])
    let y = try withAutocast(dtype: .bfloat16) {
      try Functional.conv3d(x, weight: w, bias: b, stride: p.stride, padding: p.padding)
    }
    #expect(y.dtype == .bfloat16)
    try expectClose(y.to(.float32), golden.tensor("\(name).y"), .bfloat16, "\(name) output")
    try (y * golden.tensor("\(name).grad_out")).sum().backward()
    for (grad, key) in [(try #require(w.grad), "grad_weight"), (try #require(x.grad), "grad_x"),
                        (try #require(b.grad), "grad_bias")] {
      let expected = try golden.tensor("\(name).\(key)")
      let scale = try expected.abs().max().item()
      try expectClose(grad.to(.float32), expected, Tolerance(rtol: 1e-2, atol: 1e-2 * scale), "\(name) \(key)")
    }
  }

  /// The float32 fallback above is taken only where libtorch itself would compute in bfloat16: autocast leaves a
  /// float64 convolution in float64, and a float32 input with a bfloat16 weight outside autocast stays an error.
  @Test("conv3d over depth 2: float64 under bf16 autocast stays float64; mixed dtypes outside autocast still throw")
  func conv3dShallowDepthOnlyWhereBF16() throws {
    let g = Generator(seed: 3)
    let x = try Tensor.randn([1, 2, 2, 4, 4], generator: g)
    let w = try Tensor.randn([2, 2, 3, 3, 3], generator: g)
    let y = try withAutocast(dtype: .bfloat16) {
      try Functional.conv3d(x.to(.float64), weight: w.to(.float64), padding: [1, 1, 1])
    }
    #expect(y.dtype == .float64)
    #expect(throws: (any Error).self) { try Functional.conv3d(x, weight: w.to(.bfloat16), padding: [1, 1, 1]) }
  }

  struct BatchNormParams: Decodable {
    let momentum: Double
    let eps: Double
  }

  @Test("batch norm in training mode: output, running statistics, gradients")
  func batchNormTraining() throws {
    let golden = try GoldenFile.load()
    let p = try golden.json("batchnorm.params", as: BatchNormParams.self)
    let x = try golden.tensor("batchnorm.x").requiringGrad()
    let weight = try golden.tensor("batchnorm.weight").requiringGrad()
    let bias = try golden.tensor("batchnorm.bias").requiringGrad()
    let runningMean = try golden.tensor("batchnorm.running_mean").clone()
    let runningVar = try golden.tensor("batchnorm.running_var").clone()

    let y = try Functional.batchNorm(x, runningMean: runningMean, runningVar: runningVar, weight: weight, bias: bias,
                                     training: true, momentum: p.momentum, eps: p.eps)
    try expectClose(y, golden.tensor("batchnorm.train.y"), .float32, "output")
    try expectClose(runningMean, golden.tensor("batchnorm.train.running_mean"), .float32, "running mean")
    try expectClose(runningVar, golden.tensor("batchnorm.train.running_var"), .float32, "running variance")

    try (y * golden.tensor("batchnorm.train.grad_out")).sum().backward()
    try expectClose(#require(x.grad), golden.tensor("batchnorm.train.grad_x"), .float32, "input gradient")
    try expectClose(#require(weight.grad), golden.tensor("batchnorm.train.grad_weight"), .float32, "weight gradient")
    try expectClose(#require(bias.grad), golden.tensor("batchnorm.train.grad_bias"), .float32, "bias gradient")
  }

  @Test("batch norm in evaluation mode normalises with the running statistics and leaves them alone")
  func batchNormEvaluation() throws {
    let golden = try GoldenFile.load()
    let p = try golden.json("batchnorm.params", as: BatchNormParams.self)
    let runningMean = try golden.tensor("batchnorm.running_mean")
    let before = try runningMean.clone()
    let y = try withNoGrad {
      try Functional.batchNorm(golden.tensor("batchnorm.x"), runningMean: runningMean,
                               runningVar: golden.tensor("batchnorm.running_var"),
                               weight: golden.tensor("batchnorm.weight"), bias: golden.tensor("batchnorm.bias"),
                               training: false, momentum: p.momentum, eps: p.eps)
    }
    try expectClose(y, golden.tensor("batchnorm.eval.y"), .float32, "output")
    #expect(try runningMean.equals(before))
    #expect(!y.requiresGrad)
  }

  struct InterpolationCase: Decodable {
    let size: [Int]
    let mode: String
    let alignCorners: Bool
  }

  static let interpolationCases = ["up_trilinear", "up_trilinear_align", "down_trilinear", "nearest"]

  @Test("trilinear and nearest interpolation", arguments: interpolationCases)
  func interpolate(_ name: String) throws {
    let golden = try GoldenFile.load()
    let cases = try golden.json("interp.cases", as: [String: InterpolationCase].self)
    #expect(Set(cases.keys) == Set(Self.interpolationCases), "the golden file's cases changed")
    let c = try #require(cases[name])
    let y = try Functional.interpolate3d(golden.tensor("interp.x"), size: c.size, nearest: c.mode == "nearest",
                                         alignCorners: c.alignCorners)
    try expectClose(y, golden.tensor("interp.\(name).y"), .float32, "interpolate \(name)")
  }

  struct LayerNormParams: Decodable {
    let normalizedShape: [Int]
    let eps: Double
  }

  @Test func layerNorm() throws {
    let golden = try GoldenFile.load()
    let p = try golden.json("layernorm.params", as: LayerNormParams.self)
    let y = try Functional.layerNorm(golden.tensor("layernorm.x"), normalizedShape: p.normalizedShape,
                                     weight: golden.tensor("layernorm.weight"), bias: golden.tensor("layernorm.bias"),
                                     eps: p.eps)
    try expectClose(y, golden.tensor("layernorm.y"), .float32, "layer norm")
  }

  @Test func softmaxAndLogSoftmax() throws {
    let golden = try GoldenFile.load()
    let x = try golden.tensor("softmax.x")
    try expectClose(x.softmax(dim: 1), golden.tensor("softmax.dim1"), .float32, "softmax dim 1")
    try expectClose(Functional.softmax(x, dim: 0), golden.tensor("softmax.dim0"), .float32, "softmax dim 0")
    try expectClose(x.logSoftmax(dim: 1), golden.tensor("log_softmax.dim1"), .float32, "log-softmax dim 1")
    // Each row of a softmax sums to one.
    let rowSums = try x.softmax(dim: -1).sum(dims: [-1])
    try expectClose(rowSums, Tensor.ones([x.shape[0]]), .float32, "softmax row sums")
  }

  @Test func embedding() throws {
    let golden = try GoldenFile.load()
    let indices = try golden.tensor("embedding.indices")
    #expect(indices.dtype == .int64)
    let y = try Functional.embedding(indices, weight: golden.tensor("embedding.weight"))
    try expectClose(y, golden.tensor("embedding.y"), .exact, "embedding")
  }

  @Test("matmul with a broadcast batch dimension")
  func matmul() throws {
    let golden = try GoldenFile.load()
    let y = try golden.tensor("matmul.a").matmul(golden.tensor("matmul.b"))
    try expectClose(y, golden.tensor("matmul.y"), .float32, "matmul")
  }
}
