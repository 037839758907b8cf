import Foundation
import GreenRFM
import Logging
import MedicalImaging
import Reports
import Testing
import Torch
import TorchNN

/// Fixtures for the training tests: a tiny BERT folder (the real MiniLM vocabulary, random weights, 2 layers of
/// width 32) so text runs take seconds, a small preset, and cohorts over the real files in ../shared/data.
enum TrainingFixtures {
  static let shared = CohortData.root

  /// A BERT folder with the MiniLM vocabulary and a tiny random encoder (2 layers of width 32, seeded); `dropout`
  /// for the hidden and attention layers (0 for runs that must match exactly, as the data-parallel tests).
  static func tinyBert(in dir: URL, dropout: Double = 0.1, seed: UInt64 = 7) throws -> URL {
    let folder = dir.appendingPathComponent(dropout == 0 ? "tiny-bert-nodrop" : "tiny-bert")
    try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    let vocab = shared.appendingPathComponent("models/all-MiniLM-L6-v2/vocab.txt")
    try Data(contentsOf: vocab).write(to: folder.appendingPathComponent("vocab.txt"))
    let config = """
      {"architectures": ["BertModel"], "model_type": "bert", "vocab_size": 30522, "hidden_size": 32,
       "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 64, "hidden_act": "gelu",
       "max_position_embeddings": 512, "type_vocab_size": 2, "layer_norm_eps": 1e-12,
       "hidden_dropout_prob": \(dropout), "attention_probs_dropout_prob": \(dropout), "pad_token_id": 0}
      """
    try Data(config.utf8).write(to: folder.appendingPathComponent("config.json"))
    let encoder = try BertEncoder(config: try BertConfig.load(contentsOf: folder.appendingPathComponent("config.json")),
                                  generator: Generator(seed: seed))
    try SafeTensors.save(encoder.stateDict(), to: folder.appendingPathComponent("model.safetensors"))
    return folder
  }

  /// A preset for tests: chest protocol at a small canvas so a lite ResNet step takes well under a second.
  static func smallPreset(in dir: URL, batchSize: Int = 2) throws -> URL {
    let url = dir.appendingPathComponent("small-preset.json")
    let json = """
      {"name": "test-small", "model": {"imageStem": "lite", "latentDim": 16, "maxTextTokens": 48},
       "data": {"protocolName": "chest-ct", "trainingCanvas": [72, 72, 40], "trainingCrop": [64, 64, 32],
                "evaluationSize": [64, 64, 32], "workers": 1, "queueDepth": 2},
       "stage1Image": {"learningRate": 1e-3, "batchSize": \(batchSize), "epochs": 1, "checkpointEvery": 1, "logEvery": 1},
       "stage1Text": {"learningRate": 1e-3, "batchSize": \(batchSize), "epochs": 1, "checkpointEvery": 1, "logEvery": 1},
       "stage2": {"learningRate": 1e-3, "batchSize": \(batchSize), "epochs": 1, "clipGradNorm": 0.5, "checkpointEvery": 1, "logEvery": 1}}
      """
    try Data(json.utf8).write(to: url)
    return url
  }

  /// The real volumes: four NIfTI CTs and one DICOM series folder.
  static var volumes: [String] {
    ["ct/ts_chest_cta_full_3mm.nii.gz", "ct/ts_chest_cta_crop_1p5mm.nii.gz", "ct/ts_abdomen_pelvis_ct_3mm.nii.gz",
     "ct/ts_abdomen_ct_small_3mm_30sl.nii.gz", "dicom/dcmqi_liver_ct_3slice"].map { shared.appendingPathComponent($0).path }
  }

