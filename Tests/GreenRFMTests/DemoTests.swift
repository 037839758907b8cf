import Foundation
import Testing

/// `greenrfm demo`: the same seed gives the same metrics, and a rerun on the same folder reuses the finished stages.
@Suite(.serialized) struct DemoTests {
  /// metrics.json without the wall-clock timings (`time/*`), which differ from run to run.
  static func metrics(_ dir: URL) throws -> [String: Any] {
    let data = try Data(contentsOf: dir.appendingPathComponent("metrics.json"))
    let all = try JSONSerialization.jsonObject(with: data) as! [String: Any]
    return all.filter { !$0.key.hasPrefix("time/") }
  }

  static func demo(_ dir: URL, seed: Int) throws -> CLI.Result {
    try CLI.run(["demo", "--output", dir.path, "--train", "8", "--valid", "6", "--quick", "--threads", "1",
                 "--seed", String(seed)])
  }

  @Test func sameSeedGivesTheSameMetricsAndARerunReusesTheStages() throws {
    let a = try CLI.temporaryDirectory(), b = try CLI.temporaryDirectory()
    defer {
      try? FileManager.default.removeItem(at: a)
      try? FileManager.default.removeItem(at: b)
    }
    let first = try Self.demo(a, seed: 3)
    #expect(first.status == 0, "stderr: \(first.stderr)")
    let second = try Self.demo(b, seed: 3)
    #expect(second.status == 0, "stderr: \(second.stderr)")
    let ma = try Self.metrics(a), mb = try Self.metrics(b)
    #expect(ma.count > 50)
    #expect(NSDictionary(dictionary: ma).isEqual(to: mb),
            "differing keys: \(ma.keys.filter { !NSDictionary(dictionary: [$0: ma[$0]!]).isEqual(to: [$0: mb[$0] ?? NSNull()]) }.sorted())")
    for key in ["zeroShot/auroc/visualMacro", "retrieval/reportToVolume/recall@5", "distill/f1/macro"] {
      #expect(ma[key] is Double, "missing \(key)")
    }

    // A rerun on the same folder trains nothing again and gives the same metrics.
    let again = try Self.demo(a, seed: 3)
    #expect(again.status == 0, "stderr: \(again.stderr)")
    #expect(again.stdout.components(separatedBy: "reusing").count - 1 == 3, "stdout: \(again.stdout)")
    #expect(NSDictionary(dictionary: try Self.metrics(a)).isEqual(to: ma))

    // Another seed gives another cohort.
    let other = try CLI.temporaryDirectory()
    defer { try? FileManager.default.removeItem(at: other) }
    #expect(try Self.demo(other, seed: 4).status == 0)
    let labelsA = try String(contentsOf: a.appendingPathComponent("cohort/train_labels.csv"), encoding: .utf8)
    let labelsOther = try String(contentsOf: other.appendingPathComponent("cohort/train_labels.csv"), encoding: .utf8)
    #expect(labelsA != labelsOther)
  }
}
