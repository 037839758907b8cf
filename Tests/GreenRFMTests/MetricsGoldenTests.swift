import Foundation
import Reports
import Testing
import Torch
@testable import GreenRFM

/// The golden file made by scripts/golden/make_metrics_golden.py (scikit-learn, NumPy), read in place.
enum MetricsGolden {
  nonisolated(unsafe) static let object: [String: Any] = {
    let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Golden/metrics_golden.json")
    let data = try! Data(contentsOf: url)
    return try! JSONSerialization.jsonObject(with: data) as! [String: Any]
  }()

  static func doubles(_ v: Any?) -> [Double] { (v as! [Any]).map { ($0 as! NSNumber).doubleValue } }
  static func int8s(_ v: Any?) -> [Int8] { (v as! [Any]).map { Int8(($0 as! NSNumber).intValue) } }
  static func ints(_ v: Any?) -> [Int] { (v as! [Any]).map { ($0 as! NSNumber).intValue } }
  static func optionalDouble(_ v: Any?) -> Double? { (v as? NSNumber)?.doubleValue }
  static func matrix(_ v: Any?) -> [[Double]] { (v as! [Any]).map { doubles($0) } }
  static func labelMatrix(_ v: Any?) -> [[Int8]] { (v as! [Any]).map { int8s($0) } }
  static func tensor(_ v: Any?) throws -> Tensor {
    let m = matrix(v)
    return try Tensor(m.flatMap { $0 }, shape: [m.count, m.first?.count ?? 0])
  }
}

/// Exact values: AUROC, ROC points, thresholds, counts and percentiles compare within 1e-12 (they are computed from
/// integer counts in both implementations; only the final division or interpolation rounds).
@Suite struct MetricsGoldenTests {
  static let exact = 1e-12
  nonisolated(unsafe) static let cases = MetricsGolden.object["auroc"] as! [[String: Any]]

