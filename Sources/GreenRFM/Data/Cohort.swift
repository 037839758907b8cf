import Foundation
import MedicalImaging
import Reports

/// One study: an id, optionally a volume (a file or a DICOM series folder), optionally report text, and labels in
/// schema order.
///
/// `labels[c]` is 1 (present), 0 (absent) or −1 (uncertain, not mentioned, or no label source for the finding);
/// `labels.count` equals the schema's finding count.
public struct CohortItem: Sendable, Equatable {
  /// The study id as the source spells it (CT-RATE `VolumeName`, RAD-ChestCT `NoteAcc_DEID`, Merlin study id).
  public var id: String
  /// An absolute path to a volume file or DICOM folder, or nil (report-only cohorts).
  public var volumePath: String?
  /// Report text (findings and impression joined by a line break), or nil where the cohort has none.
  public var reportText: String?
  /// One label per schema finding, in schema order: 1, 0 or −1.
  public var labels: [Int8]

  public init(id: String, volumePath: String? = nil, reportText: String? = nil, labels: [Int8]) {
    self.id = id
    self.volumePath = volumePath
    self.reportText = reportText
    self.labels = labels
  }
}

/// A cohort: studies with their volumes, reports and labels under one label schema. Build one with `CohortLayout`.
public struct Cohort: Sendable {
  /// A short name for logs (e.g. `CT-RATE`, or the CSV file name).
  public var name: String
  public var schema: LabelSchema
  /// The usable studies, in source order (the reports CSV's order, then ids only found in the labels CSV).
  public var items: [CohortItem]
  /// Rows that were not usable (empty or duplicate id, volume file missing), with the reason: reported, not fatal.
  public var skipped: [(id: String, reason: String)]
  /// Remarks worth logging once (findings filled with −1, ids without labels, …).
  public var warnings: [String]
  /// How volumes are read (NPZ spacing and array name for RAD-ChestCT, DICOM series choices).
  public var readOptions: VolumeReader.Options

  public init(name: String, schema: LabelSchema, items: [CohortItem], skipped: [(id: String, reason: String)] = [],
              warnings: [String] = [], readOptions: VolumeReader.Options = VolumeReader.Options()) {
    self.name = name
    self.schema = schema
    self.items = items
    self.skipped = skipped
    self.warnings = warnings
    self.readOptions = readOptions
  }

  /// The items in `range` (e.g. `0..<640` for training and `640..<800` for validation); `skipped` and `warnings`
  /// are kept as they are (they describe the source).
  /// - Traps: when `range` is not within `0..<items.count`.
  public func subset(_ range: Range<Int>) -> Cohort {
    precondition(range.lowerBound >= 0 && range.upperBound <= items.count,
                 "Cohort.subset: range \(range) outside 0..<\(items.count)")
    var copy = self
    copy.items = Array(items[range])
    return copy
  }

  /// The labels as an `items.count × schema.findings.count` matrix (rows in item order, columns in schema order).
  public func labelMatrix() -> [[Int8]] { items.map(\.labels) }

  /// The number of items labelled 1 for each finding, in schema order.
  public func positiveCounts() -> [Int] {
    var counts = [Int](repeating: 0, count: schema.findings.count)
    for item in items { for (c, v) in item.labels.enumerated() where v == 1 { counts[c] += 1 } }
    return counts
  }
}

// MARK: - Label columns

