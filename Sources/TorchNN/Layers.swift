import Foundation
import Torch

/// Fills `tensor` with U(−bound, bound), bound = 1/√fanIn: PyTorch's default initialisation of `Linear`
/// and `Conv3d` weights (`kaiming_uniform_(a=√5)`) and biases.
func uniformFanIn(_ tensor: Tensor, fanIn: Int, generator: Generator?) throws {
  let bound = fanIn > 0 ? 1 / Double(fanIn).squareRoot() : 0
  try withNoGrad { try tensor.uniformInPlace(-bound, bound, generator: generator) }
}

/// `y = x Wᵀ + b`, as `torch.nn.Linear`. Parameters `weight [out, in]`, `bias [out]`.
public final class Linear: Module {
  public let inFeatures: Int
  public let outFeatures: Int
  public var weight: Tensor { parameter("weight")! }
  public var bias: Tensor? { parameter("bias") }

  /// Initialised as PyTorch does (U(±1/√in) for weight and bias), from `generator` when given.
  public init(inFeatures: Int, outFeatures: Int, bias: Bool = true, generator: Generator? = nil) throws {
    self.inFeatures = inFeatures
    self.outFeatures = outFeatures
    super.init()
    let w = try Tensor.empty([outFeatures, inFeatures])
    try uniformFanIn(w, fanIn: inFeatures, generator: generator)
    registerParameter("weight", w)
    if bias {
      let b = try Tensor.empty([outFeatures])
      try uniformFanIn(b, fanIn: inFeatures, generator: generator)
      registerParameter("bias", b)
    }
  }

  /// x `[..., in]` → `[..., out]`.
  public override func forward(_ x: Tensor) throws -> Tensor {
    try Functional.linear(x, weight: weight, bias: bias)
  }
}

/// 3-D convolution, as `torch.nn.Conv3d`. Parameters `weight [out, in/groups, kD, kH, kW]`, `bias [out]`.
public final class Conv3d: Module {
  public let stride: [Int]
  public let padding: [Int]
  public let dilation: [Int]
  public let groups: Int
  public var weight: Tensor { parameter("weight")! }
  public var bias: Tensor? { parameter("bias") }

  /// - Parameters: kernelSize, stride, padding, dilation: 3 values (D, H, W) or 1 value for all axes.
  /// - Throws: `ModuleError.invalidConfiguration` for channel counts that `groups` does not divide.
  public init(inChannels: Int, outChannels: Int, kernelSize: [Int], stride: [Int] = [1], padding: [Int] = [0],
              dilation: [Int] = [1], groups: Int = 1, bias: Bool = true, generator: Generator? = nil) throws {
    func three(_ v: [Int], _ what: String) throws -> [Int] {
      if v.count == 3 { return v }
      if v.count == 1 { return [v[0], v[0], v[0]] }
      throw ModuleError.invalidConfiguration("Conv3d \(what) needs 1 or 3 values, got \(v)")
    }
    guard groups >= 1, inChannels % groups == 0, outChannels % groups == 0 else {
      throw ModuleError.invalidConfiguration(
        "Conv3d: groups \(groups) must divide in (\(inChannels)) and out (\(outChannels)) channels")
    }
    let k = try three(kernelSize, "kernel size")
    self.stride = try three(stride, "stride")
    self.padding = try three(padding, "padding")
    self.dilation = try three(dilation, "dilation")
    self.groups = groups
    super.init()
    let fanIn = inChannels / groups * k.reduce(1, *)
    let w = try Tensor.empty([outChannels, inChannels / groups] + k)
    try uniformFanIn(w, fanIn: fanIn, generator: generator)
    registerParameter("weight", w)
    if bias {
      let b = try Tensor.empty([outChannels])
      try uniformFanIn(b, fanIn: fanIn, generator: generator)
      registerParameter("bias", b)
    }
  }

  /// x `[N, C_in, D, H, W]` → `[N, C_out, D', H', W']`.
  public override func forward(_ x: Tensor) throws -> Tensor {
    try Functional.conv3d(x, weight: weight, bias: bias, stride: stride, padding: padding, dilation: dilation,
                          groups: groups)
  }
}

