import Foundation
import GreenRFM
import Reports
import Testing
import Torch

/// embed / eval zero-shot / eval retrieval / eval probe on a small stage-2 model trained here from the real volumes.
@Suite("Evaluation commands", .serialized)
struct EvalCommandLineTests {
  /// A stage-2 run (tiny BERT, lite ResNet at a small canvas) over the five real volumes; built once.
  static let fixture: Result<(dir: URL, run: URL, manifest: URL, cache: URL), Error> = Result {
    let dir = try TrainingFixtures.temporaryDirectory()
    let bert = try TrainingFixtures.tinyBert(in: dir)
    let preset = try TrainingFixtures.smallPreset(in: dir).path
    let manifest = try TrainingFixtures.manifest(in: dir)
    let cache = dir.appendingPathComponent("cache")
    let run = dir.appendingPathComponent("s2")
    let r = try CLI.run(["train", "stage2", "--preset", preset, "--manifest", manifest.path, "--from-scratch",
                         "--text-model", bert.path, "--max-steps", "2", "--cache", cache.path, "--output", run.path,
                         "--threads", "1"])
    guard r.status == 0 else { throw GreenRFMError.invalidData(path: run.path, reason: "stage 2 failed: \(r.stderr)") }
    return (dir, run, manifest, cache)
  }

  @Test func embedWritesLatentsAndIDs() throws {
    let f = try Self.fixture.get()
    let out = f.dir.appendingPathComponent("emb")
    let r = try CLI.run(["embed", "--checkpoint", f.run.path, "--manifest", f.manifest.path, "--output", out.path,
                         "--cache", f.cache.path, "--threads", "1"])
    #expect(r.status == 0, "stderr: \(r.stderr)")
    let e = try CohortEmbeddings.read(from: out)
    #expect(e.image?.shape == [5, 16] && e.text?.shape == [5, 16])
    #expect(e.imageIDs == (0..<5).map { "case\($0)" } && e.textIDs == e.imageIDs)
    // Retrieval and probes from the exported embeddings, without the model.
    let ret = try CLI.run(["eval", "retrieval", "--embeddings", out.path, "--manifest", f.manifest.path,
                           "--output", f.dir.appendingPathComponent("ret").path, "--json"])
    #expect(ret.status == 0, "stderr: \(ret.stderr)")
    let metrics = try JSONSerialization.jsonObject(with: Data(ret.stdout.utf8)) as! [String: Any]
    let r1 = try #require(metrics["retrieval/reportToVolume/recall@1"] as? Double)
    #expect(r1 >= 0 && r1 <= 1)
    #expect(metrics["retrieval/reportToVolume/recall@5"] as? Double == 1)  // pool of 5
  }

  @Test func zeroShotWritesProbabilitiesMetricsAndReport() throws {
    let f = try Self.fixture.get()
    let out = f.dir.appendingPathComponent("zs")
    let r = try CLI.run(["eval", "zero-shot", "--checkpoint", f.run.path, "--manifest", f.manifest.path,
                         "--output", out.path, "--cache", f.cache.path, "--bootstrap", "50", "--template", "all",
                         "--threads", "1"])
    #expect(r.status == 0, "stderr: \(r.stderr)")
    let table = try CSVTable(contentsOf: out.appendingPathComponent("zero_shot_probabilities.csv"))
    #expect(table.header == ["id"] + (try LabelSchema.load("chest-ct-18")).displayNames)
    #expect(table.rows.count == 5)
    for row in table.rows { for cell in row.dropFirst() { #expect((Double(cell) ?? -1) > 0 && (Double(cell) ?? 2) < 1) } }
    let metrics = try JSONSerialization.jsonObject(with: Data(contentsOf: out.appendingPathComponent("metrics.json"))) as! [String: Any]
    #expect(metrics.keys.contains("zeroShot/auroc/macro"))
    // With 5 studies, findings with one class are undefined, never 0.5.
    for (k, v) in metrics where k.hasPrefix("zeroShot/auroc/") && !k.hasSuffix("ci95") {
      if let d = v as? Double { #expect(d != 0.5 || k.hasSuffix("macro") || k.hasSuffix("micro")) }
    }
    let html = try String(contentsOf: out.appendingPathComponent("report.html"), encoding: .utf8)
    #expect(html.contains("<svg") && html.contains("zero-shot"))
  }

  @Test func stage1CheckpointsAreRefusedForZeroShot() throws {
    let f = try Self.fixture.get()
    let bert = try TrainingFixtures.tinyBert(in: f.dir)
    let text = f.dir.appendingPathComponent("text-s1")
    let t = try CLI.run(["train", "stage1", "--modality", "text", "--preset", try TrainingFixtures.smallPreset(in: f.dir).path,
                         "--manifest", f.manifest.path, "--max-steps", "1", "--text-model", bert.path, "--output", text.path])
    #expect(t.status == 0, "stderr: \(t.stderr)")
    let r = try CLI.run(["eval", "zero-shot", "--checkpoint", text.path, "--manifest", f.manifest.path,
                         "--output", f.dir.appendingPathComponent("x").path])
    #expect(r.status != 0 && r.stderr.contains("stage2"))
  }
}
