import Foundation
import Logging
import MedicalImaging
import Reports
import Torch
import TorchNN

// MARK: - Batch sources

/// `[N, C]` float32 labels from rows of {1, 0, −1}.
func labelTensor(_ rows: [[Int8]], device: Device) throws -> Tensor {
  let c = rows.first?.count ?? 0
  return try Tensor(rows.flatMap { $0.map(Float.init) }, shape: [rows.count, c]).to(device)
}

/// Reports as micro-batches of WordPiece ids in a deterministic order (`EpochOrder`): text stage 1.
public final class TextBatches: TrainingData {
  public let cohort: Cohort
  let tokenizer: WordPieceTokenizer
  let maxTokens: Int
  let batchSize: Int
  let seed: UInt64
  let shuffle: Bool
  let device: Device
  /// This rank's part of every epoch (data-parallel training).
  public let shard: DataShard

  /// - Throws: `GreenRFMError.invalidData` when an item has no report text.
  public init(cohort: Cohort, tokenizer: WordPieceTokenizer, maxTokens: Int, batchSize: Int, seed: UInt64,
              shuffle: Bool = true, device: Device = .cpu, shard: DataShard = .whole) throws {
    if let missing = cohort.items.first(where: { ($0.reportText ?? "").isEmpty }) {
      throw GreenRFMError.invalidData(path: cohort.name, reason: "item '\(missing.id)' has no report text")
    }
    self.cohort = cohort
    self.tokenizer = tokenizer
    self.maxTokens = maxTokens
    self.batchSize = batchSize
    self.seed = seed
    self.shuffle = shuffle
    self.device = device
    self.shard = shard
  }

  /// Full batches only (the last partial batch of an epoch is dropped, as the authors' loaders do).
  public var batchesPerEpoch: Int { shard.batches(items: cohort.items.count, batchSize: batchSize) }

  public func stream(epoch: Int, startBatch: Int) throws -> BatchStream {
    let all = shuffle ? EpochOrder.permutation(count: cohort.items.count, seed: seed, epoch: epoch)
                      : Array(0..<cohort.items.count)
    let order = shard.select(all, batchSize: batchSize)
    var b = startBatch
    return BatchStream { [self] in
      guard b < batchesPerEpoch else { return nil }
      let items = order[(b * batchSize)..<((b + 1) * batchSize)].map { cohort.items[$0] }
      b += 1
      let (ids, mask) = try tokenizeBatch(items.map { $0.reportText ?? "" }, tokenizer: tokenizer, maxLength: maxTokens)
      return TrainingBatch(ids: items.map(\.id), volumes: nil, tokens: (try ids.to(device), try mask.to(device)),
                           labels: try labelTensor(items.map(\.labels), device: device), batchIndex: b - 1)
    }
  }
}

/// Volumes (and, for stage 2, their reports) from a `VolumeLoader`.
public final class VolumeBatches: TrainingData {
  public let loader: VolumeLoader
  let tokenizer: WordPieceTokenizer?
  let maxTokens: Int
  let device: Device

  public init(loader: VolumeLoader, tokenizer: WordPieceTokenizer?, maxTokens: Int, device: Device) {
    self.loader = loader
    self.tokenizer = tokenizer
    self.maxTokens = maxTokens
    self.device = device
  }

  public var batchesPerEpoch: Int { loader.batchesPerEpoch }

  public func stream(epoch: Int, startBatch: Int) throws -> BatchStream {
    let it = loader.batches(epoch: epoch, startBatch: startBatch).makeIterator()
    return BatchStream { [self] in
      guard let batch = try it.next() else { return nil }
      return try self.convert(batch)
    }
  }

  func convert(_ batch: VolumeBatch) throws -> TrainingBatch {
    let volumes = try Tensor(batch.voxels, shape: batch.shape).to(device)
    let c = batch.shape[0] > 0 ? batch.labels.count / batch.shape[0] : 0
    let rows = (0..<batch.shape[0]).map { Array(batch.labels[($0 * c)..<(($0 + 1) * c)]) }
    var tokens: (ids: Tensor, mask: Tensor)?
    if let tokenizer {
      let texts = batch.reports.map { $0 ?? "" }
      let (ids, mask) = try tokenizeBatch(texts, tokenizer: tokenizer, maxLength: maxTokens)
      tokens = (try ids.to(device), try mask.to(device))
    }
    return TrainingBatch(ids: batch.ids, volumes: volumes, tokens: tokens, labels: try labelTensor(rows, device: device),
                         batchIndex: batch.batchIndex)
  }
}

