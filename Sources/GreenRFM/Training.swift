import AtomicWrite
import Foundation
import Logging
import Reports
import Torch
import TorchNN

/// One micro-batch for the trainer.
public struct TrainingBatch {
  /// Item ids, in batch order.
  public var ids: [String]
  /// `[N, 1, D, H, W]` float32 volumes (image and stage 2), on the training device.
  public var volumes: Tensor?
  /// WordPiece ids and attention mask `[N, L]` int64 (text and stage 2), on the training device.
  public var tokens: (ids: Tensor, mask: Tensor)?
  /// `[N, C]` float32 labels in {1, 0, −1}, on the training device.
  public var labels: Tensor
  /// The batch's number within its epoch, when the source can skip batches (the volume loader).
  public var batchIndex: Int?
  public var count: Int { ids.count }

  public init(ids: [String], volumes: Tensor? = nil, tokens: (ids: Tensor, mask: Tensor)? = nil, labels: Tensor,
              batchIndex: Int? = nil) {
    self.ids = ids
    self.volumes = volumes
    self.tokens = tokens
    self.labels = labels
    self.batchIndex = batchIndex
  }
}

/// A summary of the training items, stored in checkpoints so that a resume on other data is refused.
public struct DataFingerprint: Codable, Equatable, Sendable {
  /// Items in the training cohort.
  public var items: Int
  /// SHA-256 (hex) of the ids and labels in order.
  public var sha256: String
  public var summary: String { "\(items) items, \(sha256.prefix(12))" }

  public init(_ cohort: Cohort) {
    var bytes: [UInt8] = []
    for item in cohort.items {
      bytes += Array(item.id.utf8) + [0]
      bytes += item.labels.map { UInt8(bitPattern: $0) } + [0xFF]
      bytes += Array((item.volumePath ?? "").utf8) + [0]
    }
    items = cohort.items.count
    sha256 = SHA256.hex(bytes)
  }
}

/// A pull-based stream of micro-batches: `next()` returns nil at the end of the epoch and throws when a batch
/// cannot be made.
public final class BatchStream {
  private let body: () throws -> TrainingBatch?
  public init(_ body: @escaping () throws -> TrainingBatch?) { self.body = body }
  public func next() throws -> TrainingBatch? { try body() }
}

/// Training data with a deterministic order: batch `b` of epoch `e` is the same on every run, so a resumed run
/// continues with exactly the batches an uninterrupted one would have seen.
public protocol TrainingData: AnyObject {
  /// Micro-batches in one epoch.
  var batchesPerEpoch: Int { get }
  /// The micro-batches of `epoch` starting at `startBatch` (those before it are not made at all).
  func stream(epoch: Int, startBatch: Int) throws -> BatchStream
}

/// Everything about a run that is not the model or the data.
public struct TrainingRun {
  public var kind: ModelKind
  /// The run folder: `config.json`, `metrics.jsonl`, `checkpoints/`.
  public var output: URL
  public var config: GreenRFMConfig
  /// The stage's settings after command-line overrides.
  public var train: TrainConfig
  public var seed: UInt64
  public var device: Device
  public var schema: LabelSchema
  /// The text encoder's folder (its config and vocabulary are copied into every checkpoint).
  public var textFolder: URL?
  public var textConfig: BertConfig?
  public var initializedFrom: [String: String] = [:]
  /// What the run trains on (checked on resume).
  public var dataFingerprint: DataFingerprint?
  /// Data-parallel training: the joined process group (nil = one process). Each rank trains on its shard
  /// (`DataShard`), gradients are averaged over the ranks, and only rank 0 writes checkpoints, metrics and config.
  public var group: ProcessGroup?
  /// BatchNorm statistics over the global batch (`DataParallel.synchroniseBatchNorm`) instead of each rank's batch.
  public var syncBatchNorm = false
  /// The rank and the world size (0 and 1 without a group).
  public var rank: Int { group?.rank ?? 0 }
  public var worldSize: Int { group?.worldSize ?? 1 }
  /// Rank 0 writes the run's files.
  public var isMainRank: Bool { rank == 0 }

  public init(kind: ModelKind, output: URL, config: GreenRFMConfig, train: TrainConfig, seed: UInt64, device: Device,
              schema: LabelSchema, textFolder: URL? = nil, textConfig: BertConfig? = nil) {
    self.kind = kind
    self.output = output
    self.config = config
    self.train = train
    self.seed = seed
    self.device = device
    self.schema = schema
    self.textFolder = textFolder
    self.textConfig = textConfig
  }

