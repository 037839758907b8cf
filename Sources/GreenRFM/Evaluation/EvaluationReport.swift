import Foundation
import Reports

/// Classification results of one finding.
public struct FindingResult: Sendable, Equatable {
  /// `Finding.key`, used in metric keys (`zeroShot/auroc/<key>`).
  public var key: String
  public var displayName: String
  public var counts: Metrics.LabelCounts
  /// nil when undefined; `undefinedReason` says why.
  public var auroc: Double?
  public var undefinedReason: String?
  public var ci95: Metrics.ConfidenceInterval?
  /// nil when no threshold could be chosen (a single class in the split it is chosen on).
  public var threshold: Double?
  public var atThreshold: Metrics.ThresholdMetrics?
  public var roc: Metrics.ROCCurve?
}

/// Per-finding, macro and micro classification metrics of a set of studies.
public struct ClassificationEvaluation: Sendable, Equatable {
  public var findings: [FindingResult]
  public var macroAUROC: Double?
  public var microAUROC: Double?
  public var macroCI: Metrics.ConfidenceInterval?
  public var microCI: Metrics.ConfidenceInterval?
  /// Studies evaluated (the test part when a validation split was used).
  public var studies: Int
  /// Studies the threshold was chosen on (0 for a fixed threshold or when chosen on the evaluated studies).
  public var validationStudies: Int
  public var thresholdRule: Metrics.ThresholdRule
  /// `fixed`, `validation` or `evaluated (optimistic)`.
  public var thresholdChosenOn: String
  public var bootstrapResamples: Int
  public var seed: UInt64

  /// Evaluates scores against labels.
  /// - Parameters:
  ///   - findings: the C findings, in column order.
  ///   - scores: `[N][C]` probabilities (or any scores).
  ///   - labels: `[N][C]` labels, 1/0 (others excluded per finding).
  ///   - threshold: the rule; `.maxF1` and `.youden` are applied to `validation` when given, otherwise to the
  ///     evaluated studies themselves, which is optimistic and reported as such.
  ///   - validation: `[M][C]` scores and labels of a validation split, used only to choose thresholds.
  ///   - bootstrap: resamples for the 95 % intervals (0 for none).
  ///   - seed: the bootstrap seed (`SplitMix64`).
  public static func evaluate(findings: [Finding], scores: [[Double]], labels: [[Int8]],
                              threshold: Metrics.ThresholdRule = .fixed(0.5),
                              validation: (scores: [[Double]], labels: [[Int8]])? = nil,
                              bootstrap: Int = 1000, seed: UInt64 = 0) -> ClassificationEvaluation {
    let (sCols, lCols) = Metrics.columns(scores: scores, labels: labels)
    precondition(scores.isEmpty || sCols.count == findings.count,
                 "ClassificationEvaluation: \(findings.count) findings but \(sCols.count) score columns")
    let valCols = validation.map { Metrics.columns(scores: $0.scores, labels: $0.labels) }
    let summary = Metrics.aurocSummary(scores: scores, labels: labels)
    let boot = bootstrap > 0 && !scores.isEmpty
      ? Metrics.bootstrapAUROC(scores: scores, labels: labels, resamples: bootstrap, seed: seed) : nil
    var results: [FindingResult] = []
    for (j, f) in findings.enumerated() {
      let s = j < sCols.count ? sCols[j] : [], l = j < lCols.count ? lCols[j] : []
      let counts = Metrics.labelCounts(l)
      let a = j < summary.perFinding.count ? summary.perFinding[j] : nil
      var reason: String? = nil
      if a == nil {
        if counts.positives == 0 && counts.negatives == 0 {
          reason = "no study labelled 0 or 1"
        } else if counts.positives == 0 {
          reason = "no positive (label 1) study"
        } else {
          reason = "no negative (label 0) study"
        }
      }
      let t: Double?
      if case .fixed(let v) = threshold {
        t = v
      } else if let valCols {
        t = Metrics.chooseThreshold(scores: valCols.0[j], labels: valCols.1[j], rule: threshold)
      } else {
        t = Metrics.chooseThreshold(scores: s, labels: l, rule: threshold)
      }
      results.append(FindingResult(
        key: f.key, displayName: f.displayName, counts: counts, auroc: a, undefinedReason: reason,
        ci95: boot?.perFinding[j], threshold: t,
        atThreshold: t.map { Metrics.thresholdMetrics(scores: s, labels: l, threshold: $0) },
        roc: Metrics.rocCurve(scores: s, labels: l)))
    }
    let chosenOn: String
    if case .fixed = threshold { chosenOn = "fixed" } else { chosenOn = validation == nil ? "evaluated (optimistic)" : "validation" }
    return ClassificationEvaluation(
      findings: results, macroAUROC: summary.macro, microAUROC: summary.micro, macroCI: boot?.macro,
      microCI: boot?.micro, studies: scores.count, validationStudies: validation?.scores.count ?? 0,
      thresholdRule: threshold, thresholdChosenOn: chosenOn, bootstrapResamples: boot == nil ? 0 : bootstrap, seed: seed)
  }

