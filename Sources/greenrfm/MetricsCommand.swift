import ArgumentParser
import Foundation
import GreenRFM
import Logging
import Reports

/// `greenrfm metrics`: scores any predictions file against a labels file.
struct MetricsCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "metrics",
    abstract: "Score a predictions CSV against a labels CSV: AUROC with 95% CIs, F1 and more per finding.",
    discussion: """
      PREDICTIONS.csv: the id column, then one probability (or score) column per finding titled with its display \
      name, as `greenrfm predict` writes. LABELS.csv: the id column and 1/0/-1 columns per finding (as `greenrfm \
      distill` writes); an empty label cell counts as -1. Finding columns are matched to the schema by display name \
      or key, ignoring case, spaces, '_' and '-'; ids are joined after stripping .nii.gz/.nii.
      AUROC leaves out -1 labels per finding; a finding with a single class has no AUROC (null in metrics.json, with \
      the reason under "undefined"), never 0.5. 95% CIs: percentile bootstrap over studies (--bootstrap resamples, \
      --seed). --threshold max-f1|youden picks each finding's threshold on a seeded validation split of \
      --validation-fraction of the studies and reports every metric on the rest; without a split the threshold is \
      chosen on the evaluated studies themselves and flagged optimistic. Writes metrics.json, per_finding.csv and \
      report.html into --output. Exit status: 0 success, 1 unusable input (the message names the file).
      """)

  @OptionGroup var global: GlobalOptions

  @Option(help: "Predictions CSV (id column, one probability column per finding).")
  var predictions: String

  @Option(help: "Labels CSV (id column, 1/0/-1 per finding).")
  var labels: String

  @Option(help: "The id column, present in both files.")
  var idColumn: String

  @Option(help: "Schema name or schema JSON path.")
  var schema: String = "chest-ct-18"

  @Option(help: "max-f1, youden, or a fixed number (predicted positive when score >= threshold).")
  var threshold: String = "0.5"

  @Option(help: "Fraction of studies (seeded by --seed) held out to choose max-f1/youden thresholds.")
  var validationFraction: Double = 0

  @Option(help: "Bootstrap resamples for 95% CIs (0: none).")
  var bootstrap: Int = 1000

  @Option(help: "Metric key prefix in metrics.json (e.g. zeroShot, probe).")
  var prefix: String = "classification"

  @Option(help: "Output folder for metrics.json, per_finding.csv and report.html.")
  var output: String?

  @Flag(help: "Print metrics.json to stdout instead of the table.")
  var json = false

  func validate() throws {
    guard let rule = Metrics.ThresholdRule(parsing: threshold) else {
      throw ValidationError("--threshold must be max-f1, youden or a number, not '\(threshold)'")
    }
    guard validationFraction >= 0, validationFraction < 1 else {
      throw ValidationError("--validation-fraction must be at least 0 and below 1")
    }
    if validationFraction > 0, case .fixed = rule {
      throw ValidationError("--validation-fraction applies to --threshold max-f1 or youden")
    }
    guard (0...100_000).contains(bootstrap) else { throw ValidationError("--bootstrap must be between 0 and 100000") }
    guard !prefix.isEmpty, !prefix.contains("/") else { throw ValidationError("--prefix must be non-empty, without '/'") }
  }

  func run() throws {
    _ = try global.apply()
    let logger = Logger(label: "greenrfm.metrics")
    let schema = try LabelSchema.load(self.schema)
    let rule = Metrics.ThresholdRule(parsing: threshold)!
    let input = try MetricsInput.read(predictions: URL(fileURLWithPath: predictions), labels: URL(fileURLWithPath: labels),
                                      idColumn: idColumn, schema: schema)
    for w in input.warnings { logger.warning("\(w)") }

    var scores = input.scores, labelRows = input.labels
    var validation: (scores: [[Double]], labels: [[Int8]])? = nil
    if validationFraction > 0 {
      let split = Metrics.validationSplit(count: scores.count, fraction: validationFraction, seed: global.seed)
      guard !split.validation.isEmpty, !split.test.isEmpty else {
        throw GreenRFMError.invalidArgument(
          name: "--validation-fraction", reason: "\(validationFraction) of \(scores.count) studies leaves an empty split")
      }
      validation = (split.validation.map { scores[$0] }, split.validation.map { labelRows[$0] })
      scores = split.test.map { scores[$0] }
      labelRows = split.test.map { labelRows[$0] }
    }
    let evaluation = ClassificationEvaluation.evaluate(
      findings: input.findings, scores: scores, labels: labelRows, threshold: rule, validation: validation,
      bootstrap: bootstrap, seed: global.seed)
    var notes = ["Predictions: \(predictions)", "Labels: \(labels)",
                 "Schema: \(schema.name); \(input.findings.count) finding(s) scored; \(input.scores.count) studies joined on '\(idColumn)'."]
    if !input.missingFindings.isEmpty {
      notes.append("Not scored (no column in one of the files): \(input.missingFindings.joined(separator: ", ")).")
    }
    if validation != nil {
      notes.append("Validation split (seed \(global.seed)): \(validation!.scores.count) studies for thresholds; metrics on the other \(scores.count).")
    }
    let report = EvaluationReport(title: "GreenRFM metrics", notes: notes, classification: evaluation,
                                  classificationPrefix: prefix)
    if let output {
      let files = try report.write(to: URL(fileURLWithPath: output))
      logger.info("wrote \(files.map(\.lastPathComponent).joined(separator: ", ")) to \(output)")
    }
    if json {
      print(String(decoding: try report.metricsJSON(), as: UTF8.self))
    } else {
      print(Self.table(evaluation))
    }
  }

  /// A plain-text table of the per-finding results and the summary lines.
  static func table(_ e: ClassificationEvaluation) -> String {
    func f(_ v: Double?) -> String { v.map { String(format: "%.3f", $0) } ?? "n/a" }
    let nameWidth = max(8, e.findings.map(\.displayName.count).max() ?? 0)
    func pad(_ s: String, _ w: Int, left: Bool = false) -> String {
      s.count >= w ? s : (left ? s + String(repeating: " ", count: w - s.count) : String(repeating: " ", count: w - s.count) + s)
    }
    var lines = [pad("finding", nameWidth, left: true) + "  " + ["pos", "neg", "excl"].map { pad($0, 6) }.joined()
      + pad("AUROC", 7) + pad("95% CI", 15) + ["thr", "F1", "prec", "recall", "spec", "acc"].map { pad($0, 7) }.joined()]
    for r in e.findings {
      let t = r.atThreshold
      let ci = r.ci95.map { "\(f($0.low))-\(f($0.high))" } ?? ""
      lines.append(pad(r.displayName, nameWidth, left: true) + "  "
        + [r.counts.positives, r.counts.negatives, r.counts.excluded].map { pad("\($0)", 6) }.joined()
        + pad(f(r.auroc), 7) + pad(ci, 15)
        + [r.threshold, t?.f1, t?.precision, t?.recall, t?.specificity, t?.accuracy].map { pad(f($0), 7) }.joined())
    }
    func ci(_ c: Metrics.ConfidenceInterval?) -> String { c.map { " (95% CI \(f($0.low))-\(f($0.high)))" } ?? "" }
    lines.append("")
    lines.append("macro AUROC \(f(e.macroAUROC))\(ci(e.macroCI)) over \(e.findings.filter { $0.auroc != nil }.count) of \(e.findings.count) findings; micro AUROC \(f(e.microAUROC))\(ci(e.microCI))")
    let undefined = e.findings.filter { $0.auroc == nil }
    if !undefined.isEmpty {
      lines.append("AUROC undefined: " + undefined.map { "\($0.displayName) (\($0.undefinedReason ?? ""))" }.joined(separator: "; "))
    }
    lines.append("macro F1 \(f(e.macro { $0.f1 })) at threshold \(e.thresholdRule) (\(e.thresholdChosenOn)); \(e.studies) studies")
    return lines.joined(separator: "\n")
  }
}