  public var checkpointsFolder: URL { output.appendingPathComponent("checkpoints") }
}

/// What `Trainer.fit` did.
public struct TrainingSummary: Sendable {
  public var startStep: Int
  public var step: Int
  public var totalSteps: Int
  public var lastCheckpoint: URL?
  public var metrics: [String: Double]
  /// True when the run stopped before `totalSteps` (interrupt or `stopAfterSteps`).
  public var stoppedEarly: Bool
}

/// The training loop shared by stage 1 (image, text) and stage 2: micro-batches with gradient accumulation,
/// AdamW with a cosine schedule after a linear warm-up, optional gradient clipping, bf16 autocast, periodic
/// atomic checkpoints, exact resume, metrics as JSONL, and a progress line with loss, rate and ETA.
public final class Trainer {
  public typealias LossFunction = (TrainingBatch) throws -> (loss: Tensor, terms: [String: Double])

  public let run: TrainingRun
  public let model: Module
  public let data: TrainingData
  let lossFunction: LossFunction
  let validation: (() throws -> [String: Double])?
  let logger: Logger
  /// Stop (after saving a checkpoint) once this many optimizer steps are done in total; the schedule still
  /// spans the full run, so a later `--resume` continues it exactly.
  public var stopAfterSteps: Int?
  /// Polled after every optimizer step; true stops the run after a checkpoint (e.g. on SIGINT).
  public var shouldStop: () -> Bool = { false }
  /// Weight-decay groups: one group for all parameters (the authors' stage-1 image optimiser) or no decay on
  /// biases and LayerNorm weights.
  public var exemptBiasAndNormFromDecay = true
  /// Parameter-name prefixes that learn at `headLearningRateScale` × the learning rate: the new stage-1 head
  /// (`head.`) by default; stage 2 sets its new projections and shared classifier.
  public var headPrefixes: [String] = ["head."]
  /// Whether each micro-batch re-seeds libtorch's global generator (the one dropout draws from) from the seed and
  /// the step, which makes a run and its resume draw the same dropout masks. A stage that draws nothing from it (the
  /// image stage: no dropout, crops from its own seeded generators) turns this off, so that a text stage training
  /// beside it on another thread (`greenrfm demo`) owns the global generator alone and stays reproducible.
  public var reseedsGlobalGenerator = true

  public init(run: TrainingRun, model: Module, data: TrainingData, validation: (() throws -> [String: Double])? = nil,
              logger: Logger = Logger(label: "greenrfm.train"), loss: @escaping LossFunction) {
    self.run = run
    self.model = model
    self.data = data
    self.lossFunction = loss
    self.validation = validation
    self.logger = logger
  }

  /// Whether training puts the 3D convolution weights channels-last (`Module.convertParameters(to:)`), before the
  /// optimizer has state so that AdamW creates it in the same layout; checkpoints stay contiguous. Only under bf16
  /// autocast on the CPU and for crops of at least 1,000,000 voxels: there oneDNN's bf16 kernels prefer it (the lite
  /// step at the 96×192×192 chest crop: 3–4 % faster), while the demo's 20×40×40 crops at batch 8 run 23 % slower
  /// with it, and fp32 gains nothing (docs/PERFORMANCE.md).
  public static func usesChannelsLastWeights(device: Device, precision: Precision, crop: [Int]) -> Bool {
    device == .cpu && precision == .bf16 && crop.reduce(1, *) >= 1_000_000
  }

  /// Optimizer steps per epoch (leftover micro-batches that do not fill a step are skipped).
  public var stepsPerEpoch: Int { data.batchesPerEpoch / run.train.gradAccum }

  /// The steps the schedule spans.
  public var totalSteps: Int { run.train.maxSteps ?? run.train.epochs * stepsPerEpoch }

