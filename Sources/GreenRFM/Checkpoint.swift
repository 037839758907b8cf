import AtomicWrite
import Foundation
import Logging
import Reports
import Torch
import TorchNN

/// What a checkpoint holds a model for.
public enum ModelKind: String, Codable, Sendable, CaseIterable {
  case stage1Image = "stage1-image"
  case stage1Text = "stage1-text"
  case stage2
}

/// The JSON record of a checkpoint (`state.json`): everything needed to rebuild the model and continue the run
/// exactly: the resolved config, the position in the data (epoch, next micro-batch), the optimizer step, the
/// random-number scheme, the schema, and the last metrics.
public struct CheckpointRecord: Codable, Sendable {
  public var format = 1
  public var kind: ModelKind
  /// Optimizer steps done.
  public var step: Int
  /// Steps the run's schedule spans.
  public var totalSteps: Int
  /// The epoch in progress (0-based) and the index of the next micro-batch in it.
  public var epoch: Int
  public var nextBatch: Int
  public var config: GreenRFMConfig
  /// The stage's training settings (after command-line overrides).
  public var train: TrainConfig
  public var seed: UInt64
  /// How random numbers are drawn: libtorch's generator is re-seeded from (seed, step, micro-batch) before every
  /// micro-batch and augmentation draws are seeded from (seed, epoch, item), so no generator state is stored.
  public var rngScheme = "reseed-per-micro-batch-v1"
  public var schema: LabelSchema
  /// The text encoder's BERT config (stage1-text and stage2); its vocabulary is `text/vocab.txt` beside.
  public var textConfig: BertConfig?
  public var metrics: [String: Double] = [:]
  /// Stage 2: the stage-1 checkpoints its encoders started from.
  public var initializedFrom: [String: String] = [:]
  /// The training data's fingerprint (checked on resume).
  public var data: DataFingerprint?
  /// Data-parallel runs: the number of ranks (nil = 1) and whether BatchNorm statistics were synchronised.
  public var worldSize: Int?
  public var syncBatchNorm: Bool?
  public var createdAt: String
  public var libtorch: String
  public var tool = "greenrfm 0.1.0"
}

/// Checkpoints on disk. A checkpoint is a folder `step-00000120/` holding `model.safetensors` (the module's
/// `state_dict`, PyTorch key names), `optimizer.safetensors` (AdamW state, keys `<param>.exp_avg|exp_avg_sq|step`),
/// `state.json` (`CheckpointRecord`) and, with a text encoder, `text/` (config.json, vocab.txt). It is written in a
/// hidden `.partial-*` folder and renamed into place, and `latest` (a one-line file naming the newest) is replaced
/// atomically afterwards, so a crash at any moment leaves the previous checkpoint intact and never a half-written one.
public enum Checkpoint {
  public static let latestFile = "latest"

  /// Writes a checkpoint named `name` into `folder` and points `latest` at it; keeps the newest `keep` step folders.
  /// - Returns: the checkpoint folder.
  /// - Throws: `GreenRFMError.checkpoint` naming the folder.
  @discardableResult
  public static func save(into folder: URL, name: String, model: Module, optimizer: AdamW?, record: CheckpointRecord,
                          textFolder: URL?, keep: Int) throws -> URL {
    let fm = FileManager.default
    let final = folder.appendingPathComponent(name)
    let partial = folder.appendingPathComponent(".partial-\(name)-\(getpid())")
    do {
      try fm.createDirectory(at: folder, withIntermediateDirectories: true)
      try? fm.removeItem(at: partial)
      try fm.createDirectory(at: partial, withIntermediateDirectories: true)
      let meta = ["format": "pt", "greenrfm.kind": record.kind.rawValue, "greenrfm.step": String(record.step)]
      try SafeTensors.save(try contiguousCPU(model.stateDict()), metadata: meta, to: partial.appendingPathComponent("model.safetensors"))
      if let optimizer {
        try SafeTensors.save(try contiguousCPU(optimizer.stateDict()), metadata: ["format": "pt"],
                             to: partial.appendingPathComponent("optimizer.safetensors"))
      }
      if let textFolder {
        let text = partial.appendingPathComponent("text")
        try fm.createDirectory(at: text, withIntermediateDirectories: true)
        for file in ["config.json", "vocab.txt", "tokenizer_config.json"] {
          let source = textFolder.appendingPathComponent(file)
          if fm.fileExists(atPath: source.path) {
            try Data(contentsOf: source).write(to: text.appendingPathComponent(file))
          }
        }
      }
      try AtomicWrite.write(try encode(record), to: partial.appendingPathComponent("state.json"))
      // Saving a step twice (validation at the end of a run): the old folder is moved aside first, and `latest`
      // is re-pointed before it is removed, so there is always a complete checkpoint that `latest` names or
      // that `find` falls back to.
      let aside = folder.appendingPathComponent(".replaced-\(name)-\(getpid())")
      if fm.fileExists(atPath: final.path) { try fm.moveItem(at: final, to: aside) }
      try fm.moveItem(at: partial, to: final)
      try AtomicWrite.write(Data((name + "\n").utf8), to: folder.appendingPathComponent(latestFile))
      try? fm.removeItem(at: aside)
    } catch let error as GreenRFMError {
      try? fm.removeItem(at: partial)
      throw error
    } catch {
      try? fm.removeItem(at: partial)
      throw GreenRFMError.checkpoint(path: final.path, reason: "could not be written: \(error)")
    }
    prune(folder, keep: keep, protecting: name)
    return final
  }