  @Test(arguments: cases.map { $0["name"] as! String })
  func aurocROCAndThresholdsMatchScikitLearn(name: String) throws {
    let c = Self.cases.first { $0["name"] as! String == name }!
    let scores = MetricsGolden.doubles(c["scores"]), labels = MetricsGolden.int8s(c["labels"])
    let expected = MetricsGolden.optionalDouble(c["auroc"])
    let a = Metrics.auroc(scores: scores, labels: labels)
    #expect((a == nil) == (expected == nil), "\(name): AUROC \(String(describing: a)) vs \(String(describing: expected))")
    if let a, let expected { #expect(abs(a - expected) <= Self.exact, "\(name): \(a) vs \(expected)") }

    let roc = Metrics.rocCurve(scores: scores, labels: labels)
    if let r = c["roc"] as? [String: Any] {
      let roc = try #require(roc)
      let fpr = MetricsGolden.doubles(r["fpr"]), tpr = MetricsGolden.doubles(r["tpr"])
      let thr = MetricsGolden.doubles(r["thresholds_after_inf"])
      #expect(roc.falsePositiveRates.count == fpr.count && roc.truePositiveRates.count == tpr.count)
      #expect(zip(roc.falsePositiveRates, fpr).allSatisfy { abs($0 - $1) <= Self.exact })
      #expect(zip(roc.truePositiveRates, tpr).allSatisfy { abs($0 - $1) <= Self.exact })
      #expect(roc.thresholds.first == .infinity)
      #expect(Array(roc.thresholds.dropFirst()) == thr)
    } else {
      #expect(roc == nil)
    }

    let f1T = Metrics.chooseThreshold(scores: scores, labels: labels, rule: .maxF1)
    let jT = Metrics.chooseThreshold(scores: scores, labels: labels, rule: .youden)
    #expect(f1T == MetricsGolden.optionalDouble(c["maxF1Threshold"]), "\(name) max-F1 threshold")
    #expect(jT == MetricsGolden.optionalDouble(c["youdenThreshold"]), "\(name) Youden threshold")

    for at in c["at"] as! [[String: Any]] {
      let t = (at["threshold"] as! NSNumber).doubleValue
      let m = Metrics.thresholdMetrics(scores: scores, labels: labels, threshold: t)
      #expect(m.truePositives == at["tp"] as! Int && m.falsePositives == at["fp"] as! Int
              && m.trueNegatives == at["tn"] as! Int && m.falseNegatives == at["fn"] as! Int, "\(name) counts at \(t)")
      for (key, value) in [("precision", m.precision), ("recall", m.recall), ("specificity", m.specificity),
                           ("f1", m.f1), ("accuracy", m.accuracy)] {
        let e = MetricsGolden.optionalDouble(at[key])
        #expect((value == nil) == (e == nil), "\(name) \(key) at \(t): \(String(describing: value)) vs \(String(describing: e))")
        if let value, let e { #expect(abs(value - e) <= Self.exact, "\(name) \(key) at \(t)") }
      }
    }
  }

  @Test func singleClassIsUndefinedNeverHalf() {
    #expect(Metrics.auroc(scores: [0.1, 0.9, 0.5], labels: [1, 1, -1]) == nil)
    #expect(Metrics.auroc(scores: [0.1, 0.9], labels: [0, 0]) == nil)
    #expect(Metrics.auroc(scores: [], labels: []) == nil)
    // Labels other than 1/0/−1 are excluded too.
    #expect(Metrics.auroc(scores: [0.1, 0.9, 0.2], labels: [0, 1, 5]) == 1)
  }

  @Test func bootstrapIntervalsMatchTheSplitMix64Reference() {
    let b = MetricsGolden.object["bootstrap"] as! [String: Any]
    let scores = MetricsGolden.matrix(b["scores"]), labels = MetricsGolden.labelMatrix(b["labels"])
    let e = b["expected"] as! [String: Any]
    let summary = Metrics.aurocSummary(scores: scores, labels: labels)
    let expectedPer = (e["auroc"] as! [Any]).map(MetricsGolden.optionalDouble)
    for (a, x) in zip(summary.perFinding, expectedPer) {
      #expect((a == nil) == (x == nil))
      if let a, let x { #expect(abs(a - x) <= Self.exact) }
    }
    #expect(summary.undefinedFindings == [2])
    #expect(abs(summary.macro! - MetricsGolden.optionalDouble(e["macroAUROC"])!) <= Self.exact)
    #expect(abs(summary.micro! - MetricsGolden.optionalDouble(e["microAUROC"])!) <= Self.exact)

    let boot = Metrics.bootstrapAUROC(scores: scores, labels: labels, resamples: b["resamples"] as! Int,
                                      seed: UInt64(b["seed"] as! Int))
    func check(_ ci: Metrics.ConfidenceInterval?, _ x: Any?, _ what: String) {
      guard let x = x as? [String: Any] else {
        #expect(ci == nil, "\(what): expected no interval")
        return
      }
      guard let ci else {
        Issue.record("\(what): no interval")
        return
      }
      #expect(abs(ci.low - (x["low"] as! NSNumber).doubleValue) <= Self.exact, "\(what) low \(ci.low)")
      #expect(abs(ci.high - (x["high"] as! NSNumber).doubleValue) <= Self.exact, "\(what) high \(ci.high)")
      #expect(ci.resamples == x["resamples"] as! Int && ci.skipped == x["skipped"] as! Int, "\(what) counts")
    }
    for (j, x) in (e["perFinding"] as! [Any]).enumerated() { check(boot.perFinding[j], x, "finding \(j)") }
    check(boot.macro, e["macro"], "macro")
    check(boot.micro, e["micro"], "micro")
    // The rare finding skips resamples without a positive, and says how many.
    #expect((boot.perFinding[1]?.skipped ?? 0) > 0)
  }

  @Test func splitMix64AndTheValidationSplitMatchPython() {
    let g = MetricsGolden.object["splitmix64"] as! [String: Any]
    var rng = SplitMix64(seed: 0)
    #expect((0..<3).map { _ in String(rng.next()) } == (g["first"] as! [String]))
    let s = MetricsGolden.object["split"] as! [String: Any]
    let split = Metrics.validationSplit(count: s["count"] as! Int, fraction: (s["fraction"] as! NSNumber).doubleValue,
                                        seed: UInt64(s["seed"] as! Int))
    #expect(split.validation == MetricsGolden.ints(s["validation"]))
    #expect(split.test == MetricsGolden.ints(s["test"]))
  }

  @Test func percentileIsNumPysLinearMethod() {
    #expect(Metrics.percentile(sorted: [1, 2, 3, 4], 50) == 2.5)
    #expect(Metrics.percentile(sorted: [5], 2.5) == 5)
    #expect(abs(Metrics.percentile(sorted: [0, 10], 97.5) - 9.75) < 1e-15)
  }

  @Test(arguments: [("max-f1", Metrics.ThresholdRule.maxF1), ("youden", .youden), ("0.3", .fixed(0.3))])
  func thresholdRulesParse(text: String, rule: Metrics.ThresholdRule) {
    #expect(Metrics.ThresholdRule(parsing: text) == rule)
  }

  @Test func evaluationReportHasStableKeysAndNullsWithReasons() throws {
    let b = MetricsGolden.object["bootstrap"] as! [String: Any]
    let scores = MetricsGolden.matrix(b["scores"]), labels = MetricsGolden.labelMatrix(b["labels"])
    let findings = ["a", "rare", "single", "tied"].map {
      Finding(key: $0, displayName: $0.capitalized, prompt: $0, synonyms: [$0])
    }
    let e = ClassificationEvaluation.evaluate(findings: findings, scores: scores, labels: labels, bootstrap: 200, seed: 1)
    let m = EvaluationReport(title: "t", classification: e, classificationPrefix: "zeroShot").metrics()
    #expect(m["zeroShot/auroc/macro"] is Double)
    #expect(m["zeroShot/auroc/single"] is NSNull)
    #expect((m["zeroShot/auroc/a/ci95"] as? [Double])?.count == 2)
    let undefined = m["undefined"] as! [[String: String]]
    #expect(undefined.contains { $0["key"] == "zeroShot/auroc/single" && $0["reason"] == "no positive (label 1) study" })
    let data = try EvaluationReport(title: "t", classification: e).metricsJSON()
    #expect(try JSONSerialization.jsonObject(with: data) is [String: Any])
  }

  @Test func linearProbeMatchesScikitLearnAtOneLambda() throws {
    let p = MetricsGolden.object["probe"] as! [String: Any]
    var options = LinearProbe.Options()
    options.regularizations = [(p["lambda"] as! NSNumber).doubleValue]
    options.tolerance = 1e-10
    options.maxIterations = 20000
    let r = try LinearProbe.run(
      trainFeatures: MetricsGolden.tensor(p["train"]), trainLabels: MetricsGolden.labelMatrix(p["trainLabels"]),
      validationFeatures: MetricsGolden.tensor(p["validation"]),
      validationLabels: MetricsGolden.labelMatrix(p["validationLabels"]),
      testFeatures: MetricsGolden.tensor(p["test"]), options: options)
    let expected = MetricsGolden.matrix(p["testProbabilities"])
    #expect(r.converged == [true])
    var worst = 0.0
    for (a, b) in zip(r.probabilities, expected) { for (x, y) in zip(a, b) { worst = max(worst, abs(x - y)) } }
    #expect(worst < 1e-6, "largest probability difference \(worst)")
  }

  @Test func linearProbeIsDeterministicAndHandlesASingleClassFinding() throws {
    let x = try Tensor((0..<80).map { Double($0 % 7) - Double($0 % 3) }, shape: [20, 4])
    let y: [[Int8]] = (0..<20).map { [Int8($0 % 2), 0] }
    let a = try LinearProbe.run(trainFeatures: x, trainLabels: y, validationFeatures: x, validationLabels: y, testFeatures: x)
    let b = try LinearProbe.run(trainFeatures: x, trainLabels: y, validationFeatures: x, validationLabels: y, testFeatures: x)
    #expect(a.probabilities == b.probabilities)
    #expect(a.fits[1].fitted == false)
    #expect(a.probabilities.allSatisfy { $0[1] == 0 })
  }
}
