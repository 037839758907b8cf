import CTorch

/// Element types of a `Tensor`, as libtorch's `at::ScalarType`.
public enum DType: String, Sendable, CaseIterable, Codable {
  case float32, float16, bfloat16, float64, int64, int32, int16, int8, uint8, bool

  var code: ct_dtype {
    switch self {
    case .float32: return CT_F32
    case .float16: return CT_F16
    case .bfloat16: return CT_BF16
    case .float64: return CT_F64
    case .int64: return CT_I64
    case .int32: return CT_I32
    case .int16: return CT_I16
    case .int8: return CT_I8
    case .uint8: return CT_U8
    case .bool: return CT_BOOL
    }
  }

  init(code: ct_dtype) {
    switch code {
    case CT_F32: self = .float32
    case CT_F16: self = .float16
    case CT_BF16: self = .bfloat16
    case CT_F64: self = .float64
    case CT_I64: self = .int64
    case CT_I32: self = .int32
    case CT_I16: self = .int16
    case CT_I8: self = .int8
    case CT_U8: self = .uint8
    default: self = .bool
    }
  }

  /// Bytes per element.
  public var byteCount: Int {
    switch self {
    case .float64, .int64: return 8
    case .float32, .int32: return 4
    case .float16, .bfloat16, .int16: return 2
    case .int8, .uint8, .bool: return 1
    }
  }

  public var isFloatingPoint: Bool {
    switch self {
    case .float32, .float16, .bfloat16, .float64: return true
    default: return false
    }
  }
}

/// A Swift scalar type that maps to a tensor element type.
public protocol TensorElement: Sendable {
  static var dtype: DType { get }
}
extension Float: TensorElement { public static var dtype: DType { .float32 } }
extension Double: TensorElement { public static var dtype: DType { .float64 } }
extension Int64: TensorElement { public static var dtype: DType { .int64 } }
extension Int32: TensorElement { public static var dtype: DType { .int32 } }
extension Int16: TensorElement { public static var dtype: DType { .int16 } }
extension Int8: TensorElement { public static var dtype: DType { .int8 } }
extension UInt8: TensorElement { public static var dtype: DType { .uint8 } }
extension Bool: TensorElement { public static var dtype: DType { .bool } }
#if arch(x86_64) || arch(arm64)
  @available(macOS 11.0, *)
  extension Float16: TensorElement { public static var dtype: DType { .float16 } }
#endif

/// Where a tensor lives. Parsed from the CLI's `--device` strings `cpu`, `cuda` and `cuda:N`.
public enum Device: Sendable, Hashable, CustomStringConvertible {
  case cpu
  case cuda(Int)

  /// Parses `cpu`, `cuda` (device 0) or `cuda:N`.
  /// - Throws: `TorchError.invalidArgument` for anything else.
  public init(parsing text: String) throws {
    let lower = text.lowercased()
    if lower == "cpu" {
      self = .cpu
    } else if lower == "cuda" {
      self = .cuda(0)
    } else if lower.hasPrefix("cuda:"), lower.count > 5, lower.dropFirst(5).allSatisfy({ $0.isASCII && $0.isNumber }),
      let n = Int(lower.dropFirst(5)), n < 1024
    {
      self = .cuda(n)
    } else {
      throw TorchError.invalidArgument("unknown device '\(text)': use cpu, cuda or cuda:N")
    }
  }

  public var description: String {
    switch self {
    case .cpu: return "cpu"
    case let .cuda(n): return "cuda:\(n)"
    }
  }

  var kind: ct_device_kind { if case .cpu = self { return CT_CPU } else { return CT_CUDA } }
  var index: Int32 { if case let .cuda(n) = self { return Int32(clamping: n) } else { return -1 } }

  /// Checks that this device can be used with the linked libtorch.
  /// - Throws: `TorchError.invalidArgument` naming the device when CUDA is requested but absent.
  public func validate() throws {
    guard case let .cuda(n) = self else { return }
    let count = LibTorch.cudaDeviceCount
    if count == 0 {
      throw TorchError.invalidArgument(
        "device \(self) requested, but this libtorch has no usable CUDA: build with LIBTORCH=<CUDA libtorch> "
          + "GREENRFM_CUDA=1 on a machine with an NVIDIA driver, or use --device cpu")
    }
    if n >= count {
      throw TorchError.invalidArgument("device \(self) requested, but only \(count) CUDA device(s) exist")
    }
  }
}

/// Memory layouts for `Tensor.contiguous(_:)`.
public enum MemoryFormat: Sendable {
  /// Row-major (C order).
  case contiguous
  /// `[N, C, D, H, W]` stored as N, D, H, W, C (channels last), which oneDNN's 3D convolutions prefer.
  case channelsLast3d

  var code: ct_memory_format { self == .contiguous ? CT_MEMORY_CONTIGUOUS : CT_MEMORY_CHANNELS_LAST_3D }
}
