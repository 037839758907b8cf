import Foundation
import MedicalImaging
import Reports
import Testing
@testable import GreenRFM

/// The synthetic chest CT cohort (`greenrfm synth`): determinism, visual signatures of each finding, report/truth
/// agreement, CT-RATE layout.
@Suite struct SynthTests {
  /// Small but anatomically complete volumes (144 × 144 × 144 mm at the chest-ct spacing) so the suite stays quick.
  static var smallConfig: SyntheticCohortConfig {
    var c = SyntheticCohortConfig()
    c.shape = [96, 96, 48]
    c.seed = 7
    return c
  }

  static let none = [Int8](repeating: 0, count: 18)

  static func temporaryFolder() -> URL {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("synth-tests-\(UUID().uuidString)")
    try? FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
  }

  @Test func findingNamesAreTheSchemaDisplayNamesInOrder() throws {
    let schema = try LabelSchema.load("chest-ct-18")
    #expect(schema.findings.map(\.displayName) == SyntheticCohort.findingNames)
    #expect(SyntheticCohort.defaultPrevalences.allSatisfy { $0 >= 0.15 && $0 <= 0.35 })
  }

  @Test func samePatientSeedGivesIdenticalVolumeAndDifferentSeedDoesNot() {
    let config = Self.smallConfig
    let a = SyntheticCohort.patient(index: 3, config: config)
    let b = SyntheticCohort.patient(index: 3, config: config)
    #expect(a.volume.voxels == b.volume.voxels)
    #expect(NIfTI.encode(a.volume, storage: .scaledInt16) == NIfTI.encode(b.volume, storage: .scaledInt16))
    #expect(a.findingsText == b.findingsText && a.impressionText == b.impressionText && a.labels == b.labels)
    var other = config
    other.seed = 8
    let c = SyntheticCohort.patient(index: 3, config: other)
    #expect(c.volume.voxels != a.volume.voxels)
    let d = SyntheticCohort.patient(index: 4, config: config)
    #expect(d.volume.voxels != a.volume.voxels)
    let valid = SyntheticCohort.patient(index: 3, split: .valid, config: config)
    #expect(valid.volume.voxels != a.volume.voxels)
  }

  @Test func huValuesAreWholeAndInTheCTRange() {
    var config = Self.smallConfig
    config.prevalences = Array(repeating: 1, count: 18)  // every finding at once, metal included
    let p = SyntheticCohort.patient(index: 0, config: config)
    let s = p.volume.statistics
    #expect(s.min >= -1024 && s.max <= 3071)
    #expect(s.max > 1200)  // medical material
    #expect(p.volume.voxels.allSatisfy { $0 == $0.rounded() })
    #expect(p.volume.orientation.codes == "LPS")
    #expect(p.volume.spacingMM == [1.5, 1.5, 3])
    // Plausible composition: air outside, lungs, soft tissue, bone.
    let v = p.volume.voxels
    #expect(v.filter { $0 < -900 }.count > v.count / 10)
    #expect(v.filter { $0 > 300 && $0 < 1000 }.count > 500)
  }

  /// Generator version 5: a lead or catheter thinner than the demo's 4 × 4 × 8 mm voxels is drawn in every slice it
  /// crosses (the nearest voxel takes the metal's value), so a port or pacemaker shows metal, and its streaks, in one
  /// unbroken run of slices; sternal wires are loops within single slices (4–6 of them). The device comes from the
  /// report's words. Version 4 left gaps: in its demo cohort 8 of the 33 held-out positives had metal in more than 6
  /// slices but not in every slice between (e.g. 8 of 17, 9 of 14); with the nearest-voxel drawing removed this test
  /// fails (measured). Version 6 keeps metal inside the body: in version 5, 22–37 voxels of every port chamber or
  /// pacemaker generator here lay outside the skin.
  @Test func thinMetalIsDrawnInEverySliceItCrossesAtTheDemoResolution() {
    var config = SyntheticCohortConfig()
    config.shape = [48, 48, 24]
    config.spacingMM = [4, 4, 8]
    config.seed = 0
    var on = Self.none
    on[SynthFinding.medicalMaterial.rawValue] = 1
    var devices = 0, wires = 0
    for index in 0..<12 {
      let p = SyntheticCohort.patient(index: index, config: config, labels: on)
      let report = (p.findingsText + " " + p.impressionText).lowercased()
      let sliceSize = 48 * 48
      let metal = p.volume.voxels.indices.filter { p.volume.voxels[$0] > 1500 }
      let outside = metal.filter { p.tissue[$0] == SyntheticTissue.air.rawValue }.count
      #expect(outside == 0, "patient \(index): \(outside) of \(metal.count) metal voxels outside the body")
      let slices = Array(Set(metal.map { $0 / sliceSize })).sorted()
      guard let first = slices.first, let last = slices.last else {
        Issue.record("patient \(index): medical material but no voxel above 1,500 HU")
        continue
      }
      if report.contains("sternotomy") || report.contains("sternal wires") {
        wires += 1
        #expect((4...6).contains(slices.count), "patient \(index): \(slices.count) sternal-wire slices")
      } else if report.contains("port catheter") || report.contains("pacemaker") {
        devices += 1
        #expect(slices.count == last - first + 1, "patient \(index): metal in \(slices.count) of the \(last - first + 1) slices it spans")
        #expect(slices.count >= 12, "patient \(index): a device's lead spans \(slices.count) slices")
      }
    }
    #expect(devices >= 4 && wires >= 1, "\(devices) devices, \(wires) wire patients named by their reports")
  }

