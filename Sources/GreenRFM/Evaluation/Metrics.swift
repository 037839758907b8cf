import Foundation

/// Classification metrics on plain arrays: AUROC, ROC curves, bootstrap confidence intervals, thresholds and the
/// confusion-matrix metrics at a threshold.
///
/// Labels are `Int8`: `1` positive, `0` negative; every other value (`−1` uncertain, anything else) is excluded
/// per finding. A metric that cannot be defined (AUROC with one class absent, precision with no predicted
/// positive, …) is `nil`, never a made-up number: the authors' evaluator reports such a finding as AUROC 0.5.
///
/// Matrices are row-major `[N studies][C findings]`, as in a predictions CSV or a `[N, C]` tensor.
public enum Metrics {
  // MARK: AUROC

  /// Area under the ROC curve of one finding.
  ///
  /// The Mann–Whitney statistic with average ranks for tied scores, computed exactly in integers before the final
  /// division; equals scikit-learn's `roc_auc_score(labels, scores)` on the studies labelled 0 or 1 (to within
  /// one rounding of the trapezoid sum, below 1e-15).
  /// - Parameters:
  ///   - scores: one score per study (a probability or any monotone score; higher means more likely positive).
  ///   - labels: one label per study: `1`, `0`; other values (`−1`) are excluded.
  /// - Returns: AUROC in [0, 1], or nil when no study is labelled 1 or none is labelled 0.
  /// - Traps: when `scores` and `labels` differ in length, or a kept score is NaN.
  public static func auroc(scores: [Double], labels: [Int8]) -> Double? {
    precondition(scores.count == labels.count, "Metrics.auroc: \(scores.count) scores but \(labels.count) labels")
    let order = sortedOrder(scores: scores, labels: labels)
    return weightedAUROC(order: order, scores: scores, labels: labels, weights: nil)
  }

  /// The indices of the studies labelled 0/1, sorted by ascending score. Traps on a NaN score.
  static func sortedOrder(scores: [Double], labels: [Int8]) -> [Int] {
    var kept: [Int] = []
    kept.reserveCapacity(scores.count)
    for i in scores.indices where labels[i] == 0 || labels[i] == 1 {
      precondition(!scores[i].isNaN, "Metrics: score of study \(i) is NaN")
      kept.append(i)
    }
    kept.sort { scores[$0] < scores[$1] || (scores[$0] == scores[$1] && $0 < $1) }
    return kept
  }

  /// AUROC over `order` (indices sorted by ascending score), each study counted `weights[i]` times (1 if nil).
  ///
  /// 2U = Σ over groups of tied scores of pos_g · (2 · negatives below + neg_g); AUROC = 2U / (2 · P · N).
  static func weightedAUROC(order: [Int], scores: [Double], labels: [Int8], weights: [Int32]?) -> Double? {
    var twiceU = 0, negBelow = 0, positives = 0, negatives = 0
    var k = 0
    let n = order.count
    while k < n {
      let s = scores[order[k]]
      var pos = 0, neg = 0
      while k < n, scores[order[k]] == s {
        let i = order[k]
        let w = weights.map { Int($0[i]) } ?? 1
        if labels[i] == 1 { pos += w } else { neg += w }
        k += 1
      }
      twiceU += pos * (2 * negBelow + neg)
      negBelow += neg
      positives += pos
      negatives += neg
    }
    guard positives > 0, negatives > 0 else { return nil }
    return Double(twiceU) / (2 * Double(positives) * Double(negatives))
  }

  /// Counts of the labels of one finding.
  public struct LabelCounts: Sendable, Equatable, Codable {
    /// Studies labelled 1.
    public var positives: Int
    /// Studies labelled 0.
    public var negatives: Int
    /// Studies with any other label (−1 uncertain or missing).
    public var excluded: Int
  }

  /// Counts 1, 0 and other labels.
  public static func labelCounts(_ labels: [Int8]) -> LabelCounts {
    var c = LabelCounts(positives: 0, negatives: 0, excluded: 0)
    for l in labels {
      if l == 1 { c.positives += 1 } else if l == 0 { c.negatives += 1 } else { c.excluded += 1 }
    }
    return c
  }

  // MARK: ROC curve