/// Shared CSV and label-column handling for the cohort layouts.
enum CohortCSV {
  /// Reads a CSV, turning read and parse failures into `GreenRFMError`s that name the file.
  static func read(_ url: URL, what: String) throws -> CSVTable {
    var isFolder: ObjCBool = false
    guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isFolder) else {
      throw GreenRFMError.missingFile(path: url.path, what: what)
    }
    guard !isFolder.boolValue else { throw GreenRFMError.invalidData(path: url.path, reason: "\(what): is a folder, not a CSV file") }
    do { return try CSVTable(contentsOf: url) } catch let error as ReportsError {
      throw GreenRFMError.invalidData(path: url.path, reason: "\(what): \(error.description)")
    } catch {
      throw GreenRFMError.invalidData(path: url.path, reason: "\(what): \(error)")
    }
  }

  /// A title folded for matching: lowercased, letters and digits only (so `Lung_nodule`, `lung nodule` and
  /// `LungNodule` are the same).
  static func fold(_ title: String) -> String {
    String(title.lowercased().unicodeScalars.filter { CharacterSet.alphanumerics.contains($0) }.map(Character.init))
  }

  /// The index of a required column by exact title, or the first of `alternatives` present.
  /// - Throws: `GreenRFMError.invalidData` naming the file, what was looked for and the header.
  static func column(_ table: CSVTable, path: String, named names: [String], role: String) throws -> Int {
    for name in names { if let i = table.column(name) { return i } }
    throw GreenRFMError.invalidData(
      path: path,
      reason: "\(role) column \(names.map { "'\($0)'" }.joined(separator: " or ")) not found (columns: \(table.header.joined(separator: ", ")))")
  }

  /// For each schema finding, the column that holds its labels (matched by display name or key, folded), or nil.
  ///
  /// - Throws: `GreenRFMError.invalidData` naming the file, the findings without a column, the expected titles and
  ///   the columns found, unless `allowMissing` is true.
  static func labelColumns(_ table: CSVTable, path: String, schema: LabelSchema, excluding: Set<Int>,
                           allowMissing: Bool) throws -> [Int?] {
    var byFold: [String: Int] = [:]
    for (i, title) in table.header.enumerated() where !excluding.contains(i) {
      let f = fold(title)
      if byFold[f] == nil { byFold[f] = i }
    }
    let columns = schema.findings.map { byFold[fold($0.displayName)] ?? byFold[fold($0.key)] }
    let missing = zip(schema.findings, columns).filter { $0.1 == nil }.map(\.0.displayName)
    if !missing.isEmpty && !allowMissing {
      let found = table.header.enumerated().filter { !excluding.contains($0.offset) }.map(\.element)
      throw GreenRFMError.invalidData(
        path: path,
        reason: "no label column for \(missing.count) finding(s) of schema \(schema.name): \(missing.joined(separator: ", ")) "
          + "(expected the titles \(schema.displayNames.joined(separator: ", ")); found the columns \(found.joined(separator: ", ")))")
    }
    return columns
  }

  /// Parses one label cell: `1`, `0`, `-1`, `1.0`, `0.0`, `-1.0`; empty is −1.
  /// - Throws: `GreenRFMError.invalidData` naming the file, record (1-based, header = 1), column and value.
  static func label(_ cell: String, path: String, record: Int, column: String) throws -> Int8 {
    let t = cell.trimmingCharacters(in: .whitespaces)
    if t.isEmpty { return -1 }
    if let l = FindingLabel(text: t) { return l.rawValue }
    throw GreenRFMError.invalidData(path: path, reason: "record \(record), column '\(column)': '\(cell)' is not 1, 0, -1 or empty")
  }

  /// The labels of one row in schema order (−1 where a finding has no column).
  static func labels(_ row: [String], columns: [Int?], header: [String], path: String, record: Int) throws -> [Int8] {
    try columns.map { c in
      guard let c else { return -1 }
      return try label(row[c], path: path, record: record, column: header[c])
    }
  }

  /// Labels keyed by id from a labels CSV (first row of an id wins), with the ids in file order.
  static func labelsByID(_ url: URL, idColumns: [String], schema: LabelSchema, allowMissing: Bool)
    throws -> (labels: [String: [Int8]], order: [String], missingFindings: [String])
  {
    let table = try read(url, what: "labels CSV")
    let idIndex = try column(table, path: url.path, named: idColumns, role: "id")
    let columns = try labelColumns(table, path: url.path, schema: schema, excluding: [idIndex], allowMissing: allowMissing)
    var labels: [String: [Int8]] = [:], order: [String] = []
    for (r, row) in table.rows.enumerated() {
      let id = row[idIndex].trimmingCharacters(in: .whitespacesAndNewlines)
      guard !id.isEmpty, labels[id] == nil else { continue }
      labels[id] = try self.labels(row, columns: columns, header: table.header, path: url.path, record: r + 2)
      order.append(id)
    }
    let missing = zip(schema.findings, columns).filter { $0.1 == nil }.map(\.0.displayName)
    return (labels, order, missing)
  }
}

