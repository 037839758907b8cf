import AtomicWrite
import ArgumentParser
import Foundation
import GreenRFM
import Logging
import Reports
import Torch
import TorchNN

/// `greenrfm train`: the two stages of GreenRFM pre-training.
struct TrainCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "train",
    abstract: "Pre-train GreenRFM: stage 1 (each encoder on the labels), then stage 2 (alignment).",
    discussion: """
      Stage 1 trains the image encoder (3D ResNet-18) or the text encoder (BERT) alone with a linear head on the \
      schema's findings; stage 2 starts from both stage-1 checkpoints and aligns them (contrastive loss + one \
      classifier shared by the image and text latents). Every run writes OUTPUT/config.json (the resolved \
      settings), OUTPUT/metrics.jsonl and OUTPUT/checkpoints/ (atomic; --resume continues exactly where the newest \
      one stopped, also after a crash or Ctrl-C).
      """,
    subcommands: [TrainStage1.self, TrainStage2.self])
}

enum Modality: String, ExpressibleByArgument, CaseIterable { case image, text }

/// A failure found while running (not a usage error): printed as "Error: …" without the usage text, exit 1.
struct CommandError: Error, CustomStringConvertible {
  let description: String
  init(_ description: String) { self.description = description }
}

/// Where the items come from (shared by train, predict and eval).
struct CohortOptions: ParsableArguments {
  @Option(help: "Dataset layout: reports, manifest, ct-rate, rad-chestct, merlin (default: manifest with --manifest, else reports).")
  var layout: String?

  @Option(help: "Reports CSV (reports, ct-rate, merlin layouts).")
  var reports: String?

  @Option(help: "Labels CSV (1/0/-1 columns titled with the findings' names); default: the reports CSV itself.")
  var labels: String?

  @Option(help: "Volumes folder (ct-rate, rad-chestct, merlin layouts).")
  var volumes: String?

  @Option(help: "Manifest CSV: id, volume (path), report (optional), then one column per finding.")
  var manifest: String?

  @Option(help: "The id column (default: from a known layout).")
  var idColumn: String?

  @Option(help: "Text column(s), comma-separated, joined in order (default: from a known layout).")
  var textColumns: String?

  @Option(help: "Schema name (chest-ct-18, abdomen-ct-30, knee-mri-14, spine-mri-9) or a schema JSON path.")
  var schema: String = "chest-ct-18"

  @Flag(help: "Allow findings without a label column (their labels become -1).")
  var allowMissingFindings = false

  @Option(help: "Leave out the first N items (before --limit): --limit 640 trains on the first 640, --skip 640 predicts the rest.")
  var skip: Int?

  @Option(help: "Use only the first N items (after --skip).")
  var limit: Int?

  func validate() throws {
    if let l = limit, l < 1 { throw ValidationError("--limit must be at least 1") }
    if let s = skip, s < 0 { throw ValidationError("--skip must be at least 0") }
    if let layout, !["reports", "manifest", "ct-rate", "rad-chestct", "merlin"].contains(layout) {
      throw ValidationError("--layout must be one of reports, manifest, ct-rate, rad-chestct, merlin")
    }
  }

