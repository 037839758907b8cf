import ArgumentParser
import Foundation
import GreenRFM
import Torch
import Reports
import TorchNN

struct BenchCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "bench", abstract: "Measure GreenRFM workloads (see bench/ for comparisons with PyTorch).",
    subcommands: [TrainStep.self, Embed.self, TextStep.self, Loader.self, RetrievalBench.self, Matmul.self])

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

    @Flag(help: "Keep the convolution weights contiguous under bf16 on the CPU (training makes them channels-last there for crops of 1,000,000 voxels or more; this compares the two).")
    var contiguousWeights = false

    @Flag(help: "Print one JSON object instead of text.")
    var json = false


    func validate() throws {
      guard batchSize >= 1, steps >= 1, warmup >= 0 else {
        throw ValidationError("--batch-size and --steps must be at least 1, --warmup at least 0")
      }
      guard parsedSize != nil else { throw ValidationError("--size must be three positive integers D,H,W") }
    }

    var parsedSize: [Int]? { parseSize(size) }

    func run() throws {
      let device = try global.apply()
      let generator = Generator(seed: global.seed)
      let model = try ResNet3D18(stem: preset, classes: 18, generator: generator)
      try model.to(device)
      // As the trainer does (Trainer.usesChannelsLastWeights): channels-last convolution weights under bf16 on the
      // CPU for large crops.
      let channelsLast = !contiguousWeights && Trainer.usesChannelsLastWeights(
        device: device, precision: precision, crop: parsedSize!)
      if channelsLast { try model.convertParameters(to: .channelsLast3d) }
      model.train()
      let optimizer = try AdamW(parameters: model.namedParameters(), learningRate: 1e-4, weightDecay: 1e-4)
      let x = try Tensor.randn([batchSize, 1] + parsedSize!, generator: generator).to(device)
      let y = try Tensor.randint(0, 2, [batchSize, 18], generator: generator).to(.float32).to(device)

      var losses: [Double] = []
      let times = try BenchStats.time(warmup: warmup, steps: steps) {
        let loss = try withAutocast(device: device, dtype: .bfloat16, enabled: precision == .bf16) {
          try Functional.bceWithLogits(model(x), targets: y)
        }
        try loss.backward()
        try optimizer.step()
        try optimizer.zeroGrad()
        losses.append(try loss.item())
      }
      var result = BenchStats(times).json
      result.merge([
        "preset": preset.rawValue, "batch_size": batchSize, "precision": precision.rawValue,
        "size": parsedSize!, "steps": steps, "losses": Array(losses.suffix(steps)),
        "weights_layout": channelsLast ? "channels-last" : "contiguous",
        "gflop_per_step": Self.trainingGFLOP(preset: preset, batchSize: batchSize, size: parsedSize!),
      ]) { $1 }
      try BenchStats.emit(result, json: json, label: "train step (\(preset.rawValue), batch \(batchSize), \(precision.rawValue))")
    }
  }
}

extension ResNetStem: ExpressibleByArgument {}

/// Median, minimum, maximum and the process's peak resident memory of a list of timings, as one JSON object.
struct BenchStats {
  let times: [Double]
  init(_ times: [Double]) { self.times = times }

  var median: Double {
    guard !times.isEmpty else { return .nan }
    let s = times.sorted()
    return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
  }

  var json: [String: Any] {
    [
      "median_seconds": median, "min_seconds": times.min() ?? 0, "max_seconds": times.max() ?? 0, "seconds": times,
      "peak_rss_bytes": ProcessMemory.peakResidentBytes ?? -1, "threads": LibTorch.threadCount,
      "libtorch": LibTorch.version,
    ]
  }

  /// Prints `result` as one sorted-key JSON line, or a one-line summary.
  static func emit(_ result: [String: Any], json: Bool, label: String) throws {
    if json {
      let data = try JSONSerialization.data(withJSONObject: result, options: [.sortedKeys])
      print(String(decoding: data, as: UTF8.self))
    } else {
      let f = { (k: String) in (result[k] as? Double) ?? .nan }
      print(String(format: "%@: median %.4f s, min %.4f s, max %.4f s, peak RSS %.2f GB", label, f("median_seconds"),
                   f("min_seconds"), f("max_seconds"), Double((result["peak_rss_bytes"] as? Int) ?? 0) / 1e9))
    }
  }

