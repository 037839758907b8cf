import Foundation
import GreenRFM
import Reports
import Testing
import Torch

/// The pipeline on the real files beside the checkout (issue 7, README "On real data"), through the built binary:
/// the 800 real reports distilled by the rule labeler and used for a short text stage 1, and the real CT volumes and
/// the JPEG 2000 DICOM series scored zero-shot with the checkpoint of `greenrfm demo --quick`. Missing shared data
/// is a failure, never a skip.
@Suite("Real input end to end", .serialized)
struct RealInputTests {
  static func shared(_ relative: String) throws -> URL {
    try #require(CohortData.file(relative), "missing shared data: \(CohortData.root.appendingPathComponent(relative).path)")
  }

  static let schema = try! LabelSchema.load("chest-ct-18")

  /// The four real CTs and the JPEG 2000 DICOM series, in the order given to the commands.
  static func realVolumes() throws -> [URL] {
    try ["ct/ts_abdomen_ct_small_3mm_30sl.nii.gz", "ct/ts_abdomen_pelvis_ct_3mm.nii.gz", "ct/ts_chest_cta_crop_1p5mm.nii.gz",
         "ct/ts_chest_cta_full_3mm.nii.gz", "dicom/ts_abdomen_ct_series_j2k"].map(shared)
  }

  /// The demo's checkpoint: `greenrfm demo --quick` (tiny models, about 10 s) into `dir/demo`; returns its `stage2` run.
  static func demoCheckpoint(in dir: URL) throws -> URL {
    let r = try CLI.run(["demo", "--quick", "--output", dir.appendingPathComponent("demo").path])
    try #require(r.status == 0, "demo --quick failed: \(r.stderr)")
    return dir.appendingPathComponent("demo/stage2")
  }

