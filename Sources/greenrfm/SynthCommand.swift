import ArgumentParser
import Foundation
import GreenRFM

/// `greenrfm synth --output DIR`: a synthetic chest CT cohort in CT-RATE's layout (volumes, reports, true labels).
struct SynthCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "synth",
    abstract: "Generate a synthetic chest CT cohort (volumes, CT-RATE-style reports, true labels) in CT-RATE's layout.",
    discussion: """
      Writes DIR/train/train_N/train_N_a/train_N_a_1.nii.gz and DIR/valid/..., DIR/{train,valid}_reports.csv \
      (VolumeName, Findings_EN, Impressions_EN), DIR/{train,valid}_labels.csv (VolumeName + the 18 chest-ct-18 \
      findings: the TRUE labels, for scoring a distiller), DIR/{train,valid}_mentions.csv (what each report says \
      about each finding: present, negated, uncertain, unmentioned) and DIR/synth.json. The same --seed gives the \
      same files. Read it back with the CT-RATE layout (see docs/SYNTH.md).
      """)

  @OptionGroup var global: GlobalOptions

  @Option(help: "Output folder.")
  var output: String

  @Option(help: "Training patients.")
  var train: Int = 64

  @Option(help: "Held-out patients.")
  var valid: Int = 32

  @Option(help: "Volume size in voxels along i, j, k, e.g. 128,128,64.")
  var size: String = "128,128,64"

  @Option(help: "Voxel spacing in mm along i, j, k.")
  var spacingMm: String = "1.5,1.5,3"

  @Option(help: "Gaussian noise standard deviation in HU.")
  var noiseHu: Double = 15

  @Flag(help: "Contrast-enhanced vessels (aorta about +250 HU).")
  var contrast = false

  @Option(help: "Voxel storage: int16 (scaled, compact) or float32.")
  var storage: String = "int16"

  func validate() throws {
    guard ["int16", "float32"].contains(storage) else { throw ValidationError("--storage must be int16 or float32") }
    do { try resolvedConfig().validate() } catch let error as ValidationError { throw error } catch {
      throw ValidationError("\(error)")
    }
  }

  func resolvedConfig() throws -> SyntheticCohortConfig {
    var config = SyntheticCohortConfig()
    config.seed = global.seed
    config.trainCount = train
    config.validCount = valid
    let sizes = size.split(separator: ",").map { Int($0.trimmingCharacters(in: .whitespaces)) }
    guard sizes.count == 3, let i = sizes[0], let j = sizes[1], let k = sizes[2] else {
      throw ValidationError("--size must be three whole voxel counts, e.g. 128,128,64")
    }
    config.shape = [i, j, k]
    let spacing = spacingMm.split(separator: ",").map { Double($0.trimmingCharacters(in: .whitespaces)) }
    guard spacing.count == 3, let x = spacing[0], let y = spacing[1], let z = spacing[2] else {
      throw ValidationError("--spacing-mm must be three numbers in mm, e.g. 1.5,1.5,3")
    }
    config.spacingMM = [x, y, z]
    config.noiseHU = noiseHu
    config.contrast = contrast
    config.storage = storage == "float32" ? .float32 : .scaledInt16
    return config
  }

  func run() throws {
    _ = try global.apply()
    let config = try resolvedConfig()
    let progress = ProgressReporter(label: "synth", total: config.trainCount + config.validCount)
    let summary = try SyntheticCohort.generate(config: config, output: URL(fileURLWithPath: output)) { done, _ in
      progress.update(completed: done)
    }
    let line = String(format: "synth: %d train + %d held-out patients in %.1f s (%@)\n", summary.trainCount,
                      summary.validCount, summary.seconds, output)
    FileHandle.standardError.write(Data(line.utf8))
  }
}
