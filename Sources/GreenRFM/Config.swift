import Foundation
import MedicalImaging
import TorchNN

/// The model: image stem, shared latent size, text encoder folder and token budget.
/// Paper: MUST/Task-aligning (lite 4³ stride-4 stem vs standard 2³ stride-2 stem); METHOD.md "Architecture".
public struct ModelConfig: Codable, Equatable, Sendable {
  /// `lite` (4³ convolution, stride 4) or `standard` (2³, stride 2).
  public var imageStem: ResNetStem = .lite
  /// Size D of the shared latent space that both projections map to (the authors use 768).
  public var latentDim: Int = 768
  /// A Hugging Face BERT folder (config.json, vocab.txt, model.safetensors); nil = the default all-MiniLM-L6-v2
  /// (`.models/all-MiniLM-L6-v2`, made by scripts/setup.sh, or `$GREENRFM_TEXT_MODEL`).
  public var textModel: String?
  /// At most this many WordPiece tokens per report, [CLS] and [SEP] included (authors: 128 for CT, 256 for MRI).
  public var maxTextTokens: Int = 128

  public init() {}

  public func validate(source: String) throws {
    guard (8...8192).contains(latentDim) else {
      throw GreenRFMError.invalidConfig(source: source, reason: "model.latentDim \(latentDim) must lie in 8...8192")
    }
    guard (8...4096).contains(maxTextTokens) else {
      throw GreenRFMError.invalidConfig(source: source, reason: "model.maxTextTokens \(maxTextTokens) must lie in 8...4096")
    }
  }
}

/// How volumes reach the image encoder. The deterministic part (reorient to RAS, resample, HU window, centre
/// pad/crop to `trainingCanvas`) is cached on disk; training then takes a random `trainingCrop`, evaluation the
/// centre crop of `evaluationSize`. Numbers from METHOD.md "Data and preprocessing" (chest: canvas 240×240×120,
/// crop 192×192×96; abdomen: 280×280×180, 224×224×144).
public struct DataConfig: Codable, Equatable, Sendable {
  /// Preprocessing protocol: "chest-ct", "abdomen-ct" or "mri" (see `PreprocessConfig.preset`).
  public var protocolName: String = "chest-ct"
  /// Size (i, j, k) in voxels of the cached training canvas.
  public var trainingCanvas: [Int] = [240, 240, 120]
  /// Size (i, j, k) of the random training crop taken from the canvas.
  public var trainingCrop: [Int] = [192, 192, 96]
  /// Size (i, j, k) of the centre crop used for validation and prediction.
  public var evaluationSize: [Int] = [192, 192, 96]
  /// Random flips during training.
  public var flips: Bool = false
  /// Background threads that read and preprocess volumes.
  public var workers: Int = 2
  /// Finished batches that may wait in memory.
  public var queueDepth: Int = 2
  /// Cache folder (relative paths are relative to the run's output folder's parent); nil = `<output>/cache`.
  public var cacheFolder: String?
  /// Target voxel spacing (i, j, k) in mm, overriding the protocol's (e.g. the demo's coarser 3×3×6 mm); nil = the
  /// protocol's spacing.
  public var spacingMM: [Double]?

  public init() {}

  public func validate(source: String) throws {
    _ = try PreprocessConfig.preset(protocolName)
    for (name, size) in [("trainingCanvas", trainingCanvas), ("trainingCrop", trainingCrop), ("evaluationSize", evaluationSize)] {
      guard size.count == 3, size.allSatisfy({ (4...4096).contains($0) }) else {
        throw GreenRFMError.invalidConfig(source: source, reason: "data.\(name) \(size) must be three voxel counts in 4...4096")
      }
    }
    guard zip(trainingCrop, trainingCanvas).allSatisfy({ $0 <= $1 }) else {
      throw GreenRFMError.invalidConfig(source: source, reason: "data.trainingCrop \(trainingCrop) must fit in data.trainingCanvas \(trainingCanvas)")
    }
    guard (0...64).contains(workers), (1...64).contains(queueDepth) else {
      throw GreenRFMError.invalidConfig(source: source, reason: "data.workers must lie in 0...64 and data.queueDepth in 1...64")
    }
    if let s = spacingMM, s.count != 3 || !s.allSatisfy({ $0.isFinite && $0 > 0 && $0 <= 100 }) {
      throw GreenRFMError.invalidConfig(source: source, reason: "data.spacingMM \(s) must be three spacings in (0, 100] mm")
    }
  }

