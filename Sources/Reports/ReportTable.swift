import Foundation

/// One report: its id and its text (findings and impression joined). The text is never logged.
public struct Report: Sendable, Equatable {
  public var id: String
  public var text: String
  public init(id: String, text: String) {
    self.id = id
    self.text = text
  }
}

/// Reads reports from a CSV file: named columns, or a known layout recognised from the header.
///
/// Known layouts: CT-RATE (`VolumeName`, `Findings_EN`, `Impressions_EN`), Merlin (`study id` or `study_id`,
/// `Findings`, `Impression`/`Impressions`), and the CT-RATE manual-label file (`AccessionNo`, `report_text`).
/// Text columns are joined with a line break (a sentence boundary).
public enum ReportTable {
  public struct Layout: Sendable, Equatable {
    public var name: String
    public var idColumn: String
    public var textColumns: [String]
  }

  static let knownLayouts: [(name: String, ids: [String], texts: [[String]])] = [
    ("CT-RATE", ["VolumeName"], [["Findings_EN"], ["Impressions_EN"]]),
    ("Merlin", ["study id", "study_id", "StudyID", "Study ID"], [["Findings", "findings"], ["Impression", "Impressions", "impression"]]),
    ("CT-RATE manual labels", ["AccessionNo"], [["report_text"]]),
  ]

  /// The layout of a header: the named columns if given, otherwise a known layout.
  /// - Throws: `ReportsError.missingColumn` or `.unknownLayout`.
  public static func layout(header: [String], idColumn: String?, textColumns: [String]?, path: String) throws -> Layout {
    if idColumn != nil || textColumns != nil {
      guard let id = idColumn, let texts = textColumns, !texts.isEmpty else {
        throw ReportsError.invalidOption("--id-column and --text-columns go together")
      }
      for c in [id] + texts where !header.contains(c) {
        throw ReportsError.missingColumn(path: path, column: c, available: header)
      }
      return Layout(name: "named", idColumn: id, textColumns: texts)
    }
    for known in knownLayouts {
      guard let id = known.ids.first(where: header.contains) else { continue }
      var texts: [String] = []
      for alternatives in known.texts {
        if let t = alternatives.first(where: header.contains) { texts.append(t) }
      }
      if !texts.isEmpty { return Layout(name: known.name, idColumn: id, textColumns: texts) }
    }
    throw ReportsError.unknownLayout(path: path, header: header)
  }

  /// What `screen` found: the reports to label, and the rows it dropped or flagged.
  public struct Screening: Sendable, Equatable {
    /// The reports to label: the first row of each id, rows with an empty id left out.
    public var reports: [Report]
    /// Ids that appear more than once (each listed once, in file order).
    public var duplicateIDs: [String] = []
    /// Rows dropped because their id was seen before.
    public var duplicateRows = 0
    /// Rows skipped because their id is empty.
    public var emptyIDRows = 0
    /// Ids of kept reports whose text is empty (they label −1 throughout).
    public var emptyTextIDs: [String] = []
  }

  /// Drops rows whose id repeats an earlier one (the first is kept) and rows with an empty id, and lists reports with
  /// an empty text. Ids are compared after trimming white space.
  public static func screen(_ reports: [Report]) -> Screening {
    var result = Screening(reports: [])
    result.reports.reserveCapacity(reports.count)
    var seen = Set<String>(), reported = Set<String>()
    for r in reports {
      let id = r.id.trimmingCharacters(in: .whitespacesAndNewlines)
      if id.isEmpty {
        result.emptyIDRows += 1
        continue
      }
      if !seen.insert(id).inserted {
        result.duplicateRows += 1
        if reported.insert(id).inserted { result.duplicateIDs.append(id) }
        continue
      }
      if r.text.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty { result.emptyTextIDs.append(r.id) }
      result.reports.append(r)
    }
    return result
  }

  /// At most `limit` ids, comma-separated, with "…" when there are more (for warnings).
  public static func sample(_ ids: [String], limit: Int = 5) -> String {
    ids.prefix(limit).joined(separator: ", ") + (ids.count > limit ? ", …" : "")
  }

  /// Reads the reports of a CSV file.
  /// - Returns: the reports in file order, and the layout used.
  public static func read(_ url: URL, idColumn: String? = nil, textColumns: [String]? = nil) throws -> (reports: [Report], layout: Layout) {
    let table = try CSVTable(contentsOf: url)
    let layout = try self.layout(header: table.header, idColumn: idColumn, textColumns: textColumns, path: url.path)
    let idIndex = table.column(layout.idColumn)!
    let textIndices = layout.textColumns.map { table.column($0)! }
    let reports = table.rows.map { row in
      Report(id: row[idIndex], text: textIndices.map { row[$0] }.filter { !$0.isEmpty }.joined(separator: "\n"))
    }
    return (reports, layout)
  }
}
