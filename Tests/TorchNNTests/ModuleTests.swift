import Foundation
import Testing
import Torch
@testable import TorchNN

@Suite struct ModuleTests {
  @Test func sequentialKeysMatchPyTorch() throws {
    let seq = Sequential([try Linear(inFeatures: 4, outFeatures: 8), ReLU(), try Linear(inFeatures: 8, outFeatures: 2)])
    let ours = seq.stateDict().mapValues(\.shape)
    #expect(ours == Golden.stateDictKeys("sequential"))
    #expect(seq.namedParameters().map(\.name) == ["0.weight", "0.bias", "2.weight", "2.bias"])
  }

  @Test func loadStateDictReportsMissingUnexpectedAndMisshapedKeys() throws {
    let seq = Sequential([try Linear(inFeatures: 4, outFeatures: 8), ReLU(), try Linear(inFeatures: 8, outFeatures: 2)])
    var state = seq.stateDict()
    state["0.bias"] = nil
    state["3.weight"] = try Tensor.zeros([1])
    state["2.weight"] = try Tensor.zeros([3, 8])
    do {
      try seq.loadStateDict(state)
      Issue.record("strict load of a mismatched state dict succeeded")
    } catch let ModuleError.stateDictMismatch(report) {
      #expect(report.missing == ["0.bias"])
      #expect(report.unexpected == ["3.weight"])
      #expect(report.misshaped == [.init(key: "2.weight", expected: [2, 8], found: [3, 8])])
      #expect("\(ModuleError.stateDictMismatch(report))".contains("2.weight (model [2, 8], checkpoint [3, 8])"))
    }
    // Non-strict: the matching keys are loaded, the rest reported.
    let newWeight = try Tensor.full([8, 4], value: 0.25)
    state["0.weight"] = newWeight
    let report = try seq.loadStateDict(state, strict: false)
    #expect(!report.isClean)
    #expect(try seq.stateDict()["0.weight"]!.equals(newWeight))
  }

  @Test func loadStateDictCopiesInPlaceAndKeepsRequiresGrad() throws {
    let a = try Linear(inFeatures: 3, outFeatures: 2)
    let b = try Linear(inFeatures: 3, outFeatures: 2)
    let weightBefore = a.weight
    try a.loadStateDict(b.stateDict())
    #expect(try a.weight.equals(b.weight))
    #expect(a.weight === weightBefore)  // loaded in place, as PyTorch does
    #expect(a.weight.requiresGrad)
  }

  @Test func trainEvalAndFreezeReachEveryDescendant() throws {
    let seq = Sequential([try BatchNorm3d(features: 2), Sequential([Dropout(0.5)])])
    seq.eval()
    #expect(seq.namedModules().allSatisfy { !$0.module.isTraining })
    seq.train()
    #expect(seq.namedModules().allSatisfy { $0.module.isTraining })
    try seq.freeze()
    #expect(seq.parameters().allSatisfy { !$0.requiresGrad })
    try seq.freeze(false)
    #expect(seq.parameters().allSatisfy { $0.requiresGrad })
    #expect(seq.namedModules().map(\.name) == ["", "0", "1", "1.0"])
  }

  @Test func stateDictRoundTripsThroughSafetensors() throws {
    let bn = try BatchNorm3d(features: 3)
    _ = try bn(Tensor.randn([2, 3, 2, 2, 2], generator: Generator(seed: 1)))
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("greenrfm-nn-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: dir) }
    let url = dir.appendingPathComponent("bn.safetensors")
    try SafeTensors.save(bn.stateDict(), to: url)
    let other = try BatchNorm3d(features: 3)
    try other.loadStateDict(SafeTensors.load(url).tensors)
    #expect(try other.runningMean.equals(bn.runningMean))
    #expect(try other.numBatchesTracked.itemInt() == 1)
  }
}

@Suite struct LayerGoldenTests {
  let tolerance = 1e-5

  @Test func linearMatchesPyTorch() throws {
    let layer = try Linear(inFeatures: 5, outFeatures: 3)
    try layer.loadStateDict(["weight": Golden.tensor("linear.weight"), "bias": Golden.tensor("linear.bias")])
    let x = try Golden.tensor("linear.x").clone().requiringGrad()
    let y = try layer(x)
    try (y * Golden.tensor("linear.go")).sum().backward()
    #expect(try maxRelativeError(y, Golden.tensor("linear.y")) < tolerance)
    #expect(try maxRelativeError(x.grad!, Golden.tensor("linear.dx")) < tolerance)
    #expect(try maxRelativeError(layer.weight.grad!, Golden.tensor("linear.dweight")) < tolerance)
    #expect(try maxRelativeError(layer.bias!.grad!, Golden.tensor("linear.dbias")) < tolerance)
  }