  /// Runs `body` `warmup` times untimed, then `steps` times timed (monotonic clock, seconds).
  static func time(warmup: Int, steps: Int, _ body: () throws -> Void) rethrows -> [Double] {
    for _ in 0..<warmup { try body() }
    var times: [Double] = []
    for _ in 0..<steps {
      let t0 = DispatchTime.now().uptimeNanoseconds
      try body()
      times.append(Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9)
    }
    return times
  }
}

/// `fp32` or `bf16` on the command line (GreenRFM's training precision).
extension Precision: ExpressibleByArgument {}

/// Parses "D,H,W" (three positive integers).
func parseSize(_ text: String) -> [Int]? {
  let v = text.split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
  return v.count == 3 && v.allSatisfy { $0 > 0 } ? v : nil
}

extension BenchCommand.TrainStep {
  /// Multiply–accumulates of the ResNet3D-18 convolutions for one `[1, 1, D, H, W]` input (the 512→C head and
  /// the element-wise layers are left out: under 0.1 %).
  static func forwardMAC(preset: ResNetStem, size: [Int]) -> Double {
    var dims = size.map { ($0 - preset.kernelAndStride) / preset.kernelAndStride + 1 }
    var mac = Double(64 * preset.kernelAndStride * preset.kernelAndStride * preset.kernelAndStride)
      * Double(dims.reduce(1, *))
    var channels = 64
    for (i, planes) in [64, 128, 256, 512].enumerated() {
      let stride = i == 0 ? 1 : 2
      dims = dims.map { ($0 + 2 - 3) / stride + 1 }
      let voxels = Double(dims.reduce(1, *))
      // block 1: conv1 (channels→planes, stride), conv2, downsample (1³) when the shape changes; block 2: two convs.
      mac += voxels * Double(channels * planes * 27 + planes * planes * 27 * 3)
      if stride != 1 || channels != planes { mac += voxels * Double(channels * planes) }
      channels = planes
    }
    return mac
  }

  /// FLOPs of one training step in GFLOP: 2 per MAC, for the forward, the input gradient (not for the stem,
  /// whose input needs none) and the weight gradient.
  static func trainingGFLOP(preset: ResNetStem, batchSize: Int, size: [Int]) -> Double {
    let forward = forwardMAC(preset: preset, size: size)
    let k = Double(preset.kernelAndStride)
    let stemMAC = 64 * k * k * k * Double(size.map { ($0 - Int(k)) / Int(k) + 1 }.reduce(1, *))
    return 2 * Double(batchSize) * (3 * forward - stemMAC) / 1e9
  }
}

extension BenchCommand {
  struct Embed: ParsableCommand {
    static let configuration = CommandConfiguration(
      commandName: "embed",
      abstract: "Time image-encoder inference: one forward pass in evaluation mode without autograd.",
      discussion: """
        ResNet3D18 with the chosen stem, BatchNorm in evaluation mode, under no-grad, on a random [N, 1, D, H, W] \
        batch (default one 96×192×192 chest crop): the work of `greenrfm embed` per volume once the volume is loaded.
        """)

    @OptionGroup var global: GlobalOptions
    @Option(help: "Stem: lite (4³, stride 4) or standard (2³, stride 2).") var preset: ResNetStem = .lite
    @Option(help: "Volumes per forward pass.") var batchSize: Int = 1
    @Option(help: "Timed passes.") var steps: Int = 10
    @Option(help: "Untimed warm-up passes.") var warmup: Int = 2
    @Option(help: "fp32, or bf16 (autocast on the CPU).") var precision: Precision = .fp32
    @Option(help: "Input size D,H,W in voxels.") var size: String = "96,192,192"
    @Flag(help: "Print one JSON object instead of text.") var json = false

    func validate() throws {
      guard batchSize >= 1, steps >= 1, warmup >= 0 else { throw ValidationError("--batch-size and --steps must be at least 1, --warmup at least 0") }
      guard parseSize(size) != nil else { throw ValidationError("--size must be three positive integers D,H,W") }
    }

