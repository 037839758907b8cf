import CTorch

// MARK: - Conversion

extension Tensor {
  /// A copy with elements converted to `dtype` (self if already of that type).
  public func to(_ dtype: DType) throws -> Tensor {
    try make("to(\(dtype))") { ct_to_dtype(handle, dtype.code, $0) }
  }

  /// The tensor on `device` (self if already there).
  public func to(_ device: Device) throws -> Tensor {
    try device.validate()
    return try make("to(\(device))") { ct_to_device(handle, device.kind, device.index, $0) }
  }

  /// The tensor laid out contiguously in `format` (self if already so).
  public func contiguous(_ format: MemoryFormat = .contiguous) throws -> Tensor {
    try make("contiguous") { ct_contiguous(handle, format.code, $0) }
  }

  /// Re-lays out this tensor's storage in `format` in place, keeping the tensor itself: its identity, autograd
  /// leaf status, and every reference to it (an optimizer's, a module's). PyTorch:
  /// `p.data = p.contiguous(memory_format=format)`. Values and shape are unchanged; a no-op when already laid out
  /// so. `.channelsLast3d` needs a 5-D tensor.
  /// - Throws: `TorchError.libtorch` for a format that does not fit the tensor's rank.
  public func setMemoryFormat(_ format: MemoryFormat) throws {
    try check(ct_set_memory_format_(handle, format.code), "set memory format")
  }

  /// A copy with its own storage (autograd-tracked, as `Tensor.clone()`).
  public func clone() throws -> Tensor { try make("clone") { ct_clone(handle, $0) } }

  /// The same storage without autograd history, as `Tensor.detach()`.
  public func detach() throws -> Tensor { try make("detach") { ct_detach(handle, $0) } }
}

// MARK: - Views and shape

extension Tensor {
  /// A tensor with the same elements and a new shape (one entry may be -1), as `Tensor.reshape`.
  public func reshape(_ shape: [Int]) throws -> Tensor {
    try withInt64s(shape) { p, n in try make("reshape(\(shape)) of \(self.shape)") { ct_reshape(handle, p, n, $0) } }
  }

  /// A view with a new shape; fails where the strides do not allow a view, as `Tensor.view`.
  public func view(_ shape: [Int]) throws -> Tensor {
    try withInt64s(shape) { p, n in try make("view(\(shape)) of \(self.shape)") { ct_view(handle, p, n, $0) } }
  }

  /// The dimensions reordered, as `Tensor.permute`.
  public func permute(_ dims: [Int]) throws -> Tensor {
    try withInt64s(dims) { p, n in try make("permute(\(dims)) of \(shape)") { ct_permute(handle, p, n, $0) } }
  }

  /// Two dimensions swapped, as `Tensor.transpose`.
  public func transposed(_ dim0: Int, _ dim1: Int) throws -> Tensor {
    try make("transpose") { ct_transpose(handle, Int64(dim0), Int64(dim1), $0) }
  }

  /// The transpose of a 2-D tensor (a view).
  public func t() throws -> Tensor { try transposed(0, 1) }

  /// A broadcast view to `shape` (-1 keeps a size), as `Tensor.expand`.
  public func expand(_ shape: [Int]) throws -> Tensor {
    try withInt64s(shape) { p, n in try make("expand(\(shape)) of \(self.shape)") { ct_expand(handle, p, n, $0) } }
  }

  /// `length` elements from `start` along `dim` (a view), as `Tensor.narrow`.
  public func narrow(dim: Int, start: Int, length: Int) throws -> Tensor {
    try make("narrow(dim: \(dim), start: \(start), length: \(length)) of \(shape)") {
      ct_narrow(handle, Int64(dim), Int64(start), Int64(length), $0)
    }
  }

  /// Elements `range` with `step` along `dim` (a view), as Python's `t[..., start:end:step]`.
  public func slice(dim: Int, _ range: Range<Int>, step: Int = 1) throws -> Tensor {
    try make("slice(dim: \(dim), \(range)) of \(shape)") {
      ct_slice(handle, Int64(dim), Int64(range.lowerBound), Int64(range.upperBound), Int64(step), $0)
    }
  }

