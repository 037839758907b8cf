import CTorch

/// Loss reductions, as PyTorch's `reduction=` argument.
public enum Reduction: Sendable {
  case none, mean, sum
  var code: ct_reduction {
    switch self {
    case .none: return CT_REDUCTION_NONE
    case .mean: return CT_REDUCTION_MEAN
    case .sum: return CT_REDUCTION_SUM
    }
  }
}

/// Stateless neural-network functions, as `torch.nn.functional`. Each throws `TorchError.libtorch`
/// with libtorch's message when shapes or types do not fit.
public enum Functional {
  /// Throws unless every array has exactly 3 values (one per axis D, H, W).
  static func requireThree(_ op: String, _ arrays: [(String, [Int])]) throws {
    for (name, values) in arrays where values.count != 3 {
      throw TorchError.invalidArgument("\(op): \(name) needs 3 values (D, H, W), got \(values)")
    }
  }

  /// `y = x Wᵀ + b`. x `[..., in]`, weight `[out, in]`, bias `[out]` → `[..., out]`.
  public static func linear(_ x: Tensor, weight: Tensor, bias: Tensor? = nil) throws -> Tensor {
    try withExtendedLifetime(bias) {
      try make("linear of \(x.shape) with weight \(weight.shape)") { ct_linear(x.handle, weight.handle, bias?.handle, $0) }
    }
  }

  /// 3-D convolution, as `torch.nn.functional.conv3d`.
  /// - Parameters:
  ///   - x: `[N, C_in, D, H, W]`.
  ///   - weight: `[C_out, C_in / groups, kD, kH, kW]`; bias `[C_out]`.
  ///   - stride, padding, dilation: per axis (D, H, W).
  /// - Returns: `[N, C_out, D', H', W']`.
  public static func conv3d(_ x: Tensor, weight: Tensor, bias: Tensor? = nil, stride: [Int] = [1, 1, 1],
                            padding: [Int] = [0, 0, 0], dilation: [Int] = [1, 1, 1], groups: Int = 1) throws -> Tensor
  {
    try requireThree("conv3d", [("stride", stride), ("padding", padding), ("dilation", dilation)])
    return try withExtendedLifetime(bias) {
      try withInt64s(stride) { s, _ in
        try withInt64s(padding) { p, _ in
          try withInt64s(dilation) { d, _ in
            try make("conv3d of input \(x.shape) with weight \(weight.shape)") {
              ct_conv3d(x.handle, weight.handle, bias?.handle, s!, p!, d!, Int64(groups), $0)
            }
          }
        }
      }
    }
  }

  /// Batch normalisation, as `torch.nn.functional.batch_norm`. In training mode the batch statistics
  /// normalise `x` and the running statistics are updated in place with `momentum` (unbiased variance);
  /// in evaluation mode the running statistics normalise.
  /// - Parameters: x `[N, C, ...]`; weight, bias, runningMean, runningVar `[C]`.
  public static func batchNorm(_ x: Tensor, runningMean: Tensor?, runningVar: Tensor?, weight: Tensor?,
                               bias: Tensor?, training: Bool, momentum: Double = 0.1, eps: Double = 1e-5) throws
    -> Tensor
  {
    // As torch.nn.functional.batch_norm: batch statistics of a single value per channel are undefined
    // (the unbiased running variance would be NaN).
    let shape = x.shape
    if training, shape.count >= 2, shape.enumerated().filter({ $0.offset != 1 }).map(\.element).reduce(1, *) <= 1 {
      throw TorchError.invalidArgument(
        "batch_norm: expected more than 1 value per channel when training, got input of shape \(shape)")
    }
    return try withExtendedLifetime((runningMean, runningVar, weight, bias)) {
      try make("batch_norm of \(x.shape)") {
        ct_batch_norm(x.handle, weight?.handle, bias?.handle, runningMean?.handle, runningVar?.handle, training,
                      momentum, eps, $0)
      }
    }
  }

