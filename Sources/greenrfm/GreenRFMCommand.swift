import ArgumentParser
import Foundation
import GreenRFM
import Logging
import Torch

@main
struct GreenRFMCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "greenrfm",
    abstract: "Pre-train and use resource-efficient 3D radiology foundation models (GreenRFM).",
    discussion: """
      GreenRFM (arXiv 2603.06467) trains a CT vision–language model on one GPU or a laptop CPU: \
      reports distilled into labels, supervised pre-training of each encoder, then alignment. \
      Tensors and autograd come from libtorch \(LibTorch.version).
      """,
    version: "0.1.0",
    subcommands: [
      DemoCommand.self, TrainCommand.self, PredictCommand.self, EmbedCommand.self, EvalCommand.self, InspectCommand.self, PreprocessCommand.self,
      DistillCommand.self, BenchCommand.self, MetricsCommand.self, SynthCommand.self,
      InfoCommand.self, LaunchCommand.self,
    ]
  )
}

/// Options every subcommand shares.
struct GlobalOptions: ParsableArguments {
  @Option(help: "Compute device: cpu, cuda or cuda:N.")
  var device: String = "cpu"

  @Option(help: "libtorch intra-op threads (default: OMP_NUM_THREADS if set, else the number of cores).")
  var threads: Int?

  @Option(help: "Random seed.")
  var seed: UInt64 = 0

  @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.")
  var logLevel: String = "info"

  func validate() throws {
    if let t = threads, t < 1 { throw ValidationError("--threads must be at least 1") }
    if let t = threads, t > LibTorch.maxThreadCount {
      throw ValidationError("--threads must be at most \(LibTorch.maxThreadCount)")
    }
    guard Logger.Level(rawValue: logLevel) != nil else {
      throw ValidationError("--log-level must be one of trace, debug, info, notice, warning, error, critical")
    }
    do { _ = try Device(parsing: device) } catch { throw ValidationError("\(error)") }
  }

  /// Sets up logging and libtorch threads, checks the device, and returns it.
  func apply() throws -> Device {
    let level = Logger.Level(rawValue: logLevel) ?? .info
    LoggingSystem.bootstrap { label in
      var handler = StreamLogHandler.standardError(label: label)
      handler.logLevel = level
      return handler
    }
    try LibTorch.setThreadCount(threads ?? LibTorch.defaultThreadCount)
    LibTorch.manualSeed(seed)
    let d = try Device(parsing: device)
    try d.validate()
    return d
  }
}

struct InfoCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "info", abstract: "Print the libtorch version, threads and devices.")

  @OptionGroup var global: GlobalOptions

  func run() throws {
    _ = try global.apply()
    let info: [String: Any] = [
      "libtorch": LibTorch.version,
      "threads": LibTorch.threadCount,
      "cores": LibTorch.coreCount,
      "cudaDevices": LibTorch.cudaDeviceCount,
    ]
    let data = try JSONSerialization.data(withJSONObject: info, options: [.prettyPrinted, .sortedKeys])
    print(String(decoding: data, as: UTF8.self))
  }
}