/// Batch normalisation over `[N, C, D, H, W]`, as `torch.nn.BatchNorm3d`: parameters `weight`, `bias`;
/// buffers `running_mean`, `running_var`, `num_batches_tracked` (the PyTorch `state_dict` keys).
/// Training mode normalises with batch statistics and updates the running ones with `momentum`;
/// evaluation mode uses the running statistics.
public final class BatchNorm3d: Module {
  public let eps: Double
  public let momentum: Double
  public var weight: Tensor { parameter("weight")! }
  public var bias: Tensor { parameter("bias")! }
  public var runningMean: Tensor { buffer("running_mean")! }
  public var runningVar: Tensor { buffer("running_var")! }
  public var numBatchesTracked: Tensor { buffer("num_batches_tracked")! }

  public init(features: Int, eps: Double = 1e-5, momentum: Double = 0.1) throws {
    self.eps = eps
    self.momentum = momentum
    super.init()
    registerParameter("weight", try Tensor.ones([features]))
    registerParameter("bias", try Tensor.zeros([features]))
    registerBuffer("running_mean", try Tensor.zeros([features]))
    registerBuffer("running_var", try Tensor.ones([features]))
    registerBuffer("num_batches_tracked", try Tensor.zeros([], dtype: .int64))
  }

  /// Synchronised batch statistics (as `torch.nn.SyncBatchNorm`): in training, a differentiable sum over the
  /// data-parallel ranks (its backward sums the gradients over the ranks too) through which the per-channel sums
  /// pass, so that the statistics are those of the global batch. nil = the local batch's statistics (libtorch's
  /// `batch_norm`). The identity gives one rank the synchronised formula (the reference a multi-rank run matches).
  public var crossReplicaSum: ((Tensor) throws -> Tensor)?

  public override func forward(_ x: Tensor) throws -> Tensor {
    if isTraining {
      try withNoGrad { try numBatchesTracked.addInPlace(Tensor.ones([], dtype: .int64, device: x.device)) }
      if let crossReplicaSum { return try synchronisedForward(x, crossReplicaSum) }
    }
    return try Functional.batchNorm(x, runningMean: runningMean, runningVar: runningVar, weight: weight, bias: bias,
                                    training: isTraining, momentum: momentum, eps: eps)
  }

  /// Training-mode batch norm over the statistics of every rank's batch. Each rank sends, per channel, its sum S_r,
  /// M2_r + S_r²/n_r (M2_r: the sum of squared deviations from its own mean) and its count n_r, computed in
  /// float64, so that the global variance (Σ(M2_r + S_r²/n_r) − S²/n) / n loses no precision to cancellation. Normalises with
  /// the biased variance and updates the running variance with the unbiased one, as `torch.nn.SyncBatchNorm`.
  func synchronisedForward(_ x: Tensor, _ reduce: (Tensor) throws -> Tensor) throws -> Tensor {
    let c = weight.count
    precondition(x.rank >= 2 && x.shape[1] == c, "BatchNorm3d: input \(x.shape) has no channel axis of \(c)")
    let dims = [0] + Array(2..<x.rank)
    let shape = [1, c] + Array(repeating: 1, count: x.rank - 2)
    let xf = try x.to(.float32)
    // The statistics in float64: then they agree between ways of splitting a batch to far below float32's
    // resolution, and the normalisation below is the same float32 arithmetic however the batch was split.
    let xd = try x.to(.float64)
    let nLocal = Double(x.count / c)
    let localMean = try xd.mean(dims: dims)
    let m2 = try (xd - localMean.view(shape)).square().sum(dims: dims)
    let sum = try localMean * nLocal
    let stats = try Tensor.cat([sum, m2 + sum.square() / nLocal,
                                Tensor.full([1], value: nLocal, dtype: .float64, device: x.device)])
    let total = try reduce(stats)
    let n = try total.narrow(dim: 0, start: 2 * c, length: 1)
    let s = try total.narrow(dim: 0, start: 0, length: c), q = try total.narrow(dim: 0, start: c, length: c)
    let mean64 = try s / n
    let variance64 = try (q - s * mean64) / n
    let mean = try mean64.to(.float32), variance = try variance64.to(.float32)
    let scale = try (variance + eps).rsqrt() * weight
    let y = try (xf - mean.view(shape)) * scale.view(shape) + bias.view(shape)
    let count = try n.item()
    try withNoGrad {
      try runningMean.mulInPlace(1 - momentum)
      try runningMean.addInPlace(mean.detach(), alpha: momentum)
      try runningVar.mulInPlace(1 - momentum)
      try runningVar.addInPlace(variance.detach() * (count / Swift.max(count - 1, 1)), alpha: momentum)
    }
    return x.dtype == .float32 ? y : try y.to(x.dtype)
  }
}