  /// The sub-tensor at `index` along `dim`, dropping that dimension (a view), as `Tensor.select`.
  public func select(dim: Int, index: Int) throws -> Tensor {
    try make("select(dim: \(dim), index: \(index)) of \(shape)") { ct_select(handle, Int64(dim), Int64(index), $0) }
  }

  /// Rows `indices` (an int64 tensor) along `dim`, as `torch.index_select`.
  public func indexSelect(dim: Int, indices: Tensor) throws -> Tensor {
    try make("index_select") { ct_index_select(handle, Int64(dim), indices.handle, $0) }
  }

  /// `torch.gather(self, dim, index)`.
  public func gather(dim: Int, indices: Tensor) throws -> Tensor {
    try make("gather") { ct_gather(handle, Int64(dim), indices.handle, $0) }
  }

  /// Elements where `mask` (bool) is true replaced by `value`, as `Tensor.masked_fill`.
  public func maskedFill(_ mask: Tensor, _ value: Double) throws -> Tensor {
    try make("masked_fill") { ct_masked_fill(handle, mask.handle, value, $0) }
  }

  /// `torch.where(condition, a, b)`.
  public static func `where`(_ condition: Tensor, _ a: Tensor, _ b: Tensor) throws -> Tensor {
    try make("where") { ct_where(condition.handle, a.handle, b.handle, $0) }
  }

  /// Concatenation along an existing dimension, as `torch.cat`.
  public static func cat(_ tensors: [Tensor], dim: Int = 0) throws -> Tensor {
    try withHandles(tensors) { hs, n in try make("cat") { ct_cat(hs, n, Int64(dim), $0) } }
  }

  /// Stacking along a new dimension, as `torch.stack`.
  public static func stack(_ tensors: [Tensor], dim: Int = 0) throws -> Tensor {
    try withHandles(tensors) { hs, n in try make("stack") { ct_stack(hs, n, Int64(dim), $0) } }
  }

  /// Size-1 dimensions removed: only `dim` when given, all of them otherwise.
  public func squeeze(dim: Int? = nil) throws -> Tensor {
    try make("squeeze") { ct_squeeze(handle, dim.map(Int64.init) ?? Int64.min, $0) }
  }

  /// A size-1 dimension inserted at `dim`.
  public func unsqueeze(dim: Int) throws -> Tensor {
    try make("unsqueeze") { ct_unsqueeze(handle, Int64(dim), $0) }
  }

  /// Dimensions `startDim...endDim` merged into one, as `torch.flatten`.
  public func flatten(startDim: Int = 0, endDim: Int = -1) throws -> Tensor {
    try make("flatten") { ct_flatten(handle, Int64(startDim), Int64(endDim), $0) }
  }

  /// The order of elements reversed along `dims`, as `torch.flip`.
  public func flip(_ dims: [Int]) throws -> Tensor {
    try withInt64s(dims) { p, n in try make("flip") { ct_flip(handle, p, n, $0) } }
  }

  /// Constant padding; `pad` lists (before, after) pairs from the last dimension backwards, as
  /// `torch.nn.functional.pad(x, pad, value=value)`.
  public func padded(_ pad: [Int], value: Double = 0) throws -> Tensor {
    try withInt64s(pad) { p, n in try make("pad(\(pad)) of \(shape)") { ct_constant_pad(handle, p, n, value, $0) } }
  }
}

// MARK: - Element-wise

extension Tensor {
  func binary(_ op: ct_binary_op, _ other: Tensor, _ name: String) throws -> Tensor {
    try make("\(name) of \(shape) and \(other.shape)") { ct_binary(op, handle, other.handle, $0) }
  }
  func binary(_ op: ct_binary_op, _ other: Double, _ name: String) throws -> Tensor {
    try make(name) { ct_binary_scalar(op, handle, other, $0) }
  }
  func unary(_ op: ct_unary_op, _ name: String) throws -> Tensor {
    try make(name) { ct_unary(op, handle, $0) }
  }

