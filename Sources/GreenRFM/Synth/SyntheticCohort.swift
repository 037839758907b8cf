import AtomicWrite
import Foundation
import MedicalImaging
import Reports

/// Settings of a synthetic chest CT cohort (`greenrfm synth`). Decoding fills absent keys with the defaults and
/// rejects unknown keys; `validate()` checks ranges.
public struct SyntheticCohortConfig: Codable, Equatable, Sendable {
  /// Seed of everything (anatomy, findings, reports, noise).
  public var seed: UInt64 = 0
  /// Training patients (`train_1` … `train_N`).
  public var trainCount: Int = 64
  /// Held-out patients (`valid_1` … `valid_N`).
  public var validCount: Int = 32
  /// Voxels along i (towards the patient's left), j (posterior), k (superior).
  public var shape: [Int] = [128, 128, 64]
  /// Voxel size in mm along i, j, k (the chest-ct preprocessing target, so preprocessing does not resample).
  public var spacingMM: [Double] = [1.5, 1.5, 3]
  /// Standard deviation of the Gaussian noise in HU (each patient draws 0.7–1.3 × this).
  public var noiseHU: Double = 15
  /// Prevalence of each finding, in `chest-ct-18` order (CT-RATE's label column order), each in [0, 1].
  public var prevalences: [Double] = SyntheticCohort.defaultPrevalences
  /// Contrast-enhanced vessels (aorta +250 HU, other vessels +150–180 HU) instead of non-contrast blood (+35–48 HU).
  public var contrast: Bool = false
  /// Voxel storage in the NIfTI files.
  public var storage: NIfTI.StorageType = .scaledInt16

  public init() {}

  enum CodingKeys: String, CodingKey, CaseIterable {
    case seed, trainCount, validCount, shape, spacingMM, noiseHU, prevalences, contrast, storage
  }

  struct AnyKey: CodingKey {
    var stringValue: String
    var intValue: Int? { nil }
    init?(stringValue: String) { self.stringValue = stringValue }
    init?(intValue: Int) { nil }
  }

  public init(from decoder: Decoder) throws {
    let all = try decoder.container(keyedBy: AnyKey.self)
    let known = Set(CodingKeys.allCases.map(\.rawValue))
    if let unknown = all.allKeys.first(where: { !known.contains($0.stringValue) }) {
      throw DecodingError.dataCorruptedError(forKey: unknown, in: all, debugDescription: "unknown key '\(unknown.stringValue)'")
    }
    let c = try decoder.container(keyedBy: CodingKeys.self)
    let d = SyntheticCohortConfig()
    seed = try c.decodeIfPresent(UInt64.self, forKey: .seed) ?? d.seed
    trainCount = try c.decodeIfPresent(Int.self, forKey: .trainCount) ?? d.trainCount
    validCount = try c.decodeIfPresent(Int.self, forKey: .validCount) ?? d.validCount
    shape = try c.decodeIfPresent([Int].self, forKey: .shape) ?? d.shape
    spacingMM = try c.decodeIfPresent([Double].self, forKey: .spacingMM) ?? d.spacingMM
    noiseHU = try c.decodeIfPresent(Double.self, forKey: .noiseHU) ?? d.noiseHU
    prevalences = try c.decodeIfPresent([Double].self, forKey: .prevalences) ?? d.prevalences
    contrast = try c.decodeIfPresent(Bool.self, forKey: .contrast) ?? d.contrast
    storage = try c.decodeIfPresent(NIfTI.StorageType.self, forKey: .storage) ?? d.storage
  }

  /// - Throws: `GreenRFMError.invalidConfig` naming the field and the allowed range.
  public func validate() throws {
    func fail(_ field: String, _ reason: String) -> Error { GreenRFMError.invalidConfig(source: "SyntheticCohortConfig.\(field)", reason: reason) }
    guard trainCount >= 0, validCount >= 0, trainCount + validCount > 0 else {
      throw fail("trainCount/validCount", "must be non-negative with at least one patient, got \(trainCount) and \(validCount)")
    }
    guard shape.count == 3, shape.allSatisfy({ $0 >= 16 && $0 <= 1024 }) else {
      throw fail("shape", "must be 3 voxel counts in 16...1024, got \(shape)")
    }
    guard spacingMM.count == 3, spacingMM.allSatisfy({ $0 >= 0.25 && $0 <= 10 }) else {
      throw fail("spacingMM", "must be 3 spacings in 0.25...10 mm, got \(spacingMM)")
    }
    guard noiseHU >= 0, noiseHU <= 200 else { throw fail("noiseHU", "must be in 0...200 HU, got \(noiseHU)") }
    guard prevalences.count == SyntheticCohort.findingNames.count, prevalences.allSatisfy({ $0 >= 0 && $0 <= 1 }) else {
      throw fail("prevalences", "must be \(SyntheticCohort.findingNames.count) values in [0, 1], got \(prevalences)")
    }
  }
}