// MARK: - Stages

/// Builds the trainer of each stage: model, data, loss and validation. Paper: MUST/Semantic-enforcing (stage 1
/// per encoder on the distilled labels, then stage 2 from those weights), MUST/Ubiquitous (BCE on both latents).
public enum Stages {
  /// `pos_weight` per finding: negatives / positives over the training labels (−1 excluded), clamped to [1, 100].
  public static func balancedPositiveWeights(_ cohort: Cohort) -> [Float] {
    let c = cohort.schema.findings.count
    var pos = [Int](repeating: 0, count: c), neg = pos
    for item in cohort.items {
      for (k, v) in item.labels.enumerated() { if v == 1 { pos[k] += 1 } else if v == 0 { neg[k] += 1 } }
    }
    return (0..<c).map { pos[$0] == 0 ? 1 : Float(min(100, max(1, Double(neg[$0]) / Double(pos[$0])))) }
  }

  /// The prior log-odds per finding, log(p / (1 − p)) with p the positive fraction among the training labels
  /// that are 1 or 0 (clamped to [0.01, 0.99]; 0.5 when a finding has no labels): the initial bias of a new
  /// classification head, so training starts from the base rates instead of spending its first hundreds of steps
  /// moving the bias (Lin et al., "Focal loss for dense object detection", 2017, prior initialisation).
  public static func priorLogOdds(_ cohort: Cohort) -> [Float] {
    let c = cohort.schema.findings.count
    var pos = [Int](repeating: 0, count: c), total = pos
    for item in cohort.items {
      for (k, v) in item.labels.enumerated() where v == 0 || v == 1 { total[k] += 1; if v == 1 { pos[k] += 1 } }
    }
    return (0..<c).map { k in
      let p = total[k] == 0 ? 0.5 : Swift.min(0.99, Swift.max(0.01, Double(pos[k]) / Double(total[k])))
      return Float(Foundation.log(p / (1 - p)))
    }
  }

  /// Sets a head's bias to the prior log-odds of the training labels.
  static func initializeBias(_ head: Linear, _ cohort: Cohort) throws {
    guard let bias = head.bias else { return }
    try withNoGrad { try bias.copyFrom(try Tensor(priorLogOdds(cohort)).to(bias.device)) }
  }

  static func positiveWeights(_ cohort: Cohort, _ train: TrainConfig, device: Device) throws -> Tensor? {
    guard train.positiveWeighting == .balanced else { return nil }
    return try Tensor(balancedPositiveWeights(cohort)).to(device)
  }

  /// Macro and per-finding AUROC of probabilities `[N][C]` against labels (−1 excluded; undefined findings left out
  /// of the macro mean and reported as `val/auroc/<key>/undefined` = 1).
  public static func aurocMetrics(probabilities: [[Double]], labels: [[Int8]], schema: LabelSchema,
                                  prefix: String = "val") -> [String: Double] {
    var out: [String: Double] = [:]
    var defined: [Double] = []
    for (c, finding) in schema.findings.enumerated() {
      let scores = probabilities.map { $0[c] }
      let y = labels.map { $0[c] }
      if let a = Metrics.auroc(scores: scores, labels: y) {
        out["\(prefix)/auroc/\(finding.key)"] = a
        defined.append(a)
      } else {
        out["\(prefix)/auroc/\(finding.key)/undefined"] = 1
      }
    }
    if !defined.isEmpty { out["\(prefix)/auroc/macro"] = defined.reduce(0, +) / Double(defined.count) }
    return out
  }

  /// The token budget must fit the encoder's position embeddings (checked before training, not at the first long report).
  static func checkTokenBudget(_ maxTokens: Int, _ config: BertConfig, folder: URL) throws {
    guard maxTokens <= config.maxPositionEmbeddings else {
      throw GreenRFMError.invalidArgument(
        name: "--max-tokens", reason: "\(maxTokens) exceeds the \(config.maxPositionEmbeddings) positions of the text encoder in \(folder.path)")
    }
  }