  public static func + (a: Tensor, b: Tensor) throws -> Tensor { try a.binary(CT_ADD, b, "add") }
  public static func - (a: Tensor, b: Tensor) throws -> Tensor { try a.binary(CT_SUB, b, "sub") }
  public static func * (a: Tensor, b: Tensor) throws -> Tensor { try a.binary(CT_MUL, b, "mul") }
  public static func / (a: Tensor, b: Tensor) throws -> Tensor { try a.binary(CT_DIV, b, "div") }
  public static func + (a: Tensor, b: Double) throws -> Tensor { try a.binary(CT_ADD, b, "add") }
  public static func - (a: Tensor, b: Double) throws -> Tensor { try a.binary(CT_SUB, b, "sub") }
  public static func * (a: Tensor, b: Double) throws -> Tensor { try a.binary(CT_MUL, b, "mul") }
  public static func / (a: Tensor, b: Double) throws -> Tensor { try a.binary(CT_DIV, b, "div") }
  public static func + (a: Double, b: Tensor) throws -> Tensor { try b.binary(CT_ADD, a, "add") }
  public static func * (a: Double, b: Tensor) throws -> Tensor { try b.binary(CT_MUL, a, "mul") }
  public static func - (a: Double, b: Tensor) throws -> Tensor { try make("rsub") { ct_scalar_sub(a, b.handle, $0) } }
  public static func / (a: Double, b: Tensor) throws -> Tensor { try make("rdiv") { ct_scalar_div(a, b.handle, $0) } }
  public static prefix func - (a: Tensor) throws -> Tensor { try a.unary(CT_NEG, "neg") }

  public func pow(_ exponent: Double) throws -> Tensor { try binary(CT_POW, exponent, "pow") }
  public func pow(_ exponent: Tensor) throws -> Tensor { try binary(CT_POW, exponent, "pow") }
  /// Element-wise maximum (broadcasting), as `torch.maximum`.
  public func maximum(_ other: Tensor) throws -> Tensor { try binary(CT_MAXIMUM, other, "maximum") }
  public func minimum(_ other: Tensor) throws -> Tensor { try binary(CT_MINIMUM, other, "minimum") }
  public func remainder(_ other: Double) throws -> Tensor { try binary(CT_REMAINDER, other, "remainder") }
  public func atan2(_ other: Tensor) throws -> Tensor { try binary(CT_ATAN2, other, "atan2") }

  // Comparisons give bool tensors.
  public func eq(_ other: Tensor) throws -> Tensor { try binary(CT_EQ, other, "eq") }
  public func ne(_ other: Tensor) throws -> Tensor { try binary(CT_NE, other, "ne") }
  public func lt(_ other: Tensor) throws -> Tensor { try binary(CT_LT, other, "lt") }
  public func le(_ other: Tensor) throws -> Tensor { try binary(CT_LE, other, "le") }
  public func gt(_ other: Tensor) throws -> Tensor { try binary(CT_GT, other, "gt") }
  public func ge(_ other: Tensor) throws -> Tensor { try binary(CT_GE, other, "ge") }
  public func eq(_ other: Double) throws -> Tensor { try binary(CT_EQ, other, "eq") }
  public func ne(_ other: Double) throws -> Tensor { try binary(CT_NE, other, "ne") }
  public func lt(_ other: Double) throws -> Tensor { try binary(CT_LT, other, "lt") }
  public func le(_ other: Double) throws -> Tensor { try binary(CT_LE, other, "le") }
  public func gt(_ other: Double) throws -> Tensor { try binary(CT_GT, other, "gt") }
  public func ge(_ other: Double) throws -> Tensor { try binary(CT_GE, other, "ge") }
  public func logicalAnd(_ other: Tensor) throws -> Tensor { try binary(CT_LOGICAL_AND, other, "logical_and") }
  public func logicalOr(_ other: Tensor) throws -> Tensor { try binary(CT_LOGICAL_OR, other, "logical_or") }
  public func logicalNot() throws -> Tensor { try unary(CT_LOGICAL_NOT, "logical_not") }