    func run() throws {
      let device = try global.apply()
      let generator = Generator(seed: global.seed)
      let model = try ResNet3D18(stem: preset, inChannels: 1, classes: nil, generator: generator)
      try model.to(device)
      model.eval()
      let x = try Tensor.randn([batchSize, 1] + parseSize(size)!, generator: generator).to(device)
      var checksum = 0.0
      let times = try BenchStats.time(warmup: warmup, steps: steps) {
        try withNoGrad {
          let f = try withAutocast(device: device, dtype: .bfloat16, enabled: precision == .bf16) { try model.features(x) }
          checksum = try f.to(.float32).sum().item()
        }
      }
      var result = BenchStats(times).json
      result.merge([
        "preset": preset.rawValue, "batch_size": batchSize, "precision": precision.rawValue, "size": parseSize(size)!,
        "steps": steps, "checksum": checksum,
        "gflop_per_step": 2 * Double(batchSize) * TrainStep.forwardMAC(preset: preset, size: parseSize(size)!) / 1e9,
      ]) { $1 }
      try BenchStats.emit(result, json: json, label: "embed (\(preset.rawValue), batch \(batchSize), \(precision.rawValue))")
    }
  }

  struct TextStep: ParsableCommand {
    static let configuration = CommandConfiguration(
      commandName: "text-step",
      abstract: "Time text-encoder training steps: BERT forward ([CLS]), BCE over 18 findings, backward, AdamW.",
      discussion: """
        The encoder has the configuration of the text model folder (default all-MiniLM-L6-v2: 6 layers, hidden \
        384) with random weights, in training mode (dropout on); the batch is N reports × L random token ids with \
        a full attention mask. AdamW uses lr 1e-5 and weight decay 1e-4.
        """)

    @OptionGroup var global: GlobalOptions
    @Option(help: "Reports per step.") var batchSize: Int = 32
    @Option(help: "Tokens per report.") var tokens: Int = 128
    @Option(help: "Timed steps.") var steps: Int = 5
    @Option(help: "Untimed warm-up steps.") var warmup: Int = 1
    @Option(help: "fp32, or bf16 (autocast on the CPU).") var precision: Precision = .fp32
    @Option(help: "Text model folder with config.json (default: .models/all-MiniLM-L6-v2 or $GREENRFM_TEXT_MODEL).")
    var textModel: String?
    @Flag(help: "Print one JSON object instead of text.") var json = false

    func validate() throws {
      guard batchSize >= 1, tokens >= 2, steps >= 1, warmup >= 0 else {
        throw ValidationError("--batch-size and --steps must be at least 1, --tokens at least 2, --warmup at least 0")
      }
    }

    func run() throws {
      let device = try global.apply()
      let generator = Generator(seed: global.seed)
      let config = try TextModelFolder.loadConfig(folder: TextModelFolder.resolve(textModel))
      guard tokens <= config.maxPositionEmbeddings else {
        throw ValidationError("--tokens \(tokens) exceeds the model's \(config.maxPositionEmbeddings) positions")
      }
      let model = try TextClassifier(encoder: BertEncoder(config: config, generator: generator), findings: 18)
      try model.to(device)
      model.train()
      let optimizer = try AdamW(parameters: model.namedParameters(), learningRate: 1e-5, weightDecay: 1e-4)
      let ids = try Tensor.randint(1000, config.vocabSize, [batchSize, tokens], generator: generator).to(device)
      let mask = try Tensor.full([batchSize, tokens], value: 1, dtype: .int64, device: device)
      let y = try Tensor.randint(0, 2, [batchSize, 18], generator: generator).to(.float32).to(device)
      var losses: [Double] = []
      let times = try BenchStats.time(warmup: warmup, steps: steps) {
        let loss = try withAutocast(device: device, dtype: .bfloat16, enabled: precision == .bf16) {
          try Functional.bceWithLogits(model.logits(ids: ids, mask: mask), targets: y)
        }
        try loss.backward()
        try optimizer.step()
        try optimizer.zeroGrad()
        losses.append(try loss.item())
      }
      var result = BenchStats(times).json
      result.merge([
        "batch_size": batchSize, "tokens": tokens, "precision": precision.rawValue, "steps": steps, "losses": losses,
        "hidden_size": config.hiddenSize, "layers": config.numHiddenLayers,
      ]) { $1 }
      try BenchStats.emit(result, json: json, label: "text step (batch \(batchSize) × \(tokens) tokens, \(precision.rawValue))")
    }
  }

  struct Loader: ParsableCommand {
    static let configuration = CommandConfiguration(
      commandName: "loader",
      abstract: "Measure the volume data path: raw NIfTI/DICOM → preprocessing cache, then cached batches.",
      discussion: """
        Phase 1 preprocesses every volume (read, reorient to RAS, resample, HU window, pad/crop to the canvas) into \
        an empty cache with --workers threads and reports volumes per second. Phase 2 reads training batches from \
        that cache (random crop, the trainer's loader) for --epochs epochs and reports batches per second; the \
        consumer does no work, so this is the rate the loader can sustain. Uses the training protocol's canvas and \
        crop (chest-ct: 240×240×120 → 192×192×96).
        """)