  /// A ROC curve: false- and true-positive rates at decreasing thresholds (`score >= threshold` is positive).
  public struct ROCCurve: Sendable, Equatable {
    public var falsePositiveRates: [Double]
    public var truePositiveRates: [Double]
    /// Decreasing; the first is +∞ (nothing predicted positive), as scikit-learn ≥ 1.3.
    public var thresholds: [Double]
  }

  /// The ROC curve of one finding; matches scikit-learn's `roc_curve(labels, scores, drop_intermediate=True)`
  /// exactly (the same points, in the same order) on the studies labelled 0 or 1.
  /// - Returns: nil when one class is absent.
  public static func rocCurve(scores: [Double], labels: [Int8]) -> ROCCurve? {
    precondition(scores.count == labels.count, "Metrics.rocCurve: \(scores.count) scores but \(labels.count) labels")
    let order = sortedOrder(scores: scores, labels: labels).reversed()
    // Cumulative true and false positives at each distinct score, descending.
    var tps: [Int] = [], fps: [Int] = [], thresholds: [Double] = []
    var tp = 0, fp = 0
    let sorted = Array(order)
    for (k, i) in sorted.enumerated() {
      if labels[i] == 1 { tp += 1 } else { fp += 1 }
      if k == sorted.count - 1 || scores[sorted[k + 1]] != scores[i] {
        tps.append(tp)
        fps.append(fp)
        thresholds.append(scores[i])
      }
    }
    guard tp > 0, fp > 0 else { return nil }
    // drop_intermediate: keep the ends and the points where the second difference of fps or tps is non-zero.
    if fps.count > 2 {
      var keep: [Int] = [0]
      for k in 1..<(fps.count - 1) {
        let d2f = fps[k + 1] - 2 * fps[k] + fps[k - 1]
        let d2t = tps[k + 1] - 2 * tps[k] + tps[k - 1]
        if d2f != 0 || d2t != 0 { keep.append(k) }
      }
      keep.append(fps.count - 1)
      tps = keep.map { tps[$0] }
      fps = keep.map { fps[$0] }
      thresholds = keep.map { thresholds[$0] }
    }
    let p = Double(tp), n = Double(fp)
    return ROCCurve(falsePositiveRates: [0] + fps.map { Double($0) / n },
                    truePositiveRates: [0] + tps.map { Double($0) / p },
                    thresholds: [.infinity] + thresholds)
  }

  // MARK: Several findings

  /// AUROC of every finding, their macro mean and the pooled (micro) AUROC.
  public struct AUROCSummary: Sendable, Equatable {
    /// One per finding; nil where the finding has a single class.
    public var perFinding: [Double?]
    /// The mean over the findings whose AUROC is defined; nil when none is.
    public var macro: Double?
    /// AUROC over all cells labelled 0 or 1 of all findings pooled together (scikit-learn's `average="micro"`
    /// with the −1 cells left out); nil when the pool has a single class.
    public var micro: Double?
    /// Indices of the findings whose AUROC is undefined (left out of the macro mean).
    public var undefinedFindings: [Int]
  }

  /// Per-finding, macro and micro AUROC.
  /// - Parameters:
  ///   - scores: `[N][C]` scores.
  ///   - labels: `[N][C]` labels (1, 0; others excluded).
  /// - Traps: when the matrices differ in shape or are ragged.
  public static func aurocSummary(scores: [[Double]], labels: [[Int8]]) -> AUROCSummary {
    let (s, l) = columns(scores: scores, labels: labels)
    let per = zip(s, l).map { auroc(scores: $0, labels: $1) }
    let defined = per.compactMap { $0 }
    let micro = auroc(scores: s.flatMap { $0 }, labels: l.flatMap { $0 })
    return AUROCSummary(perFinding: per, macro: defined.isEmpty ? nil : defined.reduce(0, +) / Double(defined.count),
                        micro: micro, undefinedFindings: per.indices.filter { per[$0] == nil })
  }

  /// Transposes `[N][C]` matrices into per-finding columns `[C][N]`.
  static func columns(scores: [[Double]], labels: [[Int8]]) -> ([[Double]], [[Int8]]) {
    precondition(scores.count == labels.count, "Metrics: \(scores.count) score rows but \(labels.count) label rows")
    let c = scores.first?.count ?? 0
    var s = [[Double]](repeating: [], count: c), l = [[Int8]](repeating: [], count: c)
    for j in 0..<c {
      s[j].reserveCapacity(scores.count)
      l[j].reserveCapacity(scores.count)
    }
    for (i, (sr, lr)) in zip(scores, labels).enumerated() {
      precondition(sr.count == c && lr.count == c, "Metrics: row \(i) has \(sr.count) scores and \(lr.count) labels, expected \(c)")
      for j in 0..<c {
        s[j].append(sr[j])
        l[j].append(lr[j])
      }
    }
    return (s, l)
  }