  /// Layer normalisation over the trailing `normalizedShape` dimensions, as `torch.nn.functional.layer_norm`.
  public static func layerNorm(_ x: Tensor, normalizedShape: [Int], weight: Tensor?, bias: Tensor?,
                               eps: Double = 1e-5) throws -> Tensor
  {
    try withExtendedLifetime((weight, bias)) {
      try withInt64s(normalizedShape) { p, n in
        try make("layer_norm of \(x.shape)") { ct_layer_norm(x.handle, p!, n, weight?.handle, bias?.handle, eps, $0) }
      }
    }
  }

  /// 3-D max pooling over `[N, C, D, H, W]`, as `torch.nn.functional.max_pool3d`.
  public static func maxPool3d(_ x: Tensor, kernelSize: [Int], stride: [Int]? = nil, padding: [Int] = [0, 0, 0],
                               dilation: [Int] = [1, 1, 1], ceilMode: Bool = false) throws -> Tensor
  {
    try requireThree("max_pool3d", [("kernel size", kernelSize), ("stride", stride ?? kernelSize),
                                    ("padding", padding), ("dilation", dilation)])
    return try withInt64s(kernelSize) { k, _ in
      try withInt64s(stride ?? kernelSize) { s, _ in
        try withInt64s(padding) { p, _ in
          try withInt64s(dilation) { d, _ in
            try make("max_pool3d of \(x.shape)") { ct_max_pool3d(x.handle, k!, s!, p!, d!, ceilMode, $0) }
          }
        }
      }
    }
  }

  /// 3-D average pooling over `[N, C, D, H, W]`, as `torch.nn.functional.avg_pool3d`.
  public static func avgPool3d(_ x: Tensor, kernelSize: [Int], stride: [Int]? = nil, padding: [Int] = [0, 0, 0],
                               ceilMode: Bool = false, countIncludePad: Bool = true) throws -> Tensor
  {
    try requireThree("avg_pool3d", [("kernel size", kernelSize), ("stride", stride ?? kernelSize),
                                    ("padding", padding)])
    return try withInt64s(kernelSize) { k, _ in
      try withInt64s(stride ?? kernelSize) { s, _ in
        try withInt64s(padding) { p, _ in
          try make("avg_pool3d of \(x.shape)") { ct_avg_pool3d(x.handle, k!, s!, p!, ceilMode, countIncludePad, $0) }
        }
      }
    }
  }

  /// Adaptive average pooling of `[N, C, D, H, W]` to `[N, C, outputSize…]`.
  public static func adaptiveAvgPool3d(_ x: Tensor, outputSize: [Int]) throws -> Tensor {
    try requireThree("adaptive_avg_pool3d", [("output size", outputSize)])
    return try withInt64s(outputSize) { s, _ in
      try make("adaptive_avg_pool3d of \(x.shape)") { ct_adaptive_avg_pool3d(x.handle, s!, $0) }
    }
  }

  /// Resizes `[N, C, D, H, W]` to `size` (D, H, W): trilinear (`align_corners` as PyTorch), or nearest,
  /// as `torch.nn.functional.interpolate(mode="trilinear" | "nearest")`.
  public static func interpolate3d(_ x: Tensor, size: [Int], nearest: Bool = false, alignCorners: Bool = false)
    throws -> Tensor
  {
    try requireThree("interpolate3d", [("size", size)])
    return try withInt64s(size) { s, _ in
      try make("interpolate3d of \(x.shape)") { ct_interpolate3d(x.handle, s!, nearest, alignCorners, $0) }
    }
  }

  public static func softmax(_ x: Tensor, dim: Int) throws -> Tensor {
    try make("softmax") { ct_softmax(x.handle, Int64(dim), $0) }
  }

  public static func logSoftmax(_ x: Tensor, dim: Int) throws -> Tensor {
    try make("log_softmax") { ct_log_softmax(x.handle, Int64(dim), $0) }
  }

  /// Inverted dropout with probability `p` when `training`, using libtorch's default generator
  /// (seed it with `LibTorch.manualSeed`), as `torch.nn.functional.dropout`.
  public static func dropout(_ x: Tensor, p: Double, training: Bool) throws -> Tensor {
    try make("dropout") { ct_dropout(x.handle, p, training, $0) }
  }

