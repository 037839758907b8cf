import ArgumentParser
import AtomicWrite
import Foundation
import GreenRFM
import Logging
import Reports
import Torch

/// `greenrfm embed`: image and text latents of a cohort from a stage-2 checkpoint.
struct EmbedCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "embed",
    abstract: "Export the image and text latents of a cohort (stage-2 checkpoint) as safetensors + id lists.",
    discussion: """
      Writes OUTPUT/embeddings.safetensors (tensors `image` [N, D] and `text` [M, D], float32, not normalised: \
      the model was trained on raw dot products), OUTPUT/image_ids.csv and OUTPUT/text_ids.csv. \
      `greenrfm eval retrieval|probe --embeddings OUTPUT` score them without the model.
      """)

  @OptionGroup var global: GlobalOptions
  @OptionGroup var cohort: CohortOptions

  @Argument(help: "Volumes to embed instead of a cohort option: NIfTI, NPZ or DICOM files, or DICOM series folders (ids: their names).")
  var volumeFiles: [String] = []

  @Option(help: "A stage-2 run or checkpoint folder.")
  var checkpoint: String

  @Option(help: "Output folder.")
  var output: String

  @Option(help: "image, text or both.")
  var modality: String = "both"

  @Option(help: "Items per batch.")
  var batchSize: Int = 4

  @Option(help: "Preprocessing cache folder (default: OUTPUT/cache).")
  var cache: String?

  func validate() throws {
    guard ["image", "text", "both"].contains(modality) else { throw ValidationError("--modality must be image, text or both") }
    if batchSize < 1 { throw ValidationError("--batch-size must be at least 1") }
    try CohortOptions.checkVolumeFiles(volumeFiles, cohort)
  }

  func run() throws {
    let device = try global.apply()
    let logger = Logger(label: "greenrfm.embed")
    let model = try LoadedModel(URL(fileURLWithPath: checkpoint), device: device)
    let items = try EvalOptions.loadCohort(cohort, volumeFiles: volumeFiles, model: model)
    let out = URL(fileURLWithPath: output)
    let embeddings = try model.embed(items, images: modality != "text", texts: modality != "image",
                                     cacheFolder: URL(fileURLWithPath: cache ?? out.appendingPathComponent("cache").path),
                                     batchSize: batchSize)
    try embeddings.write(to: out, metadata: ["checkpoint": model.folder.path, "kind": model.kind.rawValue,
                                            "latentDim": String(model.config.model.latentDim)])
    print("image latents: \(embeddings.imageIDs.count), text latents: \(embeddings.textIDs.count) → \(out.path)")
    try EvalOptions.reportFailures(EvalOptions.skipped(items) + embeddings.failures, output: out, logger: logger)
  }
}

/// `greenrfm eval`: zero-shot diagnosis, retrieval and linear probes with a readable report.
struct EvalCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "eval",
    abstract: "Evaluate a stage-2 model: zero-shot diagnosis, report↔volume retrieval, linear probes.",
    discussion: """
      Each writes OUTPUT/metrics.json (stable keys such as zeroShot/auroc/macro, zeroShot/auroc/<finding>, \
      retrieval/reportToVolume/recall@5), OUTPUT/per_finding.csv and OUTPUT/report.html (ROC curves, tables). \
      Findings whose labels hold a single class (or only -1) are reported as undefined, never as AUROC 0.5.
      """,
    subcommands: [EvalZeroShot.self, EvalRetrieval.self, EvalProbe.self])
}

/// Options every eval subcommand shares.
struct EvalOptions: ParsableArguments {
  @Option(help: "A stage-2 run or checkpoint folder.")
  var checkpoint: String?

  @Option(help: "Output folder for metrics.json, per_finding.csv, report.html.")
  var output: String

  @Option(help: "Items per batch.")
  var batchSize: Int = 4

  @Option(help: "Preprocessing cache folder (default: OUTPUT/cache).")
  var cache: String?

  @Option(help: "Bootstrap resamples for 95% confidence intervals (0: none).")
  var bootstrap: Int = 1000

  @Flag(help: "Print metrics.json to stdout.")
  var json = false

  func validate() throws {
    if batchSize < 1 { throw ValidationError("--batch-size must be at least 1") }
    if bootstrap < 0 { throw ValidationError("--bootstrap must be at least 0") }
  }

  var outputURL: URL { URL(fileURLWithPath: output) }
  var cacheURL: URL { URL(fileURLWithPath: cache ?? outputURL.appendingPathComponent("cache").path) }

