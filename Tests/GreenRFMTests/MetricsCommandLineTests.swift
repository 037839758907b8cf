import Foundation
import Reports
import Testing
@testable import GreenRFM

/// `greenrfm metrics` run as the built binary on generated predictions and labels.
@Suite(.serialized) struct MetricsCommandLineTests {
  /// 40 studies × the 18 chest-ct-18 findings: predictions titled by display name; labels with the columns
  /// reversed, titled by key for one finding, ids with `.nii.gz`, one finding all −1, one empty cell.
  static func writeInputs(in dir: URL) throws -> (predictions: URL, labelsURL: URL, scores: [[Double]], labels: [[Int8]]) {
    let schema = try LabelSchema.load("chest-ct-18")
    var rng = SplitMix64(seed: 5)
    func uniform() -> Double { Double(rng.next() >> 11) / Double(1 << 53) }
    var scores: [[Double]] = [], labels: [[Int8]] = []
    for _ in 0..<40 {
      var s: [Double] = [], l: [Int8] = []
      for j in 0..<schema.findings.count {
        let y: Int8 = j == 3 ? -1 : (uniform() < 0.35 ? 1 : (uniform() < 0.1 ? -1 : 0))
        l.append(y)
        s.append(((uniform() * 0.7 + (y == 1 ? 0.3 : 0)) * 1000).rounded() / 1000)
      }
      scores.append(s)
      labels.append(l)
    }
    var p = "VolumeName," + schema.displayNames.map(CSVTable.escape).joined(separator: ",") + "\n"
    for (i, s) in scores.enumerated() { p += "study_\(i).nii.gz," + s.map { "\($0)" }.joined(separator: ",") + "\n" }
    let names = schema.findings.enumerated().map { $0.offset == 0 ? $0.element.key : $0.element.displayName.lowercased() }
    var l = "VolumeName," + names.reversed().map(CSVTable.escape).joined(separator: ",") + "\n"
    for (i, y) in labels.enumerated() {
      var cells = y.map { String($0) }
      if i == 0 { cells[5] = "" }
      l += "study_\(i)," + cells.reversed().joined(separator: ",") + "\n"
    }
    labels[0][5] = -1
    let pu = dir.appendingPathComponent("predictions.csv"), lu = dir.appendingPathComponent("labels.csv")
    try Data(p.utf8).write(to: pu)
    try Data(l.utf8).write(to: lu)
    return (pu, lu, scores, labels)
  }

  @Test func scoresAPredictionsFileAndWritesTheReport() throws {
    let dir = try CLI.temporaryDirectory()
    defer { try? FileManager.default.removeItem(at: dir) }
    let input = try Self.writeInputs(in: dir)
    let out = dir.appendingPathComponent("out")
    let r = try CLI.run(["metrics", "--predictions", input.predictions.path, "--labels", input.labelsURL.path,
                         "--id-column", "VolumeName", "--bootstrap", "50", "--output", out.path, "--json"])
    #expect(r.status == 0, "stderr: \(r.stderr)")
    let m = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as! [String: Any]
    let schema = try LabelSchema.load("chest-ct-18")
    for (j, f) in schema.findings.enumerated() {
      let expected = Metrics.auroc(scores: input.scores.map { $0[j] }, labels: input.labels.map { $0[j] })
      if let expected {
        #expect(abs((m["classification/auroc/\(f.key)"] as? Double ?? -1) - expected) < 1e-12, "\(f.key)")
      } else {
        #expect(m["classification/auroc/\(f.key)"] is NSNull, "\(f.key)")
      }
    }
    #expect(m["classification/auroc/\(schema.findings[3].key)"] is NSNull)
    #expect(m["classification/studies"] as? Int == 40)
    #expect((m["undefined"] as? [[String: String]])?.contains { $0["key"] == "classification/auroc/\(schema.findings[3].key)" } == true)
    for file in ["metrics.json", "per_finding.csv", "report.html"] {
      #expect(FileManager.default.fileExists(atPath: out.appendingPathComponent(file).path), "\(file)")
    }
    let html = try String(contentsOf: out.appendingPathComponent("report.html"), encoding: .utf8)
    #expect(html.contains("<svg") && html.contains("AUROC undefined"))
    let csv = try CSVTable(contentsOf: out.appendingPathComponent("per_finding.csv"))
    #expect(csv.rows.count == 18)
  }

