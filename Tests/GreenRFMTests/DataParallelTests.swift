import Foundation
import GreenRFM
import Reports
import Testing
import Torch
import TorchNN

/// Fixtures for the data-parallel tests: a small synthetic cohort (volumes of 64×64×32 voxels after preprocessing,
/// CT-RATE layout), a preset at that canvas, and a tiny BERT without dropout (so that the text encoder's output does not
/// depend on how a batch is split across ranks).
///
/// Why 64×64×32 and not smaller: the lite ResNet divides each axis by 32, and at 16×16×8 its last BatchNorm layers
/// normalise 2 to 4 values per channel, which makes the gradients enormous (norm ~10⁵) and float32 rounding in them
/// larger than any tolerance (at 48×48×24 the worst tensors still differ by ~1e-3; at 64×64×32 the gradient norm is
/// about 9 and the runs agree to ~1e-8). Why AdamW with ε = 1 (`adamEpsilon`): Adam moves every weight by about ±lr whatever its
/// gradient's size, so gradients that are zero up to rounding take full steps of random sign, and two runs that sum
/// a batch in a different order (one process over 4 volumes, or 2 ranks over 2) drift apart by ~1e-3 within 3 steps
/// (measured) even though their gradients agree to ~1e-7; with ε = 1 AdamW steps in proportion to the gradient, as
/// SGD with momentum does, and the comparison measures the data-parallel arithmetic instead of Adam's sign noise.
enum DataParallelFixtures {
  /// `greenrfm synth` with `train` patients of 64×64×64 voxels at 1.5 mm (64×64×32 at the chest protocol's 3 mm).
  static func cohort(in dir: URL, train: Int = 4) throws -> URL {
    let out = dir.appendingPathComponent("synth")
    let r = try CLI.run(["synth", "--output", out.path, "--train", String(train), "--valid", "1", "--size", "64,64,64",
                         "--spacing-mm", "1.5,1.5,1.5", "--threads", "1"])
    #expect(r.status == 0, "synth: \(r.stderr)")
    return out
  }

  static func cohortArguments(_ synth: URL) -> [String] {
    ["--layout", "ct-rate", "--volumes", synth.appendingPathComponent("train").path,
     "--reports", synth.appendingPathComponent("train_reports.csv").path,
     "--labels", synth.appendingPathComponent("train_labels.csv").path, "--schema", "chest-ct-18"]
  }

  static func preset(in dir: URL) throws -> URL {
    let url = dir.appendingPathComponent("dp-preset.json")
    let json = """
      {"name": "test-dp", "model": {"imageStem": "lite", "latentDim": 16, "maxTextTokens": 32},
       "data": {"protocolName": "chest-ct", "trainingCanvas": [64, 64, 32], "trainingCrop": [64, 64, 32],
                "evaluationSize": [64, 64, 32], "workers": 1, "queueDepth": 1},
       "stage1Image": {"learningRate": 1e-2, "adamEpsilon": 1, "batchSize": 2, "epochs": 3, "checkpointEvery": 100,
                       "logEvery": 1},
       "stage1Text": {"learningRate": 1e-2, "adamEpsilon": 1, "batchSize": 2, "epochs": 3, "checkpointEvery": 100,
                      "logEvery": 1},
       "stage2": {"learningRate": 1e-2, "adamEpsilon": 1, "batchSize": 2, "epochs": 3, "clipGradNorm": 0.5,
                  "checkpointEvery": 100, "logEvery": 1}}
      """
    try Data(json.utf8).write(to: url)
    return url
  }