  /// Rows of `weight` `[V, E]` at `indices` (int64) → `[..., E]`, as `torch.nn.functional.embedding`.
  public static func embedding(_ indices: Tensor, weight: Tensor, paddingIndex: Int? = nil) throws -> Tensor {
    // A negative padding index counts from the end, as in PyTorch.
    let padding = paddingIndex.map { $0 < 0 ? $0 + weight.shape[0] : $0 }
    return try make("embedding") { ct_embedding(weight.handle, indices.handle, Int64(padding ?? -1), $0) }
  }

  /// Attention `softmax(q kᵀ / √E + mask) v`, as `torch.nn.functional.scaled_dot_product_attention`.
  /// q `[..., L, E]`, k and v `[..., S, E]`; mask bool (true attends) or additive float, broadcastable.
  public static func scaledDotProductAttention(query: Tensor, key: Tensor, value: Tensor, mask: Tensor? = nil,
                                               dropout: Double = 0, causal: Bool = false) throws -> Tensor
  {
    try withExtendedLifetime(mask) {
      try make("scaled_dot_product_attention") {
        ct_scaled_dot_product_attention(query.handle, key.handle, value.handle, mask?.handle, dropout, causal, $0)
      }
    }
  }

  /// Binary cross-entropy on logits, as `torch.nn.functional.binary_cross_entropy_with_logits`:
  /// `ℓ = −w·[p·y·log σ(x) + (1 − y)·log(1 − σ(x))]`.
  /// - Parameters:
  ///   - logits, targets: the same shape; targets in [0, 1].
  ///   - weight: per-element weight (broadcast), e.g. a 0/1 mask that removes uncertain labels.
  ///   - posWeight: per-class weight `p` of positives, broadcast over the last dimension.
  ///   - reduction: `.mean` divides by the element count (masked elements included, as PyTorch does).
  public static func bceWithLogits(_ logits: Tensor, targets: Tensor, weight: Tensor? = nil,
                                   posWeight: Tensor? = nil, reduction: Reduction = .mean) throws -> Tensor
  {
    try withExtendedLifetime((weight, posWeight)) {
      try make("binary_cross_entropy_with_logits of \(logits.shape) and \(targets.shape)") {
        ct_bce_with_logits(logits.handle, targets.handle, weight?.handle, posWeight?.handle, reduction.code, $0)
      }
    }
  }

  /// Cross-entropy of logits `[N, C]` against class indices `[N]` (int64) or class probabilities
  /// `[N, C]`, as `torch.nn.functional.cross_entropy`.
  public static func crossEntropy(_ logits: Tensor, targets: Tensor, weight: Tensor? = nil,
                                  reduction: Reduction = .mean, ignoreIndex: Int = -100,
                                  labelSmoothing: Double = 0) throws -> Tensor
  {
    try withExtendedLifetime(weight) {
      try make("cross_entropy of \(logits.shape) and \(targets.shape)") {
        ct_cross_entropy(logits.handle, targets.handle, weight?.handle, reduction.code, Int64(ignoreIndex),
                         labelSmoothing, $0)
      }
    }
  }

  /// Mean squared error, as `torch.nn.functional.mse_loss`.
  public static func mseLoss(_ a: Tensor, _ b: Tensor, reduction: Reduction = .mean) throws -> Tensor {
    try make("mse_loss") { ct_mse_loss(a.handle, b.handle, reduction.code, $0) }
  }
}

extension Tensor {
  /// `max(x, 0)` in place, as `torch.relu_` (what `nn.ReLU(inplace=True)` runs). Autograd-aware: libtorch
  /// reports an error at `backward()` if the overwritten values were needed.
  public func reluInPlace() throws { try check(ct_relu_(handle), "relu_") }

  public func softmax(dim: Int) throws -> Tensor { try Functional.softmax(self, dim: dim) }
  public func logSoftmax(dim: Int) throws -> Tensor { try Functional.logSoftmax(self, dim: dim) }
}