/// Layer normalisation over the trailing `normalizedShape`, as `torch.nn.LayerNorm` (`weight`, `bias`).
public final class LayerNorm: Module {
  public let normalizedShape: [Int]
  public let eps: Double
  public var weight: Tensor { parameter("weight")! }
  public var bias: Tensor? { parameter("bias") }

  public init(_ normalizedShape: [Int], eps: Double = 1e-5, bias: Bool = true) throws {
    self.normalizedShape = normalizedShape
    self.eps = eps
    super.init()
    registerParameter("weight", try Tensor.ones(normalizedShape))
    if bias { registerParameter("bias", try Tensor.zeros(normalizedShape)) }
  }

  public override func forward(_ x: Tensor) throws -> Tensor {
    try Functional.layerNorm(x, normalizedShape: normalizedShape, weight: weight, bias: bias, eps: eps)
  }
}

/// A lookup table `weight [count, dimension]`, as `torch.nn.Embedding` (initialised N(0, 1), the padding
/// row zero).
public final class Embedding: Module {
  public let paddingIndex: Int?
  public var weight: Tensor { parameter("weight")! }

  /// - Parameter paddingIndex: a row kept at zero that receives no gradient; negative counts from the end.
  public init(count: Int, dimension: Int, paddingIndex: Int? = nil, generator: Generator? = nil) throws {
    if let p = paddingIndex, !(-count..<count).contains(p) {
      throw ModuleError.invalidConfiguration("Embedding: padding index \(p) outside -\(count)..<\(count)")
    }
    self.paddingIndex = paddingIndex.map { $0 < 0 ? $0 + count : $0 }
    super.init()
    let w = try Tensor.randn([count, dimension], generator: generator)
    if let p = self.paddingIndex { try w.select(dim: 0, index: p).zero() }
    registerParameter("weight", w)
  }

  /// indices (int64) `[...]` → `[..., dimension]`.
  public override func forward(_ indices: Tensor) throws -> Tensor {
    try Functional.embedding(indices, weight: weight, paddingIndex: paddingIndex)
  }
}

/// Inverted dropout in training mode, identity in evaluation mode, as `torch.nn.Dropout`.
public final class Dropout: Module {
  public let probability: Double
  public init(_ probability: Double = 0.5) {
    self.probability = probability
    super.init()
  }
  public override func forward(_ x: Tensor) throws -> Tensor {
    try Functional.dropout(x, p: probability, training: isTraining)
  }
}

public final class ReLU: Module {
  public override init() { super.init() }
  public override func forward(_ x: Tensor) throws -> Tensor { try x.relu() }
}

public final class Identity: Module {
  public override init() { super.init() }
  public override func forward(_ x: Tensor) throws -> Tensor { x }
}

/// Modules applied in order, registered as "0", "1", … as `torch.nn.Sequential`.
public final class Sequential: Module {
  public let layers: [Module]
  public init(_ layers: [Module]) {
    self.layers = layers
    super.init()
    for (i, m) in layers.enumerated() { register(String(i), m) }
  }
  public override func forward(_ x: Tensor) throws -> Tensor {
    try layers.reduce(x) { try $1($0) }
  }
}

/// Sub-modules registered as "0", "1", … without a forward of their own, as `torch.nn.ModuleList`.
public final class ModuleList: Module {
  public let modules: [Module]
  public init(_ modules: [Module]) {
    self.modules = modules
    super.init()
    for (i, m) in modules.enumerated() { register(String(i), m) }
  }
}