  public func abs() throws -> Tensor { try unary(CT_ABS, "abs") }
  public func exp() throws -> Tensor { try unary(CT_EXP, "exp") }
  public func log() throws -> Tensor { try unary(CT_LOG, "log") }
  public func log1p() throws -> Tensor { try unary(CT_LOG1P, "log1p") }
  public func expm1() throws -> Tensor { try unary(CT_EXPM1, "expm1") }
  public func sqrt() throws -> Tensor { try unary(CT_SQRT, "sqrt") }
  public func rsqrt() throws -> Tensor { try unary(CT_RSQRT, "rsqrt") }
  public func square() throws -> Tensor { try unary(CT_SQUARE, "square") }
  public func reciprocal() throws -> Tensor { try unary(CT_RECIPROCAL, "reciprocal") }
  public func sin() throws -> Tensor { try unary(CT_SIN, "sin") }
  public func cos() throws -> Tensor { try unary(CT_COS, "cos") }
  public func erf() throws -> Tensor { try unary(CT_ERF, "erf") }
  public func sign() throws -> Tensor { try unary(CT_SIGN, "sign") }
  public func floor() throws -> Tensor { try unary(CT_FLOOR, "floor") }
  public func ceil() throws -> Tensor { try unary(CT_CEIL, "ceil") }
  public func rounded() throws -> Tensor { try unary(CT_ROUND, "round") }
  public func isNaN() throws -> Tensor { try unary(CT_ISNAN, "isnan") }
  public func isFinite() throws -> Tensor { try unary(CT_ISFINITE, "isfinite") }

  public func relu() throws -> Tensor { try unary(CT_RELU, "relu") }
  /// GELU; `approximateTanh` selects the tanh approximation (`approximate="tanh"`), otherwise the exact erf form.
  public func gelu(approximateTanh: Bool = false) throws -> Tensor {
    try unary(approximateTanh ? CT_GELU_TANH : CT_GELU, "gelu")
  }
  public func tanh() throws -> Tensor { try unary(CT_TANH, "tanh") }
  public func sigmoid() throws -> Tensor { try unary(CT_SIGMOID, "sigmoid") }
  public func silu() throws -> Tensor { try unary(CT_SILU, "silu") }
  public func logSigmoid() throws -> Tensor { try unary(CT_LOGSIGMOID, "log_sigmoid") }

  /// Values limited to [min, max] (either bound optional), as `torch.clamp`.
  public func clamp(min: Double? = nil, max: Double? = nil) throws -> Tensor {
    try make("clamp") { ct_clamp(handle, min != nil, min ?? 0, max != nil, max ?? 0, $0) }
  }

  // MARK: In place (as PyTorch's trailing-underscore methods)

  /// `self += alpha * other` in place.
  public func addInPlace(_ other: Tensor, alpha: Double = 1) throws {
    try check(ct_add_(handle, other.handle, alpha), "add_")
  }
  /// `self *= value` in place.
  public func mulInPlace(_ value: Double) throws { try check(ct_mul_scalar_(handle, value), "mul_") }
  /// Copies `source` (broadcast, converted) into this tensor's storage.
  public func copyFrom(_ source: Tensor) throws {
    try check(ct_copy_(handle, source.handle), "copy_ of \(source.shape) into \(shape)")
  }
  public func fill(_ value: Double) throws { try check(ct_fill_(handle, value), "fill_") }
  public func zero() throws { try fill(0) }
  /// Fills with uniform draws in [low, high), as `Tensor.uniform_`.
  public func uniformInPlace(_ low: Double, _ high: Double, generator: Generator? = nil) throws {
    try withExtendedLifetime(generator) { try check(ct_uniform_(handle, low, high, generator?.handle), "uniform_") }
  }
  /// Fills with normal draws, as `Tensor.normal_`.
  public func normalInPlace(mean: Double = 0, std: Double = 1, generator: Generator? = nil) throws {
    try withExtendedLifetime(generator) { try check(ct_normal_(handle, mean, std, generator?.handle), "normal_") }
  }
}

// MARK: - Reductions

extension Tensor {
  func reduce(_ op: ct_reduce_op, _ dims: [Int], _ keepDim: Bool, _ name: String) throws -> Tensor {
    try withInt64s(dims) { p, n in try make("\(name) of \(shape)") { ct_reduce(op, handle, p, n, keepDim, $0) } }
  }