  /// The mean of a threshold metric over the findings where it is defined; nil when none.
  public func macro(_ metric: (Metrics.ThresholdMetrics) -> Double?) -> Double? {
    let v = findings.compactMap { $0.atThreshold.flatMap(metric) }
    return v.isEmpty ? nil : v.reduce(0, +) / Double(v.count)
  }
}

/// The outputs of an evaluation: `metrics.json` (flat, stable keys), a per-finding CSV and a self-contained HTML
/// report with ROC curves drawn as inline SVG.
///
/// Keys (`P` = `classificationPrefix`, e.g. `zeroShot`, `probe`, `classification`; `<key>` = `Finding.key`):
/// `P/auroc/macro`, `P/auroc/micro`, `P/auroc/<key>`, each with `/ci95` = `[low, high]`; `P/f1|precision|recall|
/// specificity|accuracy|threshold/<key>` and `P/f1|…/macro`; `P/count/positives|negatives|excluded|tp|fp|tn|fn/<key>`;
/// `P/bootstrap/skipped/<key|macro|micro>`; `retrieval/reportToVolume/recall@K`, `…/meanRank`, `…/medianRank`, the same
/// for `volumeToReport`, `retrieval/volumeToVolume/map@K`. An undefined value is JSON `null` and its key is listed
/// under `undefined` with the reason.
public struct EvaluationReport: Sendable {
  public var title: String
  /// Lines shown under the title (inputs, checkpoint, schema).
  public var notes: [String]
  public var classification: ClassificationEvaluation?
  public var classificationPrefix: String
  public var retrieval: Retrieval.CrossModal?
  public var volumeToVolume: MeanAveragePrecision?
  /// Further figures written into `metrics.json` under their own keys (e.g. the demo's `distill/f1/macro`,
  /// `time/<stage>Seconds`) and listed in the report; a non-finite value is written as `null` (listed under
  /// `undefined`). A key that the evaluation itself writes is not overwritten.
  public var extraMetrics: [String: Double]
  /// Figures shown as cards under the notes, before everything else (three decimals; nil or non-finite as n/a),
  /// e.g. the demo's visible-finding zero-shot AUROC, Recall@5 against chance and the distiller's F1. HTML only.
  public var headline: [(label: String, value: Double?)]

  public init(title: String, notes: [String] = [], classification: ClassificationEvaluation? = nil,
              classificationPrefix: String = "zeroShot", retrieval: Retrieval.CrossModal? = nil,
              volumeToVolume: MeanAveragePrecision? = nil, extraMetrics: [String: Double] = [:],
              headline: [(label: String, value: Double?)] = []) {
    self.title = title
    self.notes = notes
    self.headline = headline
    self.classification = classification
    self.classificationPrefix = classificationPrefix
    self.retrieval = retrieval
    self.volumeToVolume = volumeToVolume
    self.extraMetrics = extraMetrics
  }

  // MARK: metrics.json