  /// Trains to the end (or to `stopAfterSteps`), resuming from the newest checkpoint in the output folder when
  /// `resume` is true.
  /// - Throws: `GreenRFMError` for a resume that does not match the run, a non-finite loss, or I/O failures.
  public func fit(resume: Bool) throws -> TrainingSummary {
    let train = run.train
    guard stepsPerEpoch >= 1 else {
      throw GreenRFMError.invalidArgument(
        name: "batch size", reason: "\(data.batchesPerEpoch) micro-batch(es) per epoch cannot fill one optimizer step "
          + "with --grad-accum \(train.gradAccum); lower --batch-size or --grad-accum")
    }
    let total = totalSteps
    let fm = FileManager.default
    try fm.createDirectory(at: run.output, withIntermediateDirectories: true)
    try model.to(run.device)
    if Self.usesChannelsLastWeights(device: run.device, precision: train.precision, crop: run.config.data.trainingCrop) {
      try model.convertParameters(to: .channelsLast3d)
    }
    model.train()
    if run.syncBatchNorm { DataParallel.synchroniseBatchNorm(model, group: run.group) }
    let main = run.isMainRank

    let named = model.namedParameters().filter { $0.tensor.requiresGrad }
    var groups = exemptBiasAndNormFromDecay
      ? ParameterGroup.splitForWeightDecay(named, weightDecay: train.weightDecay,
                                           exempt: { ParameterGroup.isExemptFromDecay($0) || $0 == "logitScale" })
      : [ParameterGroup(parameters: named, weightDecay: train.weightDecay)]
    if train.headLearningRateScale != 1 {
      // The new layers (`headPrefixes`) in groups of their own at the scaled rate.
      let prefixes = headPrefixes
      func isHead(_ name: String) -> Bool { prefixes.contains { name.hasPrefix($0) } }
      groups = groups.flatMap { g -> [ParameterGroup] in
        let head = g.parameters.filter { isHead($0.name) }
        let rest = g.parameters.filter { !isHead($0.name) }
        return [ParameterGroup(parameters: rest, weightDecay: g.weightDecay),
                ParameterGroup(parameters: head, weightDecay: g.weightDecay, learningRateScale: train.headLearningRateScale)]
          .filter { !$0.parameters.isEmpty }
      }
    }
    let optimizer = try AdamW(groups: groups, learningRate: train.learningRate, eps: train.adamEpsilon)
    // A warm-up longer than a (short) run is cut to a tenth of it.
    let warmup = train.warmupSteps < total ? train.warmupSteps : total / 10
    let schedule = try CosineWithWarmup(baseLR: train.learningRate, warmupSteps: warmup, totalSteps: max(total, 1),
                                        floorLR: train.floorLearningRate)

    var step = 0, epoch = 0, nextBatch = 0
    var lastMetrics: [String: Double] = [:]
    let existing = try Checkpoint.find(run.checkpointsFolder, logger: logger)
    var resumedStep: Int64 = -1
    if resume, let folder = existing {
      let record = try Checkpoint.record(folder)
      try checkCompatible(record, folder: folder, totalSteps: total)
      let report = try model.loadStateDict(try Checkpoint.weights(folder), strict: false)
      guard report.isClean else { throw GreenRFMError.checkpoint(path: folder.path, reason: "weights do not fit the model: \(report)") }
      guard let state = try Checkpoint.optimizerState(folder) else {
        throw GreenRFMError.checkpoint(path: folder.path, reason: "optimizer.safetensors is missing, so the run cannot continue exactly; start a new --output")
      }
      try optimizer.loadStateDict(state)
      (step, epoch, nextBatch, lastMetrics) = (record.step, record.epoch, record.nextBatch, record.metrics)
      resumedStep = Int64(step)
      logger.info("resuming from \(folder.path) at step \(step)/\(total) (epoch \(epoch + 1), batch \(nextBatch))")
    } else if resume {
      logger.notice("--resume: no checkpoint in \(run.checkpointsFolder.path) yet; starting from step 0")
    } else if existing != nil {
      throw GreenRFMError.invalidArgument(
        name: "--output", reason: "\(run.output.path) already holds a training run; pass --resume to continue it, or choose another --output")
    }
    if resume, let group = run.group, group.worldSize > 1 {
      // Every rank reads the checkpoint (the output folder is shared); they must all continue from the same one. On
      // every rank, also one that found none (−1), so that no rank meets the others at a different collective.
      let steps = try group.allGather([resumedStep])
      guard Set(steps).count == 1 else {
        throw GreenRFMError.checkpoint(
          path: run.checkpointsFolder.path, reason: "the ranks found different checkpoints (steps \(steps), −1 = none); "
            + "--resume of a data-parallel run needs the same --output folder visible to every rank")
      }
    }
    if let group = run.group, group.worldSize > 1 {
      // Rank 0's weights and buffers everywhere (as DistributedDataParallel's constructor does); a no-op after a
      // resume, which loads the same checkpoint on every rank.
      try group.broadcastTensors(model.namedParameters().map(\.tensor) + model.namedBuffers().map(\.tensor))
      let bn = run.syncBatchNorm ? ", synchronised BatchNorm" : ""
      logger.info("data-parallel: rank \(group.rank) of \(group.worldSize) (\(group.backend)), \(data.batchesPerEpoch) micro-batch(es) per epoch on this rank\(bn)")
    }
    let startStep = step
    let metricsURL = run.output.appendingPathComponent("metrics.jsonl")
    var metricsHandle: FileHandle?
    if main {
      try writeResolvedConfig()
      try trimMetrics(metricsURL, keepingThrough: step)
      metricsHandle = try openForAppend(metricsURL)
    }
    defer { try? metricsHandle?.close() }

    let progress: ProgressReporter? = main ? ProgressReporter(label: run.kind.rawValue, total: total) : nil
    var lastCheckpoint: URL?
    var sums: [String: Double] = [:], sumCount = 0
    var stepStart = Date()
    var stopped = false
    var savedStep = -1
    // In a data-parallel run every rank stops at the same step: a stop request (Ctrl-C reaches the ranks at
    // different moments) is combined over the ranks after each step.
    let group = run.group
    func stopRequested() throws -> Bool {
      let local = shouldStop()
      guard let group, group.worldSize > 1 else { return local }
      return try group.allReduce([local ? 1 : 0], op: .max)[0] > 0
    }

    func save() throws {
      guard main else { savedStep = step; return }
      let name = String(format: "step-%08d", step)
      var record = CheckpointRecord(
        kind: run.kind, step: step, totalSteps: total, epoch: epoch, nextBatch: nextBatch, config: run.config, train: train,
        seed: run.seed, schema: run.schema, textConfig: run.textConfig, metrics: lastMetrics,
        initializedFrom: run.initializedFrom, createdAt: ISO8601DateFormatter().string(from: Date()), libtorch: LibTorch.version)
      record.data = run.dataFingerprint
      record.worldSize = run.worldSize
      record.syncBatchNorm = run.syncBatchNorm
      lastCheckpoint = try Checkpoint.save(into: run.checkpointsFolder, name: name, model: model, optimizer: optimizer,
                                           record: record, textFolder: run.textFolder, keep: train.keepCheckpoints)
      savedStep = step
      logger.debug("checkpoint \(name) written")
    }

    func writeMetrics(_ values: [String: Double]) throws {
      guard let metricsHandle else { return }
      var line: [String: Any] = ["step": step, "epoch": epoch + 1]
      for (k, v) in values { line[k] = v.isFinite ? v : String(v) }
      let data = try JSONSerialization.data(withJSONObject: line, options: [.sortedKeys, .withoutEscapingSlashes])
      try metricsHandle.write(contentsOf: data + Data("\n".utf8))
    }

    func validate() throws {
      // Every rank validates (eval-mode BatchNorm calls no collective), so that no rank waits at a collective for
      // the length of a validation pass; only rank 0 writes and logs.
      guard let validation else { return }
      let values = try withNoGrad { () throws -> [String: Double] in
        model.eval()
        defer { model.train() }
        return try validation()
      }
      lastMetrics.merge(values) { $1 }
      try writeMetrics(values)
      if main, let macro = values["val/auroc/macro"] {
        logger.info("epoch \(epoch + 1): validation macro AUROC \(String(format: "%.4f", macro))")
      }
    }

    let usable = stepsPerEpoch * train.gradAccum
    outer: while step < total {
      if let limit = stopAfterSteps, step >= limit { stopped = true; break }
      let stream = try data.stream(epoch: epoch, startBatch: nextBatch)
      var micro = 0
      while step < total {
        // The end of the epoch: all usable micro-batches done, or the stream ran out (a loader that skipped
        // batches whose items all failed). A partly accumulated gradient is dropped.
        guard nextBatch < usable, let batch = try stream.next(), (batch.batchIndex ?? nextBatch) < usable else {
          if micro > 0 { try optimizer.zeroGrad() }
          sums = [:]
          sumCount = 0
          try validate()
          epoch += 1
          nextBatch = 0
          try save()
          if try stopRequested() { stopped = step < total; break outer }
          continue outer
        }
        // Each rank draws its own dropout masks (rank 0 of one process draws what a single-process run draws).
        if reseedsGlobalGenerator {
          LibTorch.manualSeed(Self.mix(run.seed, UInt64(step), UInt64(micro * run.worldSize + run.rank)))
        }
        let (loss, terms) = try withAutocast(device: run.device, dtype: .bfloat16, enabled: train.precision == .bf16) {
          try lossFunction(batch)
        }
        let value = try loss.item()
        guard value.isFinite else {
          throw GreenRFMError.invalidData(
            path: run.output.path, reason: "the loss became \(value) at step \(step + 1); lower the learning rate, use fp32, "
              + "or check the inputs; the last checkpoint on disk (step \(lastCheckpoint == nil ? startStep : step)) is intact")
        }
        try (train.gradAccum > 1 ? loss / Double(train.gradAccum) : loss).backward()
        sums["train/loss", default: 0] += value
        for (k, v) in terms { sums[k, default: 0] += v }
        sumCount += 1
        // The position counts the loader's batch numbers, so a skipped batch is not replayed on resume.
        nextBatch = (batch.batchIndex ?? nextBatch) + 1
        micro += 1
        guard micro == train.gradAccum else { continue }

        let lr = schedule.learningRate(at: step)
        optimizer.learningRate = lr
        // The mean gradient over the ranks (DistributedDataParallel's all-reduce, in 25 MiB buckets after backward).
        try run.group?.averageGradients(optimizer.allParameters)
        // The norm is always measured (clipping to infinity changes nothing); a non-finite one stops the run
        // before the weights are touched, so no checkpoint ever holds NaN or infinity.
        let gradNorm = try clipGradNorm(optimizer.allParameters, maxNorm: train.clipGradNorm ?? .infinity)
        guard gradNorm.isFinite else {
          throw GreenRFMError.invalidData(
            path: run.output.path, reason: "the gradient norm became \(gradNorm) at step \(step + 1)"
              + (train.precision == .bf16 ? " under bf16 autocast; use --precision fp32" : "; lower the learning rate or check the inputs")
              + "; the weights were not updated and the checkpoints on disk are intact")
        }
        try optimizer.step()
        try optimizer.zeroGrad()
        step += 1
        micro = 0
        let seconds = Date().timeIntervalSince(stepStart)
        stepStart = Date()
        let meanLoss = sums["train/loss", default: 0] / Double(max(sumCount, 1))
        progress?.update(completed: step, detail: String(format: "loss %.4f lr %.2e", meanLoss, lr))
        if step % train.logEvery == 0 || step == total || nextBatch >= usable {
          var values = sums.mapValues { $0 / Double(max(sumCount, 1)) }
          values["lr"] = lr
          values["time/stepSeconds"] = seconds
          values["train/gradNorm"] = gradNorm
          lastMetrics.merge(values) { $1 }
          try writeMetrics(values)
          sums = [:]
          sumCount = 0
        }
        if nextBatch >= usable { continue }  // the epoch-end branch above validates and saves
        let stopNow = try stopRequested()
        if step % train.checkpointEvery == 0 || step == total || stopNow
          || (stopAfterSteps.map { step >= $0 } ?? false) {
          try save()
        }
        if stopNow { stopped = step < total; break outer }
        if let limit = stopAfterSteps, step >= limit { stopped = step < total; break outer }
      }
    }
    if step == total, step > startStep, !stopped {
      if nextBatch >= usable {
        // The last step ended an epoch.
        try validate()
        epoch += 1
        nextBatch = 0
        try save()
      } else if validation != nil {
        // Validate at the end of a run that did not end on an epoch boundary.
        try validate()
        try save()
      }
    }
    if savedStep != step, step > startStep { try save() }
    return TrainingSummary(startStep: startStep, step: step, totalSteps: total, lastCheckpoint: lastCheckpoint,
                           metrics: lastMetrics, stoppedEarly: stopped)
  }