  func model(device: Device) throws -> LoadedModel {
    guard let checkpoint else { throw CommandError("--checkpoint is required") }
    let model = try LoadedModel(URL(fileURLWithPath: checkpoint), device: device)
    guard model.kind == .stage2 else {
      throw CommandError("\(checkpoint) is a \(model.kind.rawValue) checkpoint; zero-shot and retrieval need a stage2 checkpoint")
    }
    return model
  }

  /// The cohort (or the volume files given as arguments), under the checkpoint's schema unless --schema names
  /// another one.
  static func loadCohort(_ options: CohortOptions, volumeFiles: [String] = [], model: LoadedModel?) throws -> Cohort {
    var options = options
    if let model, options.schema == "chest-ct-18", model.schema.name != "chest-ct-18" { options.schema = model.schema.name }
    return try options.load(volumeFiles: volumeFiles)
  }

  func finish(_ report: EvaluationReport, logger: Logger) throws {
    let files = try report.write(to: outputURL)
    if json {
      print(String(decoding: try report.metricsJSON(), as: UTF8.self))
    } else {
      if let c = report.classification { print(MetricsCommand.table(c)) }
      if let r = report.retrieval {
        for (name, m) in [("report→volume", r.reportToVolume), ("volume→report", r.volumeToReport)] {
          let ks = m.recallAtK.keys.sorted().map { k in String(format: "R@%d %.3f (chance %.3f)", k, m.recallAtK[k]!, min(1, Double(k) / Double(max(m.poolSize, 1)))) }
          print("\(name) (pool \(m.poolSize), \(r.similarity.rawValue)): " + ks.joined(separator: ", ")
                + String(format: ", mean rank %.1f, median rank %.1f", m.meanRank, m.medianRank))
        }
      }
      if let v = report.volumeToVolume { print("volume→volume MAP@\(v.k): \(v.value.map { String(format: "%.3f", $0) } ?? "undefined")") }
      print("wrote " + files.map(\.lastPathComponent).joined(separator: ", ") + " to \(outputURL.path)")
    }
  }

  static func reportFailures(_ failures: [(id: String, path: String, reason: String)], output: URL, logger: Logger) throws {
    try writeFailures(failures, to: output.appendingPathComponent("failures.csv"), logger: logger)
  }

  /// Rows the cohort reader skipped (missing volume files, duplicate ids), as failures.
  static func skipped(_ cohort: Cohort) -> [(id: String, path: String, reason: String)] {
    cohort.skipped.map { ($0.id, "", $0.reason) }
  }
}

struct EvalZeroShot: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "zero-shot",
    abstract: "Zero-shot diagnosis: each finding's probability from a positive and a negative prompt.",
    discussion: """
      p(finding) = softmax(s(image, positive prompt), s(image, negative prompt))[0], s the trained similarity (dot \
      product). Templates: \(ZeroShot.templateNames.joined(separator: ", ")) (default: there-is, "There is X." / \
      "There is no X."), "all" for the ensemble of the authors' five, or a JSON file of {"positive", "negative"} \
      pairs with a {finding} placeholder. Writes OUTPUT/zero_shot_probabilities.csv too (id, one column per finding), \
      also for volumes without labels.
      """)

  @OptionGroup var global: GlobalOptions
  @OptionGroup var cohort: CohortOptions
  @OptionGroup var eval: EvalOptions

  @Option(help: "Prompt template name, 'all' (ensemble), or a JSON file.")
  var template: String = "there-is"

  @Option(help: "dot or cosine (default: as the model was trained: dot, or cosine for --contrastive clip).")
  var similarity: String?

  @Option(help: "max-f1, youden, or a fixed number (default 0.5).")
  var threshold: String = "0.5"

  func validate() throws {
    if let similarity, Similarity(rawValue: similarity) == nil { throw ValidationError("--similarity must be dot or cosine") }
    guard Metrics.ThresholdRule(parsing: threshold) != nil else { throw ValidationError("--threshold must be max-f1, youden or a number") }
  }

  func run() throws {
    let device = try global.apply()
    let logger = Logger(label: "greenrfm.eval")
    let model = try eval.model(device: device)
    let items = try EvalOptions.loadCohort(cohort, model: model)
    let templates = try Self.templates(template)
    let scores = try model.zeroShotScores(items, templates: templates, similarity: similarity.flatMap(Similarity.init(rawValue:)),
                                          cacheFolder: eval.cacheURL, batchSize: eval.batchSize)
    guard !scores.ids.isEmpty else {
      try EvalOptions.reportFailures(EvalOptions.skipped(items) + scores.failures, output: eval.outputURL, logger: logger)
      throw CommandError("no volume could be embedded")
    }
    let labelsByID = Dictionary(items.items.map { ($0.id, $0.labels) }, uniquingKeysWith: { a, _ in a })
    let labels = scores.ids.map { labelsByID[$0]! }
    let evaluation = ClassificationEvaluation.evaluate(
      findings: model.schema.findings, scores: scores.probabilities, labels: labels,
      threshold: Metrics.ThresholdRule(parsing: threshold)!, bootstrap: eval.bootstrap, seed: global.seed)
    let notes = ["Checkpoint: \(model.folder.path)", "Cohort: \(items.name), \(scores.ids.count) volume(s)",
                 "Templates: " + templates.map { "\"\($0.positive)\" / \"\($0.negative)\"" }.joined(separator: "; "),
                 "Similarity: \(scores.similarity.rawValue)"]
    try FileManager.default.createDirectory(at: eval.outputURL, withIntermediateDirectories: true)
    let csv = Predictor.probabilitiesCSV(idColumn: "id", findings: model.schema.displayNames, ids: scores.ids, rows: scores.probabilities)
    try AtomicWrite.write(Data(csv.utf8), to: eval.outputURL.appendingPathComponent("zero_shot_probabilities.csv"))
    try eval.finish(EvaluationReport(title: "GreenRFM zero-shot diagnosis", notes: notes, classification: evaluation,
                                     classificationPrefix: "zeroShot"), logger: logger)
    try EvalOptions.reportFailures(EvalOptions.skipped(items) + scores.failures, output: eval.outputURL, logger: logger)
  }

  /// `--template`: a JSON file when one exists at that path, else a template name (`ZeroShot.templates(named:)`).
  static func templates(_ nameOrFile: String) throws -> [PromptTemplate] {
    FileManager.default.fileExists(atPath: nameOrFile)
      ? try ZeroShot.loadTemplates(from: URL(fileURLWithPath: nameOrFile)) : try ZeroShot.templates(named: nameOrFile)
  }
}