  static func list(_ text: String?) -> [String]? {
    text.map { $0.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty } }
  }

  /// The name of the id column as the input spells it (for output CSVs that must join back to it).
  var idColumnName: String {
    if let idColumn { return idColumn }
    switch layout ?? (manifest != nil ? "manifest" : "reports") {
    case "manifest": return "id"
    case "ct-rate": return "VolumeName"
    case "rad-chestct": return "NoteAcc_DEID"
    default:
      if let reports, let table = try? CSVTable(contentsOf: URL(fileURLWithPath: reports)),
         let found = try? ReportTable.layout(header: table.header, idColumn: nil, textColumns: nil, path: reports) {
        return found.idColumn
      }
      return "id"
    }
  }

  /// Reads the cohort the options describe.
  func load() throws -> Cohort {
    let labelSchema = try LabelSchema.load(schema)
    let kind = layout ?? (manifest != nil ? "manifest" : "reports")
    func need(_ value: String?, _ flag: String) throws -> URL {
      guard let value else { throw CommandError("--layout \(kind) needs \(flag)") }
      return URL(fileURLWithPath: value)
    }
    var cohort: Cohort
    switch kind {
    case "manifest":
      cohort = try CohortLayout.manifest(csv: try need(manifest, "--manifest"), schema: labelSchema,
                                         idColumn: idColumn ?? "id")
    case "ct-rate":
      cohort = try CohortLayout.ctRate(volumes: try need(volumes, "--volumes"), reportsCSV: try need(reports, "--reports"),
                                       labelsCSV: try need(labels, "--labels"), schema: labelSchema)
    case "rad-chestct":
      cohort = try CohortLayout.radChestCT(volumes: try need(volumes, "--volumes"), labelsCSV: try need(labels, "--labels"),
                                           schema: labelSchema)
    case "merlin":
      cohort = try CohortLayout.merlin(volumes: try need(volumes, "--volumes"), reportsCSV: try need(reports, "--reports"),
                                       labelsCSV: labels.map { URL(fileURLWithPath: $0) }, schema: labelSchema)
    default:
      cohort = try CohortLayout.reports(csv: try need(reports, "--reports"), idColumn: idColumn,
                                        textColumns: Self.list(textColumns), labelsCSV: labels.map { URL(fileURLWithPath: $0) },
                                        labelsIDColumn: nil, schema: labelSchema, allowMissingFindings: allowMissingFindings)
    }
    return try finish(cohort)
  }

  /// Unlabelled volumes named on the command line (`CohortLayout.volumeFiles`), or, when `volumeFiles` is empty,
  /// the cohort the options describe (`load()`).
  /// - Throws: `ValidationError` when volume files come with --manifest, --reports, --labels, --volumes or --layout;
  ///   the layout's errors (`GreenRFMError` naming the file).
  func load(volumeFiles: [String]) throws -> Cohort {
    guard !volumeFiles.isEmpty else { return try load() }
    try Self.checkVolumeFiles(volumeFiles, self)
    let labelSchema = try LabelSchema.load(schema)
    return try finish(CohortLayout.volumeFiles(volumeFiles.map { URL(fileURLWithPath: $0) }, schema: labelSchema))
  }

  /// Volume files on the command line replace the cohort options; both at once is a usage error.
  static func checkVolumeFiles(_ volumeFiles: [String], _ options: CohortOptions) throws {
    guard !volumeFiles.isEmpty else { return }
    let given = [("--layout", options.layout), ("--manifest", options.manifest), ("--reports", options.reports),
                 ("--labels", options.labels), ("--volumes", options.volumes)].filter { $0.1 != nil }.map(\.0)
    if !given.isEmpty {
      throw ValidationError("give volume files or \(given.joined(separator: ", ")), not both")
    }
  }

  /// Applies --skip and --limit, and logs the cohort's warnings and skipped rows.
  private func finish(_ loaded: Cohort) throws -> Cohort {
    var cohort = loaded
    if let skip, skip > 0 {
      guard skip < cohort.items.count else {
        throw CommandError("--skip \(skip) leaves no items (\(cohort.name) has \(cohort.items.count))")
      }
      cohort = cohort.subset(skip..<cohort.items.count)
    }
    if let limit, limit < cohort.items.count { cohort = cohort.subset(0..<limit) }
    let logger = Logger(label: "greenrfm.data")
    for warning in cohort.warnings { logger.warning("\(warning)") }
    if !cohort.skipped.isEmpty {
      logger.warning("\(cohort.skipped.count) row(s) skipped: \(cohort.skipped.prefix(5).map { "\($0.id): \($0.reason)" }.joined(separator: "; "))\(cohort.skipped.count > 5 ? "; …" : "")")
    }
    return cohort
  }
}

/// The training options both stages share.
struct TrainingOptions: ParsableArguments {
  @Option(help: "Preset name (greenrfm-lite, greenrfm-standard) or a preset JSON file.")
  var preset: String = "greenrfm-lite"

  @Option(help: "Run folder: config.json, metrics.jsonl, checkpoints/.")
  var output: String

  @Option(help: "Epochs (default: the preset's).")
  var epochs: Int?

