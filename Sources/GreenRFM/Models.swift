import Foundation
import Torch
import TorchNN

/// Stage 1 image model: the 3D ResNet-18 encoder and a linear multi-label head over the schema's findings.
/// Keys: `encoder.*` (torchvision `r3d_18` names) and `head.weight`, `head.bias`.
/// Paper: MUST/Semantic-enforcing (each encoder first learns the distilled labels alone).
public final class ImageClassifier: Module {
  public let encoder: ResNet3D18
  public let head: Linear

  /// - Parameters:
  ///   - stem: lite (4³, stride 4) or standard (2³, stride 2).
  ///   - findings: number of findings C.
  public init(stem: ResNetStem, findings: Int, generator: Generator? = nil) throws {
    encoder = try ResNet3D18(stem: stem, inChannels: 1, classes: nil, generator: generator)
    head = try Linear(inFeatures: ResNet3D18.featureCount, outFeatures: findings, generator: generator)
    super.init()
    register("encoder", encoder)
    register("head", head)
  }

  /// `[N, 1, D, H, W]` → logits `[N, C]`.
  public override func forward(_ x: Tensor) throws -> Tensor { try head(encoder.features(x)) }
}

/// Stage 1 text model: the BERT encoder ([CLS] pooling) and a linear multi-label head.
/// Keys: `encoder.*` (Hugging Face `BertModel` names) and `head.weight`, `head.bias`.
public final class TextClassifier: Module {
  public let encoder: BertEncoder
  public let head: Linear

  public init(encoder: BertEncoder, findings: Int) throws {
    self.encoder = encoder
    head = try Linear(inFeatures: encoder.hiddenSize, outFeatures: findings)
    super.init()
    register("encoder", encoder)
    register("head", head)
  }

  /// Token ids and attention mask `[N, L]` (int64) → logits `[N, C]`.
  public func logits(ids: Tensor, mask: Tensor) throws -> Tensor {
    try head(encoder.pooledCLS(inputIDs: ids, attentionMask: mask))
  }
}

/// The stage 2 vision–language model: both encoders, bias-free projections to a shared latent space of size D,
/// and one classifier applied to both latents. Keys: `imageEncoder.*`, `textEncoder.*`, `imageProjection.weight`
/// `[D, 512]`, `textProjection.weight` `[D, H]`, `classifier.weight` `[C, D]`, `classifier.bias`, `logitScale`.
/// Paper: MUST/Ubiquitous (one classifier shared by the image and text latents); METHOD.md "Architecture".
public final class GreenRFMModel: Module {
  public let imageEncoder: ResNet3D18
  public let textEncoder: BertEncoder
  public let imageProjection: Linear
  public let textProjection: Linear
  public let classifier: Linear
  /// log of the CLIP logit scale (initial log(1/0.07)); used only with `ContrastiveKind.clip`.
  public let logitScale: Tensor

  public init(stem: ResNetStem, textEncoder: BertEncoder, latentDim: Int, findings: Int,
              generator: Generator? = nil) throws {
    imageEncoder = try ResNet3D18(stem: stem, inChannels: 1, classes: nil, generator: generator)
    self.textEncoder = textEncoder
    imageProjection = try Linear(inFeatures: ResNet3D18.featureCount, outFeatures: latentDim, bias: false, generator: generator)
    textProjection = try Linear(inFeatures: textEncoder.hiddenSize, outFeatures: latentDim, bias: false, generator: generator)
    classifier = try Linear(inFeatures: latentDim, outFeatures: findings, generator: generator)
    logitScale = try Tensor.full([], value: Foundation.log(1 / 0.07))
    super.init()
    register("imageEncoder", imageEncoder)
    register("textEncoder", textEncoder)
    register("imageProjection", imageProjection)
    register("textProjection", textProjection)
    register("classifier", classifier)
    _ = registerParameter("logitScale", logitScale)
  }

  /// `[N, 1, D, H, W]` → image latents `[N, latentDim]` (not normalised).
  public func imageLatents(_ volumes: Tensor) throws -> Tensor { try imageProjection(imageEncoder.features(volumes)) }

  /// Token ids and mask `[N, L]` → text latents `[N, latentDim]` (not normalised).
  public func textLatents(ids: Tensor, mask: Tensor) throws -> Tensor {
    try textProjection(textEncoder.pooledCLS(inputIDs: ids, attentionMask: mask))
  }

  /// Loads the stage-1 encoders: every `encoder.*` weight of an image (text) stage-1 checkpoint into
  /// `imageEncoder` (`textEncoder`), strictly: a missing, extra or mis-shaped key is an error naming it.
  /// This is the step the authors' stage-2 script leaves out (METHOD.md "MUST, concretely").
  public func loadStage1(image: [String: Tensor]?, text: [String: Tensor]?, source: (image: String, text: String)) throws {
    if let image {
      let report = try imageEncoder.loadStateDict(Self.strip("encoder.", image), strict: false)
      guard report.isClean else { throw GreenRFMError.checkpoint(path: source.image, reason: "image encoder: \(report)") }
    }
    if let text {
      let report = try textEncoder.loadStateDict(Self.strip("encoder.", text), strict: false)
      guard report.isClean else { throw GreenRFMError.checkpoint(path: source.text, reason: "text encoder: \(report)") }
    }
  }