  /// How far apart the trainable weights of two runs' newest checkpoints are: `model`, ‖a − b‖ / ‖b‖ over all
  /// trainable tensors together; `perTensor`, the largest per-tensor max |a − b| / max(max |b|, 10⁻³) (with its key).
  /// The floor keeps tensors that stay at zero up to rounding from dividing noise by noise: BERT's attention key
  /// biases, whose gradient is zero in exact arithmetic (softmax ignores a constant added to a row of logits). Buffers
  /// (BatchNorm running statistics) are left out: in a data-parallel run they are rank 0's.
  static func differences(_ a: URL, _ b: URL) throws -> (model: Double, perTensor: Double, key: String, compared: Int) {
    let wa = try Checkpoint.weights(try Checkpoint.resolve(a)), wb = try Checkpoint.weights(try Checkpoint.resolve(b))
    #expect(Set(wa.keys) == Set(wb.keys))
    var diff2 = 0.0, norm2 = 0.0, worst = 0.0, key = "", compared = 0
    for (k, ta) in wa where !k.contains("running_") && !k.hasSuffix("num_batches_tracked") {
      guard let tb = wb[k] else { continue }
      let x = try ta.to(.float64), y = try tb.to(.float64)
      let e = try x - y
      diff2 += try e.square().sum().item()
      norm2 += try y.square().sum().item()
      let rel = try e.abs().max().item() / max(try y.abs().max().item(), 1e-3)
      compared += 1
      if rel > worst { (worst, key) = (rel, k) }
    }
    return ((diff2 / max(norm2, 1e-300)).squareRoot(), worst, key, compared)
  }
}

