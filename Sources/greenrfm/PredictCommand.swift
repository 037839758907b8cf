import ArgumentParser
import AtomicWrite
import Foundation
import GreenRFM
import Logging
import Reports
import Torch

/// `greenrfm predict`: per-finding probabilities from a trained checkpoint.
struct PredictCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "predict",
    abstract: "Write per-finding probabilities of a checkpoint over reports or volumes.",
    discussion: """
      The output CSV holds the id column, then one column per finding titled with the schema's display name, \
      holding the predicted probability (sigmoid of the stage-1 head, or of the shared classifier on the latents \
      for a stage-2 checkpoint). Score it with `greenrfm metrics --predictions OUT.csv --labels LABELS.csv`.
      --zero-shot (stage-2 checkpoints) writes instead each finding's zero-shot probability from its prompt pair, \
      softmax(s(image, "There is X."), s(image, "There is no X."))[0] with the trained similarity, exactly as \
      `greenrfm eval zero-shot` computes it; it needs neither labels nor reports.
      Volumes come from a cohort option (--manifest, or --layout with --volumes) or as arguments: NIfTI/NPZ/DICOM \
      files and DICOM series folders, read, reoriented, resampled and preprocessed to the checkpoint's settings \
      (their ids are their file or folder names; the id column is then `id`):
        greenrfm predict --zero-shot --checkpoint runs/demo/stage2 --output scores.csv \\
          ../shared/data/ct/*.nii.gz ../shared/data/dicom/ts_abdomen_ct_series_j2k
      Volumes that cannot be read are skipped and listed in OUT.csv.failures.csv; the command then exits 1.
      """)

  @OptionGroup var global: GlobalOptions
  @OptionGroup var cohort: CohortOptions

  @Argument(help: "Volumes to score instead of a cohort option: NIfTI, NPZ or DICOM files, or DICOM series folders.")
  var volumeFiles: [String] = []

  @Option(help: "A run folder or checkpoint folder (train stage1/stage2 output).")
  var checkpoint: String

  @Option(help: "text (reports) or image (volumes); default image with --zero-shot or volume arguments.")
  var modality: Modality?

  @Flag(help: "Stage 2: zero-shot probabilities from the prompt pairs instead of the shared classifier (as eval zero-shot).")
  var zeroShot = false

  @Option(help: "With --zero-shot: prompt template name, 'all' (ensemble), or a JSON file (as eval zero-shot).")
  var template: String = "there-is"

  @Option(help: "With --zero-shot: dot or cosine (default: as the model was trained).")
  var similarity: String?

  @Option(help: "Output CSV.")
  var output: String

  @Option(help: "Items per batch.")
  var batchSize: Int = 8

  @Option(help: "Preprocessing cache folder (default: beside the output, OUTPUT.cache).")
  var cache: String?

  @Option(help: "Background threads reading volumes (default: the checkpoint's preset).")
  var workers: Int?

  /// The modality in effect: the option, else image for --zero-shot or volume arguments.
  var resolvedModality: Modality? { modality ?? (zeroShot || !volumeFiles.isEmpty ? .image : nil) }

  func validate() throws {
    if batchSize < 1 { throw ValidationError("--batch-size must be at least 1") }
    if let w = workers, w < 0 { throw ValidationError("--workers must be at least 0") }
    try CohortOptions.checkVolumeFiles(volumeFiles, cohort)
    guard let m = resolvedModality else { throw ValidationError("give --modality text or image") }
    if m == .text && !volumeFiles.isEmpty { throw ValidationError("volume arguments need --modality image") }
    if zeroShot {
      if m == .text { throw ValidationError("--zero-shot scores volumes: it needs --modality image") }
      if let similarity, Similarity(rawValue: similarity) == nil { throw ValidationError("--similarity must be dot or cosine") }
    } else if similarity != nil || template != "there-is" {
      throw ValidationError("--template and --similarity apply to --zero-shot")
    }
  }

  func run() throws {
    let device = try global.apply()
    let logger = Logger(label: "greenrfm.predict")
    let model = try LoadedModel(URL(fileURLWithPath: checkpoint), device: device)
    var options = cohort
    if options.schema == "chest-ct-18", model.schema.name != "chest-ct-18" { options.schema = model.schema.name }
    let items = try options.load(volumeFiles: volumeFiles)
    guard items.schema.findings.map(\.key) == model.schema.findings.map(\.key) else {
      throw CommandError("the checkpoint predicts \(model.schema.name) findings; the data uses \(items.schema.name)")
    }
    var ids: [String] = []
    var rows: [[Double]] = []
    var failures: [(id: String, path: String, reason: String)] = items.skipped.map { ($0.id, "", $0.reason) }
    let cacheURL = URL(fileURLWithPath: cache ?? output + ".cache")
    switch resolvedModality! {
    case .text:
      guard model.supportsText else { throw CommandError("\(checkpoint) is an image-only (stage1-image) checkpoint") }
      let usable = items.items.filter { !($0.reportText ?? "").isEmpty }
      for item in items.items where (item.reportText ?? "").isEmpty { failures.append((item.id, "", "no report text")) }
      let progress = ProgressReporter(label: "predict", total: usable.count)
      for start in stride(from: 0, to: usable.count, by: batchSize) {
        let chunk = Array(usable[start..<min(start + batchSize, usable.count)])
        rows += try model.textProbabilities(chunk.map { $0.reportText! }, batchSize: batchSize)
        ids += chunk.map(\.id)
        progress.update(completed: ids.count)
      }
    case .image where zeroShot:
      guard model.kind == .stage2 else {
        throw CommandError("\(checkpoint) is a \(model.kind.rawValue) checkpoint; --zero-shot needs a stage2 checkpoint")
      }
      let templates = try EvalZeroShot.templates(template)
      let scores = try model.zeroShotScores(items, templates: templates, similarity: similarity.flatMap(Similarity.init(rawValue:)),
                                            cacheFolder: cacheURL, batchSize: batchSize, workers: workers)
      (ids, rows) = (scores.ids, scores.probabilities)
      failures += scores.failures
    case .image:
      guard model.supportsImages else { throw CommandError("\(checkpoint) is a text-only (stage1-text) checkpoint") }
      let withVolumes = items.items.filter { $0.volumePath != nil }
      for item in items.items where item.volumePath == nil { failures.append((item.id, "", "no volume")) }
      var usable = items
      usable.items = withVolumes
      let loader = try model.evaluationLoader(usable, cacheFolder: cacheURL, batchSize: batchSize, workers: workers)
      let (outIDs, probabilities) = try Predictor.imageProbabilities(loader: loader, device: device) {
        try model.imageLogits($0)
      }
      (ids, rows) = (outIDs, probabilities)
      failures += loader.failures
    }
    let idColumn = volumeFiles.isEmpty ? options.idColumnName : "id"
    try AtomicWrite.write(Data(Predictor.probabilitiesCSV(idColumn: idColumn, findings: model.schema.displayNames, ids: ids, rows: rows).utf8),
                          to: URL(fileURLWithPath: output))
    logger.info("wrote \(ids.count) \(zeroShot ? "zero-shot " : "")prediction row(s) to \(output)")
    try writeFailures(failures, to: URL(fileURLWithPath: output + ".failures.csv"), logger: logger)
  }
}

