import ArgumentParser
import Foundation
import GreenRFM
import Logging
import Torch
import TorchNN

/// The README's main command. For now: a small end-to-end training run of the lite image encoder on a
/// generated toy task (is there a bright sphere in the noisy volume?), with a held-out accuracy, a
/// cosine schedule with warm-up, gradient clipping and a safetensors checkpoint. Later issues give it the
/// full GreenRFM pipeline.
struct DemoCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "demo",
    abstract: "Run a small training job end to end on an embedded, generated toy task.")

  @OptionGroup var global: GlobalOptions

  @Option(help: "Folder for the checkpoint and metrics.")
  var output: String = "runs/demo"

  @Option(help: "Training steps.")
  var steps: Int = 60

  @Option(help: "Volumes per step.")
  var batchSize: Int = 8

  @Option(help: "Edge of the cubic toy volumes, in voxels.")
  var volumeSize: Int = 32

  func validate() throws {
    // Batch norm needs more than one value per channel in training: a batch of one 16³ volume reaches
    // 1×1×1 in the last stage.
    guard steps >= 2, batchSize >= 2, volumeSize >= 16, volumeSize <= 256 else {
      throw ValidationError("--steps ≥ 2, --batch-size ≥ 2 and 16 ≤ --volume-size ≤ 256 are required")
    }
  }

  /// A batch of noisy volumes `[N, 1, S, S, S]`, half of them with a bright sphere at a random place.
  static func toyBatch(count: Int, size: Int, generator: Generator) throws -> (Tensor, Tensor) {
    let labels = try Tensor.randint(0, 2, [count], generator: generator).to(.float32)
    let axis = try Tensor.arange(0, Double(size), dtype: .float32)
    let z = try axis.reshape([1, size, 1, 1]), y = try axis.reshape([1, 1, size, 1]), x = try axis.reshape([1, 1, 1, size])
    let centres = try Tensor.rand([count, 3], generator: generator) * Double(size / 2) + Double(size / 4)
    let radius = try Tensor.rand([count, 1, 1, 1], generator: generator) * 3.0 + 3.0
    func c(_ i: Int) throws -> Tensor { try centres.select(dim: 1, index: i).reshape([count, 1, 1, 1]) }
    let d2 = try (z - c(0)).square() + (y - c(1)).square() + (x - c(2)).square()
    let sphere = try d2.le(radius.square()).to(.float32) * labels.reshape([count, 1, 1, 1])
    let noise = try Tensor.randn([count, size, size, size], generator: generator) * 0.5
    return (try (noise + sphere).unsqueeze(dim: 1), try labels.reshape([count, 1]))
  }

  func run() throws {
    let device = try global.apply()
    let logger = Logger(label: "greenrfm.demo")
    let outputURL = URL(fileURLWithPath: output)
    do {
      try FileManager.default.createDirectory(at: outputURL, withIntermediateDirectories: true)
    } catch {
      throw TorchError.io(path: output, reason: "cannot create the output folder: \(error.localizedDescription)")
    }
    let generator = Generator(seed: global.seed)
    let model = try ResNet3D18(stem: .lite, classes: 1, generator: generator)
    try model.to(device)
    logger.info("lite ResNet3D18: \(model.parameterCount) parameters, libtorch \(LibTorch.version), \(LibTorch.threadCount) threads, \(device)")
    let groups = ParameterGroup.splitForWeightDecay(model.namedParameters(), weightDecay: 1e-4)
    let optimizer = try AdamW(groups: groups, learningRate: 1e-3)
    let schedule = try CosineWithWarmup(baseLR: 1e-3, warmupSteps: max(1, steps / 10), totalSteps: steps,
                                        floorLR: 1e-5)
    let progress = ProgressReporter(label: "train", total: steps)
    var losses: [Double] = []
    model.train()
    for step in 0..<steps {
      let (x, y) = try Self.toyBatch(count: batchSize, size: volumeSize, generator: generator)
      optimizer.learningRate = schedule.learningRate(at: step)
      let loss = try Functional.bceWithLogits(model(x.to(device)), targets: y.to(device))
      try loss.backward()
      try clipGradNorm(optimizer.allParameters, maxNorm: 1.0)
      try optimizer.step()
      try optimizer.zeroGrad()
      let value = try loss.item()
      guard value.isFinite else {
        throw TorchError.invalidArgument("training diverged: the loss is \(value) at step \(step + 1)")
      }
      losses.append(value)
      progress.update(completed: step + 1, detail: String(format: "loss %.4f", losses.last!))
    }

    model.eval()
    let heldOut = 64
    let (x, y) = try Self.toyBatch(count: heldOut, size: volumeSize, generator: Generator(seed: global.seed &+ 1))
    let accuracy = try withNoGrad {
      let predicted = try model(x.to(device)).gt(0).to(.float32)
      return try predicted.eq(y.to(device)).to(.float32).mean().item()
    }
    let checkpoint = outputURL.appendingPathComponent("model.safetensors")
    try SafeTensors.save(model.stateDict(), metadata: ["model": "ResNet3D18-lite", "task": "toy-sphere",
                                                       "steps": String(steps)], to: checkpoint)
    let firstLoss = losses.prefix(5).reduce(0, +) / Double(min(5, losses.count))
    let lastLoss = losses.suffix(5).reduce(0, +) / Double(min(5, losses.count))
    let metrics: [String: Any] = [
      "train/loss/first5": firstLoss, "train/loss/last5": lastLoss, "val/accuracy": accuracy,
      "steps": steps, "batch_size": batchSize, "volume_size": volumeSize, "seed": global.seed,
      "threads": LibTorch.threadCount, "device": device.description, "libtorch": LibTorch.version,
    ]
    let data = try JSONSerialization.data(withJSONObject: metrics,
                                          options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
    try Torch.AtomicFile.write(data, to: outputURL.appendingPathComponent("metrics.json"))
    print(String(format: "loss %.4f → %.4f; held-out accuracy %.3f on %d volumes", firstLoss, lastLoss, accuracy, heldOut))
    print("checkpoint: \(checkpoint.path)")
    print("metrics:    \(outputURL.appendingPathComponent("metrics.json").path)")
  }
}