    @OptionGroup var global: GlobalOptions
    @Argument(help: "Volume files (.nii, .nii.gz, .npz) or DICOM series folders.") var volumes: [String]
    @Option(help: "Cache folder: a new or empty folder (default: a fresh temporary folder, removed afterwards).")
    var cache: String?
    @Flag(help: "Allow a --cache folder that already holds a cache (phase 1 then measures cache hits).")
    var keepCache = false
    @Option(help: "Preprocessing protocol: chest-ct, abdomen-ct or mri.") var `protocol`: String = "chest-ct"
    @Option(help: "Volumes per batch.") var batchSize: Int = 1
    @Option(help: "Loader threads.") var workers: Int = 2
    @Option(help: "Epochs over the cached volumes in phase 2.") var epochs: Int = 5
    @Flag(help: "Print one JSON object instead of text.") var json = false

    func validate() throws {
      guard batchSize >= 1, workers >= 1, epochs >= 1 else { throw ValidationError("--batch-size, --workers and --epochs must be at least 1") }
    }

    func run() throws {
      _ = try global.apply()
      let schema = try LabelSchema.load("chest-ct-18")
      let cohort = CohortLayout.volumeFiles(volumes.map { URL(fileURLWithPath: $0) }, schema: schema)
      for s in cohort.skipped { FileHandle.standardError.write(Data("skipped \(s.id): \(s.reason)\n".utf8)) }
      // Never delete a folder the user named: it must be new or empty unless --keep-cache says to reuse it.
      let fm = FileManager.default
      let ownFolder = cache == nil
      let cache = self.cache ?? fm.temporaryDirectory.appendingPathComponent("greenrfm-bench-loader-\(UUID().uuidString)").path
      if !ownFolder, !keepCache, let entries = try? fm.contentsOfDirectory(atPath: cache), !entries.isEmpty {
        throw ValidationError("--cache \(cache) is not empty (\(entries.count) entries); name a new or empty folder, or "
                              + "pass --keep-cache to measure an existing cache")
      }
      defer { if ownFolder { try? fm.removeItem(atPath: cache) } }
      var config = try VolumeLoaderConfig.training(protocol: `protocol`, cacheFolder: cache, batchSize: batchSize,
                                                   workers: workers, seed: global.seed)
      config.dropLast = false
      let loader = try VolumeLoader(cohort: cohort, config: config)
      let t0 = Date()
      let failures = loader.preprocessAll()
      let preprocessSeconds = Date().timeIntervalSince(t0)
      for f in failures { FileHandle.standardError.write(Data("failed \(f.path): \(f.reason)\n".utf8)) }
      let good = cohort.items.count - failures.count
      var batchTimes: [Double] = []
      var voxelsPerBatch = 0
      var checksum = 0.0
      let t1 = Date()
      for epoch in 0..<epochs {
        let iterator = loader.batches(epoch: epoch).makeIterator()
        var last = DispatchTime.now().uptimeNanoseconds
        while let batch = try iterator.next() {
          let now = DispatchTime.now().uptimeNanoseconds
          batchTimes.append(Double(now - last) / 1e9)
          last = now
          voxelsPerBatch = batch.voxels.count
          checksum += Double(batch.voxels[batch.voxels.count / 2])
        }
      }
      let cachedSeconds = Date().timeIntervalSince(t1)
      var result = BenchStats(batchTimes).json
      result.merge([
        "volumes": good, "failed": failures.count, "workers": workers, "batch_size": batchSize, "protocol": `protocol`,
        "preprocess_seconds": preprocessSeconds, "preprocess_volumes_per_second": Double(good) / preprocessSeconds,
        "cached_batches": batchTimes.count, "cached_seconds": cachedSeconds,
        "cached_batches_per_second": Double(batchTimes.count) / cachedSeconds,
        "voxels_per_batch": voxelsPerBatch, "checksum": checksum,
      ]) { $1 }
      if json {
        try BenchStats.emit(result, json: true, label: "")
      } else {
        print(String(format: "raw → cache: %d volumes in %.2f s (%.2f volumes/s, %d workers); cached: %d batches of %d in %.2f s (%.1f batches/s)",
                     good, preprocessSeconds, Double(good) / preprocessSeconds, workers, batchTimes.count, batchSize,
                     cachedSeconds, Double(batchTimes.count) / cachedSeconds))
      }
    }
  }