  // MARK: Bootstrap

  /// A percentile-bootstrap 95 % confidence interval.
  public struct ConfidenceInterval: Sendable, Equatable, Codable {
    /// The 2.5th percentile of the resampled values (NumPy's default linear interpolation).
    public var low: Double
    /// The 97.5th percentile.
    public var high: Double
    /// Resamples that gave a value.
    public var resamples: Int
    /// Resamples skipped because the metric was undefined in them (a finding with one class).
    public var skipped: Int
  }

  /// Bootstrap intervals of every finding's AUROC, the macro and the micro AUROC.
  public struct BootstrapSummary: Sendable, Equatable {
    /// One per finding; nil when the finding's AUROC is undefined on the full set or in every resample.
    public var perFinding: [ConfidenceInterval?]
    /// Resamples whose macro mean is over exactly the findings defined on the full set; a resample in which any of
    /// them has a single class is skipped.
    public var macro: ConfidenceInterval?
    public var micro: ConfidenceInterval?
    /// The number of resamples drawn.
    public var resamples: Int
    /// The generator seed.
    public var seed: UInt64
  }

  /// Percentile-bootstrap 95 % confidence intervals of AUROC: `resamples` resamples of the studies (rows) with
  /// replacement.
  ///
  /// The draws are reproducible outside Swift: one `SplitMix64(seed:)` generator serves all resamples in order;
  /// resample b takes N indices `Int(next() % UInt64(N))`, i = 0..<N. `scripts/golden/make_metrics_golden.py`
  /// repeats these draws in Python and scikit-learn's `roc_auc_score` on each resample.
  /// - Parameters:
  ///   - scores: `[N][C]`; labels: `[N][C]`.
  ///   - resamples: number of resamples (1,000 by default).
  ///   - seed: generator seed.
  ///   - level: the central coverage (0.95 → the 2.5th and 97.5th percentiles).
  public static func bootstrapAUROC(scores: [[Double]], labels: [[Int8]], resamples: Int = 1000, seed: UInt64 = 0,
                                    level: Double = 0.95) -> BootstrapSummary {
    precondition(resamples >= 1, "Metrics.bootstrapAUROC: resamples must be at least 1")
    precondition(level > 0 && level < 1, "Metrics.bootstrapAUROC: level must be in (0, 1)")
    let (s, l) = columns(scores: scores, labels: labels)
    let n = scores.count
    let c = s.count
    let orders = (0..<c).map { sortedOrder(scores: s[$0], labels: l[$0]) }
    let full = (0..<c).map { weightedAUROC(order: orders[$0], scores: s[$0], labels: l[$0], weights: nil) }
    let definedFindings = (0..<c).filter { full[$0] != nil }
    // The pooled cells: index k = i * C + j.
    let pooledScores = s.isEmpty ? [] : (0..<(n * c)).map { s[$0 % c][$0 / c] }
    let pooledLabels = l.isEmpty ? [] : (0..<(n * c)).map { l[$0 % c][$0 / c] }
    let pooledOrder = sortedOrder(scores: pooledScores, labels: pooledLabels)

    var values = [[Double]](repeating: [], count: c)
    var skipped = [Int](repeating: 0, count: c)
    var macroValues: [Double] = [], microValues: [Double] = []
    var macroSkipped = 0, microSkipped = 0
    var rng = SplitMix64(seed: seed)
    var weights = [Int32](repeating: 0, count: n)
    var pooledWeights = [Int32](repeating: 0, count: n * c)
    for _ in 0..<resamples {
      for i in 0..<n { weights[i] = 0 }
      for _ in 0..<n { weights[rng.nextIndex(below: n)] += 1 }
      var macroSum = 0.0, macroOK = !definedFindings.isEmpty
      for j in 0..<c {
        let a = weightedAUROC(order: orders[j], scores: s[j], labels: l[j], weights: weights)
        if let a { values[j].append(a) } else { skipped[j] += 1 }
        if full[j] != nil {
          if let a { macroSum += a } else { macroOK = false }
        }
      }
      if macroOK { macroValues.append(macroSum / Double(definedFindings.count)) } else { macroSkipped += 1 }
      for k in 0..<(n * c) { pooledWeights[k] = weights[k / c] }
      if let m = weightedAUROC(order: pooledOrder, scores: pooledScores, labels: pooledLabels, weights: pooledWeights) {
        microValues.append(m)
      } else {
        microSkipped += 1
      }
    }
    let lowQ = (1 - level) / 2 * 100, highQ = (1 + level) / 2 * 100
    func interval(_ v: [Double], _ skip: Int) -> ConfidenceInterval? {
      guard !v.isEmpty else { return nil }
      let sorted = v.sorted()
      return ConfidenceInterval(low: percentile(sorted: sorted, lowQ), high: percentile(sorted: sorted, highQ),
                                resamples: v.count, skipped: skip)
    }
    return BootstrapSummary(
      perFinding: (0..<c).map { full[$0] == nil ? nil : interval(values[$0], skipped[$0]) },
      macro: definedFindings.isEmpty ? nil : interval(macroValues, macroSkipped),
      micro: interval(microValues, microSkipped), resamples: resamples, seed: seed)
  }

