import ArgumentParser
import Foundation
import GreenRFM
import Logging
import Torch

/// The README's main command: the whole GreenRFM pipeline on a synthetic cohort (`Demo.run`).
struct DemoCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "demo",
    abstract: "Run GreenRFM end to end on a generated synthetic chest CT cohort.",
    discussion: """
      synth (training + held-out patients, CT-RATE layout) → distil the reports into labels (rules; scored against \
      the true labels) → stage 1 image (lite ResNet3D-18) → stage 1 text (all-MiniLM-L6-v2) → stage 2 (alignment) → \
      zero-shot diagnosis and report↔volume retrieval on the held-out patients → OUTPUT/metrics.json and \
      OUTPUT/report.html. About 9 minutes on a 2-core CPU (release build, measured 505 s). Running it again on the same OUTPUT \
      reuses the finished stages and resumes an interrupted one (Ctrl-C stops after a checkpoint).
      """)

  @OptionGroup var global: GlobalOptions

  @Option(help: "Output folder (cohort, labels, runs, cache, metrics.json, report.html).")
  var output: String = "runs/demo"

  @Option(help: "Training patients (default: \(Demo.defaultTrainCount); 8 with --quick).")
  var train: Int?

  @Option(help: "Held-out patients (default: \(Demo.defaultValidCount); 6 with --quick).")
  var valid: Int?

  @Flag(help: "Tiny volumes and one epoch per stage: checks the pipeline in under a minute (figures meaningless).")
  var quick = false

  @Option(help: "Text encoder: a Hugging Face BERT folder (default: .models/all-MiniLM-L6-v2 or $GREENRFM_TEXT_MODEL).")
  var textModel: String?

  @Option(help: "fp32, or bf16 (autocast in every training stage): on this project's AVX-512 BF16 CPU about 1.45× faster; over two seeds the image encoder is the same and the zero-shot figures differ by up to ±0.04 either way (docs/PERFORMANCE.md).")
  var precision: String = "fp32"

  func validate() throws {
    guard Precision(rawValue: precision) != nil else { throw ValidationError("--precision must be fp32 or bf16") }
    if let train, train < 4 { throw ValidationError("--train must be at least 4") }
    if let valid, valid < 2 { throw ValidationError("--valid must be at least 2") }
  }

  func run() throws {
    let device = try global.apply()
    let outputURL = URL(fileURLWithPath: output).standardizedFileURL
    var options = Demo.Options(output: outputURL, seed: global.seed, device: device, trainCount: train, validCount: valid,
                               quick: quick, textModel: textModel)
    options.precision = Precision(rawValue: precision)!
    // Unbuffered, so the progress shows as it happens also when stdout is a pipe or a file.
    options.log = { line in FileHandle.standardOutput.write(Data((line + "\n").utf8)) }
    let interrupt = InterruptFlag()
    options.shouldStop = { interrupt.isSet }
    options.logger = Logger(label: "greenrfm.demo")
    options.log("greenrfm demo → \(outputURL.path) (seed \(global.seed), \(LibTorch.threadCount) threads, \(device), libtorch \(LibTorch.version))")
    let outcome = try Demo.run(options)
    if outcome.stopped || interrupt.isSet { throw ExitCode(130) }
  }
}