  /// A resume must continue the same run: same kind, config, stage settings (except the run length is fixed by
  /// the checkpoint) and seed.
  func checkCompatible(_ record: CheckpointRecord, folder: URL, totalSteps: Int) throws {
    var problems: [String] = []
    if record.kind != run.kind { problems.append("it is a \(record.kind.rawValue) checkpoint, this is \(run.kind.rawValue)") }
    // Settings that do not change the result (threads, queue, cache location) may differ.
    func neutral(_ c: GreenRFMConfig) -> GreenRFMConfig {
      var c = c
      c.data.workers = 0
      c.data.queueDepth = 1
      c.data.cacheFolder = nil
      return c
    }
    problems += Self.differences(neutral(record.config), neutral(run.config), prefix: "preset")
    problems += Self.differences(record.train, run.train, prefix: "train")
    if record.seed != run.seed { problems.append("seed \(record.seed) → \(run.seed)") }
    if record.totalSteps != totalSteps { problems.append("run length \(record.totalSteps) → \(totalSteps) steps") }
    if record.schema.findings.map(\.key) != run.schema.findings.map(\.key) { problems.append("the label schema differs") }
    if (record.worldSize ?? 1) != run.worldSize {
      problems.append("world size \(record.worldSize ?? 1) → \(run.worldSize) (each rank's shard of the epoch would change)")
    }
    if (record.syncBatchNorm ?? false) != run.syncBatchNorm {
      problems.append("synchronised BatchNorm \(record.syncBatchNorm ?? false) → \(run.syncBatchNorm)")
    }
    if let a = record.data, let b = run.dataFingerprint, a != b {
      problems.append("the training data differ (items, ids or labels: \(a.summary) → \(b.summary))")
    }
    if !problems.isEmpty {
      throw GreenRFMError.checkpoint(
        path: folder.path, reason: "cannot resume: " + problems.joined(separator: "; ")
          + ". Resume with the same options, or start a new --output")
    }
  }

