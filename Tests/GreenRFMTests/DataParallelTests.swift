import Foundation
import GreenRFM
import Reports
import Testing
import Torch
import TorchNN

/// Fixtures for the data-parallel tests: a tiny synthetic cohort (16×16×8 volumes, CT-RATE layout), a preset at that
/// canvas, and a tiny BERT without dropout (so that the text encoder's output does not depend on how a batch is
/// split across ranks).
enum DataParallelFixtures {
  /// `greenrfm synth` with `train` patients of 16×16×8 voxels.
  static func cohort(in dir: URL, train: Int = 8) throws -> URL {
    let out = dir.appendingPathComponent("synth")
    let r = try CLI.run(["synth", "--output", out.path, "--train", String(train), "--valid", "1", "--size", "16,16,8",
                         "--spacing-mm", "1.5,1.5,3", "--threads", "1"])
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
       "data": {"protocolName": "chest-ct", "trainingCanvas": [16, 16, 8], "trainingCrop": [16, 16, 8],
                "evaluationSize": [16, 16, 8], "workers": 1, "queueDepth": 1},
       "stage1Image": {"learningRate": 1e-3, "batchSize": 2, "epochs": 3, "checkpointEvery": 100, "logEvery": 1},
       "stage1Text": {"learningRate": 1e-3, "batchSize": 2, "epochs": 3, "checkpointEvery": 100, "logEvery": 1},
       "stage2": {"learningRate": 1e-3, "batchSize": 2, "epochs": 3, "clipGradNorm": 0.5, "checkpointEvery": 100,
                  "logEvery": 1}}
      """
    try Data(json.utf8).write(to: url)
    return url
  }

  /// A BERT folder with the MiniLM vocabulary, 2 layers of width 32 and no dropout.
  static func tinyBertWithoutDropout(in dir: URL) throws -> URL {
    let folder = dir.appendingPathComponent("tiny-bert-nodrop")
    try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    let vocab = CohortData.root.appendingPathComponent("models/all-MiniLM-L6-v2/vocab.txt")
    try Data(contentsOf: vocab).write(to: folder.appendingPathComponent("vocab.txt"))
    let config = """
      {"architectures": ["BertModel"], "model_type": "bert", "vocab_size": 30522, "hidden_size": 32,
       "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 64, "hidden_act": "gelu",
       "max_position_embeddings": 512, "type_vocab_size": 2, "layer_norm_eps": 1e-12,
       "hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0, "pad_token_id": 0}
      """
    try Data(config.utf8).write(to: folder.appendingPathComponent("config.json"))
    let encoder = try BertEncoder(config: try BertConfig.load(contentsOf: folder.appendingPathComponent("config.json")),
                                  generator: Generator(seed: 11))
    try SafeTensors.save(encoder.stateDict(), to: folder.appendingPathComponent("model.safetensors"))
    return folder
  }

  /// The largest relative difference over the trainable tensors of two runs' newest checkpoints: per tensor,
  /// max |a − b| / max |b| (the tensor's own scale, so that elements near zero are not divided by themselves).
  /// Buffers (BatchNorm running statistics) are left out: in a data-parallel run they are rank 0's.
  static func largestRelativeDifference(_ a: URL, _ b: URL) throws -> (value: Double, key: String, compared: Int) {
    let wa = try Checkpoint.weights(try Checkpoint.resolve(a)), wb = try Checkpoint.weights(try Checkpoint.resolve(b))
    #expect(Set(wa.keys) == Set(wb.keys))
    var worst = (value: 0.0, key: "", compared: 0)
    for (key, ta) in wa where !key.contains("running_") && !key.hasSuffix("num_batches_tracked") {
      let tb = try #require(wb[key])
      let x: [Float] = try ta.to(.float32).contiguous().scalars(), y: [Float] = try tb.to(.float32).contiguous().scalars()
      let scale = y.map { abs(Double($0)) }.max() ?? 0
      let diff = zip(x, y).map { abs(Double($0) - Double($1)) }.max() ?? 0
      let rel = scale > 0 ? diff / scale : diff
      worst.compared += 1
      if rel > worst.value { worst = (rel, key, worst.compared) }
    }
    return worst
  }

  /// The largest relative difference between two runs' initial and final weights (to show that training moved them).
  static func largestChange(_ run: URL, from initial: [String: Tensor]) throws -> Double {
    let w = try Checkpoint.weights(try Checkpoint.resolve(run))
    var most = 0.0
    for (key, t) in initial where !key.contains("running_") && !key.hasSuffix("num_batches_tracked") {
      let x: [Float] = try t.to(.float32).contiguous().scalars(), y: [Float] = try w[key]!.to(.float32).contiguous().scalars()
      let scale = x.map { abs(Double($0)) }.max() ?? 1
      most = max(most, (zip(x, y).map { abs(Double($0) - Double($1)) }.max() ?? 0) / max(scale, 1e-12))
    }
    return most
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
    let port = try freeTCPPort()
    let start = Date()
    let message = errorText {
      try ProcessGroup(DistributedEnvironment(masterAddress: "127.0.0.1", masterPort: port, rank: 1, worldSize: 2),
                       timeoutSeconds: 2)
    }
    let seconds = Date().timeIntervalSince(start)
    #expect(message.contains("could not reach the master at 127.0.0.1:\(port)"), "\(message)")
    #expect(seconds >= 1.5 && seconds < 30, "gave up after \(seconds) s")
  }

  @Test func twoRankStage1AndStage2MatchOneProcessOverTheCombinedBatch() throws {
    let dir = try TrainingFixtures.temporaryDirectory()
    defer { try? FileManager.default.removeItem(at: dir) }
    let synth = try DataParallelFixtures.cohort(in: dir, train: 4)
    let preset = try DataParallelFixtures.preset(in: dir).path
    let cache = dir.appendingPathComponent("cache").path
    let bert = try DataParallelFixtures.tinyBertWithoutDropout(in: dir)
    let common = ["--preset", preset, "--cache", cache, "--threads", "1", "--seed", "5"] + DataParallelFixtures.cohortArguments(synth)

    func check(_ name: String, _ stage: [String], ranks: [String], single: [String]) throws {
      let two = dir.appendingPathComponent("\(name)-2ranks"), one = dir.appendingPathComponent("\(name)-1rank")
      // The single process first: it fills the shared preprocessing cache that the ranks then read.
      let r1 = try CLI.run(stage + common + single + ["--output", one.path])
      #expect(r1.status == 0, "\(name), 1 rank: \(r1.stderr)")
      let r2 = try CLI.run(["launch", "--nproc", "2", "--"] + stage + common + ranks + ["--output", two.path])
      #expect(r2.status == 0, "\(name), 2 ranks: \(r2.stderr)")
      let record = try Checkpoint.record(try Checkpoint.resolve(two))
      #expect(record.worldSize == 2)
      #expect(record.step == 3, "\(name): \(record.step) steps")
      let d = try DataParallelFixtures.largestRelativeDifference(two, one)
      print("data-parallel \(name): largest relative weight difference \(d.value) (\(d.key)) over \(d.compared) tensors")
      #expect(d.compared > 10)
      #expect(d.value <= 1e-5, "\(name): \(d.key) differs by \(d.value) relative")
      // Only rank 0 wrote: one metrics file with one line per step.
      let lines = try String(contentsOf: two.appendingPathComponent("metrics.jsonl"), encoding: .utf8).split(separator: "\n")
      #expect(lines.count == 3)
    }

    // Stage 1 image, synchronised BatchNorm: 2 ranks × 2 volumes = one process with batches of 4.
    try check("stage1-sync", ["train", "stage1", "--modality", "image"], ranks: ["--sync-batch-norm"],
              single: ["--sync-batch-norm", "--batch-size", "4"])
    // Stage 1 image, local BatchNorm: each rank's statistics are those of its 2 volumes, which one process
    // reproduces with micro-batches of 2 accumulated in pairs.
    try check("stage1-local", ["train", "stage1", "--modality", "image"], ranks: [],
              single: ["--grad-accum", "2"])
    // Stage 2 from scratch (no stage-1 checkpoints needed), contrastive over the global batch, synchronised BN.
    try check("stage2-sync", ["train", "stage2", "--from-scratch", "--text-model", bert.path, "--contrastive", "clip"],
              ranks: ["--sync-batch-norm"], single: ["--sync-batch-norm", "--batch-size", "4"])
  }
}

/// A TCP port on 127.0.0.1 that was free a moment ago.
func freeTCPPort() throws -> Int {
  let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
  defer { close(fd) }
  var addr = sockaddr_in()
  addr.sin_family = sa_family_t(AF_INET)
  addr.sin_addr.s_addr = inet_addr("127.0.0.1")
  var len = socklen_t(MemoryLayout<sockaddr_in>.size)
  let ok = withUnsafeMutablePointer(to: &addr) {
    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) == 0 && getsockname(fd, $0, &len) == 0 }
  }
  guard ok else { throw TorchError.invalidArgument("no free port") }
  return Int(UInt16(bigEndian: addr.sin_port))
}