  /// Text stage 1: BERT + linear head, BCE over the findings.
  public static func textStage1(train: Cohort, validation: Cohort?, run: TrainingRun, textFolder: URL,
                                logger: Logger) throws -> Trainer {
    let encoder = try TextModelFolder.loadEncoder(folder: textFolder)
    let tokenizer = try TextModelFolder.loadTokenizer(folder: textFolder)
    try checkTokenBudget(run.config.model.maxTextTokens, encoder.config, folder: textFolder)
    // Items without report text are skipped (and named), not fatal.
    var train = train
    let empty = train.items.filter { ($0.reportText ?? "").isEmpty }
    if !empty.isEmpty {
      logger.warning("\(empty.count) training item(s) have no report text and are skipped: \(ReportTable.sample(empty.map(\.id)))")
      train.items.removeAll { ($0.reportText ?? "").isEmpty }
    }
    LibTorch.manualSeed(run.seed)
    let model = try TextClassifier(encoder: encoder, findings: run.schema.findings.count)
    try withNoGrad { try model.head.weight.normalInPlace(mean: 0, std: 0.02, generator: Generator(seed: run.seed)) }
    try initializeBias(model.head, train)
    let data = try TextBatches(cohort: train, tokenizer: tokenizer, maxTokens: run.config.model.maxTextTokens,
                               batchSize: run.train.batchSize, seed: run.seed, device: run.device,
                               shard: DataParallel.shard(run.group))
    let posWeight = try positiveWeights(train, run.train, device: run.device)
    let policy = run.train.uncertainPolicy
    var validate: (() throws -> [String: Double])?
    if let validation, !validation.items.isEmpty {
      validate = {
        let p = try Predictor.textProbabilities(model: model, tokenizer: tokenizer, texts: validation.items.map { $0.reportText ?? "" },
                                                maxTokens: run.config.model.maxTextTokens, device: run.device)
        return aurocMetrics(probabilities: p, labels: validation.labelMatrix(), schema: run.schema)
      }
    }
    var run = run
    run.textFolder = textFolder
    run.textConfig = encoder.config
    run.dataFingerprint = DataFingerprint(train)
    let group = run.group
    return Trainer(run: run, model: model, data: data, validation: validate, logger: logger) { batch in
      // Over the global batch in a data-parallel run (`DataParallel.gatherWithLocalGradient`).
      let logits = try DataParallel.gatherWithLocalGradient(
        try model.logits(ids: batch.tokens!.ids, mask: batch.tokens!.mask).to(.float32), group: group)
      let labels = try DataParallel.gather(batch.labels, group: group)
      let bce = try Losses.multiLabelBCE(logits: logits, labels: labels, policy: policy, posWeight: posWeight)
      return (bce, ["train/loss/bce": try bce.item()])
    }
  }

  /// The loader for a cohort: training (cached canvas, random crop) or evaluation (cached centre crop).
  public static func volumeLoader(_ cohort: Cohort, config: GreenRFMConfig, train: TrainConfig, training: Bool,
                                  cacheFolder: URL, seed: UInt64, shard: DataShard = .whole) throws -> VolumeLoader {
    let data = config.data
    let loaderConfig = VolumeLoaderConfig(
      preprocess: try data.preprocess(training: training), cacheFolder: cacheFolder.path,
      trainingCrop: training ? data.trainingCrop : nil, flips: training && data.flips,
      batchSize: train.batchSize, workers: data.workers, queueDepth: data.queueDepth,
      shuffle: training, dropLast: training, seed: seed)
    return try VolumeLoader(cohort: cohort, config: loaderConfig, shard: shard)
  }

  /// The cache folder of a run (`data.cacheFolder`, else `<output>/cache`).
  public static func cacheFolder(_ run: TrainingRun) -> URL {
    if let folder = run.config.data.cacheFolder { return URL(fileURLWithPath: folder) }
    return run.output.appendingPathComponent("cache")
  }

