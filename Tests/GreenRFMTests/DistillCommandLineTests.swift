import Foundation
import Testing

/// `greenrfm distill` end to end: the built binary on the real CT-RATE reports in ../shared/data.
@Suite(.serialized) struct DistillCommandLineTests {
  static let reportsFolder: URL = {
    let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    return repo.deletingLastPathComponent().appendingPathComponent("shared/data/reports")
  }()
  static var available: Bool { FileManager.default.fileExists(atPath: reportsFolder.appendingPathComponent("ctrate_manual_train.csv").path) }
  static let skipMessage = "skipped: ../shared/data/reports is absent"
  static let chestTitles = [
    "Medical material", "Arterial wall calcification", "Cardiomegaly", "Pericardial effusion",
    "Coronary artery wall calcification", "Hiatal hernia", "Lymphadenopathy", "Emphysema", "Atelectasis", "Lung nodule",
    "Lung opacity", "Pulmonary fibrotic sequela", "Pleural effusion", "Mosaic attenuation pattern",
    "Peribronchial thickening", "Consolidation", "Bronchiectasis", "Interlobular septal thickening",
  ]

  @Test func distillReadsTheCTRATELayoutAndWritesOneColumnPerFinding() throws {
    guard Self.available else { print(Self.skipMessage); return }
    let dir = try CLI.temporaryDirectory()
    defer { try? FileManager.default.removeItem(at: dir) }
    let output = dir.appendingPathComponent("labels.csv")
    let reports = Self.reportsFolder.appendingPathComponent("ctrate_style/train_reports.csv")
    let r = try CLI.run(["distill", "--reports", reports.path, "--schema", "chest-ct-18", "--labeler", "rules",
                         "--output", output.path])
    #expect(r.status == 0, "stderr: \(r.stderr)")
    let lines = try String(contentsOf: output, encoding: .utf8).split(separator: "\n").map(String.init)
    #expect(lines.count == 801)
    #expect(lines[0] == (["VolumeName"] + Self.chestTitles).joined(separator: ","))
    #expect(lines[1].hasPrefix("train_1.nii.gz,"))
    for line in lines.dropFirst() {
      let values = line.split(separator: ",").dropFirst()
      #expect(values.count == 18 && values.allSatisfy { ["1", "0", "-1"].contains($0) }, "\(line)")
    }
    #expect(FileManager.default.fileExists(atPath: output.path + ".distill.json"))
    #expect(!FileManager.default.fileExists(atPath: output.path + ".failures.csv"))
    // Report text never reaches the logs (a sentence that opens many of these reports).
    #expect(!r.stderr.contains("main bronchi") && !r.stdout.contains("main bronchi"))
    #expect(r.stderr.contains("800 reports (layout CT-RATE"))
  }

