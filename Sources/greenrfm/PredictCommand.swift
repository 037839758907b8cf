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
      Volumes that cannot be read are skipped and listed in OUT.csv.failures.csv; the command then exits 1.
      """)

  @OptionGroup var global: GlobalOptions
  @OptionGroup var cohort: CohortOptions

  @Option(help: "A run folder or checkpoint folder (train stage1/stage2 output).")
  var checkpoint: String

  @Option(help: "text (reports) or image (volumes).")
  var modality: Modality

  @Option(help: "Output CSV.")
  var output: String

  @Option(help: "Items per batch.")
  var batchSize: Int = 8

  @Option(help: "Preprocessing cache folder (default: beside the output, OUTPUT.cache).")
  var cache: String?

  @Option(help: "Background threads reading volumes (default: the checkpoint's preset).")
  var workers: Int?

  func validate() throws {
    if batchSize < 1 { throw ValidationError("--batch-size must be at least 1") }
    if let w = workers, w < 0 { throw ValidationError("--workers must be at least 0") }
  }

  func run() throws {
    let device = try global.apply()
    let logger = Logger(label: "greenrfm.predict")
    let model = try LoadedModel(URL(fileURLWithPath: checkpoint), device: device)
    var options = cohort
    if options.schema == "chest-ct-18", model.schema.name != "chest-ct-18" { options.schema = model.schema.name }
    let items = try options.load()
    guard items.schema.findings.map(\.key) == model.schema.findings.map(\.key) else {
      throw CommandError("the checkpoint predicts \(model.schema.name) findings; the data uses \(items.schema.name)")
    }
    var ids: [String] = []
    var rows: [[Double]] = []
    var failures: [(id: String, path: String, reason: String)] = items.skipped.map { ($0.id, "", $0.reason) }
    switch modality {
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
    case .image:
      guard model.supportsImages else { throw CommandError("\(checkpoint) is a text-only (stage1-text) checkpoint") }
      let withVolumes = items.items.filter { $0.volumePath != nil }
      for item in items.items where item.volumePath == nil { failures.append((item.id, "", "no volume")) }
      var usable = items
      usable.items = withVolumes
      let cacheURL = URL(fileURLWithPath: cache ?? output + ".cache")
      let loader = try model.evaluationLoader(usable, cacheFolder: cacheURL, batchSize: batchSize, workers: workers)
      let (outIDs, probabilities) = try Predictor.imageProbabilities(loader: loader, device: device) {
        try model.imageLogits($0)
      }
      (ids, rows) = (outIDs, probabilities)
      failures += loader.failures
    }
    let header: [String] = [options.idColumnName] + model.schema.displayNames
    var text = header.map { csvField($0) }.joined(separator: ",") + "\n"
    for (id, row) in zip(ids, rows) {
      let cells: [String] = [csvField(id)] + row.map { String(format: "%.6f", $0) }
      text += cells.joined(separator: ",") + "\n"
    }
    try AtomicWrite.write(Data(text.utf8), to: URL(fileURLWithPath: output))
    logger.info("wrote \(ids.count) prediction row(s) to \(output)")
    try writeFailures(failures, to: URL(fileURLWithPath: output + ".failures.csv"), logger: logger)
  }
}