  // MARK: - Visual signatures: each finding on vs off for the same patient seed

  /// A measurement on a patient, given the tissue map of the same patient without findings.
  static func measure(_ finding: Int, _ p: SyntheticPatient, baseline: SyntheticPatient) -> Double {
    let lungMask = baseline.tissue.map { SyntheticTissue(rawValue: $0)?.isLungParenchyma ?? false }
    let v = p.volume.voxels
    func lungValues() -> [Double] { zip(v, lungMask).filter(\.1).map { Double($0.0) } }
    func mean(_ x: [Double]) -> Double { x.reduce(0, +) / Double(max(x.count, 1)) }
    func count(_ t: SyntheticTissue) -> Double { Double(p.tissue.filter { $0 == t.rawValue }.count) }
    func countIn(_ tissues: Set<SyntheticTissue>, above: Float) -> Double {
      Double(zip(v, baseline.tissue).filter { $0.0 > above && tissues.contains(SyntheticTissue(rawValue: $0.1)!) }.count)
    }
    switch SynthFinding(rawValue: finding)! {
    case .medicalMaterial: return Double(v.max()!)
    case .arterialWallCalcification: return countIn([.aortaWall, .aortaLumen], above: 500)
    case .cardiomegaly: return count(.heart)
    case .pericardialEffusion: return count(.pericardialEffusion)
    case .coronaryCalcification: return countIn([.heart, .epicardialFat, .mediastinalFat], above: 300)
    case .hiatalHernia: return count(.hernia)
    case .lymphadenopathy: return count(.lymphNode)
    case .emphysema: return -mean(lungValues())  // lower lung density → higher measure
    case .mosaicAttenuation:
      let x = lungValues(), m = mean(x)
      return mean(x.map { ($0 - m) * ($0 - m) }).squareRoot()
    case .peribronchialThickening: return count(.bronchusWall)
    case .bronchiectasis: return count(.bronchusLumen)
    case .lungNodule, .fibroticSequela: return Double(lungValues().filter { $0 > -300 }.count)
    case .septalThickening: return Double(lungValues().filter { $0 > -650 }.count)
    case .atelectasis, .consolidation, .lungOpacity, .pleuralEffusion: return mean(lungValues())
    }
  }

  /// How much the measure must grow with the finding (absolute units of the measure).
  static let requiredIncrease: [Double] = [
    1000,  // max HU: bone ≤ ~850 without, metal ≥ 1800 with
    3,  // voxels > 500 HU on the aorta
    0.5,  // relative: heart voxels × 1.5 (checked below)
    50,  // pericardial effusion voxels
    2,  // coronary voxels > 300 HU
    50,  // hernia voxels
    100,  // node voxels
    40,  // emphysema: mean lung HU falls by ≥ 40
    3,  // atelectasis: mean lung HU rises
    5,  // nodule voxels > −300 HU in the lung
    3,  // opacity: mean lung HU rises
    10,  // fibrotic band voxels
    10,  // effusion: mean lung HU rises
    15,  // mosaic: lung HU spread (SD) grows
    0.5,  // relative: bronchial wall voxels × 1.5
    10,  // consolidation: mean lung HU rises
    0.5,  // relative: bronchial lumen voxels × 1.5
    100,  // septal lines: lung voxels > −650 HU
  ]

