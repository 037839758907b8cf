import Foundation
import Testing
import Torch

/// Loss functions against `torch.nn.functional` (values from scripts/golden/make_torch_golden.py).
@Suite("Losses against PyTorch")
struct LossGoldenTests {
  static func reduction(_ name: String) throws -> Reduction {
    switch name {
    case "none": return .none
    case "mean": return .mean
    case "sum": return .sum
    default: throw TorchError.invalidArgument("unknown reduction '\(name)' in the golden file")
    }
  }

  @Test("BCE with logits, a 0/1 mask as weight and pos_weight: loss and logits gradient",
        arguments: ["none", "mean", "sum"])
  func bceWithLogits(_ reductionName: String) throws {
    let golden = try GoldenFile.load()
    let logits = try golden.tensor("bce.logits").requiringGrad()
    let loss = try Functional.bceWithLogits(
      logits, targets: golden.tensor("bce.targets"), weight: golden.tensor("bce.mask"),
      posWeight: golden.tensor("bce.pos_weight"), reduction: Self.reduction(reductionName))
    try expectClose(loss, golden.tensor("bce.\(reductionName).loss"), .float32, "BCE \(reductionName)")
    if reductionName == "none" {
      try (loss * golden.tensor("bce.grad_out_none")).sum().backward()
    } else {
      try loss.backward()
    }
    try expectClose(#require(logits.grad), golden.tensor("bce.\(reductionName).grad_logits"), .float32,
                    "BCE \(reductionName) logits gradient")
  }

  @Test("a masked element contributes neither loss nor gradient")
  func bceMaskRemovesElements() throws {
    let golden = try GoldenFile.load()
    let mask = try golden.tensor("bce.mask")
    let logits = try golden.tensor("bce.logits").requiringGrad()
    let loss = try Functional.bceWithLogits(logits, targets: golden.tensor("bce.targets"), weight: mask,
                                            posWeight: golden.tensor("bce.pos_weight"), reduction: .none)
    try loss.sum().backward()
    let masked = try mask.eq(0)
    #expect(try masked.any().item() == 1, "the golden mask should remove at least one element")
    #expect(try loss.maskedFill(masked.logicalNot(), 0).abs().sum().item() == 0)
    #expect(try #require(logits.grad).maskedFill(masked.logicalNot(), 0).abs().sum().item() == 0)
  }

  struct CrossEntropyCase: Decodable {
    let reduction: String
    let labelSmoothing: Double
    let targets: String
  }

  static let crossEntropyCases = ["none", "mean", "sum", "smooth_mean", "smooth_none", "ignore_mean"]

  @Test("cross-entropy with class indices, label smoothing and ignore_index: loss and gradient",
        arguments: crossEntropyCases)
  func crossEntropy(_ name: String) throws {
    let golden = try GoldenFile.load()
    let cases = try golden.json("ce.cases", as: [String: CrossEntropyCase].self)
    #expect(Set(cases.keys) == Set(Self.crossEntropyCases), "the golden file's cases changed")
    let c = try #require(cases[name])
    let targets = try golden.tensor(c.targets)
    #expect(targets.dtype == .int64)
    let logits = try golden.tensor("ce.logits").requiringGrad()
    let loss = try Functional.crossEntropy(logits, targets: targets, reduction: Self.reduction(c.reduction),
                                           labelSmoothing: c.labelSmoothing)
    try expectClose(loss, golden.tensor("ce.\(name).loss"), .float32, "cross-entropy \(name)")
    try loss.sum().backward()
    try expectClose(#require(logits.grad), golden.tensor("ce.\(name).grad_logits"), .float32,
                    "cross-entropy \(name) logits gradient")
  }
}
