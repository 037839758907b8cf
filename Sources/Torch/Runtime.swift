import CTorch
import Foundation

/// Process-wide libtorch settings. (Named `LibTorch`, not `Torch`, so that the module name stays usable
/// for qualification, as in `Torch.Tensor`.)
public enum LibTorch {
  /// The linked libtorch's version, e.g. `2.15.0`.
  public static var version: String { String(cString: ct_version()) }

  /// libtorch's intra-op thread count (the threads one operation such as a conv3d uses).
  public static var threadCount: Int {
    var n: Int32 = 0
    _ = ct_get_num_threads(&n)
    return Int(n)
  }

  /// Sets libtorch's intra-op thread count. libtorch otherwise picks fewer threads than cores on some
  /// machines (it counts physical cores), so the CLI sets this to the number of cores by default.
  /// - Throws: `TorchError.invalidArgument` unless `1 ≤ n ≤ maxThreadCount`.
  public static func setThreadCount(_ n: Int) throws {
    guard n >= 1, n <= maxThreadCount else {
      throw TorchError.invalidArgument("thread count must lie in 1…\(maxThreadCount), got \(n)")
    }
    try check(ct_set_num_threads(Int32(n)), "set_num_threads")
  }

  /// The largest thread count `setThreadCount` accepts (more threads than this only thrash).
  public static let maxThreadCount = 1024

  /// The thread count to use when the user gives none: `OMP_NUM_THREADS` when set to a valid number
  /// (the variable PyTorch users already set), otherwise the number of cores.
  public static var defaultThreadCount: Int {
    if let text = ProcessInfo.processInfo.environment["OMP_NUM_THREADS"], let n = Int(text), n >= 1,
      n <= maxThreadCount
    {
      return n
    }
    return coreCount
  }

  /// The number of logical cores the process may use.
  public static var coreCount: Int { ProcessInfo.processInfo.activeProcessorCount }

  /// Number of CUDA devices usable by the linked libtorch (0 on a CPU-only build).
  public static var cudaDeviceCount: Int {
    var n: Int32 = 0
    return ct_cuda_device_count(&n) == CT_OK ? Int(n) : 0
  }

  /// Seeds libtorch's default generator (used by `dropout` and by draws that name no `Generator`),
  /// as `torch.manual_seed`.
  public static func manualSeed(_ seed: UInt64) {
    _ = ct_manual_seed(seed)
  }
}

/// Whether autograd records operations on the current thread (as `torch.is_grad_enabled()`).
public var isGradEnabled: Bool {
  var on = false
  _ = ct_is_grad_enabled(&on)
  return on
}

/// Runs `body` with autograd recording switched off on this thread, as `with torch.no_grad():`.
/// The previous mode is restored afterwards, also when `body` throws.
public func withNoGrad<R>(_ body: () throws -> R) rethrows -> R {
  try withGradEnabled(false, body)
}

/// Runs `body` with autograd recording switched on or off on this thread.
public func withGradEnabled<R>(_ enabled: Bool, _ body: () throws -> R) rethrows -> R {
  let previous = isGradEnabled
  _ = ct_set_grad_enabled(enabled)
  defer { _ = ct_set_grad_enabled(previous) }
  return try body()
}

/// Runs `body` under autocast (mixed precision) on this thread, as `with torch.autocast(device, dtype)`.
/// Matmuls and convolutions then run in `dtype` (bfloat16 or float16) with float32 accumulation where
/// libtorch's autocast lists say so.
/// The previous setting (on or off, and its dtype) is restored afterwards, so scopes nest.
/// - Throws: what `body` throws, or `TorchError.libtorch` if libtorch refuses the setting.
public func withAutocast<R>(device: Device = .cpu, dtype: DType = .bfloat16, enabled: Bool = true,
                            _ body: () throws -> R) throws -> R {
  guard dtype == .bfloat16 || dtype == .float16 else {
    throw TorchError.invalidArgument("autocast supports bfloat16 and float16, not \(dtype)")
  }
  var previous = false
  var previousDType = CT_BF16
  try check(ct_is_autocast_enabled(device.kind, &previous), "is_autocast_enabled")
  try check(ct_get_autocast_dtype(device.kind, &previousDType), "get_autocast_dtype")
  try check(ct_set_autocast(device.kind, enabled, dtype.code), "set_autocast")
  defer {
    _ = ct_set_autocast(device.kind, previous, previousDType)
  }
  return try body()
}

/// A seeded random-number generator (libtorch's CPU Philox/MT generator), so that each random draw
/// can name its own stream, as MONAI's `set_random_state` or `torch.Generator().manual_seed(seed)`.
public final class Generator: @unchecked Sendable {
  let handle: OpaquePointer

  /// A generator seeded with `seed`; equal seeds give equal streams, and the same stream as
  /// `torch.Generator().manual_seed(seed)` in Python.
  public init(seed: UInt64) {
    var out: OpaquePointer? = nil
    precondition(ct_generator_new(seed, &out) == CT_OK, String(cString: ct_last_error()))
    handle = out!
  }

  deinit { ct_generator_free(handle) }

  /// The generator's full state as a uint8 tensor (for checkpoints).
  public func state() throws -> Tensor {
    try make("generator.get_state") { ct_generator_get_state(handle, $0) }
  }

  /// Restores a state from `state()`.
  public func setState(_ state: Tensor) throws {
    try check(ct_generator_set_state(handle, state.handle), "generator.set_state")
  }
}