  @Test(arguments: 0..<18)
  func findingHasAMeasurableSignature(finding: Int) {
    let config = Self.smallConfig
    let index = 1
    let baseline = SyntheticCohort.patient(index: index, config: config, labels: Self.none)
    var on = Self.none
    on[finding] = 1
    let with = SyntheticCohort.patient(index: index, config: config, labels: on)
    let before = Self.measure(finding, baseline, baseline: baseline)
    let after = Self.measure(finding, with, baseline: baseline)
    let name = SyntheticCohort.findingNames[finding]
    if [2, 14, 16].contains(finding) {
      #expect(after >= before * (1 + Self.requiredIncrease[finding]), "\(name): \(before) → \(after)")
    } else {
      #expect(after - before >= Self.requiredIncrease[finding], "\(name): \(before) → \(after)")
    }
    #expect(with.mentions[finding] == .present || with.mentions[finding] == .uncertain, "\(name): \(with.mentions[finding])")
  }

  @Test func findingsDoNotChangeTheAnatomyOfOtherStructures() {
    // Forcing a density-only finding leaves the tissue map untouched.
    let config = Self.smallConfig
    let baseline = SyntheticCohort.patient(index: 2, config: config, labels: Self.none)
    var on = Self.none
    on[SynthFinding.consolidation.rawValue] = 1
    on[SynthFinding.lungNodule.rawValue] = 1
    let with = SyntheticCohort.patient(index: 2, config: config, labels: on)
    #expect(with.tissue == baseline.tissue)
  }

  // MARK: - Reports

  @Test func reportsNeverNegateAPresentFindingAndAlwaysMentionIt() {
    var config = Self.smallConfig
    config.shape = [40, 40, 20]
    config.spacingMM = [3.6, 3.6, 7.2]  // same field of view, coarse: only the reports matter here
    var states: Set<SyntheticMention> = []
    for index in 0..<60 {
      let p = SyntheticCohort.patient(index: index, config: config)
      #expect(p.findingsText.hasPrefix("Trachea"))
      #expect(p.findingsText.contains("When examined in the lung parenchyma window;"))
      #expect(!p.impressionText.isEmpty)
      for f in 0..<18 {
        states.insert(p.mentions[f])
        if p.labels[f] == 1 {
          #expect(p.mentions[f] == .present || p.mentions[f] == .uncertain, "patient \(index) finding \(f)")
        } else {
          #expect(p.mentions[f] != .present, "patient \(index) finding \(f)")
        }
      }
      if p.labels.allSatisfy({ $0 == 0 }) && !p.mentions.contains(.uncertain) {
        #expect(p.impressionText.contains("No significant pathology") || p.impressionText.contains("Normal"))
      }
    }
    #expect(states == Set(SyntheticMention.allCases))
  }

  @Test func labelsFollowThePrevalencesWithPositivesAndNegativesForEveryFinding() {
    let config = SyntheticCohortConfig()
    var positives = [Int](repeating: 0, count: 18)
    for index in 0..<80 {
      for (f, l) in SyntheticCohort.labels(index: index, config: config).enumerated() { positives[f] += Int(l) }
    }
    for f in 0..<18 {
      #expect(positives[f] >= 4 && positives[f] <= 44, "\(SyntheticCohort.findingNames[f]): \(positives[f]) of 80")
    }
  }

  // MARK: - Files: determinism and the CT-RATE reader

  /// `synth.json` says a folder holds a finished cohort (the demo reuses it, or refuses stages trained on another):
  /// a regeneration removes the old one first, so one that stops halfway leaves none.
  @Test func regeneratingRemovesTheOldSummaryUntilTheNewCohortIsComplete() throws {
    var config = Self.smallConfig
    config.shape = [32, 32, 16]
    config.trainCount = 2
    config.validCount = 1
    let folder = Self.temporaryFolder()
    defer { try? FileManager.default.removeItem(at: folder) }
    let summaryFile = folder.appendingPathComponent("synth.json")
    try SyntheticCohort.generate(config: config, output: folder)
    #expect(FileManager.default.fileExists(atPath: summaryFile.path))
    config.seed += 1
    let seenDuring = LockedCount()  // (calls that saw synth.json, calls)
    try SyntheticCohort.generate(config: config, output: folder) { _, _ in
      let seen = FileManager.default.fileExists(atPath: summaryFile.path) ? 1 : 0
      seenDuring.add(seen)
    }
    #expect(seenDuring.last?.0 == 0 && seenDuring.last?.1 == 3)
    #expect(Demo.existingSynth(folder)?.config == config)
  }