  /// The cached preprocessing for training (canvas) or evaluation (centre crop).
  public func preprocess(training: Bool) throws -> PreprocessConfig {
    var p = try PreprocessConfig.preset(protocolName)
    p.size = training ? trainingCanvas : evaluationSize
    if let spacingMM { p.spacingMM = spacingMM }
    return p
  }
}

/// Which contrastive term stage 2 uses.
public enum ContrastiveKind: String, Codable, Sendable, CaseIterable {
  /// Raw dot products of the latents, no L2 normalisation, temperature 1 (as the authors train).
  case dot
  /// CLIP: L2-normalised latents times a learnable logit scale exp(s), clamped at 100.
  case clip
}

/// How stage 2 initialises the aligned space (the two projections and the shared classifier).
public enum AlignedSpaceInit: String, Codable, Sendable, CaseIterable {
  /// Random projections and classifier (the authors' code).
  case random
  /// Seeded from the stage-1 heads: the first C latent coordinates are the stage-1 logits scaled by
  /// `GreenRFMModel.seedScale` (projection rows = scale × each stage-1 head's weights), the shared classifier reads
  /// them back (weight = I / scale on those coordinates, 0 elsewhere; bias = the mean of the two heads' biases), and
  /// the other projection rows start at 0.1 × their random values. Stage 2 then starts with both encoders' stage-1
  /// classifiers intact and agreeing in the shared space, instead of spending its first epoch relearning them.
  case stage1Heads
}

/// Weights for positives in BCE.
public enum PositiveWeighting: String, Codable, Sendable, CaseIterable {
  case none
  /// pos_weight = negatives / positives per finding over the training labels (−1 excluded), clamped to [1, 100].
  case balanced
}

/// Numeric precision of the forward pass.
public enum Precision: String, Codable, Sendable, CaseIterable {
  case fp32
  /// bfloat16 autocast (weights and optimizer stay fp32).
  case bf16
}

/// The optimisation of one stage. Authors' values (METHOD.md "Training"): stage 1 image AdamW lr 1e-4,
/// weight decay 1e-4, cosine to 1e-6, batch 10, 5 epochs; stage 2 lr 1e-5, no decay on biases and LayerNorm
/// weights, clipping at 0.5, batch 10, 5 epochs.
public struct TrainConfig: Codable, Equatable, Sendable {
  public var learningRate: Double = 1e-4
  public var weightDecay: Double = 1e-4
  /// Linear warm-up steps (from 1 % of the rate) before the cosine decay.
  public var warmupSteps: Int = 0
  /// The cosine schedule's final learning rate.
  public var floorLearningRate: Double = 1e-6
  public var epochs: Int = 5
  /// Stop after this many optimizer steps (nil = `epochs` full passes); the schedule spans this many steps.
  public var maxSteps: Int?
  /// Items per micro-batch.
  public var batchSize: Int = 10
  /// Micro-batches per optimizer step; each micro-batch's loss is divided by this, so the step uses the mean
  /// gradient (as one batch of `batchSize × gradAccum` would, except that BCE masks, batch norm statistics and the
  /// contrastive term's negatives are per micro-batch).
  public var gradAccum: Int = 1
  /// Global gradient-norm clipping (nil = none).
  public var clipGradNorm: Double?
  public var precision: Precision = .fp32
  /// What −1 labels do in BCE (default: masked out).
  public var uncertainPolicy: UncertainLabelPolicy = .ignore
  public var positiveWeighting: PositiveWeighting = .none
  /// Stage 2 only: the contrastive term.
  public var contrastive: ContrastiveKind = .dot
  /// Stage 2 only: weight of the shared classifier's BCE, applied as weight × (BCE(image) + BCE(text)) / 2.
  public var classifierWeight: Double = 1
  /// Stage 2 only: how the projections and the shared classifier start (default: random, as the authors').
  public var alignedSpaceInit: AlignedSpaceInit = .random
  /// Save a checkpoint every this many optimizer steps (and at the end of each epoch and of the run).
  public var checkpointEvery: Int = 200
  /// How many step checkpoints to keep on disk (the newest).
  public var keepCheckpoints: Int = 2
  /// Log a metrics line every this many optimizer steps.
  public var logEvery: Int = 10
  /// The new layers learn at `headLearningRateScale` × the learning rate (the pretrained encoders at 1 ×), so that
  /// randomly initialised layers catch up within a few hundred steps: the linear head in stage 1; the image and text
  /// projections and the shared classifier in stage 2.
  public var headLearningRateScale: Double = 1
  /// AdamW's denominator term ε (PyTorch's `eps`, 1e-8). Adam moves every weight by about ±lr whatever its
  /// gradient's size, so gradients that are zero in exact arithmetic but float noise in practice (e.g. biases that a
  /// following BatchNorm cancels) take full-size random steps; a larger ε damps those.
  public var adamEpsilon: Double = 1e-8