  /// Image stage 1: ResNet3D-18 + linear head, BCE over the findings.
  public static func imageStage1(train: Cohort, validation: Cohort?, run: TrainingRun, logger: Logger) throws -> Trainer {
    let model = try ImageClassifier(stem: run.config.model.imageStem, findings: run.schema.findings.count,
                                    generator: Generator(seed: run.seed))
    try initializeBias(model.head, train)
    let cache = cacheFolder(run)
    let loader = try volumeLoader(train, config: run.config, train: run.train, training: true, cacheFolder: cache, seed: run.seed,
                                  shard: DataParallel.shard(run.group))
    let data = VolumeBatches(loader: loader, tokenizer: nil, maxTokens: 0, device: run.device)
    let posWeight = try positiveWeights(train, run.train, device: run.device)
    let policy = run.train.uncertainPolicy
    var validate: (() throws -> [String: Double])?
    if let validation, !validation.items.isEmpty {
      let evalLoader = try volumeLoader(validation, config: run.config, train: run.train, training: false,
                                        cacheFolder: cache, seed: run.seed)
      validate = {
        let (ids, p) = try Predictor.imageProbabilities(loader: evalLoader, device: run.device) { try model($0) }
        let labels = Dictionary(validation.items.map { ($0.id, $0.labels) }, uniquingKeysWith: { a, _ in a })
        return aurocMetrics(probabilities: p, labels: ids.map { labels[$0]! }, schema: run.schema)
      }
    }
    var run = run
    run.dataFingerprint = DataFingerprint(train)
    let group = run.group
    let trainer = Trainer(run: run, model: model, data: data, validation: validate, logger: logger) { batch in
      // Over the global batch in a data-parallel run (`DataParallel.gatherWithLocalGradient`).
      let logits = try DataParallel.gatherWithLocalGradient(try model(batch.volumes!).to(.float32), group: group)
      let labels = try DataParallel.gather(batch.labels, group: group)
      let bce = try Losses.multiLabelBCE(logits: logits, labels: labels, policy: policy, posWeight: posWeight)
      return (bce, ["train/loss/bce": try bce.item()])
    }
    // The authors' stage-1 image optimiser decays every parameter (AdamW weight decay 1e-4).
    trainer.exemptBiasAndNormFromDecay = false
    // Nothing here draws from libtorch's global generator (see `Trainer.reseedsGlobalGenerator`).
    trainer.reseedsGlobalGenerator = false
    return trainer
  }