  /// A probabilities CSV as (header, ids, rows of numbers).
  static func readScores(_ url: URL) throws -> (header: [String], ids: [String], rows: [[Double]]) {
    let table = try CSVTable(contentsOf: url)
    let rows = try table.rows.map { row in try row.dropFirst().map { try #require(Double($0), "not a number: \($0)") } }
    return (table.header, table.rows.map { $0[0] }, rows)
  }

  @Test func volumeFilesAreNamedByFileAndMissingOrRepeatedNamesAreSkipped() throws {
    let ct = try Self.shared("ct/ts_chest_cta_full_3mm.nii.gz")
    let series = try Self.shared("dicom/ts_abdomen_ct_series_j2k")
    let cohort = CohortLayout.volumeFiles([ct, series, URL(fileURLWithPath: "/nonexistent/x.nii.gz"), ct], schema: Self.schema)
    #expect(cohort.items.map(\.id) == ["ts_chest_cta_full_3mm.nii.gz", "ts_abdomen_ct_series_j2k"])
    #expect(cohort.items.map(\.volumePath) == [ct.standardizedFileURL.path, series.standardizedFileURL.path])
    #expect(cohort.items.allSatisfy { $0.labels == [Int8](repeating: -1, count: 18) && $0.reportText == nil })
    #expect(cohort.skipped.map(\.id) == ["x.nii.gz", "ts_chest_cta_full_3mm.nii.gz"])
    #expect(cohort.skipped[0].reason.contains("not found") && cohort.skipped[1].reason.contains("duplicate"))
  }

  @Test func volumeFilesEndingAlikeAreNamedByTheirPathBelowTheCommonFolder() throws {
    let dir = try CLI.temporaryDirectory()
    defer { try? FileManager.default.removeItem(at: dir) }
    var urls: [URL] = []
    for patient in ["sub-01", "sub-02"] {
      let folder = dir.appendingPathComponent("archive/\(patient)")
      try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
      let file = folder.appendingPathComponent("ct.nii.gz")
      try Data().write(to: file)
      urls.append(file)
    }
    let cohort = CohortLayout.volumeFiles(urls, schema: Self.schema)
    #expect(cohort.items.map(\.id) == ["sub-01/ct.nii.gz", "sub-02/ct.nii.gz"])
    #expect(cohort.skipped.isEmpty)
  }

  @Test func realReportsDistilledThenTextStage1ScoresHeldOutManualLabelsAboveChance() throws {
    let reports = try Self.shared("reports/ctrate_manual_train.csv").path
    let dir = try CLI.temporaryDirectory()
    defer { try? FileManager.default.removeItem(at: dir) }

    // 1. Distil the 800 reports with the rule labeler.
    let labels = dir.appendingPathComponent("labels.csv").path
    let d = try CLI.run(["distill", "--reports", reports, "--schema", "chest-ct-18", "--output", labels])
    #expect(d.status == 0, "stderr: \(d.stderr)")
    let distilled = try CSVTable(contentsOf: URL(fileURLWithPath: labels))
    #expect(distilled.header == ["AccessionNo"] + Self.schema.displayNames)
    #expect(distilled.rows.count == 800)
    let cells = distilled.rows.flatMap { $0.dropFirst() }
    #expect(cells.allSatisfy { ["1", "0", "-1"].contains($0) })
    #expect(cells.filter { $0 == "1" }.count > 1000 && cells.filter { $0 == "0" }.count > 1000)

    // 2. Text stage 1 on the first 640 reports with the distilled labels, a short schedule (128 tokens, 50 steps of
    // 8). The manual labels say 0 for "not mentioned", which the distiller writes as -1, so -1 trains as 0 here
    // (with the default `ignore` the same run scored 0.523 against the manual labels).
    let run = dir.appendingPathComponent("text-s1").path
    let t = try CLI.run(["train", "stage1", "--modality", "text", "--reports", reports, "--labels", labels,
                         "--limit", "640", "--max-tokens", "128", "--max-steps", "50", "--uncertain-policy", "negative",
                         "--threads", "1", "--output", run])
    #expect(t.status == 0, "stderr: \(t.stderr)")
    #expect(t.stdout.contains("stage1-text: step 50/50"), "stdout: \(t.stdout)")

    // 3. The last 160 reports, never trained on, scored against their manual labels.
    let predictions = dir.appendingPathComponent("heldout.csv").path
    let p = try CLI.run(["predict", "--modality", "text", "--checkpoint", run, "--reports", reports, "--skip", "640",
                         "--output", predictions])
    #expect(p.status == 0, "stderr: \(p.stderr)")
    let manual = try CSVTable(contentsOf: URL(fileURLWithPath: reports))
    let heldOut = try Self.readScores(URL(fileURLWithPath: predictions))
    #expect(heldOut.header == ["AccessionNo"] + Self.schema.displayNames)
    #expect(heldOut.ids == manual.rows[640...].map { $0[0] })
    let m = try CLI.run(["metrics", "--predictions", predictions, "--labels", reports, "--id-column", "AccessionNo",
                         "--bootstrap", "0", "--json"])
    #expect(m.status == 0, "stderr: \(m.stderr)")
    let metrics = try JSONSerialization.jsonObject(with: Data(m.stdout.utf8)) as! [String: Any]
    let macro = try #require(metrics["classification/auroc/macro"] as? Double)
    // Measured: 0.703 (one thread, as here, so that CI's core count cannot change it; 80 steps reached 0.720);
    // chance is 0.5.
    #expect(macro > 0.65, "held-out macro AUROC \(macro)")
  }

  @Test func realCTsAndTheJPEG2000SeriesAreScoredZeroShotWithTheDemoCheckpoint() throws {
    let volumes = try Self.realVolumes()
    let names = volumes.map(\.lastPathComponent)
    let dir = try CLI.temporaryDirectory()
    defer { try? FileManager.default.removeItem(at: dir) }
    let stage2 = try Self.demoCheckpoint(in: dir)

    // Scores without labels or reports: id + one probability per finding.
    let first = dir.appendingPathComponent("scores.csv")
    let r = try CLI.run(["predict", "--zero-shot", "--checkpoint", stage2.path, "--output", first.path] + volumes.map(\.path))
    #expect(r.status == 0, "stderr: \(r.stderr)")
    let scores = try Self.readScores(first)
    #expect(scores.header == ["id"] + Self.schema.displayNames)
    #expect(scores.ids == names)
    #expect(scores.rows.allSatisfy { $0.count == 18 && $0.allSatisfy { $0.isFinite && $0 >= 0 && $0 <= 1 } })
    #expect(!FileManager.default.fileExists(atPath: first.path + ".failures.csv"))

    // A second run (its own preprocessing cache) gives the same file.
    let second = dir.appendingPathComponent("scores-again.csv")
    let again = try CLI.run(["predict", "--zero-shot", "--checkpoint", stage2.path, "--output", second.path] + volumes.map(\.path))
    #expect(again.status == 0, "stderr: \(again.stderr)")
    #expect(try Data(contentsOf: first) == Data(contentsOf: second))

    // The same probabilities recomputed independently: image latents from `greenrfm embed`, prompt latents from the
    // library, and sigmoid(s⁺ − s⁻) = softmax(s⁺, s⁻)[0] over raw dot products in double precision.
    let emb = dir.appendingPathComponent("embeddings")
    let e = try CLI.run(["embed", "--checkpoint", stage2.path, "--modality", "image", "--output", emb.path] + volumes.map(\.path))
    #expect(e.status == 0, "stderr: \(e.stderr)")
    let embeddings = try CohortEmbeddings.read(from: emb)
    #expect(embeddings.imageIDs == names)
    let model = try LoadedModel(stage2)
    #expect(model.trainedSimilarity == .dot)
    let image = try Predictor.matrixRows(try #require(embeddings.image))
    #expect(image.count == 5 && image.allSatisfy { $0.count == model.config.model.latentDim })
    let positive = try model.textEmbeddings(Self.schema.findings.map { "There is \($0.prompt)." })
    let negative = try model.textEmbeddings(Self.schema.findings.map { "There is no \($0.prompt)." })
    func dot(_ a: [Double], _ b: [Double]) -> Double { zip(a, b).reduce(0) { $0 + $1.0 * $1.1 } }
    var largest = 0.0
    for (i, row) in scores.rows.enumerated() {
      for c in 0..<18 {
        let expected = 1 / (1 + exp(dot(image[i], negative[c]) - dot(image[i], positive[c])))
        largest = max(largest, abs(expected - row[c]))
      }
    }
    #expect(largest <= 1e-5, "largest difference \(largest)")
    // Not all the same number: the scores depend on the volume.
    #expect(Set(scores.rows.map { $0[0] }).count > 1)
  }

  @Test func unreadableVolumesAreSkippedListedAndExitOne() throws {
    let good = try Self.shared("dicom/ts_abdomen_ct_series_j2k")
    // Two files holding the same slice: not a series (the reader refuses duplicated slices by default).
    let duplicated = try Self.shared("dicom/lungmask_chest_ct_slice")
    let dir = try CLI.temporaryDirectory()
    defer { try? FileManager.default.removeItem(at: dir) }
    let stage2 = try Self.demoCheckpoint(in: dir)
    let missing = dir.appendingPathComponent("no-such-scan.nii.gz")
    let out = dir.appendingPathComponent("scores.csv")
    let r = try CLI.run(["predict", "--zero-shot", "--checkpoint", stage2.path, "--output", out.path,
                         good.path, duplicated.path, missing.path])
    #expect(r.status == 1, "stderr: \(r.stderr)")
    let scores = try Self.readScores(out)
    #expect(scores.ids == ["ts_abdomen_ct_series_j2k"])
    let failures = try CSVTable(contentsOf: URL(fileURLWithPath: out.path + ".failures.csv"))
    #expect(failures.header == ["id", "path", "reason"])
    #expect(Set(failures.rows.map { $0[0] }) == ["lungmask_chest_ct_slice", "no-such-scan.nii.gz"])
    #expect(failures.rows.first { $0[0] == "no-such-scan.nii.gz" }?[2].contains("not found") == true)

    // When every volume fails, the output holds the header only and the failures say why.
    let none = dir.appendingPathComponent("none.csv")
    let n = try CLI.run(["predict", "--zero-shot", "--checkpoint", stage2.path, "--output", none.path, duplicated.path])
    #expect(n.status == 1, "stderr: \(n.stderr)")
    #expect(try String(contentsOf: none, encoding: .utf8) == (["id"] + Self.schema.displayNames).joined(separator: ",") + "\n")
    let noneFailures = try CSVTable(contentsOf: URL(fileURLWithPath: none.path + ".failures.csv"))
    #expect(noneFailures.rows.map { $0[0] } == ["lungmask_chest_ct_slice"])
    #expect(noneFailures.rows.first?[1] == duplicated.standardizedFileURL.path)
    #expect(noneFailures.rows.first?[2].contains("duplicate slices") == true)

    // Volume arguments and a cohort option at once are refused before any work.
    let both = try CLI.run(["predict", "--zero-shot", "--checkpoint", stage2.path, "--output", out.path,
                            "--manifest", "m.csv", good.path])
    #expect(both.status != 0 && both.stderr.contains("give volume files or --manifest, not both"), "stderr: \(both.stderr)")
  }
}