  /// The flat metrics dictionary (JSON-ready: numbers, strings, arrays, `NSNull`).
  public func metrics() -> [String: Any] {
    var m: [String: Any] = [:]
    var undefined: [[String: String]] = []
    func put(_ key: String, _ value: Double?, reason: @autoclosure () -> String) {
      if let value, value.isFinite {
        m[key] = value
      } else {
        m[key] = NSNull()
        undefined.append(["key": key, "reason": reason()])
      }
    }
    func putCI(_ key: String, _ ci: Metrics.ConfidenceInterval?, reason: @autoclosure () -> String) {
      if let ci { m[key] = [ci.low, ci.high] } else {
        m[key] = NSNull()
        undefined.append(["key": key, "reason": reason()])
      }
    }
    if let c = classification {
      let p = classificationPrefix
      m["\(p)/studies"] = c.studies
      m["\(p)/validationStudies"] = c.validationStudies
      m["\(p)/thresholdRule"] = c.thresholdRule.description
      m["\(p)/thresholdChosenOn"] = c.thresholdChosenOn
      m["\(p)/bootstrap/resamples"] = c.bootstrapResamples
      m["\(p)/bootstrap/seed"] = Int(truncatingIfNeeded: c.seed)
      put("\(p)/auroc/macro", c.macroAUROC, reason: "no finding has both classes")
      put("\(p)/auroc/micro", c.microAUROC, reason: "the pooled cells have a single class")
      if c.bootstrapResamples > 0 {
        putCI("\(p)/auroc/macro/ci95", c.macroCI, reason: "no resample had both classes in every defined finding")
        putCI("\(p)/auroc/micro/ci95", c.microCI, reason: "no resample had both classes")
        m["\(p)/bootstrap/skipped/macro"] = c.macroCI?.skipped ?? c.bootstrapResamples
        m["\(p)/bootstrap/skipped/micro"] = c.microCI?.skipped ?? c.bootstrapResamples
      }
      let thresholdMetrics: [(String, (Metrics.ThresholdMetrics) -> Double?)] = [
        ("f1", { $0.f1 }), ("precision", { $0.precision }), ("recall", { $0.recall }),
        ("specificity", { $0.specificity }), ("accuracy", { $0.accuracy }),
      ]
      for (name, f) in thresholdMetrics {
        put("\(p)/\(name)/macro", c.macro(f), reason: "undefined for every finding")
      }
      for r in c.findings {
        let k = r.key
        put("\(p)/auroc/\(k)", r.auroc, reason: r.undefinedReason ?? "undefined")
        if c.bootstrapResamples > 0 {
          putCI("\(p)/auroc/\(k)/ci95", r.ci95,
                reason: r.auroc == nil ? (r.undefinedReason ?? "undefined") : "no resample had both classes")
          m["\(p)/bootstrap/skipped/\(k)"] = r.ci95?.skipped ?? c.bootstrapResamples
        }
        put("\(p)/threshold/\(k)", r.threshold, reason: "no threshold: a single class where it is chosen")
        for (name, f) in thresholdMetrics {
          put("\(p)/\(name)/\(k)", r.atThreshold.flatMap(f), reason: Self.reason(name, r))
        }
        m["\(p)/count/positives/\(k)"] = r.counts.positives
        m["\(p)/count/negatives/\(k)"] = r.counts.negatives
        m["\(p)/count/excluded/\(k)"] = r.counts.excluded
        if let t = r.atThreshold {
          m["\(p)/count/tp/\(k)"] = t.truePositives
          m["\(p)/count/fp/\(k)"] = t.falsePositives
          m["\(p)/count/tn/\(k)"] = t.trueNegatives
          m["\(p)/count/fn/\(k)"] = t.falseNegatives
        }
      }
    }
    if let r = retrieval {
      m["retrieval/similarity"] = r.similarity.rawValue
      m["retrieval/poolSize"] = r.reportToVolume.poolSize
      m["retrieval/rankTies"] = "pessimistic"
      for (name, d) in [("reportToVolume", r.reportToVolume), ("volumeToReport", r.volumeToReport)] {
        for (k, v) in d.recallAtK { m["retrieval/\(name)/recall@\(k)"] = v }
        put("retrieval/\(name)/meanRank", d.meanRank, reason: "empty pool")
        put("retrieval/\(name)/medianRank", d.medianRank, reason: "empty pool")
      }
    }
    if let v = volumeToVolume {
      put("retrieval/volumeToVolume/map@\(v.k)", v.value, reason: "no study shares a positive finding with another")
      m["retrieval/volumeToVolume/queries"] = v.queries
      m["retrieval/volumeToVolume/queriesWithoutRelevant"] = v.queriesWithoutRelevant
    }
    for (key, value) in extraMetrics where m[key] == nil {
      put(key, value, reason: "not finite")
    }
    m["undefined"] = undefined.sorted { $0["key"]! < $1["key"]! }
    return m
  }