  public init() {}

  public func validate(source: String) throws {
    func fail(_ reason: String) -> GreenRFMError { .invalidConfig(source: source, reason: reason) }
    guard learningRate > 0, learningRate.isFinite else { throw fail("learningRate \(learningRate) must be > 0") }
    guard weightDecay >= 0, weightDecay.isFinite else { throw fail("weightDecay \(weightDecay) must be ≥ 0") }
    guard floorLearningRate >= 0, floorLearningRate <= learningRate else {
      throw fail("floorLearningRate \(floorLearningRate) must lie in [0, learningRate]")
    }
    guard warmupSteps >= 0 else { throw fail("warmupSteps must be ≥ 0") }
    guard epochs >= 1 else { throw fail("epochs \(epochs) must be ≥ 1") }
    if let m = maxSteps, m < 1 { throw fail("maxSteps \(m) must be ≥ 1") }
    guard (1...4096).contains(batchSize) else { throw fail("batchSize \(batchSize) must lie in 1...4096") }
    guard (1...1024).contains(gradAccum) else { throw fail("gradAccum \(gradAccum) must lie in 1...1024") }
    if let c = clipGradNorm, !(c > 0 && c.isFinite) { throw fail("clipGradNorm \(c) must be > 0") }
    guard classifierWeight >= 0, classifierWeight.isFinite else { throw fail("classifierWeight must be ≥ 0") }
    guard headLearningRateScale > 0, headLearningRateScale <= 1000 else { throw fail("headLearningRateScale must lie in (0, 1000]") }
    guard adamEpsilon > 0, adamEpsilon <= 1 else { throw fail("adamEpsilon \(adamEpsilon) must lie in (0, 1]") }
    guard checkpointEvery >= 1, keepCheckpoints >= 1, logEvery >= 1 else {
      throw fail("checkpointEvery, keepCheckpoints and logEvery must be ≥ 1")
    }
  }
}

/// A named preset: the model, the data path and the three trainings. Presets are data
/// (`Sources/GreenRFM/Presets/<name>.json`, or any JSON file of this shape); unknown keys are an error.
public struct GreenRFMConfig: Codable, Equatable, Sendable {
  public var name: String = "custom"
  public var description: String = ""
  public var model = ModelConfig()
  public var data = DataConfig()
  public var stage1Image = TrainConfig()
  public var stage1Text = TrainConfig()
  public var stage2 = TrainConfig()

  public init() {}

  /// The built-in preset names.
  public static let presetNames = ["greenrfm-lite", "greenrfm-standard"]

  /// A built-in preset by name, or a JSON file by path.
  /// - Throws: `GreenRFMError.invalidConfig` naming the preset or file (unknown key, bad value).
  public static func load(_ nameOrPath: String) throws -> GreenRFMConfig {
    if presetNames.contains(nameOrPath) {
      guard let url = Bundle.module.url(forResource: nameOrPath, withExtension: "json", subdirectory: "Presets") else {
        throw GreenRFMError.missingFile(path: "Presets/\(nameOrPath).json", what: "built-in preset")
      }
      return try decode(Data(contentsOf: url), source: nameOrPath)
    }
    var isFolder: ObjCBool = false
    guard FileManager.default.fileExists(atPath: nameOrPath, isDirectory: &isFolder), !isFolder.boolValue else {
      throw GreenRFMError.invalidConfig(
        source: nameOrPath, reason: "neither a preset (\(presetNames.joined(separator: ", "))) nor an existing file")
    }
    let data: Data
    do { data = try Data(contentsOf: URL(fileURLWithPath: nameOrPath)) } catch {
      throw GreenRFMError.invalidConfig(source: nameOrPath, reason: "cannot be read (\(error.localizedDescription))")
    }
    // A preset file is an overlay on greenrfm-lite: what it leaves out keeps lite's value, stage by stage (so a file
    // that sets only stage2.learningRate keeps stage 2's clipping at 0.5).
    guard let liteURL = Bundle.module.url(forResource: "greenrfm-lite", withExtension: "json", subdirectory: "Presets") else {
      throw GreenRFMError.missingFile(path: "Presets/greenrfm-lite.json", what: "built-in preset")
    }
    return try decode(data, source: nameOrPath, base: try Data(contentsOf: liteURL))
  }