  @Option(help: "Optimizer steps in all; the learning-rate schedule spans them (default: epochs × steps per epoch).")
  var maxSteps: Int?

  @Option(help: "Items per micro-batch (default: the preset's).")
  var batchSize: Int?

  @Option(help: "Micro-batches per optimizer step (gradient accumulation).")
  var gradAccum: Int?

  @Option(name: .customLong("lr"), help: "Peak learning rate (default: the preset's).")
  var learningRate: Double?

  @Option(help: "Linear warm-up steps before the cosine decay.")
  var warmupSteps: Int?

  @Option(help: "The new layers' learning rate as a multiple of --lr: the linear head in stage 1, the projections and shared classifier in stage 2 (default: the preset's).")
  var headLRScale: Double?

  @Option(help: "fp32 or bf16 (autocast).")
  var precision: String?

  @Option(help: "What -1 labels do in BCE: ignore (masked, default), negative, positive, soft (target 0.5).")
  var uncertainPolicy: String?

  @Option(help: "Positive weights in BCE: none or balanced (negatives/positives per finding, clamped to [1, 100]).")
  var posWeight: String?

  @Option(help: "Save a checkpoint every N optimizer steps (also at each epoch's end and the run's end).")
  var checkpointEvery: Int?

  @Option(help: "Hold out the last N items for validation (macro AUROC after every epoch).")
  var validationLast: Int?

  @Option(help: "Background threads reading volumes (default: the preset's).")
  var workers: Int?

  @Option(help: "Preprocessing cache folder (default: OUTPUT/cache; share it between runs to preprocess once).")
  var cache: String?

  @Option(help: "Text encoder: a Hugging Face BERT folder (default: .models/all-MiniLM-L6-v2 or $GREENRFM_TEXT_MODEL).")
  var textModel: String?

  @Option(help: "At most this many WordPiece tokens per report (default: the preset's, 128).")
  var maxTokens: Int?

  @Flag(help: "Continue the run in OUTPUT from its newest checkpoint (same options).")
  var resume = false

  @Option(help: "Stop after this many optimizer steps in all (the schedule still spans the whole run); continue later with --resume.")
  var stopAfterSteps: Int?

  @Flag(help: "Data-parallel runs: BatchNorm statistics over the global batch (SyncBatchNorm) instead of each rank's batch.")
  var syncBatchNorm = false

  @Option(help: "Data-parallel runs (RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT set, e.g. by `greenrfm launch` or torchrun): gloo (CPU) or nccl (CUDA builds). Default: nccl on cuda, else gloo.")
  var distBackend: String?

  @Option(help: "Data-parallel runs: seconds a rank waits for the rendezvous or for any collective (a dead or stuck rank) before it stops with an error.")
  var distTimeout: Double = 1800

  func validate() throws {
    for (name, value) in [("--epochs", epochs), ("--max-steps", maxSteps), ("--batch-size", batchSize),
                          ("--grad-accum", gradAccum), ("--checkpoint-every", checkpointEvery),
                          ("--workers", workers.map { $0 + 1 }), ("--max-tokens", maxTokens), ("--stop-after-steps", stopAfterSteps)] {
      if let v = value, v < 1 { throw ValidationError("\(name) must be at least \(name == "--workers" ? 0 : 1)") }
    }
    if let v = validationLast, v < 1 { throw ValidationError("--validation-last must be at least 1") }
    if let lr = learningRate, !(lr > 0 && lr.isFinite) { throw ValidationError("--lr must be a positive number") }
    if let w = warmupSteps, w < 0 { throw ValidationError("--warmup-steps must be at least 0") }
    if let h = headLRScale, !(h > 0 && h <= 1000) { throw ValidationError("--head-lr-scale must lie in (0, 1000]") }
    if let p = precision, Precision(rawValue: p) == nil { throw ValidationError("--precision must be fp32 or bf16") }
    if let p = uncertainPolicy, UncertainLabelPolicy(rawValue: p) == nil {
      throw ValidationError("--uncertain-policy must be one of ignore, negative, positive, soft")
    }
    if let p = posWeight, PositiveWeighting(rawValue: p) == nil { throw ValidationError("--pos-weight must be none or balanced") }
    if let b = distBackend, !["gloo", "nccl"].contains(b) { throw ValidationError("--dist-backend must be gloo or nccl") }
    guard distTimeout > 0, distTimeout.isFinite else { throw ValidationError("--dist-timeout must be a positive number of seconds") }
  }

