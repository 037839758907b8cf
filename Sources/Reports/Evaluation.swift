import Foundation

/// Precision, recall and F1 of predicted labels against reference labels, per finding and macro-averaged.
///
/// Value 1 is positive; 0 and −1 are not (the convention for CT-RATE's manual labels, which are 0/1).
public struct LabelEvaluation: Sendable, Equatable {
  public struct Row: Sendable, Equatable {
    public var finding: String
    public var truePositives: Int
    public var falsePositives: Int
    public var falseNegatives: Int
    public var support: Int { truePositives + falseNegatives }
    /// tp / (tp + fp); 0 when nothing was predicted positive.
    public var precision: Double { truePositives + falsePositives == 0 ? 0 : Double(truePositives) / Double(truePositives + falsePositives) }
    /// tp / (tp + fn); 0 when there are no reference positives.
    public var recall: Double { support == 0 ? 0 : Double(truePositives) / Double(support) }
    /// Harmonic mean of precision and recall; 0 when both are 0. Matches scikit-learn's `f1_score(zero_division=0)`.
    public var f1: Double {
      let d = 2 * truePositives + falsePositives + falseNegatives
      return d == 0 ? 0 : Double(2 * truePositives) / Double(d)
    }
  }

  public var rows: [Row]
  /// Reports compared (present in both files).
  public var reportCount: Int
  /// How the ids of the two files met (set by `compare`; nil for label vectors given directly).
  public var idMatch: IDMatch?

  /// Distinct ids on each side and how many of them matched.
  public struct IDMatch: Sendable, Equatable {
    /// Distinct predicted ids.
    public var predicted: Int
    /// Distinct reference ids.
    public var reference: Int
    /// Ids in both (each compared once).
    public var matched: Int
    /// Rows left out because their id repeats an earlier row of the same file (the first is kept).
    public var duplicatePredicted = 0
    public var duplicateReference = 0
    public init(predicted: Int, reference: Int, matched: Int, duplicatePredicted: Int = 0, duplicateReference: Int = 0) {
      self.predicted = predicted
      self.reference = reference
      self.matched = matched
      self.duplicatePredicted = duplicatePredicted
      self.duplicateReference = duplicateReference
    }
    /// "matched M of P predicted and R reference ids".
    public var summary: String { "matched \(matched) of \(predicted) predicted and \(reference) reference ids" }
    /// A warning when some ids did not match or repeated; nil otherwise.
    public var warning: String? {
      var parts: [String] = []
      if matched < predicted { parts.append("\(predicted - matched) predicted id(s) are not in the reference") }
      if matched < reference { parts.append("\(reference - matched) reference id(s) are not in the predictions") }
      if duplicatePredicted > 0 { parts.append("\(duplicatePredicted) duplicate predicted row(s) ignored (first kept)") }
      if duplicateReference > 0 { parts.append("\(duplicateReference) duplicate reference row(s) ignored (first kept)") }
      return parts.isEmpty ? nil : "only \(matched) ids were scored: " + parts.joined(separator: "; ")
    }
  }

  /// Joins predicted and reference rows on the normalised id, keeping the first row of a repeated id on each side.
  /// - Returns: the matched label vectors (in predicted order) and the match counts.
  public static func join(predictedIDs: [String], predicted: [[FindingLabel]], referenceIDs: [String],
                          reference: [[FindingLabel]]) -> (predicted: [[FindingLabel]], reference: [[FindingLabel]], match: IDMatch) {
    var referenceByID: [String: [FindingLabel]] = [:]
    var duplicateReference = 0
    for (id, labels) in zip(referenceIDs, reference) {
      let key = LabelFile.normalizedID(id)
      if referenceByID[key] != nil { duplicateReference += 1 } else { referenceByID[key] = labels }
    }
    var seen = Set<String>()
    var duplicatePredicted = 0
    var p: [[FindingLabel]] = [], r: [[FindingLabel]] = []
    for (id, labels) in zip(predictedIDs, predicted) {
      let key = LabelFile.normalizedID(id)
      guard seen.insert(key).inserted else {
        duplicatePredicted += 1
        continue
      }
      if let ref = referenceByID[key] {
        p.append(labels)
        r.append(ref)
      }
    }
    let match = IDMatch(predicted: seen.count, reference: referenceByID.count, matched: p.count,
                        duplicatePredicted: duplicatePredicted, duplicateReference: duplicateReference)
    return (p, r, match)
  }
  /// The unweighted mean of the per-finding F1.
  public var macroF1: Double { rows.isEmpty ? 0 : rows.map(\.f1).reduce(0, +) / Double(rows.count) }
  public var macroPrecision: Double { rows.isEmpty ? 0 : rows.map(\.precision).reduce(0, +) / Double(rows.count) }
  public var macroRecall: Double { rows.isEmpty ? 0 : rows.map(\.recall).reduce(0, +) / Double(rows.count) }

  /// Compares label vectors (same finding order).
  /// - Parameters:
  ///   - findings: the finding names, one per column.
  ///   - predicted: per report, one label per finding.
  ///   - reference: per report (same order), one label per finding.
  /// - Precondition: equal counts (traps otherwise).
  public init(findings: [String], predicted: [[FindingLabel]], reference: [[FindingLabel]]) {
    precondition(predicted.count == reference.count, "LabelEvaluation: \(predicted.count) predicted vs \(reference.count) reference reports")
    var rows = findings.map { Row(finding: $0, truePositives: 0, falsePositives: 0, falseNegatives: 0) }
    for (p, r) in zip(predicted, reference) {
      precondition(p.count == findings.count && r.count == findings.count, "LabelEvaluation: label vector length mismatch")
      for j in findings.indices {
        let pp = p[j] == .present, rp = r[j] == .present
        if pp && rp { rows[j].truePositives += 1 } else if pp { rows[j].falsePositives += 1 } else if rp { rows[j].falseNegatives += 1 }
      }
    }
    self.rows = rows
    reportCount = predicted.count
  }

