import CTorch

/// A failure reported by libtorch or by the Swift layer over it.
///
/// libtorch's C++ exceptions are caught in the `CTorch` shim and arrive here as `.libtorch` with the
/// operation's name and libtorch's own message (without its C++ backtrace); the process never aborts.
public enum TorchError: Error, CustomStringConvertible, Equatable {
  /// libtorch rejected an operation, e.g. a conv3d whose input and weight channels disagree.
  case libtorch(op: String, message: String)
  /// A file could not be read or written (`path`, the reason).
  case io(path: String, reason: String)
  /// A file exists but its content is not what the format requires.
  case invalidFormat(path: String, reason: String)
  /// An argument is outside what the operation accepts.
  case invalidArgument(String)

  public var description: String {
    switch self {
    case let .libtorch(op, message): return "libtorch error in \(op): \(message)"
    case let .io(path, reason): return "\(path): \(reason)"
    case let .invalidFormat(path, reason): return "\(path): \(reason)"
    case let .invalidArgument(message): return message
    }
  }
}

/// Throws `TorchError.libtorch` with the shim's per-thread message when `status` is not `CT_OK`.
@inline(__always)
func check(_ status: ct_status, _ op: @autoclosure () -> String) throws {
  if status != CT_OK {
    throw TorchError.libtorch(op: op(), message: String(cString: ct_last_error()))
  }
}

/// Runs a shim call that produces one tensor and wraps the handle.
@inline(__always)
func make(_ op: @autoclosure () -> String, _ body: (UnsafeMutablePointer<OpaquePointer?>) -> ct_status) throws
  -> Tensor
{
  var out: OpaquePointer? = nil
  try check(body(&out), op())
  return Tensor(handle: out!)
}

/// Runs a shim call that produces two tensors (values and indices).
@inline(__always)
func make2(
  _ op: @autoclosure () -> String,
  _ body: (UnsafeMutablePointer<OpaquePointer?>, UnsafeMutablePointer<OpaquePointer?>) -> ct_status
) throws -> (Tensor, Tensor) {
  var a: OpaquePointer? = nil
  var b: OpaquePointer? = nil
  try check(body(&a, &b), op())
  return (Tensor(handle: a!), Tensor(handle: b!))
}

/// Calls `body` with a pointer to the values as `Int64` and their count.
@inline(__always)
func withInt64s<R>(_ values: [Int], _ body: (UnsafePointer<Int64>?, Int64) throws -> R) rethrows -> R {
  let converted = values.map(Int64.init)
  return try converted.withUnsafeBufferPointer { try body($0.baseAddress, Int64($0.count)) }
}

/// Calls `body` with the handles of `tensors` (kept alive for the call).
@inline(__always)
func withHandles<R>(_ tensors: [Tensor], _ body: (UnsafePointer<OpaquePointer>, Int64) throws -> R) rethrows -> R {
  let handles: [OpaquePointer] = tensors.map { $0.handle }
  return try withExtendedLifetime(tensors) {
    try handles.withUnsafeBufferPointer { try body($0.baseAddress!, Int64($0.count)) }
  }
}