struct EvalRetrieval: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "retrieval",
    abstract: "Report→volume and volume→report Recall@K, ranks, and volume→volume MAP@K.",
    discussion: """
      The pool is every study with both a volume and a report; chance Recall@K is K/N. Similarity: the dot \
      product the model was trained with (the authors' evaluation uses cosine; --similarity cosine to compare). \
      Volume→volume MAP@K counts a candidate relevant when it shares a positive finding with the query.
      """)

  @OptionGroup var global: GlobalOptions
  @OptionGroup var cohort: CohortOptions
  @OptionGroup var eval: EvalOptions

  @Option(help: "Exported embeddings (greenrfm embed) instead of a checkpoint.")
  var embeddings: String?

  @Option(help: "dot or cosine (default: as the model was trained; dot for exported embeddings).")
  var similarity: String?

  @Option(help: "K of volume→volume MAP@K.")
  var mapK: Int = 50

  func validate() throws {
    if let similarity, Similarity(rawValue: similarity) == nil { throw ValidationError("--similarity must be dot or cosine") }
    if mapK < 1 { throw ValidationError("--map-k must be at least 1") }
    if embeddings == nil, eval.checkpoint == nil { throw ValidationError("give --checkpoint or --embeddings") }
  }

  func run() throws {
    let device = try global.apply()
    let logger = Logger(label: "greenrfm.eval")
    var model: LoadedModel?
    let found: CohortEmbeddings
    let items: Cohort
    if let embeddings {
      found = try CohortEmbeddings.read(from: URL(fileURLWithPath: embeddings))
      items = try EvalOptions.loadCohort(cohort, model: nil)
    } else {
      model = try eval.model(device: device)
      items = try EvalOptions.loadCohort(cohort, model: model)
      found = try model!.embed(items, images: true, texts: true, cacheFolder: eval.cacheURL, batchSize: eval.batchSize)
    }
    guard let (pairedIDs, images, texts) = try found.paired() else {
      try EvalOptions.reportFailures(EvalOptions.skipped(items) + found.failures, output: eval.outputURL, logger: logger)
      throw CommandError("retrieval needs both image and text latents")
    }
    guard pairedIDs.count >= 2 else { throw CommandError("retrieval needs at least 2 studies with both a volume and a report") }
    let kind = similarity.flatMap(Similarity.init(rawValue:)) ?? model?.trainedSimilarity ?? .dot
    let crossModal = try Retrieval.crossModal(imageLatents: images, textLatents: texts, similarity: kind)
    let labelsByID = Dictionary(items.items.map { ($0.id, $0.labels) }, uniquingKeysWith: { a, _ in a })
    let labels = pairedIDs.map { labelsByID[$0] ?? [] }
    let map = labels.allSatisfy({ !$0.isEmpty })
      ? try Retrieval.volumeToVolumeMAP(latents: images, labels: labels, k: mapK, similarity: kind) : nil
    let notes = ["Source: \(embeddings ?? model!.folder.path)", "Pool: \(pairedIDs.count) studies with a volume and a report",
                 "Similarity: \(kind.rawValue)"]
    try eval.finish(EvaluationReport(title: "GreenRFM retrieval", notes: notes, retrieval: crossModal, volumeToVolume: map),
                    logger: logger)
    try EvalOptions.reportFailures(EvalOptions.skipped(items) + found.failures, output: eval.outputURL, logger: logger)
  }
}