  /// A manifest pairing each real volume with a real report and its manual labels (rows 0…4 of the manual CSV).
  static func manifest(in dir: URL) throws -> URL {
    let reports = try CohortLayout.reports(
      csv: shared.appendingPathComponent("reports/ctrate_manual_train.csv"), idColumn: "AccessionNo",
      textColumns: ["report_text"], labelsCSV: nil, labelsIDColumn: nil, schema: try LabelSchema.load("chest-ct-18"))
    let schema = reports.schema
    var text = (["id", "volume", "report"] + schema.displayNames).map(quote).joined(separator: ",") + "\n"
    for (i, path) in volumes.enumerated() {
      let item = reports.items[i]
      text += ([quote("case\(i)"), quote(path), quote(item.reportText ?? "")] + item.labels.map { String($0) })
        .joined(separator: ",") + "\n"
    }
    let url = dir.appendingPathComponent("manifest.csv")
    try Data(text.utf8).write(to: url)
    return url
  }

  static func quote(_ s: String) -> String { "\"" + s.replacingOccurrences(of: "\"", with: "\"\"") + "\"" }

  static func temporaryDirectory() throws -> URL { try cohortTemporaryDirectory() }

  /// The model tensors of a checkpoint, by key.
  static func weights(_ run: URL) throws -> [String: Tensor] { try Checkpoint.weights(try Checkpoint.resolve(run)) }

  static func textArguments(reports: Int, bert: URL) -> [String] {
    ["--reports", shared.appendingPathComponent("reports/ctrate_manual_train.csv").path, "--id-column", "AccessionNo",
     "--text-columns", "report_text", "--schema", "chest-ct-18", "--limit", String(reports), "--text-model", bert.path,
     "--threads", "1"]
  }
}

/// The description of the error `body` throws ("" when it does not throw).
func errorText(_ body: () throws -> Any) -> String {
  do { _ = try body(); return "" } catch { return "\(error)" }
}

@Suite("Configs and presets")
struct ConfigTests {
  @Test func builtInPresetsLoadAndDifferOnlyInTheStem() throws {
    let lite = try GreenRFMConfig.load("greenrfm-lite")
    let standard = try GreenRFMConfig.load("greenrfm-standard")
    #expect(lite.model.imageStem == .lite)
    #expect(standard.model.imageStem == .standard)
    #expect(lite.stage1Image == standard.stage1Image)
    #expect(lite.stage2.clipGradNorm == 0.5)
    #expect(lite.stage2.learningRate == 1e-5)
    #expect(lite.stage1Image.learningRate == 1e-4 && lite.stage1Image.weightDecay == 1e-4)
    #expect(lite.data.trainingCrop == [192, 192, 96] && lite.data.trainingCanvas == [240, 240, 120])
  }

