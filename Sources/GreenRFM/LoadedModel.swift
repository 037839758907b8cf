import Foundation
import Reports
import Torch
import TorchNN

/// A trained model read back from a checkpoint, for prediction and evaluation. The weights are loaded strictly
/// under the same keys they were saved with (the authors save under one key and load under another).
public final class LoadedModel {
  public let folder: URL
  public let record: CheckpointRecord
  public let device: Device
  public let imageClassifier: ImageClassifier?
  public let textClassifier: TextClassifier?
  public let aligned: GreenRFMModel?
  public let tokenizer: WordPieceTokenizer?

  public var kind: ModelKind { record.kind }
  public var schema: LabelSchema { record.schema }
  public var config: GreenRFMConfig { record.config }

  /// - Parameter path: a run folder, a `checkpoints` folder or a checkpoint folder.
  /// - Throws: `GreenRFMError.checkpoint` naming the folder when it is incomplete or its weights do not fit.
  public init(_ path: URL, device: Device = .cpu) throws {
    folder = try Checkpoint.resolve(path)
    record = try Checkpoint.record(folder)
    self.device = device
    let findings = record.schema.findings.count
    var textEncoder: BertEncoder?
    if record.kind != .stage1Image {
      guard let textConfig = record.textConfig else {
        throw GreenRFMError.checkpoint(path: folder.path, reason: "state.json has no textConfig")
      }
      textEncoder = try BertEncoder(config: textConfig)
      tokenizer = try TextModelFolder.loadTokenizer(folder: folder.appendingPathComponent("text"))
    } else {
      tokenizer = nil
    }
    let module: Module
    switch record.kind {
    case .stage1Image:
      let m = try ImageClassifier(stem: record.config.model.imageStem, findings: findings)
      (imageClassifier, textClassifier, aligned, module) = (m, nil, nil, m)
    case .stage1Text:
      let m = try TextClassifier(encoder: textEncoder!, findings: findings)
      (imageClassifier, textClassifier, aligned, module) = (nil, m, nil, m)
    case .stage2:
      let m = try GreenRFMModel(stem: record.config.model.imageStem, textEncoder: textEncoder!,
                                latentDim: record.config.model.latentDim, findings: findings)
      (imageClassifier, textClassifier, aligned, module) = (nil, nil, m, m)
    }
    let report = try module.loadStateDict(try Checkpoint.weights(folder), strict: false)
    guard report.isClean else {
      throw GreenRFMError.checkpoint(path: folder.path, reason: "weights do not fit a \(record.kind.rawValue) model: \(report)")
    }
    try module.to(device)
    module.eval()
  }

  /// The similarity the model was trained with: cosine for a CLIP-trained stage 2, else the dot product.
  public var trainedSimilarity: Similarity { kind == .stage2 && record.train.contrastive == .clip ? .cosine : .dot }

  /// The factor on similarities during training: exp(logitScale) clamped at 100 for CLIP, else 1.
  public func trainedScale() throws -> Double {
    guard kind == .stage2, record.train.contrastive == .clip, let m = aligned else { return 1 }
    return Swift.min(100, Foundation.exp(try m.logitScale.item()))
  }

  public var supportsText: Bool { kind != .stage1Image }
  public var supportsImages: Bool { kind != .stage1Text }

  /// Probabilities `[N][C]` of the schema's findings for report texts (stage-1 text head, or the shared classifier
  /// on text latents for stage 2).
  public func textProbabilities(_ texts: [String], batchSize: Int = 32) throws -> [[Double]] {
    guard let tokenizer else {
      throw GreenRFMError.invalidArgument(name: "--modality text", reason: "\(folder.path) is a \(kind.rawValue) checkpoint without a text encoder")
    }
    let maxTokens = config.model.maxTextTokens
    if let m = textClassifier {
      return try Predictor.textProbabilities(model: m, tokenizer: tokenizer, texts: texts, maxTokens: maxTokens,
                                             device: device, batchSize: batchSize)
    }
    let m = aligned!
    return try Predictor.textOutputs(tokenizer: tokenizer, texts: texts, maxTokens: maxTokens, device: device,
                                     batchSize: batchSize) { try m.classifier(m.textLatents(ids: $0, mask: $1)).sigmoid() }
  }

  /// Text latents `[N][D]` (stage 2 only).
  public func textEmbeddings(_ texts: [String], batchSize: Int = 32) throws -> [[Double]] {
    guard let m = aligned, let tokenizer else {
      throw GreenRFMError.invalidArgument(name: "embeddings", reason: "\(folder.path) is a \(kind.rawValue) checkpoint; embeddings need a stage2 checkpoint")
    }
    return try Predictor.textOutputs(tokenizer: tokenizer, texts: texts, maxTokens: config.model.maxTextTokens,
                                     device: device, batchSize: batchSize) { try m.textLatents(ids: $0, mask: $1) }
  }

  /// The per-volume logits function: the stage-1 head, or the shared classifier on image latents for stage 2.
  public func imageLogits(_ volumes: Tensor) throws -> Tensor {
    if let m = imageClassifier { return try m(volumes) }
    guard let m = aligned else {
      throw GreenRFMError.invalidArgument(name: "--modality image", reason: "\(folder.path) is a \(kind.rawValue) checkpoint without an image encoder")
    }
    return try m.classifier(m.imageLatents(volumes))
  }

  /// Image latents `[N, D]` (stage 2 only).
  public func imageEmbeddings(_ volumes: Tensor) throws -> Tensor {
    guard let m = aligned else {
      throw GreenRFMError.invalidArgument(name: "embeddings", reason: "\(folder.path) is a \(kind.rawValue) checkpoint; embeddings need a stage2 checkpoint")
    }
    return try m.imageLatents(volumes)
  }

  /// An evaluation loader (cached centre crop) for a cohort, with this model's preprocessing.
  public func evaluationLoader(_ cohort: Cohort, cacheFolder: URL, batchSize: Int = 2, workers: Int? = nil) throws -> VolumeLoader {
    var config = record.config
    if let workers { config.data.workers = workers }
    var train = record.train
    train.batchSize = batchSize
    return try Stages.volumeLoader(cohort, config: config, train: train, training: false, cacheFolder: cacheFolder, seed: record.seed)
  }
}
