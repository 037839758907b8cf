import CTorch
import Foundation

/// An n-dimensional array on a device, backed by a libtorch `at::Tensor`, with autograd.
///
/// A `Tensor` owns one handle; the handle is released in `deinit`. Views (`reshape`, `narrow`, `permute`,
/// …) share storage with their base, exactly as in PyTorch. Every operation that libtorch can reject
/// throws `TorchError.libtorch` with libtorch's message.
///
/// Layout conventions are libtorch's: a volume is `[C, D, H, W]`, a batch of volumes `[N, C, D, H, W]`.
public final class Tensor: @unchecked Sendable {
  let handle: OpaquePointer

  init(handle: OpaquePointer) { self.handle = handle }

  deinit { ct_tensor_free(handle) }

  // MARK: Metadata

  /// Number of dimensions.
  public var rank: Int {
    var n: Int64 = 0
    _ = ct_tensor_ndim(handle, &n)
    return Int(n)
  }

  /// Sizes of each dimension.
  public var shape: [Int] {
    let n = rank
    var sizes = [Int64](repeating: 0, count: n)
    _ = ct_tensor_sizes(handle, &sizes, Int64(n))
    return sizes.map(Int.init)
  }

  /// Strides of each dimension, in elements.
  public var strides: [Int] {
    let n = rank
    var s = [Int64](repeating: 0, count: n)
    _ = ct_tensor_strides(handle, &s, Int64(n))
    return s.map(Int.init)
  }

  /// Total number of elements.
  public var count: Int {
    var n: Int64 = 0
    _ = ct_tensor_numel(handle, &n)
    return Int(n)
  }

  public var dtype: DType {
    var code = CT_F32
    _ = ct_tensor_dtype(handle, &code)
    return DType(code: code)
  }

  public var device: Device {
    var kind = CT_CPU
    var index: Int32 = -1
    _ = ct_tensor_device(handle, &kind, &index)
    return kind == CT_CPU ? .cpu : .cuda(Int(Swift.max(index, 0)))
  }

  /// Whether the elements are laid out in `format` without gaps.
  public func isContiguous(_ format: MemoryFormat = .contiguous) -> Bool {
    var out = false
    _ = ct_tensor_is_contiguous(handle, format.code, &out)
    return out
  }

  /// A second `Tensor` object for the same libtorch tensor (same storage and autograd identity).
  public func alias() -> Tensor {
    var out: OpaquePointer? = nil
    precondition(ct_tensor_alias(handle, &out) == CT_OK)
    return Tensor(handle: out!)
  }

  // MARK: Creation

  public static func empty(_ shape: [Int], dtype: DType = .float32, device: Device = .cpu) throws -> Tensor {
    try withInt64s(shape) { p, n in
      try make("empty") { ct_empty(p, n, dtype.code, device.kind, device.index, $0) }
    }
  }

  public static func zeros(_ shape: [Int], dtype: DType = .float32, device: Device = .cpu) throws -> Tensor {
    try withInt64s(shape) { p, n in
      try make("zeros") { ct_zeros(p, n, dtype.code, device.kind, device.index, $0) }
    }
  }

  /// Zeros with `other`'s shape, dtype, device and memory layout (`torch.zeros_like`, which preserves the
  /// strides of a dense tensor: a channels-last parameter gets channels-last zeros).
  public static func zeros(like other: Tensor) throws -> Tensor {
    try make("zeros_like") { ct_zeros_like(other.handle, $0) }
  }

  public static func ones(_ shape: [Int], dtype: DType = .float32, device: Device = .cpu) throws -> Tensor {
    try withInt64s(shape) { p, n in
      try make("ones") { ct_ones(p, n, dtype.code, device.kind, device.index, $0) }
    }
  }

  public static func full(_ shape: [Int], value: Double, dtype: DType = .float32, device: Device = .cpu) throws
    -> Tensor
  {
    try withInt64s(shape) { p, n in
      try make("full") { ct_full(p, n, value, dtype.code, device.kind, device.index, $0) }
    }
  }

  /// A 0-dimensional tensor holding `value`.
  public static func scalar(_ value: Double, dtype: DType = .float32, device: Device = .cpu) throws -> Tensor {
    try full([], value: value, dtype: dtype, device: device)
  }

  /// Values `start, start + step, …` below `end`, as `torch.arange(start, end, step)`.
  public static func arange(_ start: Double, _ end: Double, step: Double = 1, dtype: DType = .int64,
                            device: Device = .cpu) throws -> Tensor
  {
    try make("arange") { ct_arange(start, end, step, dtype.code, device.kind, device.index, $0) }
  }

  /// Values `0, 1, …` below `end`, as `torch.arange(end)`.
  public static func arange(_ end: Double, dtype: DType = .int64, device: Device = .cpu) throws -> Tensor {
    try arange(0, end, dtype: dtype, device: device)
  }

  /// `steps` evenly spaced values from `start` to `end` inclusive, as `torch.linspace`.
  public static func linspace(_ start: Double, _ end: Double, steps: Int, dtype: DType = .float32,
                              device: Device = .cpu) throws -> Tensor
  {
    try make("linspace") { ct_linspace(start, end, Int64(steps), dtype.code, device.kind, device.index, $0) }
  }