  /// The run for `kind`, joined to the data-parallel process group when the environment names one (PyTorch's
  /// contract: MASTER_ADDR, MASTER_PORT, RANK, WORLD_SIZE, LOCAL_RANK); a CUDA device becomes cuda:LOCAL_RANK.
  func makeRun(kind: ModelKind, config: GreenRFMConfig, train: TrainConfig, global: GlobalOptions, device: Device,
               schema: LabelSchema, logger: Logger) throws -> TrainingRun {
    var device = device
    let env = try DistributedEnvironment.from()
    if let env, case .cuda = device { device = .cuda(env.localRank) }
    var run = TrainingRun(kind: kind, output: URL(fileURLWithPath: output), config: config, train: train, seed: global.seed,
                          device: device, schema: schema)
    run.syncBatchNorm = syncBatchNorm
    if let env {
      let backend = distBackend ?? (device == .cpu ? "gloo" : "nccl")
      logger.info("rank \(env.rank) of \(env.worldSize): joining \(backend) at \(env.masterAddress):\(env.masterPort)")
      run.group = try ProcessGroup(env, backend: backend, timeoutSeconds: distTimeout)
    }
    return run
  }

  /// The preset with this command line's overrides applied to `stage`.
  func resolve(_ stage: WritableKeyPath<GreenRFMConfig, TrainConfig>) throws -> (GreenRFMConfig, TrainConfig) {
    var config = try GreenRFMConfig.load(preset)
    if let workers { config.data.workers = workers }
    if let cache { config.data.cacheFolder = URL(fileURLWithPath: cache).standardizedFileURL.path }
    if let textModel { config.model.textModel = textModel }
    if let maxTokens { config.model.maxTextTokens = maxTokens }
    var t = config[keyPath: stage]
    if let epochs { t.epochs = epochs }
    if let maxSteps { t.maxSteps = maxSteps }
    if let batchSize { t.batchSize = batchSize }
    if let gradAccum { t.gradAccum = gradAccum }
    if let learningRate { t.learningRate = learningRate; t.floorLearningRate = min(t.floorLearningRate, learningRate) }
    if let warmupSteps { t.warmupSteps = warmupSteps }
    if let headLRScale { t.headLearningRateScale = headLRScale }
    if let precision { t.precision = Precision(rawValue: precision)! }
    if let uncertainPolicy { t.uncertainPolicy = UncertainLabelPolicy(rawValue: uncertainPolicy)! }
    if let posWeight { t.positiveWeighting = PositiveWeighting(rawValue: posWeight)! }
    if let checkpointEvery { t.checkpointEvery = checkpointEvery }
    config[keyPath: stage] = t
    try config.validate(source: preset)
    return (config, t)
  }

  /// Splits off the last `--validation-last` items.
  func split(_ cohort: Cohort) throws -> (train: Cohort, validation: Cohort?) {
    guard let n = validationLast else { return (cohort, nil) }
    guard n < cohort.items.count else {
      throw CommandError("--validation-last \(n) leaves no training items (the cohort has \(cohort.items.count))")
    }
    let cut = cohort.items.count - n
    return (cohort.subset(0..<cut), cohort.subset(cut..<cohort.items.count))
  }