  /// The q-th percentile (q in [0, 100]) of ascending values, as NumPy's `percentile(…, method="linear")`.
  public static func percentile(sorted: [Double], _ q: Double) -> Double {
    precondition(!sorted.isEmpty, "Metrics.percentile: no values")
    let h = Double(sorted.count - 1) * (q / 100)
    let lo = Int(h.rounded(.down))
    let hi = Swift.min(lo + 1, sorted.count - 1)
    let t = h - Double(lo)
    let a = sorted[lo], b = sorted[hi]
    // NumPy's _lerp: a + (b - a) t, computed from the nearer end for t >= 0.5.
    let d = b - a
    return t >= 0.5 ? b - d * (1 - t) : a + d * t
  }

  // MARK: Thresholds

  /// How the decision threshold of a finding is chosen.
  public enum ThresholdRule: Sendable, Equatable, CustomStringConvertible {
    /// The candidate with the highest F1 = 2TP / (2TP + FP + FN).
    case maxF1
    /// The candidate with the highest Youden's J = sensitivity + specificity − 1.
    case youden
    /// A fixed threshold.
    case fixed(Double)

    /// Parses `max-f1`, `youden` or a number.
    public init?(parsing text: String) {
      switch text.lowercased() {
      case "max-f1", "maxf1", "f1": self = .maxF1
      case "youden", "youden-j": self = .youden
      default:
        guard let v = Double(text), v.isFinite else { return nil }
        self = .fixed(v)
      }
    }

    public var description: String {
      switch self {
      case .maxF1: return "max-f1"
      case .youden: return "youden"
      case .fixed(let v): return "\(v)"
      }
    }
  }

  /// Chooses a threshold on (validation) scores.
  ///
  /// Candidates are the distinct scores of the studies labelled 0/1; a study is predicted positive when
  /// `score >= threshold`. Among candidates with the same (maximal) F1 or J — compared as computed from the integer
  /// counts, so exactly — the highest threshold wins.
  /// - Returns: the threshold; nil for `maxF1`/`youden` when one class is absent (for `.fixed`, the value).
  public static func chooseThreshold(scores: [Double], labels: [Int8], rule: ThresholdRule) -> Double? {
    if case .fixed(let v) = rule { return v }
    let order = sortedOrder(scores: scores, labels: labels).reversed()
    let counts = labelCounts(labels)
    let p = counts.positives, n = counts.negatives
    guard p > 0, n > 0 else { return nil }
    var best: Double? = nil, bestValue = -Double.infinity
    var tp = 0, fp = 0
    let sorted = Array(order)
    for (k, i) in sorted.enumerated() {
      if labels[i] == 1 { tp += 1 } else { fp += 1 }
      guard k == sorted.count - 1 || scores[sorted[k + 1]] != scores[i] else { continue }
      let value: Double
      switch rule {
      case .maxF1: value = Double(2 * tp) / Double(2 * tp + fp + (p - tp))
      case .youden: value = Double(tp) / Double(p) - Double(fp) / Double(n)
      case .fixed: value = 0
      }
      if value > bestValue {
        bestValue = value
        best = scores[i]
      }
    }
    return best
  }