  /// Stage 2: both encoders from their stage-1 checkpoints, projections, the shared classifier; loss =
  /// contrastive + weight × (BCE(image latents) + BCE(text latents)) / 2 with −1 handled by the policy.
  /// - Parameters: `imageInit` / `textInit`: stage-1 checkpoints (run folders or checkpoint folders). Both are
  ///   required unless `fromScratch` is true (the authors' script silently trains from scratch; we never do that).
  public static func stage2(train: Cohort, validation: Cohort?, run: TrainingRun, imageInit: URL?, textInit: URL?,
                            fromScratch: Bool, textFolder: URL?, logger: Logger) throws -> Trainer {
    var run = run
    var imageState: [String: Tensor]?, textState: [String: Tensor]?
    var imageFindings: [String]?, textFindings: [String]?
    var textSource = textFolder
    var sources = (image: "", text: "")
    if let imageInit {
      let folder = try Checkpoint.resolve(imageInit)
      let record = try Checkpoint.record(folder)
      guard record.kind == .stage1Image else {
        throw GreenRFMError.checkpoint(path: folder.path, reason: "--image-init needs a stage1-image checkpoint, this is \(record.kind.rawValue)")
      }
      guard record.config.model.imageStem == run.config.model.imageStem else {
        throw GreenRFMError.checkpoint(path: folder.path, reason: "its image stem is \(record.config.model.imageStem.rawValue), the preset's is \(run.config.model.imageStem.rawValue)")
      }
      imageState = try Checkpoint.weights(folder)
      imageFindings = record.schema.findings.map(\.key)
      sources.image = folder.path
      run.initializedFrom["image"] = folder.path
    }
    if let textInit {
      let folder = try Checkpoint.resolve(textInit)
      let record = try Checkpoint.record(folder)
      guard record.kind == .stage1Text else {
        throw GreenRFMError.checkpoint(path: folder.path, reason: "--text-init needs a stage1-text checkpoint, this is \(record.kind.rawValue)")
      }
      textState = try Checkpoint.weights(folder)
      textFindings = record.schema.findings.map(\.key)
      textSource = folder.appendingPathComponent("text")
      sources.text = folder.path
      run.initializedFrom["text"] = folder.path
    }
    if !fromScratch, imageState == nil || textState == nil {
      let missing = [imageState == nil ? "--image-init" : nil, textState == nil ? "--text-init" : nil].compactMap { $0 }
      throw GreenRFMError.invalidArgument(
        name: "stage 2", reason: "needs the stage-1 checkpoints (missing \(missing.joined(separator: " and "))); pass --from-scratch to train without them")
    }
    if textState != nil, textFolder != nil {
      throw GreenRFMError.invalidArgument(
        name: "--text-model", reason: "the text encoder comes from --text-init (its checkpoint holds the BERT config and vocabulary); drop --text-model")
    }
    guard let textSource else {
      throw GreenRFMError.invalidArgument(name: "stage 2", reason: "no text encoder: give --text-init or a text model")
    }
    let config = try TextModelFolder.loadConfig(folder: textSource)
    let tokenizer = try TextModelFolder.loadTokenizer(folder: textSource)
    try checkTokenBudget(run.config.model.maxTextTokens, config, folder: textSource)
    // A text encoder from a stage-1 checkpoint is built from its config and filled below; otherwise the pretrained one.
    let encoder = textState == nil ? try TextModelFolder.loadEncoder(folder: textSource)
                                   : try BertEncoder(config: config, generator: Generator(seed: run.seed))
    let model = try GreenRFMModel(stem: run.config.model.imageStem, textEncoder: encoder, latentDim: run.config.model.latentDim,
                                  findings: run.schema.findings.count, generator: Generator(seed: run.seed))
    try model.loadStage1(image: imageState, text: textState, source: sources)
    if run.train.alignedSpaceInit == .random {
      try initializeBias(model.classifier, train)
    } else {
      guard let imageState, let textState else {
        throw GreenRFMError.invalidArgument(name: "alignedSpaceInit", reason: "stage1Heads needs both stage-1 checkpoints (--image-init and --text-init)")
      }
      // The heads' rows are findings: they must be this run's findings, in this run's order.
      let findings = run.schema.findings.map(\.key)
      for (path, keys) in [(sources.image, imageFindings), (sources.text, textFindings)] where keys != findings {
        throw GreenRFMError.checkpoint(
          path: path, reason: "alignedSpaceInit stage1Heads: its head was trained on the findings [\((keys ?? []).joined(separator: ", "))], this run's schema has [\(findings.joined(separator: ", "))] (same findings in the same order needed)")
      }
      try model.seedAlignedSpace(imageHead: imageState, textHead: textState, source: sources)
    }
    run.textFolder = textSource
    run.textConfig = config
    run.dataFingerprint = DataFingerprint(train)
    let cache = cacheFolder(run)
    let loader = try volumeLoader(train, config: run.config, train: run.train, training: true, cacheFolder: cache, seed: run.seed,
                                  shard: DataParallel.shard(run.group))
    let data = VolumeBatches(loader: loader, tokenizer: tokenizer, maxTokens: run.config.model.maxTextTokens, device: run.device)
    let posWeight = try positiveWeights(train, run.train, device: run.device)
    let (policy, kind, weight) = (run.train.uncertainPolicy, run.train.contrastive, run.train.classifierWeight)
    var validate: (() throws -> [String: Double])?
    if let validation, !validation.items.isEmpty {
      let evalLoader = try volumeLoader(validation, config: run.config, train: run.train, training: false,
                                        cacheFolder: cache, seed: run.seed)
      validate = {
        let (ids, p) = try Predictor.imageProbabilities(loader: evalLoader, device: run.device) {
          try model.classifier(model.imageLatents($0))
        }
        let labels = Dictionary(validation.items.map { ($0.id, $0.labels) }, uniquingKeysWith: { a, _ in a })
        return aurocMetrics(probabilities: p, labels: ids.map { labels[$0]! }, schema: run.schema)
      }
    }
    let group = run.group
    let trainer = Trainer(run: run, model: model, data: data, validation: validate, logger: logger) { batch in
      // The global batch in a data-parallel run: every rank's latents (gradient into its own) and labels, so that
      // the contrastive negatives and the BCE means are those of the combined batch.
      let image = try DataParallel.gatherWithLocalGradient(try model.imageLatents(batch.volumes!).to(.float32), group: group)
      let text = try DataParallel.gatherWithLocalGradient(
        try model.textLatents(ids: batch.tokens!.ids, mask: batch.tokens!.mask).to(.float32), group: group)
      let labels = try DataParallel.gather(batch.labels, group: group)
      let contrastive = try AlignmentLoss.contrastive(image: image, text: text, kind: kind, logitScale: model.logitScale)
      let bceImage = try Losses.multiLabelBCE(logits: model.classifier(image).to(.float32), labels: labels,
                                              policy: policy, posWeight: posWeight)
      let bceText = try Losses.multiLabelBCE(logits: model.classifier(text).to(.float32), labels: labels,
                                             policy: policy, posWeight: posWeight)
      let loss = try contrastive + (bceImage + bceText) * (weight / 2)
      return (loss, ["train/loss/contrastive": try contrastive.item(), "train/loss/bceImage": try bceImage.item(),
                     "train/loss/bceText": try bceText.item()])
    }
    // The layers stage 2 adds (headLearningRateScale applies to them).
    trainer.headPrefixes = ["imageProjection.", "textProjection.", "classifier."]
    return trainer
  }
}

