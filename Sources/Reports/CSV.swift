import AtomicWrite
import Foundation

/// A CSV table read per RFC 4180: fields separated by commas, records by CRLF or LF; a field in double quotes
/// may hold commas, line breaks and doubled quotes (`""`). A UTF-8 byte-order mark at the start is skipped.
public struct CSVTable: Sendable {
  /// The first record.
  public var header: [String]
  /// The records after the header; each has exactly `header.count` fields (short records are padded with "").
  public var rows: [[String]]

  public init(header: [String], rows: [[String]]) {
    self.header = header
    self.rows = rows
  }

  /// Reads and parses a CSV file.
  /// - Throws: `ReportsError.unreadableFile` or `ReportsError.malformedCSV` (naming the file and record).
  public init(contentsOf url: URL) throws {
    let data: Data
    do { data = try Data(contentsOf: url) } catch {
      throw ReportsError.unreadableFile(path: url.path, reason: error.localizedDescription)
    }
    try self.init(data: data, source: url.path)
  }

  /// Parses CSV bytes (UTF-8). `source` names the input in errors.
  public init(data: Data, source: String = "<memory>") throws {
    var records = try Self.parse(Array(data), source: source)
    guard !records.isEmpty else { throw ReportsError.malformedCSV(path: source, record: 0, reason: "the file is empty") }
    header = records.removeFirst()
    let width = header.count
    for (i, record) in records.enumerated() where record.count > width {
      throw ReportsError.malformedCSV(
        path: source, record: i + 2, reason: "\(record.count) fields where the header has \(width)")
    }
    rows = records.map { $0.count < width ? $0 + Array(repeating: "", count: width - $0.count) : $0 }
  }

  /// The index of a column by exact title, or nil.
  public func column(_ name: String) -> Int? { header.firstIndex(of: name) }

  static func parse(_ bytes: [UInt8], source: String) throws -> [[String]] {
    var records: [[String]] = []
    var record: [String] = []
    var field: [UInt8] = []
    var i = 0
    let n = bytes.count
    if n >= 3, bytes[0] == 0xEF, bytes[1] == 0xBB, bytes[2] == 0xBF { i = 3 }
    var inQuotes = false
    var fieldWasQuoted = false
    var recordHasContent = false
    func endField() {
      record.append(String(decoding: field, as: UTF8.self))
      field.removeAll(keepingCapacity: true)
      fieldWasQuoted = false
    }
    while i < n {
      let b = bytes[i]
      if inQuotes {
        if b == 0x22 {
          if i + 1 < n, bytes[i + 1] == 0x22 {
            field.append(0x22)
            i += 2
            continue
          }
          inQuotes = false
        } else {
          field.append(b)
        }
        i += 1
        continue
      }
      switch b {
      case 0x22:
        if field.isEmpty && !fieldWasQuoted {
          inQuotes = true
          fieldWasQuoted = true
          recordHasContent = true
        } else {
          // A stray quote inside an unquoted field: keep it (lenient, like most readers).
          field.append(b)
        }
      case 0x2C:
        endField()
        recordHasContent = true
      case 0x0D, 0x0A:
        if recordHasContent || !field.isEmpty {
          endField()
          records.append(record)
        }
        record = []
        recordHasContent = false
        if b == 0x0D, i + 1 < n, bytes[i + 1] == 0x0A { i += 1 }
      default:
        field.append(b)
        recordHasContent = true
      }
      i += 1
    }
    if inQuotes {
      throw ReportsError.malformedCSV(path: source, record: records.count + 1, reason: "a quoted field is not closed")
    }
    if recordHasContent || !field.isEmpty {
      endField()
      records.append(record)
    }
    return records
  }

  /// Quotes a field when it holds a comma, quote, CR or LF (RFC 4180).
  public static func escape(_ field: String) -> String {
    if field.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" }) {
      return "\"" + field.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }
    return field
  }

  /// The table as RFC 4180 text with LF line ends.
  public func serialized() -> String {
    var out = header.map(Self.escape).joined(separator: ",") + "\n"
    for row in rows { out += row.map(Self.escape).joined(separator: ",") + "\n" }
    return out
  }
}

/// Atomic file replacement (the shared `AtomicWrite` mechanism) reporting failures as
/// `ReportsError.unwritableFile`.
public enum AtomicFile {
  /// Writes `data` to `url` atomically, creating the parent folder if needed.
  /// - Throws: `ReportsError.unwritableFile` naming the path.
  public static func write(_ data: Data, to url: URL) throws {
    do { try AtomicWrite.write(data, to: url) } catch let f as AtomicWrite.Failure {
      throw ReportsError.unwritableFile(path: f.path, reason: f.reason)
    }
  }

  public static func write(_ text: String, to url: URL) throws { try write(Data(text.utf8), to: url) }
}
