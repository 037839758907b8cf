import ArgumentParser
import Foundation
import GreenRFM
import MedicalImaging

/// `greenrfm preprocess INPUT... --output DIR --protocol chest-ct|abdomen-ct|mri`: each input reoriented to RAS,
/// resampled, normalised and centre-cropped/padded into the preprocessing cache in DIR, in parallel.
struct PreprocessCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "preprocess",
    abstract: "Preprocess volumes into a cache folder (RAS, target spacing, HU window, crop/pad).",
    discussion: """
      Each input becomes DIR/<name>-<hash>.nii.gz (int16 with scl_slope, RAS, at the requested spacing; readable
      by `greenrfm inspect` and nibabel) plus a .json sidecar with geometry, source CRC-32 and config. Inputs
      already in the cache with the same content and config are skipped, so a rerun resumes. A bad input is
      skipped and listed in DIR/failures.csv with its reason; the exit code is 1 if any input failed.
      Presets: chest-ct 1.5×1.5×3 mm, [−1000, 200] HU, 192×192×96; abdomen-ct 1.5×1.5×3 mm, [−1000, 1000] HU,
      224×224×144; mri 1 mm, 1st–99th percentile clip and z-score, 240×240×24.
      """)

  @OptionGroup var global: GlobalOptions

  @Argument(help: "NIfTI files, DICOM files or folders, NPZ/NPY files.")
  var inputs: [String]

  @Option(help: "Cache folder.")
  var output: String

  @Option(name: .customLong("protocol"), help: "chest-ct, abdomen-ct or mri.")
  var protocolName: String

  @Option(help: "Override the target spacing in mm along i, j, k (RAS), e.g. 1.5,1.5,3.")
  var spacingMm: String?

  @Option(help: "Override the HU window lower,upper, e.g. -1000,200.")
  var windowHu: String?

  @Option(help: "Override the output size in voxels along i, j, k, e.g. 192,192,96.")
  var size: String?

  @Option(help: "Voxel storage: int16 (scaled, compact) or float32.")
  var storage: String = "int16"

  @Option(help: "Inputs processed at once (default: the number of cores).")
  var jobs: Int?

  @Option(help: "NPZ/NPY inputs: voxel spacing in mm along i, j, k.")
  var npzSpacingMm: String?

  @Flag(help: "DICOM: stack unevenly spaced slices (with a warning) instead of failing.")
  var allowIrregularSpacing = false

  @Flag(help: "DICOM: drop duplicated slices (with a warning) instead of failing.")
  var dropDuplicateSlices = false

  func validate() throws {
    if let j = jobs, j < 1 { throw ValidationError("--jobs must be at least 1") }
    guard ["int16", "float32"].contains(storage) else { throw ValidationError("--storage must be int16 or float32") }
    do { _ = try resolvedConfig() } catch let error as ValidationError { throw error } catch {
      throw ValidationError("\(error)")
    }
    if let s = npzSpacingMm { _ = try parseNumbers(s, count: 3, name: "--npz-spacing-mm", positive: true) }
  }

  func resolvedConfig() throws -> PreprocessConfig {
    var config = try PreprocessConfig.preset(protocolName)
    if let s = spacingMm { config.spacingMM = try parseNumbers(s, count: 3, name: "--spacing-mm", positive: true) }
    if let w = windowHu { config.windowHU = try parseNumbers(w, count: 2, name: "--window-hu") }
    if let s = size {
      let values = try parseNumbers(s, count: 3, name: "--size", positive: true)
      guard values.allSatisfy({ $0 == $0.rounded() }) else { throw ValidationError("--size must be whole voxel counts") }
      config.size = values.map { Int($0) }
    }
    config.storage = storage == "float32" ? .float32 : .scaledInt16
    try config.validate()
    return config
  }

  func run() throws {
    _ = try global.apply()
    let config = try resolvedConfig()
    let cache = PreprocessCache(folder: output, config: config)
    try FileManager.default.createDirectory(atPath: output, withIntermediateDirectories: true)
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
    try AtomicFile.write(try encoder.encode(config), to: (output as NSString).appendingPathComponent("preprocess_config.json"))
    let options = VolumeReader.Options(
      npzSpacingMM: try npzSpacingMm.map { try parseNumbers($0, count: 3, name: "--npz-spacing-mm", positive: true) },
      dicom: DICOM.ReadOptions(allowIrregularSpacing: allowIrregularSpacing, dropDuplicateSlices: dropDuplicateSlices))

    let progress = ProgressReporter(label: "preprocess", total: inputs.count)
    let state = PreprocessState(count: inputs.count)
    let queue = OperationQueue()
    queue.maxConcurrentOperationCount = jobs ?? ProcessInfo.processInfo.activeProcessorCount
    for (index, input) in inputs.enumerated() {
      queue.addOperation {
        let result = Result { try cache.process(input: input, readOptions: options) }
        let done = state.record(index, result)
        progress.update(completed: done)
      }
    }
    queue.waitUntilAllOperationsAreFinished()

    var written = 0, reused = 0
    var failures: [(String, String)] = []
    for (index, result) in state.results.enumerated() {
      switch result {
      case .success(.written): written += 1
      case .success(.reused): reused += 1
      case .failure(let error): failures.append((inputs[index], "\(error)"))
      case nil: failures.append((inputs[index], "not processed"))
      }
    }
    var csv = "input,error\n"
    for (input, reason) in failures { csv += "\(csvField(input)),\(csvField(reason))\n" }
    try AtomicFile.write(Data(csv.utf8), to: (output as NSString).appendingPathComponent("failures.csv"))
    FileHandle.standardError.write(Data("preprocess: \(written) written, \(reused) reused, \(failures.count) failed (\(output))\n".utf8))
    for (input, reason) in failures { FileHandle.standardError.write(Data("failed: \(input): \(reason)\n".utf8)) }
    if !failures.isEmpty { throw ExitCode(1) }
  }
}

/// Per-input results, filled from worker threads.
final class PreprocessState: @unchecked Sendable {
  private let lock = NSLock()
  private(set) var results: [Result<PreprocessCache.Outcome, Error>?]
  private var completed = 0
  init(count: Int) { results = Array(repeating: nil, count: count) }
  func record(_ index: Int, _ result: Result<PreprocessCache.Outcome, Error>) -> Int {
    lock.lock()
    defer { lock.unlock() }
    results[index] = result
    completed += 1
    return completed
  }
}

/// A CSV field, quoted when it holds a comma, quote or newline.
func csvField(_ text: String) -> String {
  let flat = text.replacingOccurrences(of: "\n", with: " ")
  return flat.contains(",") || flat.contains("\"") ? "\"" + flat.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : flat
}