  /// Runs a trainer with Ctrl-C handling and prints the summary.
  func fit(_ trainer: Trainer, logger: Logger) throws {
    trainer.stopAfterSteps = stopAfterSteps
    let interrupt = InterruptFlag()
    trainer.shouldStop = { interrupt.isSet }
    let summary = try trainer.fit(resume: resume)
    guard trainer.run.isMainRank else { return }
    let where_ = summary.lastCheckpoint?.path
      ?? ((try? Checkpoint.find(trainer.run.checkpointsFolder))?.flatMap { $0 }?.path ?? trainer.run.checkpointsFolder.path)
    if interrupt.isSet, summary.step < summary.totalSteps {
      logger.notice("interrupted at step \(summary.step)/\(summary.totalSteps); checkpoint \(where_); continue with --resume")
      throw ExitCode(130)
    }
    var line = "\(trainer.run.kind.rawValue): step \(summary.step)/\(summary.totalSteps)"
    if let loss = summary.metrics["train/loss"] { line += String(format: ", loss %.4f", loss) }
    if let auroc = summary.metrics["val/auroc/macro"] { line += String(format: ", validation macro AUROC %.4f", auroc) }
    print(line + "\ncheckpoint: \(where_)")
    if summary.stoppedEarly { print("stopped early; continue with --resume") }
  }
}

/// Ctrl-C (SIGINT) and SIGTERM set a flag the trainer polls after every step; it then saves a checkpoint and stops.
final class InterruptFlag: @unchecked Sendable {
  private let lock = NSLock()
  private var set = false
  private var sources: [DispatchSourceSignal] = []

  init() {
    for sig in [SIGINT, SIGTERM] {
      signal(sig, SIG_IGN)
      let source = DispatchSource.makeSignalSource(signal: sig, queue: .global())
      source.setEventHandler { [weak self] in
        guard let self else { return }
        self.lock.lock()
        let again = self.set
        self.set = true
        self.lock.unlock()
        FileHandle.standardError.write(Data("\n[greenrfm] stopping after this step (a second Ctrl-C quits at once)\n".utf8))
        if again { exit(130) }
      }
      source.resume()
      sources.append(source)
    }
  }

  var isSet: Bool {
    lock.lock()
    defer { lock.unlock() }
    return set
  }
}

struct TrainStage1: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "stage1",
    abstract: "Stage 1: train the image or the text encoder alone on the findings' labels.",
    discussion: """
      Text: greenrfm train stage1 --modality text --reports ../shared/data/reports/ctrate_manual_train.csv \
      --id-column AccessionNo --text-columns report_text --schema chest-ct-18 --validation-last 160 --output runs/text-s1
      Image: greenrfm train stage1 --modality image --manifest cohort.csv --output runs/image-s1 \
      (manifest columns: id, volume, then one column per finding; see docs/DATA.md for CT-RATE, RAD-ChestCT, Merlin).
      """)

  @OptionGroup var global: GlobalOptions
  @OptionGroup var cohort: CohortOptions
  @OptionGroup var training: TrainingOptions

  @Option(help: "image or text.")
  var modality: Modality

  func run() throws {
    let device = try global.apply()
    let logger = Logger(label: "greenrfm.train")
    let stage: WritableKeyPath<GreenRFMConfig, TrainConfig> = modality == .image ? \.stage1Image : \.stage1Text
    let (config, train) = try training.resolve(stage)
    let all = try cohort.load()
    let (trainItems, validation) = try training.split(all)
    logger.info("\(modality.rawValue) stage 1: \(trainItems.items.count) training item(s)\(validation.map { ", \($0.items.count) held out" } ?? ""), \(all.schema.findings.count) findings, preset \(config.name)")
    let run = try training.makeRun(kind: modality == .image ? .stage1Image : .stage1Text, config: config, train: train,
                                   global: global, device: device, schema: all.schema, logger: logger)
    let trainer: Trainer
    switch modality {
    case .text:
      let folder = try TextModelFolder.resolve(config.model.textModel)
      trainer = try Stages.textStage1(train: trainItems, validation: validation, run: run, textFolder: folder, logger: logger)
    case .image:
      trainer = try Stages.imageStage1(train: trainItems, validation: validation, run: run, logger: logger)
    }
    try training.fit(trainer, logger: logger)
    try reportLoaderFailures(trainer, output: training.output, skipped: all.skipped, logger: logger)
  }
}