  @Test func printsATableAndChoosesThresholdsOnAValidationSplit() throws {
    let dir = try CLI.temporaryDirectory()
    defer { try? FileManager.default.removeItem(at: dir) }
    let input = try Self.writeInputs(in: dir)
    let table = try CLI.run(["metrics", "--predictions", input.predictions.path, "--labels", input.labelsURL.path,
                             "--id-column", "VolumeName", "--bootstrap", "0"])
    #expect(table.status == 0, "stderr: \(table.stderr)")
    #expect(table.stdout.contains("macro AUROC") && table.stdout.contains("AUROC undefined"))
    let split = try CLI.run(["metrics", "--predictions", input.predictions.path, "--labels", input.labelsURL.path,
                             "--id-column", "VolumeName", "--bootstrap", "0", "--threshold", "max-f1",
                             "--validation-fraction", "0.5", "--seed", "3", "--json"])
    #expect(split.status == 0, "stderr: \(split.stderr)")
    let m = try JSONSerialization.jsonObject(with: Data(split.stdout.utf8)) as! [String: Any]
    #expect(m["classification/thresholdChosenOn"] as? String == "validation")
    #expect(m["classification/studies"] as? Int == 20 && m["classification/validationStudies"] as? Int == 20)
  }

  @Test func badInputsNameTheFile() throws {
    let dir = try CLI.temporaryDirectory()
    defer { try? FileManager.default.removeItem(at: dir) }
    let input = try Self.writeInputs(in: dir)
    let noID = try CLI.run(["metrics", "--predictions", input.predictions.path, "--labels", input.labelsURL.path,
                            "--id-column", "AccessionNo"])
    #expect(noID.status != 0)
    #expect(noID.stderr.contains("predictions.csv") && noID.stderr.contains("no id column 'AccessionNo'"), "\(noID.stderr)")

    let badValue = dir.appendingPathComponent("bad.csv")
    var text = try String(contentsOf: input.predictions, encoding: .utf8)
    text = text.replacingOccurrences(of: "study_2.nii.gz,", with: "study_2.nii.gz,abc,")
    let fields = text.split(separator: "\n").map { $0.split(separator: ",", omittingEmptySubsequences: false) }
    text = fields.map { $0.prefix(19).joined(separator: ",") }.joined(separator: "\n") + "\n"
    try Data(text.utf8).write(to: badValue)
    let bad = try CLI.run(["metrics", "--predictions", badValue.path, "--labels", input.labelsURL.path,
                           "--id-column", "VolumeName"])
    #expect(bad.status != 0)
    #expect(bad.stderr.contains("bad.csv") && bad.stderr.contains("record 4") && bad.stderr.contains("'abc'"), "\(bad.stderr)")

    let otherIDs = dir.appendingPathComponent("other.csv")
    try Data(try String(contentsOf: input.labelsURL, encoding: .utf8).replacingOccurrences(of: "study_", with: "x_").utf8)
      .write(to: otherIDs)
    let none = try CLI.run(["metrics", "--predictions", input.predictions.path, "--labels", otherIDs.path,
                            "--id-column", "VolumeName"])
    #expect(none.status != 0)
    #expect(none.stderr.contains("other.csv"), "\(none.stderr)")

    let fixed = try CLI.run(["metrics", "--predictions", input.predictions.path, "--labels", input.labelsURL.path,
                             "--id-column", "VolumeName", "--validation-fraction", "0.3"])
    #expect(fixed.status != 0)
    #expect(fixed.stderr.contains("--validation-fraction applies to --threshold max-f1 or youden"))
  }
}