struct EvalProbe: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "probe",
    abstract: "Linear probes: per-finding logistic regression on frozen image latents.",
    discussion: """
      The studies are split by --seed into train / validation (to choose the L2 strength) / test by \
      --validation-fraction and --test-fraction; metrics are on the test split under the probe/ prefix.
      """)

  @OptionGroup var global: GlobalOptions
  @OptionGroup var cohort: CohortOptions
  @OptionGroup var eval: EvalOptions

  @Option(help: "Exported embeddings (greenrfm embed) instead of a checkpoint.")
  var embeddings: String?

  @Option(help: "Fraction of studies for validation.")
  var validationFraction: Double = 0.2

  @Option(help: "Fraction of studies for the test.")
  var testFraction: Double = 0.3

  func validate() throws {
    guard validationFraction > 0, testFraction > 0, validationFraction + testFraction < 1 else {
      throw ValidationError("--validation-fraction and --test-fraction must be > 0 with a sum below 1")
    }
    if embeddings == nil, eval.checkpoint == nil { throw ValidationError("give --checkpoint or --embeddings") }
  }

  func run() throws {
    let device = try global.apply()
    let logger = Logger(label: "greenrfm.eval")
    let found: CohortEmbeddings
    let items: Cohort
    if let embeddings {
      found = try CohortEmbeddings.read(from: URL(fileURLWithPath: embeddings))
      items = try EvalOptions.loadCohort(cohort, model: nil)
    } else {
      let model = try eval.model(device: device)
      items = try EvalOptions.loadCohort(cohort, model: model)
      found = try model.embed(items, images: true, texts: false, cacheFolder: eval.cacheURL, batchSize: eval.batchSize)
    }
    guard let image = found.image else {
      try EvalOptions.reportFailures(EvalOptions.skipped(items) + found.failures, output: eval.outputURL, logger: logger)
      throw CommandError("no volume could be embedded")
    }
    let labelsByID = Dictionary(items.items.map { ($0.id, $0.labels) }, uniquingKeysWith: { a, _ in a })
    let labels = found.imageIDs.map { labelsByID[$0] ?? [] }
    guard labels.allSatisfy({ !$0.isEmpty }) else { throw CommandError("some embedded ids have no labels in the cohort") }
    // A seeded permutation split into test | validation | train.
    let n = labels.count
    let order = EpochOrder.permutation(count: n, seed: global.seed, epoch: 0)
    let nTest = max(1, Int((Double(n) * testFraction).rounded())), nVal = max(1, Int((Double(n) * validationFraction).rounded()))
    guard n - nTest - nVal >= 2 else { throw CommandError("too few studies (\(n)) for train / validation / test splits") }
    let test = Array(order[0..<nTest]), val = Array(order[nTest..<(nTest + nVal)]), train = Array(order[(nTest + nVal)...])
    func pick(_ idx: [Int]) throws -> Tensor { try image.indexSelect(dim: 0, indices: Tensor(idx.map { Int64($0) })) }
    let result = try LinearProbe.run(trainFeatures: try pick(train), trainLabels: train.map { labels[$0] },
                                     validationFeatures: try pick(val), validationLabels: val.map { labels[$0] },
                                     testFeatures: try pick(test))
    let evaluation = ClassificationEvaluation.evaluate(findings: items.schema.findings, scores: result.probabilities,
                                                      labels: test.map { labels[$0] }, bootstrap: eval.bootstrap, seed: global.seed)
    let notes = ["Source: \(embeddings ?? eval.checkpoint ?? "")",
                 "Splits (seed \(global.seed)): train \(train.count), validation \(val.count), test \(test.count)"]
    try eval.finish(EvaluationReport(title: "GreenRFM linear probe", notes: notes, classification: evaluation,
                                     classificationPrefix: "probe"), logger: logger)
  }
}