  /// The dotted keys whose JSON values differ between two encodable values.
  static func differences<T: Encodable>(_ a: T, _ b: T, prefix: String) -> [String] {
    let encoder = JSONEncoder()
    guard let da = try? encoder.encode(a), let db = try? encoder.encode(b),
          let oa = try? JSONSerialization.jsonObject(with: da) as? [String: Any],
          let ob = try? JSONSerialization.jsonObject(with: db) as? [String: Any] else { return [] }
    var out: [String] = []
    func walk(_ x: [String: Any], _ y: [String: Any], _ path: String) {
      for key in Set(x.keys).union(y.keys).sorted() {
        let p = "\(path).\(key)"
        if let dx = x[key] as? [String: Any], let dy = y[key] as? [String: Any] { walk(dx, dy, p); continue }
        let vx = x[key].map { "\($0)" } ?? "unset", vy = y[key].map { "\($0)" } ?? "unset"
        if vx != vy { out.append("\(p) \(vx) → \(vy)") }
      }
    }
    walk(oa, ob, prefix)
    return out
  }

  /// Writes `config.json` beside the outputs: the resolved preset, the stage settings and the run facts.
  func writeResolvedConfig() throws {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
    struct Resolved: Encodable {
      var kind: String, seed: UInt64, device: String, schema: String, findings: [String]
      var preset: GreenRFMConfig, train: TrainConfig, textModel: String?, initializedFrom: [String: String]
      var libtorch: String
    }
    let resolved = Resolved(kind: run.kind.rawValue, seed: run.seed, device: "\(run.device)", schema: run.schema.name,
                            findings: run.schema.findings.map(\.key), preset: run.config, train: run.train,
                            textModel: run.textFolder?.path, initializedFrom: run.initializedFrom, libtorch: LibTorch.version)
    try AtomicWrite.write(try encoder.encode(resolved), to: run.output.appendingPathComponent("config.json"))
  }