  private static func reason(_ metric: String, _ r: FindingResult) -> String {
    guard let t = r.atThreshold else { return "no threshold: a single class where it is chosen" }
    switch metric {
    case "precision": return t.truePositives + t.falsePositives == 0 ? "no study predicted positive" : "undefined"
    case "recall": return "no positive (label 1) study"
    case "specificity": return "no negative (label 0) study"
    case "f1": return "no positive study and none predicted positive"
    default: return "no study labelled 0 or 1"
    }
  }

  /// `metrics.json` bytes: pretty-printed, keys sorted.
  public func metricsJSON() throws -> Data {
    try JSONSerialization.data(withJSONObject: metrics(), options: [.prettyPrinted, .sortedKeys])
  }

  // MARK: CSV

  /// One row per finding: key, finding, counts, AUROC and its interval, the threshold and the metrics at it.
  public func perFindingCSV() -> String {
    let header = ["key", "finding", "positives", "negatives", "excluded", "auroc", "auroc_ci95_low", "auroc_ci95_high",
                  "bootstrap_skipped", "threshold", "tp", "fp", "tn", "fn", "precision", "recall", "specificity", "f1",
                  "accuracy", "undefined_reason"]
    var out = header.joined(separator: ",") + "\n"
    func f(_ v: Double?) -> String { v.map { "\($0)" } ?? "" }
    func i(_ v: Int?) -> String { v.map(String.init) ?? "" }
    for r in classification?.findings ?? [] {
      let t = r.atThreshold
      let fields = [r.key, r.displayName, "\(r.counts.positives)", "\(r.counts.negatives)", "\(r.counts.excluded)",
                    f(r.auroc), f(r.ci95?.low), f(r.ci95?.high), i(r.ci95?.skipped), f(r.threshold),
                    i(t?.truePositives), i(t?.falsePositives), i(t?.trueNegatives), i(t?.falseNegatives),
                    f(t?.precision), f(t?.recall), f(t?.specificity), f(t?.f1), f(t?.accuracy), r.undefinedReason ?? ""]
      out += fields.map(CSVTable.escape).joined(separator: ",") + "\n"
    }
    return out
  }

  // MARK: files