  /// Decodes JSON strictly: every key must be known (a misspelt key is an error, not a silent default).
  /// - Parameter base: JSON that `data` overlays key by key (nil: the built-in defaults of `GreenRFMConfig`).
  public static func decode(_ data: Data, source: String, base: Data? = nil) throws -> GreenRFMConfig {
    try StrictJSON.checkKnownKeys(data, known: try JSONEncoder().encode(GreenRFMConfig()), source: source)
    var merged = data
    if let base, let b = try JSONSerialization.jsonObject(with: base) as? [String: Any],
       let o = try JSONSerialization.jsonObject(with: data) as? [String: Any] {
      merged = try JSONSerialization.data(withJSONObject: StrictJSON.overlay(o, on: b))
    }
    let config: GreenRFMConfig
    do {
      config = try JSONDecoder().decode(GreenRFMConfig.self, from: merged)
    } catch let error as DecodingError {
      throw GreenRFMError.invalidConfig(source: source, reason: StrictJSON.describe(error))
    }
    try config.validate(source: source)
    return config
  }

  public func validate(source: String) throws {
    try model.validate(source: source)
    try data.validate(source: source)
    try stage1Image.validate(source: source + " stage1Image")
    try stage1Text.validate(source: source + " stage1Text")
    try stage2.validate(source: source + " stage2")
  }

  /// Pretty, key-sorted JSON (the resolved config written beside every run's outputs).
  public func encoded() throws -> Data {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
    return try encoder.encode(self)
  }

  // Missing keys take the defaults above (decoded one by one).
  public init(from decoder: Decoder) throws {
    let c = try decoder.container(keyedBy: CodingKeys.self)
    name = try c.decodeIfPresent(String.self, forKey: .name) ?? name
    description = try c.decodeIfPresent(String.self, forKey: .description) ?? description
    model = try c.decodeIfPresent(ModelConfig.self, forKey: .model) ?? model
    data = try c.decodeIfPresent(DataConfig.self, forKey: .data) ?? data
    stage1Image = try c.decodeIfPresent(TrainConfig.self, forKey: .stage1Image) ?? stage1Image
    stage1Text = try c.decodeIfPresent(TrainConfig.self, forKey: .stage1Text) ?? stage1Text
    stage2 = try c.decodeIfPresent(TrainConfig.self, forKey: .stage2) ?? stage2
  }
}

extension ModelConfig {
  public init(from decoder: Decoder) throws {
    self.init()
    let c = try decoder.container(keyedBy: CodingKeys.self)
    imageStem = try c.decodeIfPresent(ResNetStem.self, forKey: .imageStem) ?? imageStem
    latentDim = try c.decodeIfPresent(Int.self, forKey: .latentDim) ?? latentDim
    textModel = try c.decodeIfPresent(String.self, forKey: .textModel) ?? textModel
    maxTextTokens = try c.decodeIfPresent(Int.self, forKey: .maxTextTokens) ?? maxTextTokens
  }
}

extension DataConfig {
  public init(from decoder: Decoder) throws {
    self.init()
    let c = try decoder.container(keyedBy: CodingKeys.self)
    protocolName = try c.decodeIfPresent(String.self, forKey: .protocolName) ?? protocolName
    trainingCanvas = try c.decodeIfPresent([Int].self, forKey: .trainingCanvas) ?? trainingCanvas
    trainingCrop = try c.decodeIfPresent([Int].self, forKey: .trainingCrop) ?? trainingCrop
    evaluationSize = try c.decodeIfPresent([Int].self, forKey: .evaluationSize) ?? evaluationSize
    flips = try c.decodeIfPresent(Bool.self, forKey: .flips) ?? flips
    workers = try c.decodeIfPresent(Int.self, forKey: .workers) ?? workers
    queueDepth = try c.decodeIfPresent(Int.self, forKey: .queueDepth) ?? queueDepth
    cacheFolder = try c.decodeIfPresent(String.self, forKey: .cacheFolder) ?? cacheFolder
    spacingMM = try c.decodeIfPresent([Double].self, forKey: .spacingMM) ?? spacingMM
  }
}