  @Test func unknownKeysAndBadValuesAreErrorsNamingTheKey() throws {
    let bad = Data(#"{"model": {"imageStem": "lite", "latentDimm": 12}}"#.utf8)
    #expect(errorText { try GreenRFMConfig.decode(bad, source: "x.json") }.contains("model.latentDimm"))
    let range = Data(#"{"stage2": {"batchSize": 0}}"#.utf8)
    #expect(errorText { try GreenRFMConfig.decode(range, source: "y.json") }.contains("batchSize"))
    let type = Data(#"{"model": {"imageStem": "huge"}}"#.utf8)
    #expect(errorText { try GreenRFMConfig.decode(type, source: "z.json") }.contains("z.json"))
    let optional = Data(#"{"stage2": {"maxSteps": 3, "clipGradNorm": 1.0}, "model": {"textModel": "/x"}}"#.utf8)
    let config = try GreenRFMConfig.decode(optional, source: "ok.json")
    #expect(config.stage2.maxSteps == 3 && config.model.textModel == "/x")
    // A preset file overlays greenrfm-lite: stage 2 keeps its clipping and learning rate where the file is silent.
    let dir = try TrainingFixtures.temporaryDirectory()
    defer { try? FileManager.default.removeItem(at: dir) }
    let file = dir.appendingPathComponent("partial.json")
    try Data(#"{"stage2": {"epochs": 2}, "stage1Text": {"batchSize": 4}}"#.utf8).write(to: file)
    let partial = try GreenRFMConfig.load(file.path)
    let lite = try GreenRFMConfig.load("greenrfm-lite")
    #expect(partial.stage2.epochs == 2 && partial.stage2.clipGradNorm == 0.5 && partial.stage2.learningRate == 1e-5)
    #expect(partial.stage1Text.batchSize == 4 && partial.stage1Text.warmupSteps == lite.stage1Text.warmupSteps)
    #expect(errorText { try GreenRFMConfig.load(dir.path) }.contains("neither a preset"))
  }
}

@Suite("Two-stage training", .serialized)
struct TrainingTests {
  @Test func contrastiveLossMatchesTheDefinition() throws {
    // Dot: CE over rows and columns of image·textᵀ with the diagonal as targets (computed by hand here).
    let image = try Tensor([Float](arrayLiteral: 1, 0, 0, 2, 1, 1), shape: [3, 2])
    let text = try Tensor([Float](arrayLiteral: 1, 1, 0, 1, 2, 0), shape: [3, 2])
    let s = [[1.0, 0, 2], [2, 2, 0], [2, 1, 2]]  // image · textᵀ
    func ce(_ rows: [[Double]]) -> Double {
      rows.enumerated().map { i, r in -r[i] + Foundation.log(r.map { Foundation.exp($0) }.reduce(0, +)) }.reduce(0, +) / 3
    }
    let columns = (0..<3).map { j in (0..<3).map { s[$0][j] } }
    let expected = (ce(s) + ce(columns)) / 2
    let dot = try AlignmentLoss.contrastive(image: image, text: text, kind: .dot, logitScale: try Tensor.scalar(0)).item()
    #expect(abs(dot - expected) < 1e-6)
    // CLIP: normalised latents, scale exp(s) clamped at 100 (s = 10 → 100).
    let clip = try AlignmentLoss.contrastive(image: image, text: text, kind: .clip, logitScale: try Tensor.scalar(10)).item()
    #expect(clip.isFinite && abs(clip - dot) > 1e-3)
  }

  @Test func textStage1ResumesExactly() throws {
    // 4 steps straight vs 2 steps, stop, then --resume for the last 2: identical weights, bit for bit.
    let dir = try TrainingFixtures.temporaryDirectory()
    defer { try? FileManager.default.removeItem(at: dir) }
    let bert = try TrainingFixtures.tinyBert(in: dir)
    let preset = try TrainingFixtures.smallPreset(in: dir).path
    let common = ["train", "stage1", "--modality", "text", "--preset", preset, "--max-steps", "4", "--batch-size", "3",
                  "--max-tokens", "48"] + TrainingFixtures.textArguments(reports: 12, bert: bert)
    let straight = dir.appendingPathComponent("straight")
    let r1 = try CLI.run(common + ["--output", straight.path])
    #expect(r1.status == 0, "stderr: \(r1.stderr)")
    let split = dir.appendingPathComponent("split")
    let r2 = try CLI.run(common + ["--output", split.path, "--stop-after-steps", "2"])
    #expect(r2.status == 0, "stderr: \(r2.stderr)")
    #expect(try Checkpoint.record(Checkpoint.resolve(split)).step == 2)
    // Without --resume an existing run is refused, not overwritten.
    let refused = try CLI.run(common + ["--output", split.path])
    #expect(refused.status != 0 && refused.stderr.contains("--resume"))
    let r3 = try CLI.run(common + ["--output", split.path, "--resume"])
    #expect(r3.status == 0, "stderr: \(r3.stderr)")
    let a = try TrainingFixtures.weights(straight), b = try TrainingFixtures.weights(split)
    #expect(Set(a.keys) == Set(b.keys))
    #expect(a.keys.contains("encoder.encoder.layer.1.output.LayerNorm.weight") && a.keys.contains("head.weight"))
    for (k, v) in a { #expect(try v.equals(b[k]!), "\(k) differs after resume") }
    #expect(try Checkpoint.record(Checkpoint.resolve(split)).step == 4)
    // The metrics log holds each step once.
    let lines = try String(contentsOf: split.appendingPathComponent("metrics.jsonl"), encoding: .utf8)
      .split(separator: "\n").compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
    #expect(lines.compactMap { $0["step"] as? Int } == [1, 2, 3, 4])
    // A resume with other settings is refused with the differences; so is one on other data.
    let other = try CLI.run(common.map { $0 == "3" ? "4" : $0 } + ["--output", split.path, "--resume"])
    #expect(other.status != 0 && other.stderr.contains("cannot resume") && other.stderr.contains("train.batchSize 3 → 4"))
    let otherData = try CLI.run(common.map { $0 == "12" ? "13" : $0 } + ["--output", split.path, "--resume"])
    #expect(otherData.status != 0 && otherData.stderr.contains("training data differ"))
  }

  @Test func killedRunResumesFromAnIntactCheckpoint() throws {
    let dir = try TrainingFixtures.temporaryDirectory()
    defer { try? FileManager.default.removeItem(at: dir) }
    let bert = try TrainingFixtures.tinyBert(in: dir)
    let preset = try TrainingFixtures.smallPreset(in: dir).path
    let common = ["train", "stage1", "--modality", "text", "--preset", preset, "--max-steps", "40", "--batch-size", "2",
                  "--max-tokens", "48", "--checkpoint-every", "1"] + TrainingFixtures.textArguments(reports: 80, bert: bert)
    let run = dir.appendingPathComponent("killed")
    let process = Process()
    process.executableURL = CLI.binary
    process.arguments = common + ["--output", run.path]
    process.standardError = FileHandle.nullDevice
    process.standardOutput = FileHandle.nullDevice
    try process.run()
    // Kill -9 once a few checkpoints exist (mid-write is likely: one is written every step).
    let deadline = Date().addingTimeInterval(120)
    while Date() < deadline {
      if let folder = try? Checkpoint.resolve(run), let r = try? Checkpoint.record(folder), r.step >= 3 { break }
      usleep(20_000)
    }
    kill(process.processIdentifier, SIGKILL)
    process.waitUntilExit()
    let folder = try Checkpoint.resolve(run)
    let record = try Checkpoint.record(folder)
    #expect(record.step >= 3 && record.step < 40)
    _ = try Checkpoint.weights(folder)  // complete and readable
    let resumed = try CLI.run(common + ["--output", run.path, "--resume"])
    #expect(resumed.status == 0, "stderr: \(resumed.stderr)")
    #expect(try Checkpoint.record(Checkpoint.resolve(run)).step == 40)
    let straight = dir.appendingPathComponent("straight")
    let r = try CLI.run(common + ["--output", straight.path])
    #expect(r.status == 0, "stderr: \(r.stderr)")
    let a = try TrainingFixtures.weights(straight), b = try TrainingFixtures.weights(run)
    for (k, v) in a { #expect(try v.equals(b[k]!), "\(k) differs after kill -9 and resume") }
    let leftovers = try FileManager.default.contentsOfDirectory(atPath: run.appendingPathComponent("checkpoints").path)
    #expect(!leftovers.contains { $0.hasPrefix(".partial-") })
  }

  @Test func imageStage1OverfitsARepeatedBatchOfRealVolumes() throws {
    // The whole data path: reader (NIfTI, DICOM), preprocessing, cache, loader → lite ResNet-18 + head.
    let dir = try TrainingFixtures.temporaryDirectory()
    defer { try? FileManager.default.removeItem(at: dir) }
    let schema = try LabelSchema.load("chest-ct-18")
    let cohort = try CohortLayout.manifest(csv: try TrainingFixtures.manifest(in: dir), schema: schema)
    #expect(cohort.items.count == 5)
    let config = try GreenRFMConfig.load(try TrainingFixtures.smallPreset(in: dir, batchSize: 4).path)
    let loader = try Stages.volumeLoader(cohort, config: config, train: config.stage1Image, training: true,
                                         cacheFolder: dir.appendingPathComponent("cache"), seed: 1)
    let batch = try #require(try loader.batches(epoch: 0).makeIterator().next())
    #expect(batch.shape == [4, 1, 32, 64, 64])
    #expect(loader.failures.isEmpty)
    LibTorch.manualSeed(3)
    let model = try ImageClassifier(stem: .lite, findings: 18, generator: Generator(seed: 3))
    let optimizer = try AdamW(parameters: model.namedParameters(), learningRate: 1e-3, weightDecay: 1e-4)
    let x = try Tensor(batch.voxels, shape: batch.shape)
    let y = try Tensor(batch.labels.map(Float.init), shape: [4, 18])
    var losses: [Double] = []
    for _ in 0..<12 {
      let loss = try Losses.multiLabelBCE(logits: model(x), labels: y)
      losses.append(try loss.item())
      try loss.backward()
      try optimizer.step()
      try optimizer.zeroGrad()
    }
    #expect(losses.last! < losses.first! * 0.5, "losses: \(losses)")
  }

  @Test func stage2StartsFromTheStage1WeightsAndLearns() throws {
    let dir = try TrainingFixtures.temporaryDirectory()
    defer { try? FileManager.default.removeItem(at: dir) }
    let bert = try TrainingFixtures.tinyBert(in: dir)
    let preset = try TrainingFixtures.smallPreset(in: dir).path
    let manifest = try TrainingFixtures.manifest(in: dir).path
    let cache = dir.appendingPathComponent("cache").path
    // Stage 1 image (2 steps on the real volumes) and text (2 steps on their reports) through the CLI.
    let image = dir.appendingPathComponent("image-s1")
    let ri = try CLI.run(["train", "stage1", "--modality", "image", "--preset", preset, "--manifest", manifest,
                          "--max-steps", "2", "--cache", cache, "--output", image.path, "--threads", "1"])
    #expect(ri.status == 0, "stderr: \(ri.stderr)")
    let text = dir.appendingPathComponent("text-s1")
    let rt = try CLI.run(["train", "stage1", "--modality", "text", "--preset", preset, "--manifest", manifest,
                          "--max-steps", "2", "--text-model", bert.path, "--output", text.path, "--threads", "1"])
    #expect(rt.status == 0, "stderr: \(rt.stderr)")

    // Without the stage-1 checkpoints stage 2 refuses (the authors' script silently starts from scratch).
    let refused = try CLI.run(["train", "stage2", "--preset", preset, "--manifest", manifest, "--output",
                               dir.appendingPathComponent("s2-refused").path, "--text-model", bert.path])
    #expect(refused.status != 0 && refused.stderr.contains("--image-init"))

    // The loaded encoders equal the saved ones, tensor for tensor.
    var config = try GreenRFMConfig.load(preset)
    config.data.cacheFolder = cache
    let schema = try LabelSchema.load("chest-ct-18")
    let cohort = try CohortLayout.manifest(csv: URL(fileURLWithPath: manifest), schema: schema)
    var train = config.stage2
    train.maxSteps = 6
    train.batchSize = 4
    let run = TrainingRun(kind: .stage2, output: dir.appendingPathComponent("s2"), config: config, train: train, seed: 0,
                          device: .cpu, schema: schema)
    let trainer = try Stages.stage2(train: cohort, validation: nil, run: run, imageInit: image, textInit: text,
                                    fromScratch: false, textFolder: nil, logger: Logger(label: "test"))
    let model = try #require(trainer.model as? GreenRFMModel)
    let savedImage = try TrainingFixtures.weights(image), savedText = try TrainingFixtures.weights(text)
    let state = model.stateDict()
    var compared = 0
    for (k, v) in savedImage where k.hasPrefix("encoder.") {
      let mine = try #require(state["imageEncoder." + k.dropFirst("encoder.".count)], "missing \(k)")
      #expect(try mine.equals(v), "\(k)")
      compared += 1
    }
    for (k, v) in savedText where k.hasPrefix("encoder.") {
      let mine = try #require(state["textEncoder." + k.dropFirst("encoder.".count)], "missing \(k)")
      #expect(try mine.equals(v), "\(k)")
      compared += 1
    }
    #expect(compared == savedImage.count - 2 + savedText.count - 2)  // all but the two heads' weight and bias

    // Seeding the aligned space from the heads needs the run's findings in the heads' order: a schema with two
    // findings swapped is refused, naming the checkpoint, instead of giving each head row to the wrong finding.
    var seeded = train
    seeded.alignedSpaceInit = .stage1Heads
    var swapped = schema
    swapped.findings.swapAt(0, 1)
    let seededRun = TrainingRun(kind: .stage2, output: dir.appendingPathComponent("s2-seeded"), config: config, train: seeded,
                                seed: 0, device: .cpu, schema: swapped)
    #expect {
      _ = try Stages.stage2(train: cohort, validation: nil, run: seededRun, imageInit: image, textInit: text,
                            fromScratch: false, textFolder: nil, logger: Logger(label: "test"))
    } throws: { error in
      "\(error)".contains(image.lastPathComponent) && "\(error)".contains("same findings in the same order")
    }

    // Six steps on one repeated batch of 4: the loss goes down.
    let summary = try trainer.fit(resume: false)
    #expect(summary.step == 6)
    let lines = try String(contentsOf: run.output.appendingPathComponent("metrics.jsonl"), encoding: .utf8)
      .split(separator: "\n").compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
    let losses = lines.compactMap { $0["train/loss"] as? Double }
    #expect(losses.count == 6)
    #expect(losses.last! < losses.first!, "losses: \(losses)")
    #expect(lines.allSatisfy { $0["train/loss/contrastive"] != nil && $0["train/loss/bceImage"] != nil })
    let record = try Checkpoint.record(Checkpoint.resolve(run.output))
    #expect(record.initializedFrom["image"] != nil && record.initializedFrom["text"] != nil)
  }

  @Test func predictWritesOneProbabilityColumnPerFinding() throws {
    let dir = try TrainingFixtures.temporaryDirectory()
    defer { try? FileManager.default.removeItem(at: dir) }
    let bert = try TrainingFixtures.tinyBert(in: dir)
    let preset = try TrainingFixtures.smallPreset(in: dir).path
    let run = dir.appendingPathComponent("text")
    let args = TrainingFixtures.textArguments(reports: 10, bert: bert)
    let r = try CLI.run(["train", "stage1", "--modality", "text", "--preset", preset, "--max-steps", "1", "--output", run.path] + args)
    #expect(r.status == 0, "stderr: \(r.stderr)")
    let out = dir.appendingPathComponent("pred.csv")
    let p = try CLI.run(["predict", "--modality", "text", "--checkpoint", run.path, "--output", out.path] + args.filter { $0 != "--text-model" && $0 != bert.path })
    #expect(p.status == 0, "stderr: \(p.stderr)")
    let table = try CSVTable(contentsOf: out)
    #expect(table.header == ["AccessionNo"] + (try LabelSchema.load("chest-ct-18")).displayNames)
    #expect(table.rows.count == 10)
    for row in table.rows {
      for cell in row.dropFirst() {
        let v = try #require(Double(cell))
        #expect(v > 0 && v < 1)
      }
    }
    // A manifest row whose volume is missing is listed in the failures file, and the exit status is 1.
    let manifest = try TrainingFixtures.manifest(in: dir)
    var rows = try String(contentsOf: manifest, encoding: .utf8)
    rows += "\"missing1\",\"\(dir.path)/nope.nii.gz\",\"\"" + String(repeating: ",0", count: 18) + "\n"
    try Data(rows.utf8).write(to: manifest)
    let withMissing = dir.appendingPathComponent("pred2.csv")
    let m = try CLI.run(["predict", "--modality", "text", "--checkpoint", run.path, "--manifest", manifest.path,
                         "--output", withMissing.path, "--threads", "1"])
    #expect(m.status == 1, "stderr: \(m.stderr)")
    let failures = try String(contentsOf: URL(fileURLWithPath: withMissing.path + ".failures.csv"), encoding: .utf8)
    #expect(failures.contains("missing1"))
    #expect(try CSVTable(contentsOf: withMissing).rows.count == 5)
    // An image-only request on a text checkpoint is refused clearly.
    let wrong = try CLI.run(["predict", "--modality", "image", "--checkpoint", run.path, "--output", out.path] + args.filter { $0 != "--text-model" && $0 != bert.path })
    #expect(wrong.status != 0 && wrong.stderr.contains("text-only"))
  }
}

/// A few fixed batches for a one-parameter model (trainer mechanics without data files).
final class FixedBatches: TrainingData {
  let batches: Int
  init(batches: Int) { self.batches = batches }
  var batchesPerEpoch: Int { batches }
  func stream(epoch: Int, startBatch: Int) throws -> BatchStream {
    var b = startBatch
    return BatchStream { [batches] in
      guard b < batches else { return nil }
      b += 1
      return TrainingBatch(ids: ["item\(b - 1)"], labels: try Tensor([Float(1)], shape: [1, 1]), batchIndex: b - 1)
    }
  }
}

@Suite("Trainer safeguards", .serialized)
struct TrainerSafeguardTests {
  func run(_ dir: URL, maxSteps: Int = 3) throws -> TrainingRun {
    var train = TrainConfig()
    train.maxSteps = maxSteps
    train.batchSize = 1
    train.checkpointEvery = 1
    return TrainingRun(kind: .stage1Image, output: dir, config: GreenRFMConfig(), train: train, seed: 0, device: .cpu,
                       schema: try LabelSchema.load("chest-ct-18"))
  }

  @Test func aNonFiniteGradientStopsBeforeTheWeightsChange() throws {
    let dir = try TrainingFixtures.temporaryDirectory()
    defer { try? FileManager.default.removeItem(at: dir) }
    let model = try Linear(inFeatures: 1, outFeatures: 1)
    var calls = 0
    let trainer = Trainer(run: try run(dir), model: model, data: FixedBatches(batches: 5)) { _ in
      calls += 1
      // Step 1 is fine; step 2's loss is finite (0) but its gradient is infinite (d/dw sqrt(0·w) = ∞).
      let w = try model.weight.sum()
      let loss = calls == 1 ? try w.square() : try (w * 0).sqrt()
      return (loss, [:])
    }
    #expect(errorText { try trainer.fit(resume: false) }.contains("gradient norm"))
    let folder = try #require(try Checkpoint.find(dir.appendingPathComponent("checkpoints")))
    #expect(try Checkpoint.record(folder).step == 1)
    for (_, t) in try Checkpoint.weights(folder) { #expect(try t.isFinite().all().item() == 1) }
  }

  @Test func aBrokenLatestFallsBackToTheNewestCompleteCheckpoint() throws {
    let dir = try TrainingFixtures.temporaryDirectory()
    defer { try? FileManager.default.removeItem(at: dir) }
    let model = try Linear(inFeatures: 1, outFeatures: 1)
    let make = { try Trainer(run: self.run(dir), model: model, data: FixedBatches(batches: 5)) { _ in
      (try model.weight.sum().square(), [:]) } }
    let first = try make()
    first.stopAfterSteps = 2
    _ = try first.fit(resume: false)
    let checkpoints = dir.appendingPathComponent("checkpoints")
    try Data("step-00000099\n".utf8).write(to: checkpoints.appendingPathComponent("latest"))
    // Not a silent restart: without --resume the run is refused, with --resume it continues from step 2.
    #expect(errorText { try make().fit(resume: false) }.contains("--resume"))
    let summary = try make().fit(resume: true)
    #expect(summary.startStep == 2 && summary.step == 3)
    // Nothing complete at all: an error, not a fresh start.
    for name in try FileManager.default.contentsOfDirectory(atPath: checkpoints.path) where name.hasPrefix("step-") {
      try FileManager.default.removeItem(at: checkpoints.appendingPathComponent(name).appendingPathComponent("state.json"))
    }
    #expect(errorText { try make().fit(resume: true) }.contains("no complete checkpoint"))
  }
}