/// What `SyntheticCohort.generate` wrote (also `synth.json`, together with the config).
public struct SyntheticCohortSummary: Codable, Equatable, Sendable {
  public var generatorVersion: String
  public var seed: UInt64
  public var trainCount: Int
  public var validCount: Int
  public var shape: [Int]
  public var spacingMM: [Double]
  /// Finding display names, in label-column order.
  public var findings: [String]
  /// Configured prevalence per finding.
  public var prevalences: [Double]
  /// Positive patients per finding in the training split and in the held-out split.
  public var trainPositives: [Int]
  public var validPositives: [Int]
  /// How often each mention state occurred per finding over all reports (`present`, `negated`, `uncertain`,
  /// `unmentioned` → counts per finding).
  public var mentionCounts: [String: [Int]]
  /// Wall-clock seconds of the generation.
  public var seconds: Double
}

/// One generated patient, in memory.
public struct SyntheticPatient: Sendable {
  /// CT-RATE volume name, e.g. `train_3_a_1.nii.gz`.
  public var volumeName: String
  /// The CT volume in HU (integers in [−1024, 3071], stored as Float), LPS axis codes, `config.spacingMM`.
  public var volume: Volume
  /// True labels in `chest-ct-18` order: 1 present, 0 absent (whatever the report says).
  public var labels: [Int8]
  /// The report's findings section (CT-RATE `Findings_EN`).
  public var findingsText: String
  /// The report's impression (CT-RATE `Impressions_EN`).
  public var impressionText: String
  /// What the report says about each finding, in `chest-ct-18` order.
  public var mentions: [SyntheticMention]
  /// Tissue class per voxel (`SyntheticTissue` raw values), same layout as `volume.voxels`.
  public var tissue: [UInt8]
}

/// The synthetic chest CT cohort generator: CT-like chest volumes with per-patient anatomy and up to 18 findings
/// with visual signatures, CT-RATE-style reports, and CT-RATE's file layout. See docs/SYNTH.md.
public enum SyntheticCohort {
  /// Changes whenever the same config would produce different files.
  public static let generatorVersion = "greenrfm-synth-6"

  /// The 18 CT-RATE findings (`chest-ct-18` display names) in label-column order.
  public static let findingNames = [
    "Medical material", "Arterial wall calcification", "Cardiomegaly", "Pericardial effusion",
    "Coronary artery wall calcification", "Hiatal hernia", "Lymphadenopathy", "Emphysema", "Atelectasis",
    "Lung nodule", "Lung opacity", "Pulmonary fibrotic sequela", "Pleural effusion", "Mosaic attenuation pattern",
    "Peribronchial thickening", "Consolidation", "Bronchiectasis", "Interlobular septal thickening",
  ]

  /// Default prevalences (15–35 %), in `findingNames` order.
  public static let defaultPrevalences: [Double] = [
    0.2, 0.35, 0.25, 0.2, 0.3, 0.15, 0.25, 0.25, 0.3, 0.35, 0.25, 0.2, 0.25, 0.15, 0.2, 0.25, 0.2, 0.15,
  ]

  public enum Split: String, Codable, Sendable, CaseIterable {
    case train, valid
    var code: UInt64 { self == .train ? 1 : 2 }
  }

  enum Stream: UInt64 {
    case anatomy = 1, findings = 2, report = 3, noise = 4
    static func finding(_ f: SynthFinding) -> UInt64 { 100 + UInt64(f.rawValue) }
  }

  /// CT-RATE's volume name for patient `index` (0-based) of a split: `train_{index+1}_a_1.nii.gz`.
  public static func volumeName(split: Split, index: Int) -> String { "\(split.rawValue)_\(index + 1)_a_1.nii.gz" }

  /// CT-RATE's relative path: `train/train_1/train_1_a/train_1_a_1.nii.gz`.
  public static func relativePath(split: Split, index: Int) -> String {
    let n = "\(split.rawValue)_\(index + 1)"
    return "\(split.rawValue)/\(n)/\(n)_a/\(n)_a_1.nii.gz"
  }

  /// The true labels of a patient (each finding an independent Bernoulli draw with its prevalence).
  public static func labels(index: Int, split: Split = .train, config: SyntheticCohortConfig) -> [Int8] {
    var r = SynthRandom(seed: SynthRandom.seed(config.seed, split.code, UInt64(index), Stream.findings.rawValue))
    return config.prevalences.map { r.uniform() < $0 ? 1 : 0 }
  }

