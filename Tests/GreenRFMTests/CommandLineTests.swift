import Foundation
import Testing

/// Runs the built `greenrfm` binary (next to the test bundle in the build folder).
struct CLI {
  static let binary: URL = {
    let bundleDir = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
    return bundleDir.appendingPathComponent("greenrfm")
  }()

  struct Result {
    let status: Int32
    let stdout: String
    let stderr: String
  }

  static func run(_ arguments: [String]) throws -> Result {
    let process = Process()
    process.executableURL = binary
    process.arguments = arguments
    let out = Pipe(), err = Pipe()
    process.standardOutput = out
    process.standardError = err
    try process.run()
    let outData = out.fileHandleForReading.readDataToEndOfFile()
    let errData = err.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return Result(status: process.terminationStatus, stdout: String(decoding: outData, as: UTF8.self),
                  stderr: String(decoding: errData, as: UTF8.self))
  }

  static func temporaryDirectory() throws -> URL {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("greenrfm-cli-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    return dir
  }
}

@Suite(.serialized) struct CommandLineTests {
  @Test func binaryExists() {
    #expect(FileManager.default.isExecutableFile(atPath: CLI.binary.path), "build greenrfm first: \(CLI.binary.path)")
  }

  @Test func demoTrainsAndWritesCheckpointAndMetrics() throws {
    let dir = try CLI.temporaryDirectory()
    defer { try? FileManager.default.removeItem(at: dir) }
    let r = try CLI.run(["demo", "--output", dir.path, "--train", "8", "--valid", "6", "--quick", "--threads", "1"])
    #expect(r.status == 0, "stderr: \(r.stderr)")
    let metricsData = try Data(contentsOf: dir.appendingPathComponent("metrics.json"))
    let metrics = try JSONSerialization.jsonObject(with: metricsData) as! [String: Any]
    for key in ["zeroShot/auroc/visualMacro", "retrieval/reportToVolume/recall@5", "retrieval/reportToVolume/chance@5",
                "distill/f1/macro", "time/synthSeconds", "time/imageStage1Seconds", "time/textStage1Seconds",
                "time/stage2Seconds", "time/evaluationSeconds"] {
      #expect(metrics[key] is Double, "metrics.json lacks \(key)")
    }
    #expect(metrics.keys.contains("zeroShot/auroc/macro"))
    #expect(metrics["retrieval/reportToVolume/chance@5"] as? Double == 5.0 / 6.0)
    #expect(metrics["demo/trainPatients"] as? Double == 8)
    for path in ["report.html", "cohort/train_reports.csv", "labels/train_labels_distilled.csv",
                 "image-s1/checkpoints/latest", "text-s1/checkpoints/latest", "stage2/checkpoints/latest"] {
      #expect(FileManager.default.fileExists(atPath: dir.appendingPathComponent(path).path), "missing \(path)")
    }
    for stage in ["[1/7] synth", "[3/7] stage 1 image", "[4/7] stage 1 text", "[5/7] stage 2", "[6/7] evaluation"] {
      #expect(r.stdout.contains(stage), "stdout lacks \(stage): \(r.stdout)")
    }
    #expect(r.stdout.contains("report→volume Recall@5"))
    // The report's headline cards carry metrics.json's own figures.
    let html = try String(contentsOf: dir.appendingPathComponent("report.html"), encoding: .utf8)
    let f1 = String(format: "%.3f", metrics["distill/f1/macro"] as? Double ?? .nan)
    #expect(html.contains("<div class=\"v\">\(f1)</div><div class=\"l\">distiller macro F1 (training reports)</div>"))
    let chance = String(format: "%.3f", metrics["retrieval/reportToVolume/chance@5"] as? Double ?? .nan)
    #expect(html.contains("report→volume Recall@5 (chance \(chance))"))
  }

  @Test func benchTrainStepPrintsTheDocumentedJSONKeys() throws {
    let r = try CLI.run(["bench", "train-step", "--size", "32,64,64", "--steps", "2", "--warmup", "0", "--json"])
    #expect(r.status == 0, "stderr: \(r.stderr)")
    let object = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as! [String: Any]
    for key in ["median_seconds", "min_seconds", "max_seconds", "peak_rss_bytes"] {
      #expect(object[key] != nil, "missing key \(key)")
    }
    #expect((object["peak_rss_bytes"] as? Int ?? 0) > 0)
  }

  @Test func cudaOnACPUBuildFailsWithAClearMessage() throws {
    let r = try CLI.run(["info", "--device", "cuda"])
    #expect(r.status != 0)
    #expect(r.stderr.contains("no usable CUDA"), "stderr: \(r.stderr)")
  }

  @Test func badArgumentsAreRejectedBeforeAnyWork() throws {
    let r = try CLI.run(["demo", "--threads", "0"])
    #expect(r.status != 0)
    #expect(r.stderr.contains("--threads must be at least 1"))
    let d = try CLI.run(["info", "--device", "tpu"])
    #expect(d.status != 0)
    #expect(d.stderr.contains("unknown device 'tpu'"))
  }
}