  /// The scale of the seeded latent coordinates (`AlignedSpaceInit.stage1Heads`): 0.25 keeps the dot product of two
  /// seeded latents (18 logits of a few units on each side) in the tens rather than the hundreds.
  public static let seedScale = 0.25

  /// `AlignedSpaceInit.stage1Heads`: seeds the projections and the shared classifier from the stage-1 heads
  /// (`head.weight` `[C, 512]` / `[C, H]`, `head.bias` `[C]` of the two stage-1 checkpoints), so that
  /// `classifier(imageLatents(x))` equals the image stage-1 logits up to the bias, and likewise for text.
  /// - Throws: `GreenRFMError.checkpoint` naming the checkpoint when a head is missing or mis-shaped;
  ///   `GreenRFMError.invalidArgument` when latentDim < C.
  public func seedAlignedSpace(imageHead: [String: Tensor], textHead: [String: Tensor],
                               source: (image: String, text: String)) throws {
    let c = classifier.weight.shape[0], d = classifier.weight.shape[1]
    guard d >= c else {
      throw GreenRFMError.invalidArgument(
        name: "model.latentDim", reason: "\(d) is smaller than the \(c) findings: alignedSpaceInit stage1Heads needs latentDim ≥ \(c) (or use random)")
    }
    func head(_ state: [String: Tensor], _ projection: Linear, _ path: String) throws -> (Tensor, Tensor) {
      let expected = [c, projection.weight.shape[1]]
      guard let w = state["head.weight"], let b = state["head.bias"] else {
        throw GreenRFMError.checkpoint(path: path, reason: "no stage-1 head (head.weight, head.bias) to seed the aligned space from")
      }
      guard w.shape == expected, b.shape == [c] else {
        throw GreenRFMError.checkpoint(
          path: path, reason: "its stage-1 head is \(w.shape) (bias \(b.shape)), seeding the aligned space needs \(expected) (bias [\(c)])")
      }
      return (w, b)
    }
    let (wi, bi) = try head(imageHead, imageProjection, source.image)
    let (wt, bt) = try head(textHead, textProjection, source.text)
    let s = Self.seedScale
    try withNoGrad {
      for (projection, w) in [(imageProjection, wi), (textProjection, wt)] {
        let weight = projection.weight
        try weight.narrow(dim: 0, start: 0, length: c).copyFrom(try w.to(weight.device).to(weight.dtype) * s)
        if d > c {
          let rest = try weight.narrow(dim: 0, start: c, length: d - c)
          try rest.copyFrom(try rest * 0.1)
        }
      }
      var eye = [Float](repeating: 0, count: c * d)
      for k in 0..<c { eye[k * d + k] = Float(1 / s) }
      try classifier.weight.copyFrom(try Tensor(eye, shape: [c, d]).to(classifier.weight.device))
      if let bias = classifier.bias {
        try bias.copyFrom(try ((bi.to(.float32) + bt.to(.float32)) * 0.5).to(bias.device))
      }
    }
  }

  /// The entries whose key starts with `prefix`, with the prefix removed.
  static func strip(_ prefix: String, _ state: [String: Tensor]) -> [String: Tensor] {
    var out: [String: Tensor] = [:]
    for (k, v) in state where k.hasPrefix(prefix) { out[String(k.dropFirst(prefix.count))] = v }
    return out
  }
}

/// Stage 2 loss terms. Paper: MUST/Ubiquitous; METHOD.md "MUST, concretely":
/// loss = contrastive + weight × (BCE(classifier(image latents)) + BCE(classifier(text latents))) / 2.
public enum AlignmentLoss {
  /// The symmetric InfoNCE over a batch: similarity `[N, N]` = image · textᵀ (`.dot`: raw latents, temperature 1,
  /// as the authors train; `.clip`: L2-normalised latents times exp(logitScale) clamped at 100), then the mean of
  /// cross-entropy over rows (image→text) and over columns (text→image) with the diagonal as targets.
  /// - Parameters: image and text latents `[N, D]`; `logitScale` a scalar (log scale, `.clip` only).
  /// - Returns: a scalar.
  public static func contrastive(image: Tensor, text: Tensor, kind: ContrastiveKind, logitScale: Tensor) throws -> Tensor {
    let n = image.shape[0]
    var similarity: Tensor
    switch kind {
    case .dot:
      similarity = try image.matmul(text.t())
    case .clip:
      let i = try image / image.norm(p: 2, dims: [1], keepDim: true).clamp(min: 1e-12)
      let t = try text / text.norm(p: 2, dims: [1], keepDim: true).clamp(min: 1e-12)
      similarity = try i.matmul(t.t()) * logitScale.exp().clamp(max: 100)
    }
    similarity = try similarity.to(.float32)
    let targets = try Tensor.arange(Double(n), device: image.device)
    let rows = try Functional.crossEntropy(similarity, targets: targets)
    let columns = try Functional.crossEntropy(similarity.t(), targets: targets)
    return try (rows + columns) * 0.5
  }
}