  /// Writes `metrics.json`, `per_finding.csv` (when there are classification results) and `report.html`
  /// atomically into `directory` (created if needed).
  /// - Returns: the files written.
  /// - Throws: the file system's error, naming the path.
  @discardableResult
  public func write(to directory: URL) throws -> [URL] {
    do { try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true) } catch {
      throw GreenRFMError.invalidArgument(name: directory.path, reason: "cannot create the output folder: \(error.localizedDescription)")
    }
    var written: [URL] = []
    let json = directory.appendingPathComponent("metrics.json")
    try AtomicFile.write(try metricsJSON(), to: json)
    written.append(json)
    if classification != nil {
      let csv = directory.appendingPathComponent("per_finding.csv")
      try AtomicFile.write(perFindingCSV(), to: csv)
      written.append(csv)
    }
    let html = directory.appendingPathComponent("report.html")
    try AtomicFile.write(self.html(), to: html)
    written.append(html)
    return written
  }

  // MARK: HTML

  /// A self-contained HTML page (no scripts, no external files): summary, per-finding table, ROC curves, retrieval.
  public func html() -> String {
    var h = """
      <!DOCTYPE html>
      <html lang="en"><head><meta charset="utf-8"><title>\(esc(title))</title>
      <style>
      body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:24px;color:#1d2433;max-width:1400px}
      h1{font-size:22px;margin:0 0 4px} h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #d8dde6;padding-bottom:4px}
      .notes{color:#5a6475;font-size:13px;margin:2px 0}
      .cards{display:flex;gap:12px;flex-wrap:wrap;margin:16px 0}
      .card{border:1px solid #d8dde6;border-radius:8px;padding:10px 14px;min-width:150px;background:#f8fafc}
      .card .v{font-size:22px;font-weight:600} .card .l{font-size:12px;color:#5a6475}
      table{border-collapse:collapse;font-size:13px} th,td{padding:4px 8px;border-bottom:1px solid #e6e9ef;text-align:right}
      th{background:#f1f4f8;position:sticky;top:0} td:first-child,th:first-child{text-align:left}
      .na{color:#a0412d} .grid{display:flex;flex-wrap:wrap;gap:10px}
      .roc{border:1px solid #e6e9ef;border-radius:6px;padding:4px;background:#fff}
      .small{font-size:12px;color:#5a6475}
      </style></head><body>
      <h1>\(esc(title))</h1>

      """
    for n in notes { h += "<p class=\"notes\">\(esc(n))</p>\n" }
    if !headline.isEmpty { h += cardsHTML(headline.map { ($0.label, fmtOrNA($0.value.flatMap { $0.isFinite ? $0 : nil })) }) }
    if let c = classification { h += classificationHTML(c) }
    if retrieval != nil || volumeToVolume != nil { h += retrievalHTML() }
    if !extraMetrics.isEmpty {
      h += "<h2>Other figures</h2>\n<table><thead><tr><th>Key</th><th>Value</th></tr></thead><tbody>\n"
      for key in extraMetrics.keys.sorted() {
        let v = extraMetrics[key]!
        h += "<tr><td>\(esc(key))</td><td>\(v.isFinite ? fmt(v) : "n/a")</td></tr>\n"
      }
      h += "</tbody></table>\n"
    }
    h += "</body></html>\n"
    return h
  }

  private func classificationHTML(_ c: ClassificationEvaluation) -> String {
    let undefinedCount = c.findings.filter { $0.auroc == nil }.count
    var h = cardsHTML([
      ("macro AUROC" + (c.macroCI.map { " (95% CI \(fmt($0.low))–\(fmt($0.high)))" } ?? ""), fmtOrNA(c.macroAUROC)),
      ("micro AUROC" + (c.microCI.map { " (95% CI \(fmt($0.low))–\(fmt($0.high)))" } ?? ""), fmtOrNA(c.microAUROC)),
      ("macro F1 at threshold", fmtOrNA(c.macro { $0.f1 })),
      ("studies evaluated", "\(c.studies)"),
      ("findings (AUROC undefined)", "\(c.findings.count) (\(undefinedCount))"),
    ])
    var rule = "Threshold: \(c.thresholdRule)"
    switch c.thresholdChosenOn {
    case "validation": rule += ", chosen per finding on a validation split of \(c.validationStudies) studies"
    case "fixed": rule += " (fixed)"
    default: rule += ", chosen on the evaluated studies themselves (optimistic)"
    }
    h += "<p class=\"small\">\(esc(rule)). Predicted positive when score ≥ threshold. AUROC excludes −1 labels per finding; "
    h += "a finding with a single class has no AUROC (shown as n/a, left out of the macro mean). "
    if c.bootstrapResamples > 0 {
      h += "95% CIs: percentile bootstrap over studies, \(c.bootstrapResamples) resamples, seed \(c.seed); resamples with a single class are skipped and counted."
    }
    h += "</p>\n<h2>Per finding</h2>\n<table><thead><tr><th>Finding</th><th>Pos</th><th>Neg</th><th>Excl.</th><th>AUROC</th><th>95% CI</th>"
    h += "<th>Threshold</th><th>F1</th><th>Precision</th><th>Recall</th><th>Specificity</th><th>Accuracy</th><th>TP/FP/TN/FN</th></tr></thead><tbody>\n"
    for r in c.findings {
      let t = r.atThreshold
      h += "<tr><td>\(esc(r.displayName))</td><td>\(r.counts.positives)</td><td>\(r.counts.negatives)</td><td>\(r.counts.excluded)</td>"
      h += r.auroc == nil ? "<td class=\"na\" title=\"\(esc(r.undefinedReason ?? ""))\">n/a</td>" : "<td>\(fmt(r.auroc!))</td>"
      h += "<td>\(r.ci95.map { "\(fmt($0.low))–\(fmt($0.high))" } ?? "")</td>"
      h += "<td>\(r.threshold.map { fmt($0) } ?? "")</td>"
      for v in [t?.f1, t?.precision, t?.recall, t?.specificity, t?.accuracy] { h += "<td>\(fmtOrNA(v))</td>" }
      h += "<td>\(t.map { "\($0.truePositives)/\($0.falsePositives)/\($0.trueNegatives)/\($0.falseNegatives)" } ?? "")</td></tr>\n"
    }
    h += "</tbody></table>\n<h2>ROC curves</h2>\n<div class=\"grid\">\n"
    for r in c.findings { h += rocSVG(r) }
    h += "</div>\n"
    return h
  }

  /// One ROC curve, 220 × 236 px: axes, the chance diagonal, the curve, the operating point at the threshold.
  private func rocSVG(_ r: FindingResult) -> String {
    let size = 180.0, left = 32.0, top = 22.0
    func x(_ v: Double) -> String { fmt(left + v * size, 1) }
    func y(_ v: Double) -> String { fmt(top + (1 - v) * size, 1) }
    var s = "<svg class=\"roc\" width=\"220\" height=\"236\" viewBox=\"0 0 220 236\" xmlns=\"http://www.w3.org/2000/svg\" role=\"img\">"
    s += "<title>ROC \(esc(r.displayName))</title>"
    let name = r.displayName.count > 30 ? String(r.displayName.prefix(29)) + "…" : r.displayName
    s += "<text x=\"110\" y=\"14\" font-size=\"12\" text-anchor=\"middle\" font-weight=\"600\">\(esc(name))</text>"
    s += "<rect x=\"\(left)\" y=\"\(top)\" width=\"\(size)\" height=\"\(size)\" fill=\"#fbfcfe\" stroke=\"#9aa3b2\"/>"
    for g in [0.25, 0.5, 0.75] {
      s += "<line x1=\"\(x(g))\" y1=\"\(y(0))\" x2=\"\(x(g))\" y2=\"\(y(1))\" stroke=\"#eceff4\"/>"
      s += "<line x1=\"\(x(0))\" y1=\"\(y(g))\" x2=\"\(x(1))\" y2=\"\(y(g))\" stroke=\"#eceff4\"/>"
    }
    s += "<line x1=\"\(x(0))\" y1=\"\(y(0))\" x2=\"\(x(1))\" y2=\"\(y(1))\" stroke=\"#b8bfcc\" stroke-dasharray=\"4 3\"/>"
    s += "<text x=\"\(x(0))\" y=\"\(fmt(top + size + 12, 1))\" font-size=\"9\" text-anchor=\"middle\">0</text>"
    s += "<text x=\"\(x(1))\" y=\"\(fmt(top + size + 12, 1))\" font-size=\"9\" text-anchor=\"middle\">1</text>"
    s += "<text x=\"\(x(0.5))\" y=\"\(fmt(top + size + 12, 1))\" font-size=\"9\" text-anchor=\"middle\">1 − specificity</text>"
    s += "<text x=\"\(fmt(left - 4, 1))\" y=\"\(y(0))\" font-size=\"9\" text-anchor=\"end\">0</text>"
    s += "<text x=\"\(fmt(left - 4, 1))\" y=\"\(fmt(top + 8, 1))\" font-size=\"9\" text-anchor=\"end\">1</text>"
    s += "<text x=\"10\" y=\"\(y(0.5))\" font-size=\"9\" text-anchor=\"middle\" transform=\"rotate(-90 10 \(y(0.5)))\">sensitivity</text>"
    if let roc = r.roc, let a = r.auroc {
      let points = zip(roc.falsePositiveRates, roc.truePositiveRates).map { "\(x($0)),\(y($1))" }.joined(separator: " ")
      s += "<polyline points=\"\(points)\" fill=\"none\" stroke=\"#2563eb\" stroke-width=\"2\"/>"
      if let t = r.atThreshold, let sens = t.recall, let spec = t.specificity {
        s += "<circle cx=\"\(x(1 - spec))\" cy=\"\(y(sens))\" r=\"3.5\" fill=\"#dc2626\"><title>threshold \(fmt(t.threshold))</title></circle>"
      }
      var label = "AUROC \(fmt(a))"
      if let ci = r.ci95 { label += " [\(fmt(ci.low)), \(fmt(ci.high))]" }
      s += "<text x=\"\(x(0.97))\" y=\"\(y(0.05))\" font-size=\"10\" text-anchor=\"end\" fill=\"#1e3a8a\">\(esc(label))</text>"
    } else {
      s += "<text x=\"\(x(0.5))\" y=\"\(y(0.55))\" font-size=\"11\" text-anchor=\"middle\" fill=\"#a0412d\">AUROC undefined</text>"
      s += "<text x=\"\(x(0.5))\" y=\"\(y(0.45))\" font-size=\"9\" text-anchor=\"middle\" fill=\"#a0412d\">\(esc(r.undefinedReason ?? ""))</text>"
    }
    s += "<text x=\"110\" y=\"232\" font-size=\"9\" text-anchor=\"middle\" fill=\"#5a6475\">\(r.counts.positives) pos · \(r.counts.negatives) neg · \(r.counts.excluded) excl.</text>"
    return s + "</svg>\n"
  }

  private func retrievalHTML() -> String {
    var h = "<h2>Retrieval</h2>\n"
    if let r = retrieval {
      let ks = r.reportToVolume.recallAtK.keys.sorted()
      h += "<p class=\"small\">Pool of \(r.reportToVolume.poolSize) paired studies; similarity: \(r.similarity == .dot ? "dot product (as in training)" : "cosine"). "
      h += "Rank 1 is best; ties count against the model (pessimistic). Chance Recall@K is K/N.</p>\n"
      h += "<table><thead><tr><th>Direction</th>" + ks.map { "<th>R@\($0)</th>" }.joined() + "<th>Mean rank</th><th>Median rank</th></tr></thead><tbody>\n"
      for (name, d) in [("Report → volume", r.reportToVolume), ("Volume → report", r.volumeToReport)] {
        h += "<tr><td>\(name)</td>" + ks.map { "<td>\(fmt(d.recallAtK[$0]!))</td>" }.joined()
        h += "<td>\(fmt(d.meanRank, 1))</td><td>\(fmt(d.medianRank, 1))</td></tr>\n"
      }
      h += "<tr><td class=\"small\">Chance</td>" + ks.map { "<td class=\"small\">\(fmt(Swift.min(1, Double($0) / Double(Swift.max(1, r.reportToVolume.poolSize)))))</td>" }.joined()
      h += "<td class=\"small\">\(fmt(Double(r.reportToVolume.poolSize + 1) / 2, 1))</td><td></td></tr>\n</tbody></table>\n"
    }
    if let v = volumeToVolume {
      h += "<p>Volume → volume MAP@\(v.k) (relevant = shares a positive finding): <b>\(fmtOrNA(v.value))</b> "
      h += "<span class=\"small\">over \(v.queries) queries; \(v.queriesWithoutRelevant) without any relevant study left out.</span></p>\n"
    }
    return h
  }

  /// A row of cards; `value` is HTML (already formatted), `label` is escaped here.
  private func cardsHTML(_ cards: [(label: String, value: String)]) -> String {
    "<div class=\"cards\">" + cards.map { "<div class=\"card\"><div class=\"v\">\($0.value)</div><div class=\"l\">\(esc($0.label))</div></div>" }.joined() + "</div>\n"
  }

  private func fmt(_ v: Double, _ digits: Int = 3) -> String { String(format: "%.\(digits)f", v) }
  private func fmtOrNA(_ v: Double?) -> String { v.map { fmt($0) } ?? "<span class=\"na\">n/a</span>" }
  private func esc(_ s: String) -> String {
    s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
      .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
  }
}
