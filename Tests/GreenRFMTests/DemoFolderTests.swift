import Foundation
import Testing

@testable import GreenRFM

/// `greenrfm demo` on a folder that already holds a run: trained stages are never mixed with another cohort.
@Suite struct DemoFolderTests {
  static let quickCohort = Demo.synthConfig(Demo.Options(output: URL(fileURLWithPath: "/unused"), quick: true))

  /// A demo folder whose `cohort/synth.json` was written by `version` with `config`; with `trained`, image-s1 holds
  /// a (minimal) checkpoint.
  static func folder(version: String, config: SyntheticCohortConfig, trained: Bool = true) throws -> URL {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("demo-folder-\(UUID().uuidString)")
    let fm = FileManager.default
    try fm.createDirectory(at: dir.appendingPathComponent("cohort"), withIntermediateDirectories: true)
    if trained {
      let checkpoints = dir.appendingPathComponent("image-s1/checkpoints")
      try fm.createDirectory(at: checkpoints.appendingPathComponent("step-00000001"), withIntermediateDirectories: true)
      try Data("{}".utf8).write(to: checkpoints.appendingPathComponent("step-00000001/state.json"))
      try Data("step-00000001\n".utf8).write(to: checkpoints.appendingPathComponent("latest"))
    }
    let configJSON = try JSONSerialization.jsonObject(with: JSONEncoder().encode(config))
    let file: [String: Any] = ["config": configJSON, "summary": ["generatorVersion": version]]
    try JSONSerialization.data(withJSONObject: file).write(to: dir.appendingPathComponent("cohort/synth.json"))
    return dir
  }

  static func refusal(_ dir: URL) -> String? {
    do {
      try Demo.refuseStagesOfAnotherCohort(out: dir, found: Demo.existingSynth(dir.appendingPathComponent("cohort")),
                                           synth: quickCohort)
      return nil
    } catch {
      return "\(error)"
    }
  }

  @Test func aFolderTrainedOnAnotherGeneratorVersionIsRefusedBeforeTheCohortIsRegenerated() throws {
    let dir = try Self.folder(version: "greenrfm-synth-4", config: Self.quickCohort)
    defer { try? FileManager.default.removeItem(at: dir) }
    let before = try Data(contentsOf: dir.appendingPathComponent("cohort/synth.json"))
    var run = Demo.Options(output: dir, quick: true)
    run.log = { _ in }
    do {
      _ = try Demo.run(run)
      Issue.record("the demo ran on a folder trained on another cohort")
    } catch let error as GreenRFMError {
      let message = "\(error)"
      #expect(message.contains("found greenrfm-synth-4") && message.contains("this run makes \(SyntheticCohort.generatorVersion)"), "\(message)")
      #expect(message.contains("image-s1") && message.contains(dir.path), "\(message)")
    }
    #expect(try Data(contentsOf: dir.appendingPathComponent("cohort/synth.json")) == before)
    #expect(!FileManager.default.fileExists(atPath: dir.appendingPathComponent("cohort/train").path))
  }

  @Test func aFolderTrainedWithAnotherSeedOrNoiseIsRefused() throws {
    var other = Self.quickCohort
    other.seed = 5
    let seeded = try Self.folder(version: SyntheticCohort.generatorVersion, config: other)
    defer { try? FileManager.default.removeItem(at: seeded) }
    let message = try #require(Self.refusal(seeded))
    #expect(message.contains("seed 5") && message.contains("seed 0"), "\(message)")

    var noisier = Self.quickCohort
    noisier.noiseHU += 5
    let noisy = try Self.folder(version: SyntheticCohort.generatorVersion, config: noisier)
    defer { try? FileManager.default.removeItem(at: noisy) }
    #expect(Self.refusal(noisy)?.contains("other generator settings") == true)
  }

  @Test func theSameCohortOrAFolderWithoutTrainedStagesIsNotRefused() throws {
    let same = try Self.folder(version: SyntheticCohort.generatorVersion, config: Self.quickCohort)
    defer { try? FileManager.default.removeItem(at: same) }
    #expect(Self.refusal(same) == nil)
    let untrained = try Self.folder(version: "greenrfm-synth-4", config: Self.quickCohort, trained: false)
    defer { try? FileManager.default.removeItem(at: untrained) }
    #expect(Self.refusal(untrained) == nil)  // nothing trained yet: the cohort is simply made again
  }
}
