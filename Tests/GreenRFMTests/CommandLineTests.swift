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
    let r = try CLI.run(["demo", "--output", dir.path, "--steps", "6", "--batch-size", "2", "--volume-size", "16",
                         "--threads", "1"])
    #expect(r.status == 0, "stderr: \(r.stderr)")
    let metricsData = try Data(contentsOf: dir.appendingPathComponent("metrics.json"))
    let metrics = try JSONSerialization.jsonObject(with: metricsData) as! [String: Any]
    #expect(metrics["steps"] as? Int == 6)
    #expect((metrics["train/loss/first5"] as? Double ?? .nan).isFinite)
    #expect(FileManager.default.fileExists(atPath: dir.appendingPathComponent("model.safetensors").path))
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