// MARK: - Assembly

/// Builds a cohort from primary rows, an optional labels table and an optional volume lookup.
struct CohortAssembler {
  var name: String
  var schema: LabelSchema
  var items: [CohortItem] = []
  var skipped: [(id: String, reason: String)] = []
  var warnings: [String] = []
  private var seen = Set<String>()

  init(name: String, schema: LabelSchema) {
    self.name = name
    self.schema = schema
  }

  /// Adds one row. `volume` is nil for cohorts without volumes, `.failure(reason)` when the file is missing.
  mutating func add(id rawID: String, text: String?, labels: [Int8], volume: Result<String, VolumeLookupFailure>?) {
    let id = rawID.trimmingCharacters(in: .whitespacesAndNewlines)
    if id.isEmpty {
      skipped.append((id: rawID, reason: "empty id"))
      return
    }
    guard seen.insert(id).inserted else {
      skipped.append((id: id, reason: "duplicate id (the first row is kept)"))
      return
    }
    var path: String?
    switch volume {
    case .none: path = nil
    case .success(let p): path = p
    case .failure(let f):
      skipped.append((id: id, reason: f.reason))
      return
    }
    let t = text.flatMap { $0.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty ? nil : $0 }
    items.append(CohortItem(id: id, volumePath: path, reportText: t, labels: labels))
  }

  func cohort(readOptions: VolumeReader.Options = VolumeReader.Options()) -> Cohort {
    Cohort(name: name, schema: schema, items: items, skipped: skipped, warnings: warnings, readOptions: readOptions)
  }
}

struct VolumeLookupFailure: Error {
  var reason: String
}

/// Files under a folder (recursively), by file name; DICOM-free layouts only (CT-RATE, RAD-ChestCT, Merlin).
struct VolumeIndex {
  var byName: [String: String] = [:]

  /// - Throws: `GreenRFMError.missingFile` when `folder` does not exist.
  init(folder: URL) throws {
    var isFolder: ObjCBool = false
    guard FileManager.default.fileExists(atPath: folder.path, isDirectory: &isFolder), isFolder.boolValue else {
      throw GreenRFMError.missingFile(path: folder.path, what: "volumes folder")
    }
    let root = folder.standardizedFileURL.path
    guard let walker = FileManager.default.enumerator(atPath: root) else { return }
    var relatives: [String] = []
    while let rel = walker.nextObject() as? String { relatives.append(rel) }
    // Shallower paths first, then by name: the choice among duplicate names is deterministic.
    relatives.sort { a, b in
      let da = a.split(separator: "/").count, db = b.split(separator: "/").count
      return da != db ? da < db : a < b
    }
    for rel in relatives {
      let name = (rel as NSString).lastPathComponent
      if name.hasPrefix(".") || byName[name] != nil { continue }
      let full = (root as NSString).appendingPathComponent(rel)
      var sub: ObjCBool = false
      if FileManager.default.fileExists(atPath: full, isDirectory: &sub), !sub.boolValue { byName[name] = full }
    }
  }

  /// The first of `names` present, or a failure naming what was looked for.
  func find(_ names: [String], in folder: URL) -> Result<String, VolumeLookupFailure> {
    for n in names { if let p = byName[n] { return .success(p) } }
    return .failure(VolumeLookupFailure(reason: "volume file not found: no \(names.joined(separator: " or ")) under \(folder.path)"))
  }
}
