import Foundation
import Testing
import Torch
import TorchNN

@testable import GreenRFM

/// `AlignedSpaceInit.stage1Heads`: at step 0 of stage 2 the shared classifier gives each stage-1 head's logits back
/// (up to the bias, which becomes the mean of the two heads' biases). The expected values are the stage-1 models'
/// own outputs on the same inputs, so a wrong row, scale or transpose fails.
@Suite struct AlignedSpaceInitTests {
  static let findings = 5
  static let bert = BertConfig(vocabSize: 50, hiddenSize: 32, numHiddenLayers: 2, numAttentionHeads: 4,
                               intermediateSize: 64, maxPositionEmbeddings: 16)

  /// Stage-1 models with distinct, non-trivial head biases, and their state dicts as stage 2 would load them.
  static func stage1() throws -> (ImageClassifier, TextClassifier, [String: Tensor], [String: Tensor]) {
    let image = try ImageClassifier(stem: .lite, findings: findings, generator: Generator(seed: 3))
    let text = try TextClassifier(encoder: try BertEncoder(config: bert, generator: Generator(seed: 4)), findings: findings)
    try withNoGrad {
      try image.head.bias!.copyFrom(try Tensor([Float](arrayLiteral: -1.5, 0.25, 2, -0.5, 1)))
      try text.head.bias!.copyFrom(try Tensor([Float](arrayLiteral: 0.5, -2, 1, 0.75, -1)))
      // Stage-1 heads are trained, not at their N(0, 0.01) start: give them weights of a trained head's size.
      try image.head.weight.copyFrom(try Tensor.randn(image.head.weight.shape, generator: Generator(seed: 5)) * 0.2)
    }
    image.eval()
    text.eval()
    return (image, text, image.stateDict(), text.stateDict())
  }

  @Test func sharedClassifierStartsAsBothStage1Heads() throws {
    let (image, text, imageState, textState) = try Self.stage1()
    let model = try GreenRFMModel(stem: .lite, textEncoder: try BertEncoder(config: Self.bert, generator: Generator(seed: 9)),
                                  latentDim: 8, findings: Self.findings, generator: Generator(seed: 10))
    try model.loadStage1(image: imageState, text: textState, source: ("image", "text"))
    try model.seedAlignedSpace(imageHead: imageState, textHead: textState, source: ("image", "text"))
    model.eval()

    let meanBias = try (image.head.bias! + text.head.bias!) * 0.5
    let volumes = try Tensor.randn([2, 1, 16, 32, 32], generator: Generator(seed: 11))
    let ids = try Tensor.randint(1, 50, [3, 7], generator: Generator(seed: 12))
    let mask = try Tensor.ones([3, 7], dtype: .int64)
    try withNoGrad {
      let expectedImage = try image(volumes) - image.head.bias! + meanBias
      let gotImage = try model.classifier(model.imageLatents(volumes))
      #expect(try gotImage.allClose(expectedImage, rtol: 1e-4, atol: 1e-5))
      let expectedText = try text.logits(ids: ids, mask: mask) - text.head.bias! + meanBias
      let gotText = try model.classifier(model.textLatents(ids: ids, mask: mask))
      #expect(try gotText.allClose(expectedText, rtol: 1e-4, atol: 1e-5))
      // The seeded latent coordinates are 0.25 × the stage-1 logits (before bias); the rest are the scaled random rows.
      let seeded = try model.imageLatents(volumes).narrow(dim: 1, start: 0, length: Self.findings)
      #expect(try seeded.allClose((image(volumes) - image.head.bias!) * GreenRFMModel.seedScale, rtol: 1e-4, atol: 1e-5))
    }
  }

  @Test func refusesALatentSpaceSmallerThanTheFindings() throws {
    let (_, _, imageState, textState) = try Self.stage1()
    let model = try GreenRFMModel(stem: .lite, textEncoder: try BertEncoder(config: Self.bert), latentDim: 4,
                                  findings: Self.findings)
    #expect(throws: GreenRFMError.self) {
      try model.seedAlignedSpace(imageHead: imageState, textHead: textState, source: ("image.ckpt", "text.ckpt"))
    }
    var missing = textState
    missing["head.weight"] = nil
    let wide = try GreenRFMModel(stem: .lite, textEncoder: try BertEncoder(config: Self.bert), latentDim: 8,
                                 findings: Self.findings)
    #expect(throws: GreenRFMError.self) {
      try wide.seedAlignedSpace(imageHead: imageState, textHead: missing, source: ("image.ckpt", "text.ckpt"))
    }
  }

  @Test func configDefaultsToRandomAndDecodesStage1Heads() throws {
    #expect(TrainConfig().alignedSpaceInit == .random)
    let decoded = try JSONDecoder().decode(TrainConfig.self, from: Data(#"{"alignedSpaceInit": "stage1Heads"}"#.utf8))
    #expect(decoded.alignedSpaceInit == .stage1Heads)
    #expect(throws: (any Error).self) {
      try JSONDecoder().decode(TrainConfig.self, from: Data(#"{"alignedSpaceInit": "heads"}"#.utf8))
    }
    #expect(Demo.config(quick: false, maxTextTokens: 128).stage2.alignedSpaceInit == .stage1Heads)
  }
}