  @Test func batchNormTrainingThenEvaluationMatchesPyTorch() throws {
    let bn = try BatchNorm3d(features: 3)
    try bn.loadStateDict(["weight": Golden.tensor("bn.weight"), "bias": Golden.tensor("bn.bias"),
                          "running_mean": Tensor.zeros([3]), "running_var": Tensor.ones([3]),
                          "num_batches_tracked": Tensor.zeros([], dtype: .int64)])
    bn.train()
    let ya = try bn(Golden.tensor("bn.a"))
    let yb = try bn(Golden.tensor("bn.b"))
    bn.eval()
    let yc = try bn(Golden.tensor("bn.c"))
    #expect(try maxRelativeError(ya, Golden.tensor("bn.ya")) < tolerance)
    #expect(try maxRelativeError(yb, Golden.tensor("bn.yb")) < tolerance)
    #expect(try maxRelativeError(yc, Golden.tensor("bn.yc")) < tolerance)
    #expect(try maxRelativeError(bn.runningMean, Golden.tensor("bn.running_mean")) < tolerance)
    #expect(try maxRelativeError(bn.runningVar, Golden.tensor("bn.running_var")) < tolerance)
    #expect(try bn.numBatchesTracked.itemInt() == Golden.tensor("bn.num_batches_tracked").itemInt())
  }

  @Test func layerNormMatchesPyTorch() throws {
    let ln = try LayerNorm([8])
    try ln.loadStateDict(["weight": Golden.tensor("ln.weight"), "bias": Golden.tensor("ln.bias")])
    let x = try Golden.tensor("ln.x").clone().requiringGrad()
    let y = try ln(x)
    try (y * Golden.tensor("ln.go")).sum().backward()
    #expect(try maxRelativeError(y, Golden.tensor("ln.y")) < tolerance)
    #expect(try maxRelativeError(x.grad!, Golden.tensor("ln.dx")) < tolerance)
    #expect(try maxRelativeError(ln.weight.grad!, Golden.tensor("ln.dweight")) < tolerance)
  }

  @Test func embeddingMatchesPyTorchAndSkipsThePaddingRowGradient() throws {
    let emb = try Embedding(count: 10, dimension: 4, paddingIndex: 0)
    try emb.loadStateDict(["weight": Golden.tensor("emb.weight")])
    let y = try emb(Golden.tensor("emb.indices"))
    try (y * Golden.tensor("emb.go")).sum().backward()
    #expect(try maxRelativeError(y, Golden.tensor("emb.y")) < tolerance)
    #expect(try maxRelativeError(emb.weight.grad!, Golden.tensor("emb.dweight")) < tolerance)
    #expect(try emb.weight.grad!.select(dim: 0, index: 0).abs().sum().item() == 0)
  }

  @Test(arguments: [UncertainLabelPolicy.ignore, .negative, .positive, .soft])
  func multiLabelBCEMatchesPyTorch(policy: UncertainLabelPolicy) throws {
    let logits = try Golden.tensor("mlbce.logits").clone().requiringGrad()
    let loss = try Losses.multiLabelBCE(logits: logits, labels: Golden.tensor("mlbce.labels"), policy: policy,
                                        posWeight: Golden.tensor("mlbce.pos_weight"))
    #expect(try maxRelativeError(loss, Golden.tensor("mlbce.\(policy.rawValue)")) < tolerance)
    if policy == .ignore {
      try loss.backward()
      #expect(try maxRelativeError(logits.grad!, Golden.tensor("mlbce.ignore.dlogits")) < tolerance)
      // Uncertain (−1) entries receive no gradient at all.
      let uncertain = try Golden.tensor("mlbce.labels").lt(0)
      #expect(try logits.grad!.maskedFill(uncertain.logicalNot(), 0).abs().sum().item() == 0)
    }
  }

  @Test func multiLabelBCEWithNoLabelledEntryIsZeroNotNaN() throws {
    let loss = try Losses.multiLabelBCE(logits: Tensor.randn([2, 3]), labels: Tensor.full([2, 3], value: -1))
    #expect(try loss.item() == 0)
  }
}