  /// Standard normal draws, as `torch.randn(shape, generator=g)`. With no generator, libtorch's default one.
  public static func randn(_ shape: [Int], dtype: DType = .float32, generator: Generator? = nil,
                           device: Device = .cpu) throws -> Tensor
  {
    try withExtendedLifetime(generator) {
      try withInt64s(shape) { p, n in
        try make("randn") { ct_randn(p, n, dtype.code, generator?.handle, device.kind, device.index, $0) }
      }
    }
  }

  /// Uniform draws in [0, 1), as `torch.rand(shape, generator=g)`.
  public static func rand(_ shape: [Int], dtype: DType = .float32, generator: Generator? = nil,
                          device: Device = .cpu) throws -> Tensor
  {
    try withExtendedLifetime(generator) {
      try withInt64s(shape) { p, n in
        try make("rand") { ct_rand(p, n, dtype.code, generator?.handle, device.kind, device.index, $0) }
      }
    }
  }

  /// Integers uniform in [low, high), as `torch.randint`.
  public static func randint(_ low: Int, _ high: Int, _ shape: [Int], dtype: DType = .int64,
                             generator: Generator? = nil, device: Device = .cpu) throws -> Tensor
  {
    try withExtendedLifetime(generator) {
      try withInt64s(shape) { p, n in
        try make("randint") {
          ct_randint(Int64(low), Int64(high), p, n, dtype.code, generator?.handle, device.kind, device.index, $0)
        }
      }
    }
  }

  /// A random permutation of 0..<n (int64), as `torch.randperm`.
  public static func randperm(_ n: Int, generator: Generator? = nil) throws -> Tensor {
    try withExtendedLifetime(generator) {
      try make("randperm") { ct_randperm(Int64(n), generator?.handle, $0) }
    }
  }

  /// A CPU tensor holding a copy of `values` (C order) with the given shape (default: one dimension).
  /// - Throws: `TorchError.libtorch` if the shape's element count differs from `values.count`.
  public convenience init<T: TensorElement>(_ values: [T], shape: [Int]? = nil) throws {
    let shape = shape ?? [values.count]
    let handle: OpaquePointer = try values.withUnsafeBytes { raw in
      try withInt64s(shape) { p, n in
        var out: OpaquePointer? = nil
        try check(ct_from_data(raw.baseAddress, raw.count, p, n, T.dtype.code, &out), "from_data")
        return out!
      }
    }
    self.init(handle: handle)
  }

  /// A CPU tensor made from raw little-endian element bytes of `dtype` (e.g. bfloat16 bit patterns).
  /// - Throws: `TorchError.libtorch` if `bytes.count` is not `shape`'s element count × `dtype.byteCount`.
  public convenience init(rawBytes bytes: UnsafeRawBufferPointer, shape: [Int], dtype: DType) throws {
    let handle: OpaquePointer = try withInt64s(shape) { p, n in
      var out: OpaquePointer? = nil
      try check(ct_from_data(bytes.baseAddress, bytes.count, p, n, dtype.code, &out), "from_data")
      return out!
    }
    self.init(handle: handle)
  }

  // MARK: Reading values

  /// The elements in C order, converted to `T` (moved to the CPU and made contiguous as needed).
  public func scalars<T: TensorElement>(as type: T.Type = T.self) throws -> [T] {
    let source = dtype == T.dtype ? self : try to(T.dtype)
    let n = count
    return try [T](unsafeUninitializedCapacity: n) { buffer, initialized in
      try check(
        ct_copy_to_buffer(source.handle, buffer.baseAddress!, n * MemoryLayout<T>.stride), "copy_to_buffer")
      initialized = n
    }
  }

  /// The elements' raw bytes in C order (as stored, little-endian).
  public func rawBytes() throws -> [UInt8] {
    let n = count * dtype.byteCount
    return try [UInt8](unsafeUninitializedCapacity: n) { buffer, initialized in
      if n > 0 { try check(ct_copy_to_buffer(handle, buffer.baseAddress!, n), "copy_to_buffer") }
      initialized = n
    }
  }

  /// Calls `body` with the bytes of a contiguous CPU tensor in place, without copying.
  /// - Throws: `TorchError.invalidArgument` if the tensor is not a contiguous CPU tensor.
  public func withUnsafeRawBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) throws -> R {
    guard device == .cpu, isContiguous() else {
      throw TorchError.invalidArgument("withUnsafeRawBytes needs a contiguous CPU tensor")
    }
    var ptr: UnsafeMutableRawPointer? = nil
    try check(ct_tensor_data_ptr(handle, &ptr), "data_ptr")
    return try withExtendedLifetime(self) {
      try body(UnsafeRawBufferPointer(start: ptr, count: count * dtype.byteCount))
    }
  }

  /// The single value of a one-element tensor, as `Double`.
  public func item() throws -> Double {
    var v = 0.0
    try check(ct_item_double(handle, &v), "item")
    return v
  }

  /// The single value of a one-element tensor, as `Int`.
  public func itemInt() throws -> Int {
    var v: Int64 = 0
    try check(ct_item_int64(handle, &v), "item")
    return Int(v)
  }
}

extension Tensor: CustomStringConvertible {
  /// libtorch's printout of the tensor (values, dtype, shape); a summary line for more than 1,000 elements.
  public var description: String {
    if count > 1000 { return "Tensor(shape: \(shape), dtype: \(dtype), device: \(device))" }
    var cstr: UnsafeMutablePointer<CChar>? = nil
    guard ct_tensor_description(handle, &cstr) == CT_OK, let c = cstr else {
      return "Tensor(shape: \(shape), dtype: \(dtype))"
    }
    defer { ct_string_free(c) }
    return String(cString: c)
  }
}