  struct RetrievalBench: ParsableCommand {
    static let configuration = CommandConfiguration(
      commandName: "retrieval",
      abstract: "Time report→volume and volume→report ranking over a pool of random latents (Recall@K, ranks).",
      discussion: """
        Images are N × D standard-normal latents and texts = images + 10 · noise, so that ranks spread; \
        `Retrieval.crossModal` ranks every report against every volume and back in chunks of rows.
        """)

    @OptionGroup var global: GlobalOptions
    @Option(help: "Pool size N.") var count: Int = 50_000
    @Option(help: "Latent size D.") var dim: Int = 768
    @Option(help: "Report rows per chunk.") var chunk: Int = 512
    @Option(help: "Images per similarity block (CPU).") var imagesPerBlock: Int = 4096
    @Option(help: "Timed runs.") var steps: Int = 3
    @Flag(help: "Print one JSON object instead of text.") var json = false

    func validate() throws {
      guard count >= 2, dim >= 1, chunk >= 1, imagesPerBlock >= 1, steps >= 1 else {
        throw ValidationError("--count must be at least 2; --dim, --chunk, --images-per-block and --steps at least 1")
      }
    }

    func run() throws {
      _ = try global.apply()
      let g = Generator(seed: global.seed)
      let images = try Tensor.randn([count, dim], generator: g)
      let texts = try Tensor.randn([count, dim], generator: g)
      try texts.mulInPlace(10)
      try texts.addInPlace(images)
      var r: Retrieval.CrossModal?
      let times = try BenchStats.time(warmup: 0, steps: steps) {
        r = try Retrieval.crossModal(imageLatents: images, textLatents: texts, chunkSize: chunk,
                                     imagesPerBlock: imagesPerBlock)
      }
      var result = BenchStats(times).json
      result.merge([
        "count": count, "dim": dim, "chunk": chunk, "images_per_block": imagesPerBlock,
        "recall@1": r!.reportToVolume.recall(atK: 1)!, "recall@5": r!.reportToVolume.recall(atK: 5)!,
        "recall@10": r!.reportToVolume.recall(atK: 10)!, "volumeToReport/recall@1": r!.volumeToReport.recall(atK: 1)!,
        "median_rank": r!.reportToVolume.medianRank,
      ]) { $1 }
      try BenchStats.emit(result, json: json, label: "retrieval (\(count) × \(dim))")
    }
  }

  struct Matmul: ParsableCommand {
    static let configuration = CommandConfiguration(
      commandName: "matmul",
      abstract: "Measure the CPU's practical peak: GFLOP/s of a large square matrix product (libtorch's BLAS).")

    @OptionGroup var global: GlobalOptions
    @Option(help: "Matrix size n (n × n times n × n).") var size: Int = 4096
    @Option(help: "Timed products.") var steps: Int = 5
    @Option(help: "fp32 or bf16.") var precision: Precision = .fp32
    @Flag(help: "Print one JSON object instead of text.") var json = false

    func validate() throws {
      guard size >= 1, steps >= 1 else { throw ValidationError("--size and --steps must be at least 1") }
    }

    func run() throws {
      _ = try global.apply()
      let g = Generator(seed: global.seed)
      let dtype: DType = precision == .bf16 ? .bfloat16 : .float32
      let a = try Tensor.randn([size, size], generator: g).to(dtype)
      let b = try Tensor.randn([size, size], generator: g).to(dtype)
      let times = try BenchStats.time(warmup: 1, steps: steps) { _ = try a.matmul(b) }
      var result = BenchStats(times).json
      let flop = 2 * pow(Double(size), 3)
      result.merge(["size": size, "precision": precision.rawValue, "gflops_best": flop / times.min()! / 1e9,
                    "gflops_median": flop / BenchStats(times).median / 1e9]) { $1 }
      if json { try BenchStats.emit(result, json: true, label: "") } else {
        print(String(format: "matmul %d (%@): best %.1f GFLOP/s, median %.1f GFLOP/s", size, precision.rawValue,
                     result["gflops_best"] as! Double, result["gflops_median"] as! Double))
      }
    }
  }
}
