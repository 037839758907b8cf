import ArgumentParser
import Foundation
import GreenRFM
import Torch
import TorchNN

struct BenchCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "bench", abstract: "Measure GreenRFM workloads (see bench/ for comparisons with PyTorch).",
    subcommands: [TrainStep.self])

  struct TrainStep: ParsableCommand {
    static let configuration = CommandConfiguration(
      commandName: "train-step",
      abstract: "Time image-encoder training steps: forward, BCE over 18 findings, backward, AdamW.",
      discussion: """
        The model is ResNet3D18 with the chosen stem and an 18-way linear head; the input is a random \
        [N, 1, D, H, W] volume batch (default 1×1×96×192×192, the chest crop). AdamW uses lr 1e-4 and \
        weight decay 1e-4 (the authors' stage-1 image settings). Prints one JSON object with --json.
        """)

    @OptionGroup var global: GlobalOptions

    @Option(help: "Stem: lite (4³, stride 4) or standard (2³, stride 2).")
    var preset: ResNetStem = .lite

    @Option(help: "Volumes per step.")
    var batchSize: Int = 1

    @Option(help: "Timed steps.")
    var steps: Int = 5

    @Option(help: "Untimed warm-up steps.")
    var warmup: Int = 1

    @Option(help: "fp32, or bf16 (autocast on the CPU).")
    var precision: Precision = .fp32

    @Option(help: "Input size D,H,W in voxels.")
    var size: String = "96,192,192"

    @Flag(help: "Print one JSON object instead of text.")
    var json = false

    enum Precision: String, ExpressibleByArgument, CaseIterable { case fp32, bf16 }

    func validate() throws {
      guard batchSize >= 1, steps >= 1, warmup >= 0 else {
        throw ValidationError("--batch-size and --steps must be at least 1, --warmup at least 0")
      }
      guard parsedSize != nil else { throw ValidationError("--size must be three positive integers D,H,W") }
    }

    var parsedSize: [Int]? {
      let v = size.split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
      return v.count == 3 && v.allSatisfy { $0 > 0 } ? v : nil
    }

    func run() throws {
      let device = try global.apply()
      let generator = Generator(seed: global.seed)
      let model = try ResNet3D18(stem: preset, classes: 18, generator: generator)
      try model.to(device)
      model.train()
      let optimizer = try AdamW(parameters: model.namedParameters(), learningRate: 1e-4, weightDecay: 1e-4)
      let x = try Tensor.randn([batchSize, 1] + parsedSize!, generator: generator).to(device)
      let y = try Tensor.randint(0, 2, [batchSize, 18], generator: generator).to(.float32).to(device)

      func step() throws -> Double {
        let loss: Tensor
        if precision == .bf16 {
          loss = try withAutocast(device: device, dtype: .bfloat16) {
            try Functional.bceWithLogits(model(x), targets: y)
          }
        } else {
          loss = try Functional.bceWithLogits(model(x), targets: y)
        }
        try loss.backward()
        try optimizer.step()
        try optimizer.zeroGrad()
        return try loss.item()
      }

      for _ in 0..<warmup { _ = try step() }
      var times: [Double] = []
      var losses: [Double] = []
      for _ in 0..<steps {
        let t0 = DispatchTime.now().uptimeNanoseconds
        losses.append(try step())
        times.append(Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9)
      }
      let sorted = times.sorted()
      let median = sorted.count % 2 == 1 ? sorted[sorted.count / 2]
        : (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2
      let result: [String: Any] = [
        "preset": preset.rawValue, "batch_size": batchSize, "precision": precision.rawValue,
        "size": parsedSize!, "threads": LibTorch.threadCount, "steps": steps,
        "median_seconds": median, "min_seconds": sorted.first!, "max_seconds": sorted.last!,
        "seconds": times, "losses": losses, "peak_rss_bytes": ProcessMemory.peakResidentBytes ?? -1,
        "libtorch": LibTorch.version,
      ]
      if json {
        let data = try JSONSerialization.data(withJSONObject: result, options: [.sortedKeys])
        print(String(decoding: data, as: UTF8.self))
      } else {
        print(String(format: "train step (%@, batch %d, %@): median %.3f s, min %.3f s, max %.3f s, peak RSS %.2f GB",
                     preset.rawValue, batchSize, precision.rawValue, median, sorted.first!, sorted.last!,
                     Double(ProcessMemory.peakResidentBytes ?? 0) / 1e9))
      }
    }
  }
}

extension ResNetStem: ExpressibleByArgument {}
