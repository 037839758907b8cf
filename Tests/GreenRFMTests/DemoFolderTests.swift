import Foundation
import Testing

@testable import GreenRFM

/// `greenrfm demo` on a folder that already holds a run: trained stages are never mixed with another cohort.
@Suite struct DemoFolderTests {
  /// A folder with trained stages and a `synth.json` written by `version` with `config`.
  static func folder(version: String, config: SyntheticCohortConfig) throws -> URL {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("demo-folder-\(UUID().uuidString)")
    let cohort = dir.appendingPathComponent("cohort")
    try FileManager.default.createDirectory(at: dir.appendingPathComponent("image-s1/checkpoints"),
                                            withIntermediateDirectories: true)
    try FileManager.default.createDirectory(at: cohort, withIntermediateDirectories: true)
    let configJSON = try JSONSerialization.jsonObject(with: JSONEncoder().encode(config))
    let file: [String: Any] = ["config": configJSON, "summary": ["generatorVersion": version]]
    try JSONSerialization.data(withJSONObject: file).write(to: cohort.appendingPathComponent("synth.json"))
    return dir
  }

  @Test func aFolderTrainedOnAnotherGeneratorVersionIsRefusedBeforeTheCohortIsRegenerated() throws {
    let options = Demo.Options(output: URL(fileURLWithPath: "/unused"), quick: true)
    let dir = try Self.folder(version: "greenrfm-synth-4", config: Demo.synthConfig(options))
    defer { try? FileManager.default.removeItem(at: dir) }
    let before = try Data(contentsOf: dir.appendingPathComponent("cohort/synth.json"))
    var run = Demo.Options(output: dir, quick: true)
    run.log = { _ in }
    do {
      _ = try Demo.run(run)
      Issue.record("the demo ran on a folder trained on another cohort")
    } catch let error as GreenRFMError {
      let message = "\(error)"
      #expect(message.contains("greenrfm-synth-4") && message.contains(SyntheticCohort.generatorVersion), "\(message)")
      #expect(message.contains("image-s1") && message.contains(dir.path), "\(message)")
    }
    #expect(try Data(contentsOf: dir.appendingPathComponent("cohort/synth.json")) == before)
    #expect(!FileManager.default.fileExists(atPath: dir.appendingPathComponent("cohort/train").path))
  }

  @Test func aFolderTrainedWithAnotherSeedIsRefusedToo() throws {
    var other = Demo.synthConfig(Demo.Options(output: URL(fileURLWithPath: "/unused"), quick: true))
    other.seed = 5
    let dir = try Self.folder(version: SyntheticCohort.generatorVersion, config: other)
    defer { try? FileManager.default.removeItem(at: dir) }
    var run = Demo.Options(output: dir, quick: true)
    run.log = { _ in }
    #expect(throws: GreenRFMError.self) { try Demo.run(run) }
    #expect(!FileManager.default.fileExists(atPath: dir.appendingPathComponent("cohort/train").path))
  }
}