  /// Sum over `dims` (all dimensions when empty).
  public func sum(dims: [Int] = [], keepDim: Bool = false) throws -> Tensor { try reduce(CT_SUM, dims, keepDim, "sum") }

  /// Threshold counts of a 2-D similarity block in one pass, without temporaries (the kernel of Recall@K ranks):
  /// for self `[R, C]` (CPU, float32 or float64), returns `rows[i]` = #{j : self[i, j] ≥ rowThreshold[i]} and
  /// `columns[j]` = #{i : self[i, j] ≥ columnThreshold[j]}, both int64. Same counts as
  /// `self.ge(rowThreshold.unsqueeze(1)).sum(dims: [1])` and `self.ge(columnThreshold.unsqueeze(0)).sum(dims: [0])`,
  /// which materialise two `[R, C]` temporaries.
  /// - Parameters: rowThreshold `[R]`, columnThreshold `[C]`, both of self's dtype, on the CPU.
  /// - Throws: `TorchError.libtorch` for another device, dtype or shape.
  /// - Parameter excludingDiagonal: when given as k, the entries (i, i + k) are left out of both counts (a
  ///   retrieval block's self pairs).
  public func countGreaterOrEqual(rowThreshold: Tensor, columnThreshold: Tensor, excludingDiagonal: Int? = nil) throws
    -> (rows: Tensor, columns: Tensor)
  {
    let (r, c) = try make2("countGreaterOrEqual of \(shape)") {
      ct_count_ge(handle, rowThreshold.handle, columnThreshold.handle, Int64(excludingDiagonal ?? 0),
                  excludingDiagonal != nil, $0, $1)
    }
    return (r, c)
  }
  /// Mean over `dims` (all dimensions when empty).
  public func mean(dims: [Int] = [], keepDim: Bool = false) throws -> Tensor {
    try reduce(CT_MEAN, dims, keepDim, "mean")
  }
  /// Largest value over `dims` (all when empty), as `torch.amax`.
  public func max(dims: [Int] = [], keepDim: Bool = false) throws -> Tensor { try reduce(CT_AMAX, dims, keepDim, "amax") }
  /// Smallest value over `dims` (all when empty), as `torch.amin`.
  public func min(dims: [Int] = [], keepDim: Bool = false) throws -> Tensor { try reduce(CT_AMIN, dims, keepDim, "amin") }
  public func prod(dim: Int? = nil, keepDim: Bool = false) throws -> Tensor {
    try reduce(CT_PROD, dim.map { [$0] } ?? [], keepDim, "prod")
  }
  public func any(dim: Int? = nil, keepDim: Bool = false) throws -> Tensor {
    try reduce(CT_ANY, dim.map { [$0] } ?? [], keepDim, "any")
  }
  public func all(dim: Int? = nil, keepDim: Bool = false) throws -> Tensor {
    try reduce(CT_ALL, dim.map { [$0] } ?? [], keepDim, "all")
  }

