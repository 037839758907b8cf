import Foundation

/// Reports for GreenRFM: label schemas, label distillation (rules or an LLM) and tokenization.
///
/// Paper: GreenRFM (arXiv 2603.06467), MUST "More distilled": every report becomes one label per finding,
/// 1 explicitly present, 0 explicitly absent, −1 uncertain or not mentioned.
public enum Reports {}

/// Errors of the Reports module; each names the file or item and the reason.
public enum ReportsError: Error, Equatable, CustomStringConvertible {
  case unreadableFile(path: String, reason: String)
  case unwritableFile(path: String, reason: String)
  case malformedCSV(path: String, record: Int, reason: String)
  case missingColumn(path: String, column: String, available: [String])
  case unknownLayout(path: String, header: [String])
  case unknownSchema(name: String, available: [String])
  case invalidSchema(source: String, reason: String)
  case invalidPattern(source: String, pattern: String, reason: String)
  case labelMismatch(path: String, reason: String)
  case llmFailure(reportID: String, reason: String)
  /// The LLM run stopped as a whole (a rejected key, or the server unreachable).
  case llmAborted(reason: String)
  case invalidOption(String)

  public var description: String {
    switch self {
    case .unreadableFile(let path, let reason): return "cannot read \(path): \(reason)"
    case .unwritableFile(let path, let reason): return "cannot write \(path): \(reason)"
    case .malformedCSV(let path, let record, let reason): return "\(path): record \(record): \(reason)"
    case .missingColumn(let path, let column, let available):
      return "\(path): no column '\(column)' (columns: \(available.joined(separator: ", ")))"
    case .unknownLayout(let path, let header):
      return "\(path): cannot tell the id and text columns from the header (\(header.joined(separator: ", "))); "
        + "name them with --id-column and --text-columns"
    case .unknownSchema(let name, let available):
      return "unknown schema '\(name)': give a built-in name (\(available.joined(separator: ", "))) or a path to a schema JSON file"
    case .invalidSchema(let source, let reason): return "invalid schema \(source): \(reason)"
    case .invalidPattern(let source, let pattern, let reason): return "invalid schema \(source): pattern '\(pattern)': \(reason)"
    case .labelMismatch(let path, let reason): return "\(path): \(reason)"
    case .llmFailure(let id, let reason): return "report \(id): \(reason)"
    case .llmAborted(let reason): return "LLM labelling stopped: \(reason)"
    case .invalidOption(let reason): return reason
    }
  }
}