  /// Generates one patient in memory. Deterministic: a function of (config, split, index, labels) only.
  ///
  /// - Parameters:
  ///   - index: 0-based patient index within the split.
  ///   - split: train or valid (independent streams).
  ///   - config: the cohort settings (`validate()` first; a bad config traps).
  ///   - labels: force these true labels (18 values, 0 or 1) instead of drawing them; the anatomy and every other
  ///     finding's parameters stay the same, so tests can compare a patient with and without one finding.
  public static func patient(index: Int, split: Split = .train, config: SyntheticCohortConfig,
                             labels forced: [Int8]? = nil) -> SyntheticPatient {
    precondition(config.shape.count == 3 && config.spacingMM.count == 3, "SyntheticCohort.patient: bad shape/spacing")
    let labels = forced ?? Self.labels(index: index, split: split, config: config)
    precondition(labels.count == findingNames.count, "SyntheticCohort.patient: \(labels.count) labels, expected 18")
    func stream(_ s: UInt64) -> SynthRandom {
      SynthRandom(seed: SynthRandom.seed(config.seed, split.code, UInt64(index), s))
    }
    var frame = SynthFrame(shape: config.shape, spacingMM: config.spacingMM)
    var anatomyRandom = stream(Stream.anatomy.rawValue)
    frame.shiftX = anatomyRandom.uniform(-0.015, 0.015) * frame.fovX
    frame.shiftY = anatomyRandom.uniform(-0.02, 0.02) * frame.fovY
    let roll = anatomyRandom.uniform(-5, 5) * Double.pi / 180
    frame.cosR = Foundation.cos(roll)
    frame.sinR = Foundation.sin(roll)
    let anatomy = SynthAnatomy(random: &anatomyRandom, frame: frame, noiseHU: config.noiseHU)
    let present = labels.map { $0 == 1 }
    let plan = SynthFindingPlan(present: present, anatomy: anatomy, frame: frame) { stream(Stream.finding($0)) }
    var renderer = SynthRenderer(frame: frame, anatomy: anatomy, plan: plan)
    renderer.classify()
    renderer.drawTubes()
    renderer.assignDensities(contrast: config.contrast)
    renderer.applyDensityFindings { stream(Stream.finding($0)) }
    var noise = stream(Stream.noise.rawValue)
    renderer.addNoise(&noise)
    var reportRandom = stream(Stream.report.rawValue)
    let report = SynthReportWriter.write(present: present, plan: renderer.plan, random: &reportRandom)

    let (sx, sy, sz) = (config.spacingMM[0], config.spacingMM[1], config.spacingMM[2])
    let (ci, cj, ck) = (Double(config.shape[0] - 1) / 2, Double(config.shape[1] - 1) / 2, Double(config.shape[2] - 1) / 2)
    // LPS axis codes: i towards the patient's left (−x in RAS+), j towards posterior (−y), k towards superior.
    let affine = Affine([[-sx, 0, 0, sx * ci], [0, -sy, 0, sy * cj], [0, 0, sz, -sz * ck], [0, 0, 0, 1]])
    let volume = Volume(shape: config.shape, voxels: renderer.hu, affine: affine, spacingMM: config.spacingMM)
    return SyntheticPatient(volumeName: volumeName(split: split, index: index), volume: volume, labels: labels,
                            findingsText: report.findings, impressionText: report.impression,
                            mentions: report.mentions, tissue: renderer.tissue)
  }