/// A predictions file joined with a labels file.
struct MetricsInput {
  var findings: [Finding]
  var scores: [[Double]]
  var labels: [[Int8]]
  var ids: [String]
  var missingFindings: [String]
  var warnings: [String]

  /// Lowercased, without spaces, `_` and `-`.
  static func normalized(_ name: String) -> String {
    String(name.lowercased().filter { !$0.isWhitespace && $0 != "_" && $0 != "-" })
  }

  static func read(predictions: URL, labels: URL, idColumn: String, schema: LabelSchema) throws -> MetricsInput {
    let p = try CSVTable(contentsOf: predictions)
    let l = try CSVTable(contentsOf: labels)
    func idIndex(_ t: CSVTable, _ url: URL) throws -> Int {
      if let i = t.column(idColumn) { return i }
      if let i = t.header.firstIndex(where: { normalized($0) == normalized(idColumn) }) { return i }
      throw GreenRFMError.invalidData(
        path: url.path, reason: "no id column '\(idColumn)' (columns: \(t.header.joined(separator: ", ")))")
    }
    let pID = try idIndex(p, predictions), lID = try idIndex(l, labels)
    func findingColumns(_ t: CSVTable, skip: Int) -> [Int?] {
      schema.findings.map { f in
        let names = [normalized(f.displayName), normalized(f.key)]
        return t.header.indices.first { $0 != skip && names.contains(normalized(t.header[$0])) }
      }
    }
    let pCols = findingColumns(p, skip: pID), lCols = findingColumns(l, skip: lID)
    var warnings: [String] = []
    var findings: [Finding] = [], missing: [String] = []
    var used: [(Int, Int)] = []
    var missingInP: [String] = [], missingInL: [String] = []
    for (j, f) in schema.findings.enumerated() {
      switch (pCols[j], lCols[j]) {
      case let (pc?, lc?):
        findings.append(f)
        used.append((pc, lc))
      case (nil, _?):
        missingInP.append(f.displayName)
        missing.append(f.displayName)
      case (_?, nil):
        missingInL.append(f.displayName)
        missing.append(f.displayName)
      case (nil, nil):
        missingInP.append(f.displayName)
        missingInL.append(f.displayName)
        missing.append(f.displayName)
      }
    }
    guard !findings.isEmpty else {
      throw GreenRFMError.invalidData(
        path: predictions.path,
        reason: "no finding of schema \(schema.name) has a column in both this file and \(labels.path) (columns: \(p.header.joined(separator: ", ")))")
    }
    if !missingInP.isEmpty { warnings.append("\(predictions.path): no column for \(missingInP.count) finding(s): \(missingInP.joined(separator: ", ")); not scored") }
    if !missingInL.isEmpty { warnings.append("\(labels.path): no column for \(missingInL.count) finding(s): \(missingInL.joined(separator: ", ")); not scored") }
    let matchedP = Set(pCols.compactMap { $0 })
    let extra = p.header.indices.filter { $0 != pID && !matchedP.contains($0) }.map { p.header[$0] }
    if !extra.isEmpty { warnings.append("\(predictions.path): column(s) matching no finding of \(schema.name) ignored: \(extra.joined(separator: ", "))") }

    func index(_ t: CSVTable, _ col: Int, _ url: URL) throws -> [String: Int] {
      var out: [String: Int] = [:]
      for (r, row) in t.rows.enumerated() {
        let id = LabelFile.normalizedID(row[col])
        guard !id.isEmpty else { throw GreenRFMError.invalidData(path: url.path, reason: "record \(r + 2): empty id") }
        if let first = out[id] {
          throw GreenRFMError.invalidData(path: url.path, reason: "id '\(id)' appears in records \(first + 2) and \(r + 2)")
        }
        out[id] = r
      }
      return out
    }
    let pIndex = try index(p, pID, predictions), lIndex = try index(l, lID, labels)
    let joinedIDs = p.rows.map { LabelFile.normalizedID($0[pID]) }.filter { lIndex[$0] != nil }
    let onlyP = p.rows.map { LabelFile.normalizedID($0[pID]) }.filter { lIndex[$0] == nil }
    let onlyL = l.rows.map { LabelFile.normalizedID($0[lID]) }.filter { pIndex[$0] == nil }
    func sample(_ ids: [String]) -> String { ids.prefix(3).joined(separator: ", ") + (ids.count > 3 ? ", …" : "") }
    if !onlyP.isEmpty { warnings.append("\(onlyP.count) id(s) of \(predictions.path) are not in \(labels.path) (e.g. \(sample(onlyP))); not scored") }
    if !onlyL.isEmpty { warnings.append("\(onlyL.count) id(s) of \(labels.path) are not in \(predictions.path) (e.g. \(sample(onlyL))); not scored") }
    guard !joinedIDs.isEmpty else {
      throw GreenRFMError.invalidData(
        path: predictions.path, reason: "no id in column '\(idColumn)' matches an id of \(labels.path) (e.g. \(sample(p.rows.map { $0[pID] })) here, \(sample(l.rows.map { $0[lID] })) there)")
    }
    var scores: [[Double]] = [], labelRows: [[Int8]] = []
    scores.reserveCapacity(joinedIDs.count)
    labelRows.reserveCapacity(joinedIDs.count)
    for id in joinedIDs {
      let pr = pIndex[id]!, lr = lIndex[id]!
      var s: [Double] = [], y: [Int8] = []
      for (j, (pc, lc)) in used.enumerated() {
        let text = p.rows[pr][pc].trimmingCharacters(in: .whitespaces)
        guard let v = Double(text), v.isFinite else {
          throw GreenRFMError.invalidData(
            path: predictions.path, reason: "record \(pr + 2), column '\(p.header[pc])': '\(text)' is not a finite number")
        }
        s.append(v)
        let lt = l.rows[lr][lc].trimmingCharacters(in: .whitespaces)
        if lt.isEmpty {
          y.append(-1)
        } else if let label = FindingLabel(text: lt) {
          y.append(label.rawValue)
        } else {
          throw GreenRFMError.invalidData(
            path: labels.path, reason: "record \(lr + 2), column '\(l.header[lc])': '\(lt)' is not 1, 0 or -1 (finding \(findings[j].displayName))")
        }
      }
      scores.append(s)
      labelRows.append(y)
    }
    return MetricsInput(findings: findings, scores: scores, labels: labelRows, ids: joinedIDs, missingFindings: missing,
                        warnings: warnings)
  }
}