@Suite("Data-parallel training", .serialized)
struct DataParallelTests {
  @Test func environmentContractIsReadAndCheckedLikeTorchrun() throws {
    #expect(try DistributedEnvironment.from([:]) == nil)
    let env = try #require(try DistributedEnvironment.from(
      ["MASTER_ADDR": "10.0.0.1", "MASTER_PORT": "29500", "RANK": "3", "WORLD_SIZE": "8", "LOCAL_RANK": "1"]))
    #expect(env == DistributedEnvironment(masterAddress: "10.0.0.1", masterPort: 29500, rank: 3, worldSize: 8, localRank: 1))
    #expect(try DistributedEnvironment.from(["MASTER_ADDR": "h", "MASTER_PORT": "1", "RANK": "0", "WORLD_SIZE": "2"])?.localRank == 0)
    #expect(errorText { try DistributedEnvironment.from(["RANK": "0", "WORLD_SIZE": "2", "MASTER_PORT": "1"]) as Any }
      .contains("MASTER_ADDR is not set"))
    #expect(errorText { try DistributedEnvironment.from(["MASTER_ADDR": "h", "MASTER_PORT": "1", "RANK": "2", "WORLD_SIZE": "2"]) as Any }
      .contains("RANK=2"))
  }

  @Test func shardsAreDisjointAndTogetherAreTheSingleProcessBatches() {
    let order = Array(0..<23)
    let shards = (0..<3).map { DataShard(rank: $0, count: 3).select(order, batchSize: 2) }
    #expect(shards.map(\.count) == [6, 6, 6])  // 3 batches of 2 per rank; 5 leftover items dropped
    #expect(Set(shards.flatMap { $0 }).count == 18)
    // Rank r's batch b is single-process batch b·3 + r.
    #expect(shards[0] == [0, 1, 6, 7, 12, 13])
    #expect(shards[1] == [2, 3, 8, 9, 14, 15])
    #expect(shards[2] == [4, 5, 10, 11, 16, 17])
    #expect(DataShard.whole.select(order, batchSize: 2) == order)
  }

  @Test func aRankThatCannotReachTheMasterStopsWithinTheTimeout() throws {
    // Rank 1 of 2 with no rank 0 listening: the rendezvous fails after the time-out with a message naming the master.
    let port = try DistributedEnvironment.freeLoopbackPort()
    let start = Date()
    let message = errorText {
      try ProcessGroup(DistributedEnvironment(masterAddress: "127.0.0.1", masterPort: port, rank: 1, worldSize: 2),
                       timeoutSeconds: 2)
    }
    let seconds = Date().timeIntervalSince(start)
    #expect(message.contains("could not reach the master at 127.0.0.1:\(port)"), "\(message)")
    #expect(seconds >= 1.5 && seconds < 30, "gave up after \(seconds) s")
  }

  /// Trains `stage` for 3 steps twice, as 2 ranks over `greenrfm launch` (batches of 2 each) and as one process
  /// with `single`, and checks that the weights agree.
  func compareTwoRanksWithOneProcess(_ name: String, _ stage: [String], ranks: [String], single: [String],
                                     perTensorTolerance: Double = 1e-4) throws {
    let dir = try TrainingFixtures.temporaryDirectory()
    defer { try? FileManager.default.removeItem(at: dir) }
    let synth = try DataParallelFixtures.cohort(in: dir, train: 4)
    let preset = try DataParallelFixtures.preset(in: dir).path
    let cache = dir.appendingPathComponent("cache").path
    let bert = try TrainingFixtures.tinyBert(in: dir, dropout: 0, seed: 11)
    let common = ["--preset", preset, "--cache", cache, "--threads", "1", "--seed", "5"]
      + DataParallelFixtures.cohortArguments(synth) + (stage.contains("stage2") ? ["--text-model", bert.path] : [])
    let two = dir.appendingPathComponent("\(name)-2ranks"), one = dir.appendingPathComponent("\(name)-1rank")
    // The single process first: it fills the shared preprocessing cache that the ranks then read.
    let r1 = try CLI.run(stage + common + single + ["--output", one.path])
    #expect(r1.status == 0, "\(name), 1 rank: \(r1.stderr)")
    let r2 = try CLI.run(["launch", "--nproc", "2", "--"] + stage + common + ranks + ["--output", two.path])
    #expect(r2.status == 0, "\(name), 2 ranks: \(r2.stderr)")
    let record = try Checkpoint.record(try Checkpoint.resolve(two))
    #expect(record.worldSize == 2)
    #expect(record.step == 3, "\(name): \(record.step) steps")
    let d = try DataParallelFixtures.differences(two, one)
    print("data-parallel \(name): weights differ by \(d.model) relative (model), at most \(d.perTensor) per tensor (\(d.key)), \(d.compared) tensors")
    #expect(d.compared > 10)
    #expect(d.model <= 1e-5, "\(name): the weights differ by \(d.model) relative")
    #expect(d.perTensor <= perTensorTolerance, "\(name): \(d.key) differs by \(d.perTensor) relative to its largest element")
    // Only rank 0 wrote: one metrics file with one line per step.
    let lines = try String(contentsOf: two.appendingPathComponent("metrics.jsonl"), encoding: .utf8).split(separator: "\n")
    #expect(lines.count == 3)
    // The runs are compared after real learning: the loss fell by more than 1 % over the 3 steps, far beyond the
    // tolerance above.
    let losses = try lines.map { line -> Double in
      let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as! [String: Any]
      return try #require(object["train/loss"] as? Double)
    }
    #expect(losses.last! < losses.first! * 0.99, "\(name): losses \(losses)")
  }

  /// Kill -9 one of two ranks mid-run: the other stops with an error within seconds instead of waiting for the
  /// collective forever, and both restarted with --resume finish the run from rank 0's last checkpoint.
  @Test func aKilledRankStopsTheOtherAndBothResume() throws {
    let dir = try TrainingFixtures.temporaryDirectory()
    defer { try? FileManager.default.removeItem(at: dir) }
    let synth = try DataParallelFixtures.cohort(in: dir, train: 4)
    let preset = try DataParallelFixtures.preset(in: dir).path
    let run = dir.appendingPathComponent("run")
    let arguments = ["train", "stage1", "--modality", "image", "--preset", preset, "--cache", dir.appendingPathComponent("cache").path,
                     "--threads", "1", "--max-steps", "8", "--dist-timeout", "60", "--output", run.path]
      + DataParallelFixtures.cohortArguments(synth)
    let port = try DistributedEnvironment.freeLoopbackPort()
    var ranks: [Process] = []
    let logs = (0..<2).map { dir.appendingPathComponent("rank\($0).log") }
    for rank in 0..<2 {
      let p = Process()
      p.executableURL = CLI.binary
      p.arguments = arguments
      p.environment = ProcessInfo.processInfo.environment.merging(
        ["MASTER_ADDR": "127.0.0.1", "MASTER_PORT": String(port), "RANK": String(rank), "WORLD_SIZE": "2"]) { $1 }
      FileManager.default.createFile(atPath: logs[rank].path, contents: nil)
      p.standardError = try FileHandle(forWritingTo: logs[rank])
      p.standardOutput = FileHandle.nullDevice
      try p.run()
      ranks.append(p)
    }
    defer { for p in ranks where p.isRunning { kill(p.processIdentifier, SIGKILL) } }
    let deadline = Date().addingTimeInterval(120)
    while Date() < deadline {
      if let folder = try? Checkpoint.resolve(run), let r = try? Checkpoint.record(folder), r.step >= 2 { break }
      usleep(50_000)
    }
    kill(ranks[1].processIdentifier, SIGKILL)
    let killed = Date()
    while ranks[0].isRunning, Date().timeIntervalSince(killed) < 60 { usleep(50_000) }
    let seconds = Date().timeIntervalSince(killed)
    #expect(!ranks[0].isRunning, "rank 0 still runs \(seconds) s after rank 1 was killed")
    ranks[0].waitUntilExit()
    #expect(ranks[0].terminationStatus != 0)
    #expect(seconds < 30, "rank 0 stopped \(seconds) s after rank 1 died")
    let message = try String(contentsOf: logs[0], encoding: .utf8)
    #expect(message.contains("Error:"), "rank 0's log: \(message.suffix(2000))")
    let before = try Checkpoint.record(try Checkpoint.resolve(run)).step
    #expect(before >= 2 && before < 8)
    print("data-parallel: rank 0 stopped \(seconds) s after rank 1 was killed at step \(before): \(message.split(separator: "\n").last ?? "")")
    // Both ranks again, with --resume: the run continues from rank 0's checkpoint to the end.
    let resumed = try CLI.run(["launch", "--nproc", "2", "--"] + arguments + ["--resume"])
    #expect(resumed.status == 0, "resume: \(resumed.stderr)")
    #expect(resumed.stderr.contains("resuming from"), "\(resumed.stderr)")
    #expect(try Checkpoint.record(try Checkpoint.resolve(run)).step == 8)
  }

  /// Stage 1 image, synchronised BatchNorm: 2 ranks × 2 volumes = one process with batches of 4.
  @Test func twoRankImageStage1WithSyncBatchNormMatchesOneProcessOverTheCombinedBatch() throws {
    // Per tensor 2e-3: on the version-4 synthetic volumes the stem BatchNorm's bias, whose gradient is a sum over
    // 4 × 8 × 16 × 16 positions that nearly cancels, differs by 8.5e-4 of its largest element (float32 sums in
    // another order over the two ranks); the whole model agrees to 1.8e-6 (limit 1e-5).
    try compareTwoRanksWithOneProcess("stage1-sync", ["train", "stage1", "--modality", "image"], ranks: ["--sync-batch-norm"],
                                      single: ["--sync-batch-norm", "--batch-size", "4"], perTensorTolerance: 2e-3)
  }

  /// Stage 1 image, local BatchNorm: each rank normalises over its own 2 volumes, which one process reproduces with
  /// micro-batches of 2 accumulated in pairs (the same batches: rank r's batch b is single-process batch 2b + r).
  @Test func twoRankImageStage1WithLocalBatchNormMatchesOneProcessAccumulatingTheRanksBatches() throws {
    try compareTwoRanksWithOneProcess("stage1-local", ["train", "stage1", "--modality", "image"], ranks: [],
                                      single: ["--grad-accum", "2"])
  }

  /// Stage 2 from scratch (no stage-1 checkpoints needed), the contrastive and BCE terms over the global batch,
  /// synchronised BatchNorm: 2 ranks × 2 pairs = one process with batches of 4.
  @Test func twoRankStage2MatchesOneProcessOverTheCombinedBatch() throws {
    try compareTwoRanksWithOneProcess("stage2-sync", ["train", "stage2", "--from-scratch", "--contrastive", "clip"],
                                      ranks: ["--sync-batch-norm"], single: ["--sync-batch-norm", "--batch-size", "4"])
  }
}