extension TrainConfig {
  public init(from decoder: Decoder) throws {
    self.init()
    let c = try decoder.container(keyedBy: CodingKeys.self)
    learningRate = try c.decodeIfPresent(Double.self, forKey: .learningRate) ?? learningRate
    weightDecay = try c.decodeIfPresent(Double.self, forKey: .weightDecay) ?? weightDecay
    warmupSteps = try c.decodeIfPresent(Int.self, forKey: .warmupSteps) ?? warmupSteps
    floorLearningRate = try c.decodeIfPresent(Double.self, forKey: .floorLearningRate) ?? floorLearningRate
    epochs = try c.decodeIfPresent(Int.self, forKey: .epochs) ?? epochs
    maxSteps = try c.decodeIfPresent(Int.self, forKey: .maxSteps) ?? maxSteps
    batchSize = try c.decodeIfPresent(Int.self, forKey: .batchSize) ?? batchSize
    gradAccum = try c.decodeIfPresent(Int.self, forKey: .gradAccum) ?? gradAccum
    clipGradNorm = try c.decodeIfPresent(Double.self, forKey: .clipGradNorm) ?? clipGradNorm
    precision = try c.decodeIfPresent(Precision.self, forKey: .precision) ?? precision
    uncertainPolicy = try c.decodeIfPresent(UncertainLabelPolicy.self, forKey: .uncertainPolicy) ?? uncertainPolicy
    positiveWeighting = try c.decodeIfPresent(PositiveWeighting.self, forKey: .positiveWeighting) ?? positiveWeighting
    contrastive = try c.decodeIfPresent(ContrastiveKind.self, forKey: .contrastive) ?? contrastive
    classifierWeight = try c.decodeIfPresent(Double.self, forKey: .classifierWeight) ?? classifierWeight
    alignedSpaceInit = try c.decodeIfPresent(AlignedSpaceInit.self, forKey: .alignedSpaceInit) ?? alignedSpaceInit
    checkpointEvery = try c.decodeIfPresent(Int.self, forKey: .checkpointEvery) ?? checkpointEvery
    keepCheckpoints = try c.decodeIfPresent(Int.self, forKey: .keepCheckpoints) ?? keepCheckpoints
    logEvery = try c.decodeIfPresent(Int.self, forKey: .logEvery) ?? logEvery
    headLearningRateScale = try c.decodeIfPresent(Double.self, forKey: .headLearningRateScale) ?? headLearningRateScale
    adamEpsilon = try c.decodeIfPresent(Double.self, forKey: .adamEpsilon) ?? adamEpsilon
  }
}

/// Strict JSON helpers: unknown keys are reported by their dotted path.
enum StrictJSON {
  /// Every key path of `data` must exist in `known` (an encoding of the defaults); optional fields whose default
  /// is nil are listed in `optionalKeys`.
  static func checkKnownKeys(_ data: Data, known: Data, source: String) throws {
    let object: Any
    do { object = try JSONSerialization.jsonObject(with: data) } catch {
      throw GreenRFMError.invalidConfig(source: source, reason: "not valid JSON (\(error.localizedDescription))")
    }
    guard let given = object as? [String: Any] else {
      throw GreenRFMError.invalidConfig(source: source, reason: "the top level must be a JSON object")
    }
    let reference = (try? JSONSerialization.jsonObject(with: known) as? [String: Any]) ?? [:]
    var unknown: [String] = []
    walk(given, reference, path: "", unknown: &unknown)
    if !unknown.isEmpty {
      throw GreenRFMError.invalidConfig(source: source, reason: "unknown key(s) \(unknown.sorted().joined(separator: ", "))")
    }
  }

  /// `top` with every key it lacks taken from `base`, recursively for nested objects.
  static func overlay(_ top: [String: Any], on base: [String: Any]) -> [String: Any] {
    var out = base
    for (k, v) in top {
      if let t = v as? [String: Any], let b = base[k] as? [String: Any] { out[k] = overlay(t, on: b) } else { out[k] = v }
    }
    return out
  }

  /// Keys whose default is nil (absent from the encoded defaults) but are valid.
  static let optionalKeys: Set<String> = ["model.textModel", "data.cacheFolder", "data.spacingMM", "stage1Image.maxSteps",
    "stage1Text.maxSteps", "stage2.maxSteps", "stage1Image.clipGradNorm", "stage1Text.clipGradNorm",
    "stage2.clipGradNorm"]

  private static func walk(_ given: [String: Any], _ reference: [String: Any], path: String, unknown: inout [String]) {
    for (key, value) in given {
      let full = path.isEmpty ? key : "\(path).\(key)"
      guard let ref = reference[key] else {
        if !optionalKeys.contains(full) { unknown.append(full) }
        continue
      }
      if let g = value as? [String: Any], let r = ref as? [String: Any] { walk(g, r, path: full, unknown: &unknown) }
    }
  }

  static func describe(_ error: DecodingError) -> String {
    func path(_ c: DecodingError.Context) -> String {
      c.codingPath.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }.joined(separator: ".")
    }
    switch error {
    case let .typeMismatch(_, c), let .valueNotFound(_, c), let .keyNotFound(_, c):
      return "\(path(c)): \(c.debugDescription)"
    case let .dataCorrupted(c):
      return "\(path(c).isEmpty ? "JSON" : path(c)): \(c.debugDescription)"
    @unknown default:
      return "\(error)"
    }
  }
}