  /// The confusion matrix of one finding at a threshold, and the metrics derived from it.
  public struct ThresholdMetrics: Sendable, Equatable, Codable {
    public var threshold: Double
    public var truePositives: Int
    public var falsePositives: Int
    public var trueNegatives: Int
    public var falseNegatives: Int

    /// TP / (TP + FP); nil when nothing is predicted positive.
    public var precision: Double? { ratio(truePositives, truePositives + falsePositives) }
    /// Sensitivity, TP / (TP + FN); nil without positives.
    public var recall: Double? { ratio(truePositives, truePositives + falseNegatives) }
    /// TN / (TN + FP); nil without negatives.
    public var specificity: Double? { ratio(trueNegatives, trueNegatives + falsePositives) }
    /// 2TP / (2TP + FP + FN) (scikit-learn's `f1_score`); nil when TP + FP + FN = 0.
    public var f1: Double? { ratio(2 * truePositives, 2 * truePositives + falsePositives + falseNegatives) }
    /// (TP + TN) / all; nil without studies.
    public var accuracy: Double? {
      ratio(truePositives + trueNegatives, truePositives + trueNegatives + falsePositives + falseNegatives)
    }

    private func ratio(_ a: Int, _ b: Int) -> Double? { b == 0 ? nil : Double(a) / Double(b) }
  }

  /// Counts at a threshold (`score >= threshold` predicted positive) over the studies labelled 0/1.
  public static func thresholdMetrics(scores: [Double], labels: [Int8], threshold: Double) -> ThresholdMetrics {
    precondition(scores.count == labels.count, "Metrics.thresholdMetrics: \(scores.count) scores but \(labels.count) labels")
    var m = ThresholdMetrics(threshold: threshold, truePositives: 0, falsePositives: 0, trueNegatives: 0, falseNegatives: 0)
    for (s, l) in zip(scores, labels) where l == 0 || l == 1 {
      switch (s >= threshold, l == 1) {
      case (true, true): m.truePositives += 1
      case (true, false): m.falsePositives += 1
      case (false, false): m.trueNegatives += 1
      case (false, true): m.falseNegatives += 1
      }
    }
    return m
  }

  // MARK: Splits

  /// A seeded split of study indices into validation and test parts: a Fisher–Yates shuffle of 0..<count driven by
  /// `SplitMix64(seed:)` (for i from count−1 down to 1, j = `next() % (i + 1)`, swap), then the first
  /// `Int((fraction · count).rounded())` indices (sorted) are the validation part and the rest (sorted) the test part.
  public static func validationSplit(count: Int, fraction: Double, seed: UInt64) -> (validation: [Int], test: [Int]) {
    precondition(fraction >= 0 && fraction < 1, "Metrics.validationSplit: fraction must be in [0, 1)")
    var idx = Array(0..<count)
    var rng = SplitMix64(seed: seed)
    if count > 1 {
      for i in stride(from: count - 1, through: 1, by: -1) { idx.swapAt(i, rng.nextIndex(below: i + 1)) }
    }
    let v = Int((fraction * Double(count)).rounded())
    return (Array(idx[..<v]).sorted(), Array(idx[v...]).sorted())
  }
}

/// SplitMix64 (Steele, Lea and Flood 2014; the seeding generator of `java.util.SplittableRandom` and xoshiro):
/// a 64-bit state advanced by 0x9E3779B97F4A7C15; the output mixes it with
/// `z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9; z = (z ^ (z >> 27)) * 0x94D049BB133111EB; z ^ (z >> 31)`
/// (all arithmetic mod 2^64). Chosen because it is six lines in any language, so Python reproduces our draws.
public struct SplitMix64: RandomNumberGenerator, Sendable {
  public private(set) var state: UInt64

  public init(seed: UInt64) { state = seed }

  public mutating func next() -> UInt64 {
    state &+= 0x9E37_79B9_7F4A_7C15
    var z = state
    z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
    z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
    return z ^ (z >> 31)
  }

  /// `Int(next() % UInt64(bound))`: a plain modulo (its bias, below bound / 2^64, is immaterial here and keeps the
  /// draws reproducible in one line of Python).
  public mutating func nextIndex(below bound: Int) -> Int {
    precondition(bound > 0, "SplitMix64.nextIndex: bound must be positive")
    return Int(next() % UInt64(bound))
  }
}
