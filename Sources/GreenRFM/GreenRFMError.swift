import Foundation

/// Recoverable failures of the GreenRFM module: each names the file or option and the reason.
public enum GreenRFMError: Error, CustomStringConvertible, Equatable {
  /// A configuration file or value is invalid (unknown key, out-of-range value, wrong type).
  case invalidConfig(source: String, reason: String)
  /// A required file is missing.
  case missingFile(path: String, what: String)
  /// A data file (CSV, model folder, cohort) cannot be used.
  case invalidData(path: String, reason: String)
  /// A checkpoint cannot be written, read or applied.
  case checkpoint(path: String, reason: String)
  /// A command-line or API argument is out of range.
  case invalidArgument(name: String, reason: String)

  public var description: String {
    switch self {
    case let .invalidConfig(source, reason): return "\(source): invalid configuration: \(reason)"
    case let .missingFile(path, what): return "\(path): \(what) not found"
    case let .invalidData(path, reason): return "\(path): \(reason)"
    case let .checkpoint(path, reason): return "\(path): checkpoint: \(reason)"
    case let .invalidArgument(name, reason): return "\(name): \(reason)"
    }
  }
}