  @Test func evaluateReachesTheTargetOnTheManualLabels() throws {
    guard Self.available else { print(Self.skipMessage); return }
    let manual = Self.reportsFolder.appendingPathComponent("ctrate_manual_train.csv").path
    let r = try CLI.run(["distill", "evaluate", "--reports", manual, "--reference", manual, "--json"])
    #expect(r.status == 0, "stderr: \(r.stderr)")
    let object = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as! [String: Any]
    #expect(object["reports"] as? Int == 800)
    let macro = object["macro_f1"] as? Double ?? 0
    #expect(macro >= 0.93, "macro F1 \(macro)")
    let findings = object["findings"] as? [[String: Any]] ?? []
    #expect(findings.count == 18)
    for f in findings { #expect((f["f1"] as? Double ?? 0) >= 0.85, "\(f["finding"] ?? "?")") }
    let table = try CLI.run(["distill", "evaluate", "--reports", manual, "--reference", manual])
    #expect(table.stdout.contains("macro (800 reports)"))
  }

  @Test func distillThenEvaluateAgainstTheCTRATEStyleLabels() throws {
    guard Self.available else { print(Self.skipMessage); return }
    let dir = try CLI.temporaryDirectory()
    defer { try? FileManager.default.removeItem(at: dir) }
    let output = dir.appendingPathComponent("labels.csv")
    let manual = Self.reportsFolder.appendingPathComponent("ctrate_manual_train.csv").path
    let run = try CLI.run(["distill", "--reports", manual, "--id-column", "AccessionNo", "--text-columns", "report_text",
                           "--output", output.path])
    #expect(run.status == 0, "stderr: \(run.stderr)")
    let labels = Self.reportsFolder.appendingPathComponent("ctrate_style/train_multi_abnormality_labels.csv").path
    let r = try CLI.run(["distill", "evaluate", "--predicted", output.path, "--reference", labels, "--json"])
    #expect(r.status == 0, "stderr: \(r.stderr)")
    let object = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as! [String: Any]
    #expect(object["reports"] as? Int == 800)
    #expect((object["macro_f1"] as? Double ?? 0) >= 0.93)
  }

  @Test func userSchemaFilesAndNamedColumnsWork() throws {
    let dir = try CLI.temporaryDirectory()
    defer { try? FileManager.default.removeItem(at: dir) }
    let schema = dir.appendingPathComponent("mine.json")
    try #"{"name": "mine", "modality": "chest CT", "findings": [{"key": "pneumothorax", "displayName": "Pneumothorax", "prompt": "pneumothorax", "synonyms": ["pneumothora*"]}, {"key": "rib_fracture", "displayName": "Rib fracture", "prompt": "rib fracture", "synonyms": ["rib fracture*", "fracture* ...5 rib*"]}]}"#
      .write(to: schema, atomically: true, encoding: .utf8)
    let reports = dir.appendingPathComponent("reports.csv")
    try "id,findings,impression\nA1,\"Small right pneumothorax, no rib fracture.\",\"Pneumothorax.\"\nA2,\"No pneumothorax.\",\"Fracture of the left 5th rib.\"\nA3,,\n"
      .write(to: reports, atomically: true, encoding: .utf8)
    let output = dir.appendingPathComponent("out/labels.csv")
    let r = try CLI.run(["distill", "--reports", reports.path, "--id-column", "id", "--text-columns", "findings,impression",
                         "--schema", schema.path, "--output", output.path])
    #expect(r.status == 0, "stderr: \(r.stderr)")
    #expect(try String(contentsOf: output, encoding: .utf8) == "id,Pneumothorax,Rib fracture\nA1,1,0\nA2,0,1\nA3,-1,-1\n")
  }

  @Test func badArgumentsFailWithClearMessages() throws {
    let dir = try CLI.temporaryDirectory()
    defer { try? FileManager.default.removeItem(at: dir) }
    let reports = dir.appendingPathComponent("reports.csv")
    try "id,text\n1,No effusion.\n".write(to: reports, atomically: true, encoding: .utf8)
    let out = dir.appendingPathComponent("labels.csv").path
    let llm = try CLI.run(["distill", "--reports", reports.path, "--id-column", "id", "--text-columns", "text",
                           "--output", out, "--labeler", "llm"])
    #expect(llm.status != 0)
    #expect(llm.stderr.contains("--labeler llm needs --base-url and --model"))
    let schema = try CLI.run(["distill", "--reports", reports.path, "--id-column", "id", "--text-columns", "text",
                              "--output", out, "--schema", "chest-ct-99"])
    #expect(schema.status != 0)
    #expect(schema.stderr.contains("unknown schema 'chest-ct-99'"))
    let column = try CLI.run(["distill", "--reports", reports.path, "--id-column", "id", "--text-columns", "report",
                              "--output", out])
    #expect(column.status != 0)
    #expect(column.stderr.contains("no column 'report'"))
    let layout = try CLI.run(["distill", "--reports", reports.path, "--output", out])
    #expect(layout.status != 0)
    #expect(layout.stderr.contains("name them with --id-column and --text-columns"))
    #expect(!FileManager.default.fileExists(atPath: out))
  }

  @Test func duplicateIdsEmptyIdsAndEmptyTextsAreWarnedAndDuplicatesLabelledOnce() throws {
    let dir = try CLI.temporaryDirectory()
    defer { try? FileManager.default.removeItem(at: dir) }
    let reports = dir.appendingPathComponent("reports.csv")
    try "id,text\nA1,No pleural effusion.\nA2,Atelectasis.\nA1,Pleural effusion.\n,Emphysema.\nA3,\n"
      .write(to: reports, atomically: true, encoding: .utf8)
    let output = dir.appendingPathComponent("labels.csv")
    let r = try CLI.run(["distill", "--reports", reports.path, "--id-column", "id", "--text-columns", "text",
                         "--output", output.path])
    #expect(r.status == 0, "stderr: \(r.stderr)")
    let lines = try String(contentsOf: output, encoding: .utf8).split(separator: "\n").map(String.init)
    #expect(lines.dropFirst().map { $0.split(separator: ",").first.map(String.init) ?? "" } == ["A1", "A2", "A3"])
    #expect(lines[1].split(separator: ",")[13] == "0")  // the first A1 row: no pleural effusion
    #expect(r.stderr.contains("1 row(s) repeat an earlier id (1 id(s), e.g. A1)"))
    #expect(r.stderr.contains("1 row(s) with an empty id skipped"))
    #expect(r.stderr.contains("1 report(s) with an empty text (e.g. A3)"))
    #expect(r.stderr.contains("3 reports (layout named"))
    let json = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: output.path + ".distill.json")))
    let counts = (json as? [String: Any])?["counts"] as? [String: Int]
    #expect(counts?["duplicate_rows"] == 1 && counts?["empty_ids"] == 1 && counts?["empty_texts"] == 1)
    #expect(counts?["reports"] == 3 && counts?["rows"] == 5)
  }

  @Test func evaluateSaysHowManyIdsMatchedAndWarnsAboutTheRest() throws {
    let dir = try CLI.temporaryDirectory()
    defer { try? FileManager.default.removeItem(at: dir) }
    let header = (["id"] + Self.chestTitles).joined(separator: ",")
    func row(_ id: String, _ v: String) -> String { ([id] + Array(repeating: v, count: 18)).joined(separator: ",") }
    let predicted = dir.appendingPathComponent("p.csv"), reference = dir.appendingPathComponent("r.csv")
    try ([header, row("a", "1"), row("b", "0"), row("a", "0")].joined(separator: "\n") + "\n")
      .write(to: predicted, atomically: true, encoding: .utf8)
    try ([header, row("a", "1"), row("c", "1"), row("d", "1")].joined(separator: "\n") + "\n")
      .write(to: reference, atomically: true, encoding: .utf8)
    let r = try CLI.run(["distill", "evaluate", "--predicted", predicted.path, "--reference", reference.path, "--json"])
    #expect(r.status == 0, "stderr: \(r.stderr)")
    #expect(r.stderr.contains("matched 1 of 2 predicted and 3 reference ids"))
    #expect(r.stderr.contains("only 1 ids were scored"))
    #expect(r.stderr.contains("1 duplicate predicted row(s) ignored"))
    let object = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as! [String: Any]
    #expect(object["reports"] as? Int == 1)
  }

  @Test func outOfRangeLLMOptionsAreRejectedNotTrapped() throws {
    let dir = try CLI.temporaryDirectory()
    defer { try? FileManager.default.removeItem(at: dir) }
    let reports = dir.appendingPathComponent("reports.csv")
    try "id,text\n1,No effusion.\n".write(to: reports, atomically: true, encoding: .utf8)
    let base = ["distill", "--reports", reports.path, "--id-column", "id", "--text-columns", "text", "--output",
                dir.appendingPathComponent("l.csv").path, "--labeler", "llm", "--base-url", "http://127.0.0.1:9",
                "--model", "m"]
    for (option, value, message) in [("--timeout", "1e20", "--timeout must be more than 0 and at most 86400 seconds"),
                                     ("--timeout", "nan", "--timeout must be"),
                                     ("--initial-backoff", "1e300", "--initial-backoff must be between 0 and 3600"),
                                     ("--concurrency", "100000", "--concurrency must be between 1 and 1024"),
                                     ("--max-attempts", "0", "--max-attempts must be between 1 and 100")] {
      let r = try CLI.run(base + [option, value])
      #expect(r.status == 64, "\(option) \(value): status \(r.status), stderr: \(r.stderr)")
      #expect(r.stderr.contains(message), "\(r.stderr)")
    }
  }

  @Test func aRefusedEndpointStopsTheRunQuicklyWithAClearError() throws {
    let dir = try CLI.temporaryDirectory()
    defer { try? FileManager.default.removeItem(at: dir) }
    let server = try ChatStandIn(delaySeconds: 0) { _ in "" }
    let baseURL = server.baseURL
    server.stop()  // bound, then closed: connections are refused
    let reports = dir.appendingPathComponent("reports.csv")
    try ("id,text\n" + (0..<100).map { "ACC-\($0),Report number \($0).\n" }.joined())
      .write(to: reports, atomically: true, encoding: .utf8)
    let start = Date()
    let r = try CLI.run(["distill", "--reports", reports.path, "--id-column", "id", "--text-columns", "text", "--output",
                         dir.appendingPathComponent("l.csv").path, "--labeler", "llm", "--base-url", baseURL,
                         "--model", "m", "--timeout", "30", "--initial-backoff", "0.05",
                         "--api-key-env", "GREENRFM_TEST_KEY_THAT_IS_UNSET"])
    #expect(r.status != 0)
    #expect(r.stderr.contains("LLM labelling stopped"), "\(r.stderr)")
    #expect(r.stderr.contains("transport failures in a row"))
    #expect(r.stderr.contains("GREENRFM_TEST_KEY_THAT_IS_UNSET is unset"))
    #expect(!r.stderr.contains("ACC-"))  // no report ids at info level
    #expect(Date().timeIntervalSince(start) < 20)
  }

  @Test func llmDryRunCountsReportsAndSendsNothing() throws {
    let dir = try CLI.temporaryDirectory()
    defer { try? FileManager.default.removeItem(at: dir) }
    let reports = dir.appendingPathComponent("reports.csv")
    try "VolumeName,Findings_EN,Impressions_EN\nv1,No effusion.,Normal.\nv2,Atelectasis.,\n".write(to: reports, atomically: true, encoding: .utf8)
    let r = try CLI.run(["distill", "--reports", reports.path, "--output", dir.appendingPathComponent("l.csv").path,
                         "--labeler", "llm", "--base-url", "http://127.0.0.1:9", "--model", "m", "--dry-run"])
    #expect(r.status == 0, "stderr: \(r.stderr)")
    #expect(r.stdout.contains("reports 2, cached 0, to ask 2"))
    // A dry run writes nothing.
    #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path) == ["reports.csv"])
  }

  @Test func benchDistillPrintsReportsPerSecond() throws {
    guard Self.available else { print(Self.skipMessage); return }
    let r = try CLI.run(["distill", "bench", "--reports", Self.reportsFolder.appendingPathComponent("ctrate_manual_train.csv").path,
                         "--rounds", "1", "--json"])
    #expect(r.status == 0, "stderr: \(r.stderr)")
    let object = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as! [String: Any]
    #expect(object["reports"] as? Int == 800)
    #expect((object["reports_per_second"] as? Double ?? 0) > 0)
  }
}