// MARK: - Prediction

/// Probabilities from trained models, in eval mode without gradients.
public enum Predictor {
  /// A probabilities CSV (what `greenrfm predict` and the demo write): the id column, then one column per finding
  /// (display names), six decimals per probability; fields quoted as `CSVTable.escape` does.
  /// - Parameters: `ids`: N row ids; `rows`: N rows of C probabilities in `findings` order.
  public static func probabilitiesCSV(idColumn: String, findings: [String], ids: [String], rows: [[Double]]) -> String {
    var text = ([idColumn] + findings).map(CSVTable.escape).joined(separator: ",") + "\n"
    for (id, row) in zip(ids, rows) {
      text += ([CSVTable.escape(id)] + row.map { String(format: "%.6f", $0) }).joined(separator: ",") + "\n"
    }
    return text
  }

  /// Sigmoid probabilities `[N][C]` of a text classifier over `texts`, in batches of `batchSize`.
  public static func textProbabilities(model: TextClassifier, tokenizer: WordPieceTokenizer, texts: [String],
                                       maxTokens: Int, device: Device, batchSize: Int = 32) throws -> [[Double]] {
    try textOutputs(tokenizer: tokenizer, texts: texts, maxTokens: maxTokens, device: device, batchSize: batchSize) {
      try model.logits(ids: $0, mask: $1).sigmoid()
    }
  }

  /// Any per-text output `[n, K]` as rows of doubles, in batches.
  public static func textOutputs(tokenizer: WordPieceTokenizer, texts: [String], maxTokens: Int, device: Device,
                                 batchSize: Int = 32, _ body: (Tensor, Tensor) throws -> Tensor) throws -> [[Double]] {
    var rows: [[Double]] = []
    try withNoGrad {
      for start in stride(from: 0, to: texts.count, by: batchSize) {
        let chunk = Array(texts[start..<min(start + batchSize, texts.count)])
        let (ids, mask) = try tokenizeBatch(chunk, tokenizer: tokenizer, maxLength: maxTokens)
        let out = try body(ids.to(device), mask.to(device)).to(.float32).to(.cpu).contiguous()
        rows += try matrixRows(out)
      }
    }
    return rows
  }

  /// Sigmoid probabilities of `logits(volumes)` over every batch of an evaluation loader; returns the ids in the
  /// loader's order (failed items are left out and stay in `loader.failures`).
  public static func imageProbabilities(loader: VolumeLoader, device: Device,
                                        logits: (Tensor) throws -> Tensor) throws -> (ids: [String], probabilities: [[Double]]) {
    try imageOutputs(loader: loader, device: device) { try logits($0).sigmoid() }
  }

  /// Any per-volume output `[n, K]` over every batch of an evaluation loader.
  public static func imageOutputs(loader: VolumeLoader, device: Device,
                                  _ body: (Tensor) throws -> Tensor) throws -> (ids: [String], probabilities: [[Double]]) {
    var ids: [String] = []
    var rows: [[Double]] = []
    try withNoGrad {
      let it = loader.batches(epoch: 0, startBatch: 0).makeIterator()
      while let batch = try it.next() {
        let volumes = try Tensor(batch.voxels, shape: batch.shape).to(device)
        let out = try body(volumes).to(.float32).to(.cpu).contiguous()
        rows += try matrixRows(out)
        ids += batch.ids
      }
    }
    return (ids, rows)
  }

  /// `[N, K]` (or `[N]`) tensor → N rows of K doubles (read as contiguous float32 on the CPU).
  public static func matrixRows(_ t: Tensor) throws -> [[Double]] {
    let t = try t.to(.float32).to(.cpu).contiguous()
    let n = t.shape[0], k = t.shape.count > 1 ? t.shape[1] : 1
    let flat: [Float] = try t.scalars()
    return (0..<n).map { i in (0..<k).map { Double(flat[i * k + $0]) } }
  }
}