  /// Compares two label CSV files: both hold an id column and one column per finding titled with the
  /// schema's display names. Reports are joined on the id (a `.nii.gz`/`.nii` suffix is ignored, so CT-RATE
  /// volume names meet accession numbers).
  /// - Throws: `ReportsError.missingColumn` / `.labelMismatch` naming the file and what is wrong.
  public static func compare(predictedCSV: URL, referenceCSV: URL, schema: LabelSchema) throws -> LabelEvaluation {
    let predicted = try LabelFile.read(predictedCSV, schema: schema)
    let reference = try LabelFile.read(referenceCSV, schema: schema)
    let (p, r, match) = join(predictedIDs: predicted.ids, predicted: predicted.labels, referenceIDs: reference.ids,
                             reference: reference.labels)
    guard !p.isEmpty else {
      throw ReportsError.labelMismatch(path: predictedCSV.path, reason: "no report id in common with \(referenceCSV.path)")
    }
    var evaluation = LabelEvaluation(findings: schema.displayNames, predicted: p, reference: r)
    evaluation.idMatch = match
    return evaluation
  }

  /// A fixed-width table: finding, support, precision, recall, F1; then the macro means.
  public func table() -> String {
    let width = max(28, (rows.map(\.finding.count).max() ?? 0) + 2)
    func pad(_ s: String, _ n: Int) -> String { s.count >= n ? s : s + String(repeating: " ", count: n - s.count) }
    func lpad(_ s: String, _ n: Int) -> String { s.count >= n ? s : String(repeating: " ", count: n - s.count) + s }
    var out = pad("finding", width) + lpad("support", 8) + lpad("precision", 11) + lpad("recall", 9) + lpad("F1", 8) + "\n"
    for row in rows {
      out += pad(row.finding, width) + lpad(String(row.support), 8) + lpad(String(format: "%.3f", row.precision), 11)
        + lpad(String(format: "%.3f", row.recall), 9) + lpad(String(format: "%.3f", row.f1), 8) + "\n"
    }
    out += pad("macro (\(reportCount) reports)", width) + lpad("", 8) + lpad(String(format: "%.3f", macroPrecision), 11)
      + lpad(String(format: "%.3f", macroRecall), 9) + lpad(String(format: "%.3f", macroF1), 8) + "\n"
    return out
  }

  /// The figures as a JSON-ready dictionary (`macro_f1`, `findings: [{finding, support, precision, recall, f1}]`).
  public func jsonObject() -> [String: Any] {
    var object: [String: Any] = [
      "reports": reportCount,
      "macro_f1": macroF1, "macro_precision": macroPrecision, "macro_recall": macroRecall,
      "findings": rows.map {
        ["finding": $0.finding, "support": $0.support, "precision": $0.precision, "recall": $0.recall, "f1": $0.f1,
         "tp": $0.truePositives, "fp": $0.falsePositives, "fn": $0.falseNegatives] as [String: Any]
      },
    ]
    if let idMatch {
      object["ids"] = ["predicted": idMatch.predicted, "reference": idMatch.reference, "matched": idMatch.matched,
                       "duplicate_predicted": idMatch.duplicatePredicted, "duplicate_reference": idMatch.duplicateReference]
    }
    return object
  }
}

/// Label CSV files: an id column, then one column per finding titled with the schema's display name, values
/// 1/0/−1.
public enum LabelFile {
  /// The labels of a file, with the id of each row.
  public struct Contents: Sendable {
    public var idColumn: String
    public var ids: [String]
    public var labels: [[FindingLabel]]
  }

  /// Strips `.nii.gz` / `.nii` so CT-RATE volume names and accession numbers join.
  public static func normalizedID(_ id: String) -> String {
    var s = id.trimmingCharacters(in: .whitespaces)
    for suffix in [".nii.gz", ".nii"] where s.hasSuffix(suffix) { s.removeLast(suffix.count) }
    return s
  }

  /// Reads a label file; the id column is the first column; finding columns are found by display name, in any
  /// order and among other columns.
  /// - Throws: `ReportsError.missingColumn` for a finding without a column, `.labelMismatch` for a bad value.
  public static func read(_ url: URL, schema: LabelSchema) throws -> Contents {
    let table = try CSVTable(contentsOf: url)
    var columns: [Int] = []
    for name in schema.displayNames {
      guard let c = table.column(name) else { throw ReportsError.missingColumn(path: url.path, column: name, available: table.header) }
      columns.append(c)
    }
    var labels: [[FindingLabel]] = []
    labels.reserveCapacity(table.rows.count)
    for (r, row) in table.rows.enumerated() {
      var v: [FindingLabel] = []
      for (j, c) in columns.enumerated() {
        guard let l = FindingLabel(text: row[c]) else {
          throw ReportsError.labelMismatch(
            path: url.path, reason: "record \(r + 2), column '\(schema.displayNames[j])': '\(row[c])' is not 1, 0 or -1")
        }
        v.append(l)
      }
      labels.append(v)
    }
    return Contents(idColumn: table.header.first ?? "id", ids: table.rows.map { $0.first ?? "" }, labels: labels)
  }

  /// The CSV text of a label file.
  public static func serialize(idColumn: String, schema: LabelSchema, ids: [String], labels: [[FindingLabel]]) -> String {
    var out = ([idColumn] + schema.displayNames).map(CSVTable.escape).joined(separator: ",") + "\n"
    for (id, row) in zip(ids, labels) {
      out += CSVTable.escape(id)
      for l in row { out += "," + l.text }
      out += "\n"
    }
    return out
  }
}