struct TrainStage2: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "stage2",
    abstract: "Stage 2: align the stage-1 image and text encoders (contrastive + shared classifier).",
    discussion: """
      greenrfm train stage2 --manifest cohort.csv --image-init runs/image-s1 --text-init runs/text-s1 --output runs/s2
      Items need both a volume and a report. The loss is contrastive (raw dot products, temperature 1, as the \
      authors train; --contrastive clip for normalised latents with a learnable scale) + (BCE(image latents) + \
      BCE(text latents)) / 2 through one shared classifier; gradients are clipped at 0.5 (preset).
      """)

  @OptionGroup var global: GlobalOptions
  @OptionGroup var cohort: CohortOptions
  @OptionGroup var training: TrainingOptions

  @Option(help: "The image stage-1 run or checkpoint.")
  var imageInit: String?

  @Option(help: "The text stage-1 run or checkpoint.")
  var textInit: String?

  @Flag(help: "Train without stage-1 checkpoints (not GreenRFM's method; for ablations).")
  var fromScratch = false

  @Option(help: "dot (raw dot products, temperature 1; default) or clip.")
  var contrastive: String?

  @Option(help: ArgumentHelp(
    "How the projections and the shared classifier start: random (the authors') or stage1Heads (seeded from the two stage-1 heads; see docs/TRAINING.md).",
    valueName: "init"))
  var alignedSpaceInit: String?

  func validate() throws {
    if let c = contrastive, ContrastiveKind(rawValue: c) == nil { throw ValidationError("--contrastive must be dot or clip") }
    if let a = alignedSpaceInit, AlignedSpaceInit(rawValue: a) == nil {
      throw ValidationError("--aligned-space-init must be random or stage1Heads")
    }
  }

  func run() throws {
    let device = try global.apply()
    let logger = Logger(label: "greenrfm.train")
    var (config, train) = try training.resolve(\.stage2)
    if let contrastive { train.contrastive = ContrastiveKind(rawValue: contrastive)!; config.stage2 = train }
    if let alignedSpaceInit { train.alignedSpaceInit = AlignedSpaceInit(rawValue: alignedSpaceInit)!; config.stage2 = train }
    let all = try cohort.load()
    if let bad = all.items.first(where: { $0.volumePath == nil || ($0.reportText ?? "").isEmpty }) {
      throw CommandError("stage 2 needs a volume and a report for every item; '\(bad.id)' lacks one")
    }
    let (trainItems, validation) = try training.split(all)
    if textInit != nil, training.textModel != nil {
      throw CommandError("--text-model conflicts with --text-init: the text encoder comes from the stage-1 checkpoint")
    }
    let textFolder = textInit == nil ? try TextModelFolder.resolve(config.model.textModel) : nil
    let run = try training.makeRun(kind: .stage2, config: config, train: train, global: global, device: device,
                                   schema: all.schema, logger: logger)
    let trainer = try Stages.stage2(train: trainItems, validation: validation, run: run,
                                    imageInit: imageInit.map { URL(fileURLWithPath: $0) },
                                    textInit: textInit.map { URL(fileURLWithPath: $0) },
                                    fromScratch: fromScratch, textFolder: textFolder, logger: logger)
    try training.fit(trainer, logger: logger)
    try reportLoaderFailures(trainer, output: training.output, skipped: all.skipped, logger: logger)
  }
}

/// Writes OUTPUT/failures.csv when the loader skipped items, and exits 1 after the run.
func reportLoaderFailures(_ trainer: Trainer, output: String, skipped: [(id: String, reason: String)],
                          logger: Logger) throws {
  guard trainer.run.isMainRank else { return }
  let failures = ((trainer.data as? VolumeBatches)?.loader.failures ?? []) + skipped.map { ($0.id, "", $0.reason) }
  try writeFailures(failures, to: URL(fileURLWithPath: output).appendingPathComponent("failures.csv"), logger: logger)
}

/// The one failures file of every batch command: `id,path,reason` rows written atomically, an error logged, exit 1.
/// Does nothing when `failures` is empty.
func writeFailures(_ failures: [(id: String, path: String, reason: String)], to url: URL, logger: Logger) throws {
  guard !failures.isEmpty else { return }
  var text = "id,path,reason\n"
  for f in failures { text += [f.id, f.path, f.reason].map { csvField($0) }.joined(separator: ",") + "\n" }
  try AtomicWrite.write(Data(text.utf8), to: url)
  logger.error("\(failures.count) item(s) could not be used and were skipped; see \(url.path)")
  throw ExitCode(1)
}