  /// Writes a cohort in CT-RATE's layout under `output`:
  /// `train/train_N/train_N_a/train_N_a_1.nii.gz` (and `valid/...`), `train_reports.csv` / `valid_reports.csv`
  /// (`VolumeName,Findings_EN,Impressions_EN`), `train_labels.csv` / `valid_labels.csv` (`VolumeName` + the 18
  /// findings, true labels), `train_mentions.csv` / `valid_mentions.csv` (what each report says per finding) and
  /// `synth.json` (config and summary).
  ///
  /// Patients are generated in parallel (`DispatchQueue.concurrentPerform`); the files do not depend on the number
  /// of threads. `progress(done, total)` is called after each patient, from any worker thread.
  /// - Throws: `GreenRFMError.invalidConfig` for a bad config; a write error naming the file.
  @discardableResult
  public static func generate(config: SyntheticCohortConfig, output: URL,
                              progress: (@Sendable (Int, Int) -> Void)? = nil) throws -> SyntheticCohortSummary {
    try config.validate()
    let start = Date()
    let jobs: [(Split, Int)] = (0..<config.trainCount).map { (.train, $0) } + (0..<config.validCount).map { (.valid, $0) }
    try FileManager.default.createDirectory(at: output, withIntermediateDirectories: true)
    // synth.json is written last and says the folder holds this cohort; an earlier one must not outlive a
    // regeneration that stops halfway.
    let summaryFile = output.appendingPathComponent("synth.json")
    if FileManager.default.fileExists(atPath: summaryFile.path) { try FileManager.default.removeItem(at: summaryFile) }
    let results = SynthResults(count: jobs.count)
    DispatchQueue.concurrentPerform(iterations: jobs.count) { n in
      let (split, index) = jobs[n]
      let outcome = Result { () throws -> SynthRow in
        let p = patient(index: index, split: split, config: config)
        let url = output.appendingPathComponent(relativePath(split: split, index: index))
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try NIfTI.write(p.volume, to: url.path, storage: config.storage)
        return SynthRow(split: split, name: p.volumeName, findings: p.findingsText, impression: p.impressionText,
                        labels: p.labels, mentions: p.mentions)
      }
      let done = results.store(n, outcome)
      progress?(done, jobs.count)
    }
    var rows: [SynthRow] = []
    for outcome in results.all() { rows.append(try outcome.get()) }

    for split in Split.allCases {
      let subset = rows.filter { $0.split == split }
      let reports = CSVTable(header: ["VolumeName", "Findings_EN", "Impressions_EN"],
                             rows: subset.map { [$0.name, $0.findings, $0.impression] })
      try AtomicWrite.write(Data(reports.serialized().utf8), to: output.appendingPathComponent("\(split.rawValue)_reports.csv"))
      let labels = CSVTable(header: ["VolumeName"] + findingNames, rows: subset.map { [$0.name] + $0.labels.map { String($0) } })
      try AtomicWrite.write(Data(labels.serialized().utf8), to: output.appendingPathComponent("\(split.rawValue)_labels.csv"))
      let mentions = CSVTable(header: ["VolumeName"] + findingNames, rows: subset.map { [$0.name] + $0.mentions.map(\.rawValue) })
      try AtomicWrite.write(Data(mentions.serialized().utf8), to: output.appendingPathComponent("\(split.rawValue)_mentions.csv"))
    }
    func positives(_ split: Split) -> [Int] {
      (0..<findingNames.count).map { f in rows.filter { $0.split == split && $0.labels[f] == 1 }.count }
    }
    var mentionCounts: [String: [Int]] = [:]
    for m in SyntheticMention.allCases {
      mentionCounts[m.rawValue] = (0..<findingNames.count).map { f in rows.filter { $0.mentions[f] == m }.count }
    }
    let summary = SyntheticCohortSummary(
      generatorVersion: generatorVersion, seed: config.seed, trainCount: config.trainCount, validCount: config.validCount,
      shape: config.shape, spacingMM: config.spacingMM, findings: findingNames, prevalences: config.prevalences,
      trainPositives: positives(.train), validPositives: positives(.valid), mentionCounts: mentionCounts,
      seconds: Date().timeIntervalSince(start))
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
    struct File: Encodable { var config: SyntheticCohortConfig; var summary: SyntheticCohortSummary }
    // `seconds` varies run to run; synth.json keeps it out so that two runs give identical files.
    var stable = summary
    stable.seconds = 0
    try AtomicWrite.write(try encoder.encode(File(config: config, summary: stable)), to: output.appendingPathComponent("synth.json"))
    return summary
  }
}

struct SynthRow: Sendable {
  var split: SyntheticCohort.Split
  var name: String
  var findings: String
  var impression: String
  var labels: [Int8]
  var mentions: [SyntheticMention]
}

/// Per-patient results filled from worker threads.
final class SynthResults: @unchecked Sendable {
  private let lock = NSLock()
  private var outcomes: [Result<SynthRow, Error>?]
  private var done = 0

  init(count: Int) { outcomes = Array(repeating: nil, count: count) }

  /// Stores result n and returns how many are done.
  func store(_ n: Int, _ outcome: Result<SynthRow, Error>) -> Int {
    lock.lock()
    defer { lock.unlock() }
    outcomes[n] = outcome
    done += 1
    return done
  }

  func all() -> [Result<SynthRow, Error>] {
    lock.lock()
    defer { lock.unlock() }
    return outcomes.map { $0 ?? .failure(GreenRFMError.invalidData(path: "synth", reason: "patient not generated")) }
  }
}