  /// Removes all but the newest `keep` `step-*` folders (never `protecting`) and stale `.partial-*` folders.
  static func prune(_ folder: URL, keep: Int, protecting: String) {
    let fm = FileManager.default
    guard let names = try? fm.contentsOfDirectory(atPath: folder.path) else { return }
    for stale in names where stale.hasPrefix(".partial-") || stale.hasPrefix(".replaced-") {
      try? fm.removeItem(at: folder.appendingPathComponent(stale))
    }
    let steps = names.filter { $0.hasPrefix("step-") }.sorted()
    for old in steps.dropLast(keep) where old != protecting {
      try? fm.removeItem(at: folder.appendingPathComponent(old))
    }
  }

  /// The checkpoint folder that `path` names: a checkpoint folder itself (has `state.json`), a `checkpoints`
  /// folder (follows `latest`), or a run folder (follows `checkpoints/latest`).
  /// - Throws: `GreenRFMError.checkpoint` when none is found.
  public static func resolve(_ path: URL) throws -> URL {
    let fm = FileManager.default
    if fm.fileExists(atPath: path.appendingPathComponent("state.json").path) { return path }
    for folder in [path, path.appendingPathComponent("checkpoints")] {
      let latest = folder.appendingPathComponent(latestFile)
      if let text = try? String(contentsOf: latest, encoding: .utf8) {
        let name = text.trimmingCharacters(in: .whitespacesAndNewlines)
        let candidate = folder.appendingPathComponent(name)
        guard !name.isEmpty, !name.contains("/"), fm.fileExists(atPath: candidate.appendingPathComponent("state.json").path) else {
          throw GreenRFMError.checkpoint(path: latest.path, reason: "names '\(name)', which is not a complete checkpoint")
        }
        return candidate
      }
    }
    throw GreenRFMError.checkpoint(path: path.path, reason: "no checkpoint here (expected state.json, latest or checkpoints/latest)")
  }

  /// The newest checkpoint in a `checkpoints` folder: the one `latest` names, or, when `latest` is missing or
  /// names an incomplete folder, the newest complete `step-*` folder (with a warning). Nil when the folder holds no
  /// checkpoint at all.
  /// - Throws: `GreenRFMError.checkpoint` when it holds checkpoint entries but none is complete (never silently
  ///   treated as empty, which would restart and overwrite the run).
  public static func find(_ folder: URL, logger: Logger? = nil) throws -> URL? {
    let fm = FileManager.default
    let names = (try? fm.contentsOfDirectory(atPath: folder.path)) ?? []
    let steps = names.filter { $0.hasPrefix("step-") }.sorted()
    guard names.contains(latestFile) || !steps.isEmpty else { return nil }
    if let resolved = try? resolve(folder) { return resolved }
    if let newest = steps.reversed().first(where: { fm.fileExists(atPath: folder.appendingPathComponent($0).appendingPathComponent("state.json").path) }) {
      logger?.warning("\(folder.path)/latest is missing or names an incomplete checkpoint; using \(newest), the newest complete one")
      return folder.appendingPathComponent(newest)
    }
    throw GreenRFMError.checkpoint(path: folder.path, reason: "holds checkpoint entries but no complete checkpoint (state.json); "
      + "move it away to start again")
  }

  /// Reads a checkpoint's record.
  public static func record(_ folder: URL) throws -> CheckpointRecord {
    let url = folder.appendingPathComponent("state.json")
    do {
      let decoder = JSONDecoder()
      decoder.nonConformingFloatDecodingStrategy = .convertFromString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
      return try decoder.decode(CheckpointRecord.self, from: Data(contentsOf: url))
    } catch {
      throw GreenRFMError.checkpoint(path: url.path, reason: "unreadable record: \(error)")
    }
  }

  /// Reads a checkpoint's model weights.
  public static func weights(_ folder: URL) throws -> [String: Tensor] {
    let url = folder.appendingPathComponent("model.safetensors")
    do { return try SafeTensors.load(url).tensors } catch {
      throw GreenRFMError.checkpoint(path: url.path, reason: "\(error)")
    }
  }

  /// Reads a checkpoint's optimizer state (nil when absent).
  public static func optimizerState(_ folder: URL) throws -> [String: Tensor]? {
    let url = folder.appendingPathComponent("optimizer.safetensors")
    guard FileManager.default.fileExists(atPath: url.path) else { return nil }
    do { return try SafeTensors.load(url).tensors } catch {
      throw GreenRFMError.checkpoint(path: url.path, reason: "\(error)")
    }
  }

  static func encode(_ record: CheckpointRecord) throws -> Data {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
    encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
    return try encoder.encode(record)
  }

  static func contiguousCPU(_ state: [String: Tensor]) throws -> [String: Tensor] {
    var out: [String: Tensor] = [:]
    for (k, v) in state { out[k] = try v.detach().to(.cpu).contiguous() }
    return out
  }
}
