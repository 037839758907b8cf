import Torch

/// What to do with an uncertain or unmentioned label (−1) in multi-label BCE.
/// Paper: MUST/More distilled labels are 1, 0 or −1; the authors' code feeds −1 to BCE as a target,
/// which we do not repeat.
public enum UncertainLabelPolicy: String, Sendable, Codable, CaseIterable {
  /// Masked out of the loss (the default).
  case ignore
  /// Treated as absent (0).
  case negative
  /// Treated as present (1).
  case positive
  /// Target 0.5.
  case soft
}

public enum Losses {
  /// Multi-label BCE with logits over labels in {1, 0, −1}.
  ///
  /// - Parameters:
  ///   - logits: `[N, C]` (before sigmoid).
  ///   - labels: `[N, C]` float with values 1, 0, −1.
  ///   - policy: handling of −1 (see `UncertainLabelPolicy`).
  ///   - posWeight: optional `[C]` weight of positives (rare findings).
  /// - Returns: a scalar: the sum of element losses divided by the number of counted elements (with
  ///   `.ignore`, the labelled ones only; 0 when none is labelled), so masked entries do not dilute it.
  public static func multiLabelBCE(logits: Tensor, labels: Tensor, policy: UncertainLabelPolicy = .ignore,
                                   posWeight: Tensor? = nil) throws -> Tensor {
    let uncertain = try labels.lt(0)
    switch policy {
    case .ignore:
      let mask = try uncertain.logicalNot().to(logits.dtype)
      let targets = try labels.clamp(min: 0)
      let total = try Functional.bceWithLogits(logits, targets: targets, weight: mask, posWeight: posWeight,
                                               reduction: .sum)
      return try total / mask.sum().clamp(min: 1)
    case .negative, .positive, .soft:
      let value = policy == .negative ? 0.0 : policy == .positive ? 1.0 : 0.5
      let targets = try labels.maskedFill(uncertain, value)
      return try Functional.bceWithLogits(logits, targets: targets, posWeight: posWeight, reduction: .mean)
    }
  }
}