  /// Largest values and their indices along `dim`, as `torch.max(x, dim)`.
  public func max(dim: Int, keepDim: Bool = false) throws -> (values: Tensor, indices: Tensor) {
    try make2("max(dim:)") { ct_max_dim(handle, Int64(dim), keepDim, $0, $1) }
  }
  /// Smallest values and their indices along `dim`, as `torch.min(x, dim)`.
  public func min(dim: Int, keepDim: Bool = false) throws -> (values: Tensor, indices: Tensor) {
    try make2("min(dim:)") { ct_min_dim(handle, Int64(dim), keepDim, $0, $1) }
  }
  /// Index of the largest value along `dim`, or over the flattened tensor when `dim` is nil.
  public func argmax(dim: Int? = nil, keepDim: Bool = false) throws -> Tensor {
    try make("argmax") { ct_argmax(handle, dim != nil, Int64(dim ?? 0), keepDim, $0) }
  }
  /// The `k` largest (or smallest) values along `dim` and their indices, as `torch.topk`.
  public func topk(_ k: Int, dim: Int = -1, largest: Bool = true, sorted: Bool = true) throws
    -> (values: Tensor, indices: Tensor)
  {
    try make2("topk(\(k)) of \(shape)") { ct_topk(handle, Int64(k), Int64(dim), largest, sorted, $0, $1) }
  }
  /// Sorted values and the permutation, as `torch.sort`.
  public func sort(dim: Int = -1, descending: Bool = false, stable: Bool = true) throws
    -> (values: Tensor, indices: Tensor)
  {
    try make2("sort") { ct_sort(handle, Int64(dim), descending, stable, $0, $1) }
  }
  /// Vector p-norm over `dims` (all when empty), as `torch.linalg.vector_norm`.
  public func norm(p: Double = 2, dims: [Int] = [], keepDim: Bool = false) throws -> Tensor {
    try withInt64s(dims) { d, n in try make("norm") { ct_norm(handle, p, d, n, keepDim, $0) } }
  }
  /// Variance over `dims` (all when empty) with `correction` (1: unbiased), as `torch.var`.
  public func variance(dims: [Int] = [], correction: Int = 1, keepDim: Bool = false) throws -> Tensor {
    try withInt64s(dims) { d, n in try make("var") { ct_var(handle, d, n, Int64(correction), keepDim, false, $0) } }
  }
  /// Standard deviation over `dims` (all when empty), as `torch.std`.
  public func std(dims: [Int] = [], correction: Int = 1, keepDim: Bool = false) throws -> Tensor {
    try withInt64s(dims) { d, n in try make("std") { ct_var(handle, d, n, Int64(correction), keepDim, true, $0) } }
  }
  public func cumsum(dim: Int) throws -> Tensor { try make("cumsum") { ct_cumsum(handle, Int64(dim), $0) } }

  /// `torch.allclose(self, other, rtol, atol)`.
  public func allClose(_ other: Tensor, rtol: Double = 1e-5, atol: Double = 1e-8) throws -> Bool {
    var out = false
    try check(ct_allclose(handle, other.handle, rtol, atol, &out), "allclose")
    return out
  }
  /// True when shapes and all elements are equal, as `torch.equal`.
  public func equals(_ other: Tensor) throws -> Bool {
    var out = false
    try check(ct_equal(handle, other.handle, &out), "equal")
    return out
  }

  /// Matrix product with broadcasting, as `torch.matmul`.
  public func matmul(_ other: Tensor) throws -> Tensor {
    try make("matmul of \(shape) and \(other.shape)") { ct_matmul(handle, other.handle, $0) }
  }
}

// MARK: - Autograd

extension Tensor {
  /// Whether autograd tracks operations on this tensor. Setting it is allowed on leaves only.
  public var requiresGrad: Bool {
    var out = false
    _ = ct_requires_grad(handle, &out)
    return out
  }

  /// Marks a leaf tensor as requiring (or not) gradients; returns self for chaining.
  @discardableResult
  public func requiringGrad(_ flag: Bool = true) throws -> Tensor {
    try check(ct_set_requires_grad(handle, flag), "requires_grad_")
    return self
  }

  public var isLeaf: Bool {
    var out = false
    _ = ct_is_leaf(handle, &out)
    return out
  }

  /// Back-propagates from this tensor (a scalar, or with an explicit `gradient` of its shape), as
  /// `Tensor.backward`. Gradients accumulate into the `.grad` of leaves.
  public func backward(gradient: Tensor? = nil, retainGraph: Bool = false) throws {
    try withExtendedLifetime(gradient) {
      try check(ct_backward(handle, gradient?.handle, retainGraph), "backward")
    }
  }

  /// The accumulated gradient of a leaf, or nil when none has been computed (or it was cleared).
  public var grad: Tensor? {
    var out: OpaquePointer? = nil
    guard ct_grad(handle, &out) == CT_OK, let h = out else { return nil }
    return Tensor(handle: h)
  }

  /// Replaces (or with nil removes) the gradient of a leaf.
  public func setGrad(_ gradient: Tensor?) throws {
    try withExtendedLifetime(gradient) {
      try check(ct_set_grad(handle, gradient?.handle), "set grad")
    }
  }
}