  @Test func cohortFilesAreDeterministicAndReadByTheCTRATELayout() throws {
    var config = Self.smallConfig
    config.shape = [64, 64, 32]
    config.trainCount = 3
    config.validCount = 2
    let first = Self.temporaryFolder(), second = Self.temporaryFolder()
    defer {
      try? FileManager.default.removeItem(at: first)
      try? FileManager.default.removeItem(at: second)
    }
    let summary = try SyntheticCohort.generate(config: config, output: first)
    try SyntheticCohort.generate(config: config, output: second)
    #expect(summary.trainCount == 3 && summary.validCount == 2)
    for file in ["train_reports.csv", "valid_reports.csv", "train_labels.csv", "valid_labels.csv", "train_mentions.csv",
                 "synth.json", SyntheticCohort.relativePath(split: .train, index: 2),
                 SyntheticCohort.relativePath(split: .valid, index: 0)] {
      let a = try Data(contentsOf: first.appendingPathComponent(file))
      let b = try Data(contentsOf: second.appendingPathComponent(file))
      #expect(a == b, "\(file) differs between two runs with the same seed")
    }
    #expect(FileManager.default.fileExists(atPath: first.appendingPathComponent("train/train_1/train_1_a/train_1_a_1.nii.gz").path))
    let header = try String(contentsOf: first.appendingPathComponent("train_reports.csv"), encoding: .utf8)
      .split(separator: "\n").first.map(String.init)
    #expect(header == "VolumeName,Findings_EN,Impressions_EN")

    var otherSeed = config
    otherSeed.seed = 99
    let third = Self.temporaryFolder()
    defer { try? FileManager.default.removeItem(at: third) }
    try SyntheticCohort.generate(config: otherSeed, output: third)
    #expect(try Data(contentsOf: first.appendingPathComponent("train_reports.csv"))
      != Data(contentsOf: third.appendingPathComponent("train_reports.csv")))

    let schema = try LabelSchema.load("chest-ct-18")
    for (split, count) in [(SyntheticCohort.Split.train, 3), (.valid, 2)] {
      let cohort = try CohortLayout.ctRate(
        volumes: first.appendingPathComponent(split.rawValue),
        reportsCSV: first.appendingPathComponent("\(split.rawValue)_reports.csv"),
        labelsCSV: first.appendingPathComponent("\(split.rawValue)_labels.csv"), schema: schema)
      #expect(cohort.items.count == count)
      #expect(cohort.skipped.isEmpty)
      for (index, item) in cohort.items.enumerated() {
        let truth = SyntheticCohort.patient(index: index, split: split, config: config)
        #expect(item.id == truth.volumeName)
        #expect(item.labels == truth.labels)
        #expect(item.reportText?.contains(truth.findingsText) == true)
        let path = try #require(item.volumePath)
        let volume = try NIfTI.read(path: path)
        #expect(volume.shape == [64, 64, 32])
        #expect(volume.orientation.codes == "LPS")
        // int16 with scl_slope: within half a quantisation step of the generated HU.
        let slope = Float(max(abs(truth.volume.statistics.min), abs(truth.volume.statistics.max)) / 32767)
        let worst = zip(volume.voxels, truth.volume.voxels).map { abs($0 - $1) }.max() ?? 0
        #expect(worst <= slope)
      }
    }
  }

  @Test func configRejectsUnknownKeysAndBadRanges() throws {
    let decoded = try JSONDecoder().decode(SyntheticCohortConfig.self, from: Data(#"{"seed": 3, "trainCount": 5}"#.utf8))
    #expect(decoded.seed == 3 && decoded.trainCount == 5 && decoded.validCount == 32 && decoded.shape == [128, 128, 64])
    #expect(throws: (any Error).self) {
      try JSONDecoder().decode(SyntheticCohortConfig.self, from: Data(#"{"sede": 3}"#.utf8))
    }
    var bad = SyntheticCohortConfig()
    bad.prevalences = [0.5]
    #expect(throws: (any Error).self) { try bad.validate() }
    bad = SyntheticCohortConfig()
    bad.shape = [128, 128]
    #expect(throws: (any Error).self) { try bad.validate() }
  }
}