  /// Drops metric lines after `step` (they belong to steps a resumed run will redo).
  func trimMetrics(_ url: URL, keepingThrough step: Int) throws {
    guard let text = try? String(contentsOf: url, encoding: .utf8) else { return }
    let kept = text.split(separator: "\n").filter { line in
      guard let data = line.data(using: .utf8),
            let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
            let s = object["step"] as? Int else { return false }
      return s <= step
    }
    try AtomicWrite.write(Data(kept.map { $0 + "\n" }.joined().utf8), to: url)
  }

  func openForAppend(_ url: URL) throws -> FileHandle {
    if !FileManager.default.fileExists(atPath: url.path) {
      FileManager.default.createFile(atPath: url.path, contents: nil)
    }
    let handle = try FileHandle(forWritingTo: url)
    try handle.seekToEnd()
    return handle
  }

  /// splitmix64 of the run seed, the optimizer step and the micro-batch: the libtorch seed of one micro-batch.
  static func mix(_ seed: UInt64, _ step: UInt64, _ micro: UInt64) -> UInt64 {
    var z = seed &+ step &* 0x9E37_79B9_7F4A_7C15 &+ micro &* 0xD1B5_4A32_D192_ED03
    z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
    z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
    return (z ^ (z >> 31)) & 0x7FFF_FFFF_FFFF_FFFF
  }
}
