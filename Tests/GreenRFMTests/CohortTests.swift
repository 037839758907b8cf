import Foundation
import MedicalImaging
import Reports
import Testing
@testable import GreenRFM

/// Paths to the shared real data (`../shared/data` beside the checkout), read in place.
enum CohortData {
  static let root: URL = {
    // Tests/GreenRFMTests/CohortTests.swift → repository root → ../shared/data
    let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
      .deletingLastPathComponent()
    return repo.deletingLastPathComponent().appendingPathComponent("shared/data")
  }()
  static func file(_ relative: String) -> URL? {
    let url = root.appendingPathComponent(relative)
    return FileManager.default.fileExists(atPath: url.path) ? url : nil
  }
  static var manualReports: URL? { file("reports/ctrate_manual_train.csv") }
  static var ctrateStyleReports: URL? { file("reports/ctrate_style/train_reports.csv") }
  static var ctrateStyleLabels: URL? { file("reports/ctrate_style/train_multi_abnormality_labels.csv") }
}

func cohortTemporaryDirectory() throws -> URL {
  let dir = FileManager.default.temporaryDirectory.appendingPathComponent("greenrfm-cohort-\(UUID().uuidString)")
  try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
  return dir
}

/// The message of an error (its `description` where it has one).
func cohortErrorText(_ error: Error) -> String { "\(error)" }

@Suite("Cohort layouts")
struct CohortTests {
  let chest = try! LabelSchema.load("chest-ct-18")

  /// Positive counts per finding, computed independently of `CohortLayout`: the raw text of each label column whose
  /// title equals the display name, counted where it is exactly "1".
  func independentPositiveCounts(_ url: URL) throws -> [Int] {
    let table = try CSVTable(contentsOf: url)
    return try chest.displayNames.map { name in
      let c = try #require(table.header.firstIndex(of: name), "column \(name)")
      return table.rows.filter { $0[c].trimmingCharacters(in: .whitespaces) == "1" }.count
    }
  }

  @Test func manualReportsCSV() throws {
    guard let csv = CohortData.manualReports else { return }
    let cohort = try CohortLayout.reports(csv: csv, idColumn: "AccessionNo", textColumns: ["report_text"], labelsCSV: nil,
                                          labelsIDColumn: nil, schema: chest)
    #expect(cohort.items.count == 800)
    #expect(cohort.skipped.isEmpty)
    #expect(cohort.items.allSatisfy { $0.labels.count == 18 && $0.volumePath == nil && !($0.reportText ?? "").isEmpty })
    #expect(cohort.items.allSatisfy { $0.labels.allSatisfy { $0 == 0 || $0 == 1 } })
    let expected = try independentPositiveCounts(csv)
    #expect(cohort.positiveCounts() == expected)
    #expect(expected.reduce(0, +) > 0)
    // The matrix is the items' labels; subsets keep order.
    #expect(cohort.labelMatrix().count == 800)
    let train = cohort.subset(0..<640), validation = cohort.subset(640..<800)
    #expect(train.items.count == 640 && validation.items.count == 160)
    #expect(validation.items.first == cohort.items[640])
    #expect(train.labelMatrix() + validation.labelMatrix() == cohort.labelMatrix())
  }

  @Test func ctrateStyleFilesGiveTheSameLabels() throws {
    guard let manual = CohortData.manualReports, let reports = CohortData.ctrateStyleReports,
          let labels = CohortData.ctrateStyleLabels else { return }
    let reference = try CohortLayout.reports(csv: manual, idColumn: "AccessionNo", textColumns: ["report_text"], labelsCSV: nil,
                                             labelsIDColumn: nil, schema: chest)
    // Known layout (VolumeName, Findings_EN, Impressions_EN) recognised from the header.
    let cohort = try CohortLayout.reports(csv: reports, idColumn: nil, textColumns: nil, labelsCSV: labels,
                                          labelsIDColumn: nil, schema: chest)
    #expect(cohort.items.count == 800)
    #expect(cohort.warnings.isEmpty)
    let byID = Dictionary(uniqueKeysWithValues: reference.items.map { ($0.id, $0.labels) })
    var compared = 0
    for item in cohort.items {
      let key = item.id.hasSuffix(".nii.gz") ? String(item.id.dropLast(7)) : item.id
      let want = try #require(byID[key], "id \(item.id)")
      #expect(item.labels == want, "labels of \(item.id)")
      #expect(item.reportText != nil)
      compared += 1
    }
    #expect(compared == 800)
    #expect(cohort.positiveCounts() == (try independentPositiveCounts(labels)))
  }

  @Test func ctRateFindsVolumesInNestedFolders() throws {
    guard let reports = CohortData.ctrateStyleReports, let labels = CohortData.ctrateStyleLabels else { return }
    let dir = try cohortTemporaryDirectory()
    defer { try? FileManager.default.removeItem(at: dir) }
    // CT-RATE ships train/train_1/train_1_a/<VolumeName>; one volume sits flat.
    let nested = ["train_1/train_1_a/train_1.nii.gz", "train_2/train_2_a/train_2.nii.gz", "train_3.nii.gz"]
    for rel in nested {
      let url = dir.appendingPathComponent(rel)
      try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
      try Data([0]).write(to: url)
    }
    let cohort = try CohortLayout.ctRate(volumes: dir, reportsCSV: reports, labelsCSV: labels, schema: chest)
    #expect(cohort.name == "CT-RATE")
    #expect(cohort.items.map(\.id) == ["train_1.nii.gz", "train_2.nii.gz", "train_3.nii.gz"])
    #expect(cohort.items.map { $0.volumePath.map { ($0 as NSString).lastPathComponent } } == ["train_1.nii.gz", "train_2.nii.gz", "train_3.nii.gz"])
    #expect(cohort.items[0].volumePath!.hasSuffix("train_1/train_1_a/train_1.nii.gz"))
    #expect(cohort.skipped.count == 797)
    #expect(cohort.skipped.allSatisfy { $0.reason.contains("volume file not found") })
    // train_2: Medical material, Lymphadenopathy, Lung opacity, Pleural effusion, Consolidation, Interlobular septal thickening.
    let table = try CSVTable(contentsOf: labels)
    let row = try #require(table.rows.first { $0[0] == "train_2.nii.gz" })
    #expect(cohort.items[1].labels == row.dropFirst().map { Int8($0)! })
    #expect(cohort.items[1].reportText?.isEmpty == false)
  }

  @Test func missingLabelColumnNamesFileExpectedAndFound() throws {
    let dir = try cohortTemporaryDirectory()
    defer { try? FileManager.default.removeItem(at: dir) }
    var header = ["id", "text"] + chest.displayNames
    header[2 + 13] = "Mosaic pattern"  // misspelt
    let csv = dir.appendingPathComponent("labels.csv")
    try (header.joined(separator: ",") + "\na,no findings," + Array(repeating: "0", count: 18).joined(separator: ",") + "\n")
      .write(to: csv, atomically: true, encoding: .utf8)
    let error = #expect(throws: GreenRFMError.self) {
      try CohortLayout.reports(csv: csv, idColumn: "id", textColumns: ["text"], labelsCSV: nil, labelsIDColumn: nil, schema: chest)
    }
    let text = cohortErrorText(try #require(error))
    #expect(text.contains(csv.path))
    #expect(text.contains("Mosaic attenuation pattern"))
    #expect(text.contains("Mosaic pattern"))
    // Allowed: the finding is −1 and named in the warnings.
    let cohort = try CohortLayout.reports(csv: csv, idColumn: "id", textColumns: ["text"], labelsCSV: nil, labelsIDColumn: nil,
                                          schema: chest, allowMissingFindings: true)
    #expect(cohort.items[0].labels[13] == -1)
    #expect(cohort.items[0].labels.enumerated().allSatisfy { $0.offset == 13 || $0.element == 0 })
    #expect(cohort.warnings.contains { $0.contains("Mosaic attenuation pattern") })
  }

  @Test func labelTitlesMatchByFoldedNameOrKey() throws {
    let dir = try cohortTemporaryDirectory()
    defer { try? FileManager.default.removeItem(at: dir) }
    // Keys for some, case/space/underscore variants for others.
    let titles = chest.findings.enumerated().map { n, f in
      n % 3 == 0 ? f.key : n % 3 == 1 ? f.displayName.uppercased() : f.displayName.replacingOccurrences(of: " ", with: "_")
    }
    let cells = ["1", "0", "-1", "1.0", "0.0", "", "-1.0", " 1 ", "0", "1", "0", "1", "0", "1", "0", "1", "0", "1"]
    let csv = dir.appendingPathComponent("variants.csv")
    try ((["ID"] + titles).joined(separator: ",") + "\nx," + cells.joined(separator: ",") + "\n")
      .write(to: csv, atomically: true, encoding: .utf8)
    let cohort = try CohortLayout.reports(csv: csv, idColumn: "ID", textColumns: [], labelsCSV: nil, labelsIDColumn: nil, schema: chest)
    #expect(cohort.items[0].labels == [1, 0, -1, 1, 0, -1, -1, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1])
    #expect(cohort.items[0].reportText == nil)
  }

  @Test(arguments: ["yes", "2", "0.5"])
  func badLabelCellNamesFileRecordAndColumn(cell: String) throws {
    let dir = try cohortTemporaryDirectory()
    defer { try? FileManager.default.removeItem(at: dir) }
    let csv = dir.appendingPathComponent("bad.csv")
    try ((["id"] + chest.displayNames).joined(separator: ",") + "\na," + ([cell] + Array(repeating: "0", count: 17)).joined(separator: ",") + "\n")
      .write(to: csv, atomically: true, encoding: .utf8)
    let error = #expect(throws: GreenRFMError.self) {
      try CohortLayout.reports(csv: csv, idColumn: "id", textColumns: [], labelsCSV: nil, labelsIDColumn: nil, schema: chest)
    }
    let text = cohortErrorText(try #require(error))
    #expect(text.contains(csv.path) && text.contains("record 2") && text.contains("Medical material") && text.contains("'\(cell)'"))
  }

  @Test func unknownIDColumnAndUnreadableCSVNameTheFile() throws {
    guard let csv = CohortData.manualReports else { return }
    let e1 = #expect(throws: GreenRFMError.self) {
      try CohortLayout.reports(csv: csv, idColumn: "StudyUID", textColumns: ["report_text"], labelsCSV: nil, labelsIDColumn: nil, schema: chest)
    }
    let t1 = cohortErrorText(try #require(e1))
    #expect(t1.contains(csv.path) && t1.contains("StudyUID") && t1.contains("AccessionNo"))

    let dir = try cohortTemporaryDirectory()
    defer { try? FileManager.default.removeItem(at: dir) }
    let missing = dir.appendingPathComponent("nowhere.csv")
    let e2 = #expect(throws: GreenRFMError.self) {
      try CohortLayout.manifest(csv: missing, schema: chest)
    }
    #expect(cohortErrorText(try #require(e2)).contains(missing.path))
    let broken = dir.appendingPathComponent("broken.csv")
    try "id,volume\n\"a,b.nii.gz\n".write(to: broken, atomically: true, encoding: .utf8)  // unclosed quote
    let e3 = #expect(throws: GreenRFMError.self) {
      try CohortLayout.manifest(csv: broken, schema: chest)
    }
    #expect(cohortErrorText(try #require(e3)).contains(broken.path))
    let e4 = #expect(throws: GreenRFMError.self) {
      try CohortLayout.manifest(csv: csv, schema: chest, idColumn: "AccessionNo")  // no volume column
    }
    #expect(cohortErrorText(try #require(e4)).contains("volume"))
  }

  @Test func radChestCTMapsAbnormalityLocationColumns() throws {
    let dir = try cohortTemporaryDirectory()
    defer { try? FileManager.default.removeItem(at: dir) }
    let volumes = dir.appendingPathComponent("npz")
    try FileManager.default.createDirectory(at: volumes, withIntermediateDirectories: true)
    for id in ["trn00001", "trn00002"] { try Data([0]).write(to: volumes.appendingPathComponent("\(id).npz")) }
    let header = ["NoteAcc_DEID", "nodule*right_upper", "nodule*thyroid", "atelectasis*left_lower", "calcification*aorta",
                  "calcification*heart", "pleural_effusion*right_lung", "hernia*stomach", "catheter_or_port*heart", "groundglass*left_lung"]
    let rows = [
      ["trn00001", "1", "0", "0", "1", "0", "0", "1", "1", "0"],
      ["trn00002", "0", "1", "1", "0", "1", "0", "0", "0", "1"],
      ["trn00003", "0", "0", "0", "0", "0", "0", "0", "0", "0"],  // no volume
    ]
    let csv = dir.appendingPathComponent("imgtrain_Abnormality_and_Location_Labels.csv")
    try (([header] + rows).map { $0.joined(separator: ",") }.joined(separator: "\n") + "\n").write(to: csv, atomically: true, encoding: .utf8)
    let cohort = try CohortLayout.radChestCT(volumes: volumes, labelsCSV: csv, schema: chest)
    #expect(cohort.items.map(\.id) == ["trn00001", "trn00002"])
    #expect(cohort.skipped.map(\.id) == ["trn00003"])
    #expect(cohort.readOptions.npzSpacingMM == [0.8, 0.8, 0.8])
    func label(_ item: Int, _ key: String) -> Int8 { cohort.items[item].labels[chest.findings.firstIndex { $0.key == key }!] }
    #expect(label(0, "lung_nodule") == 1)
    #expect(label(1, "lung_nodule") == 0)  // a thyroid nodule is not a lung nodule
    #expect(label(0, "arterial_wall_calcification") == 1)
    #expect(label(1, "arterial_wall_calcification") == 0)  // heart calcification is not arterial wall calcification
    #expect(label(1, "atelectasis") == 1 && label(0, "atelectasis") == 0)
    #expect(label(0, "medical_material") == 1)
    #expect(label(1, "lung_opacity") == 1)
    #expect(label(0, "pleural_effusion") == 0)
    // No counterpart in RAD-ChestCT (hiatal hernia, mosaic attenuation) and no column in this file (e.g. emphysema): −1.
    #expect(label(0, "hiatal_hernia") == -1)
    #expect(label(0, "mosaic_attenuation_pattern") == -1)
    #expect(label(0, "emphysema") == -1)
    #expect(cohort.warnings.contains { $0.contains("Hiatal hernia") && $0.contains("Mosaic attenuation pattern") })
  }

  @Test func merlinReportsLabelsAndVolumes() throws {
    let abdomen = try LabelSchema.load("abdomen-ct-30")
    let dir = try cohortTemporaryDirectory()
    defer { try? FileManager.default.removeItem(at: dir) }
    let volumes = dir.appendingPathComponent("merlin_data")
    try FileManager.default.createDirectory(at: volumes, withIntermediateDirectories: true)
    for id in ["AC4213a5", "AC9b0f11"] { try Data([0]).write(to: volumes.appendingPathComponent("\(id).nii.gz")) }
    let reports = dir.appendingPathComponent("reports.csv")
    try "study id,Findings,Impression\nAC4213a5,\"Liver: fatty, enlarged.\",Hepatic steatosis.\nAC9b0f11,Normal.,\nACmissing,Normal.,No acute findings.\n"
      .write(to: reports, atomically: true, encoding: .utf8)
    let labels = dir.appendingPathComponent("labels.csv")
    let values = abdomen.findings.indices.map { $0 % 2 == 0 ? "1" : "0" }
    try (((["study id"] + abdomen.displayNames).map(CSVTable.escape).joined(separator: ",")) + "\nAC4213a5," + values.joined(separator: ",") + "\n")
      .write(to: labels, atomically: true, encoding: .utf8)
    let cohort = try CohortLayout.merlin(volumes: volumes, reportsCSV: reports, labelsCSV: labels, schema: abdomen)
    #expect(cohort.items.map(\.id) == ["AC4213a5", "AC9b0f11"])
    #expect(cohort.items[0].reportText == "Liver: fatty, enlarged.\nHepatic steatosis.")
    #expect(cohort.items[0].labels == values.map { Int8($0)! })
    #expect(cohort.items[1].labels == Array(repeating: -1, count: 30))
    #expect(cohort.skipped.map(\.id) == ["ACmissing"])
    #expect(cohort.warnings.contains { $0.contains("no labels row") })
    let unlabelled = try CohortLayout.merlin(volumes: volumes, reportsCSV: reports, labelsCSV: nil, schema: abdomen)
    #expect(unlabelled.items.allSatisfy { $0.labels == Array(repeating: -1, count: 30) })
  }

  @Test func manifestSkipsEmptyDuplicateAndMissing() throws {
    let dir = try cohortTemporaryDirectory()
    defer { try? FileManager.default.removeItem(at: dir) }
    try Data([0]).write(to: dir.appendingPathComponent("a.nii.gz"))
    let csv = dir.appendingPathComponent("manifest.csv")
    try "id,volume,report\na,a.nii.gz,text a\na,a.nii.gz,again\n,a.nii.gz,no id\nb,b.nii.gz,missing\nc,,empty path\n"
      .write(to: csv, atomically: true, encoding: .utf8)
    let cohort = try CohortLayout.manifest(csv: csv, schema: chest)
    #expect(cohort.items.map(\.id) == ["a"])
    #expect(cohort.items[0].volumePath == dir.appendingPathComponent("a.nii.gz").standardizedFileURL.path)
    #expect(cohort.items[0].reportText == "text a")
    #expect(cohort.items[0].labels == Array(repeating: -1, count: 18))
    #expect(cohort.skipped.count == 4)
    #expect(cohort.skipped[0].reason.contains("duplicate") && cohort.skipped[1].reason.contains("empty id"))
    #expect(cohort.skipped[2].reason.contains("not found") && cohort.skipped[3].reason.contains("empty volume path"))
    #expect(cohort.warnings.contains { $0.contains("no label columns") })
    // Some label columns but not all: an error (a misspelt title must not become −1 silently).
    let partial = dir.appendingPathComponent("partial.csv")
    try "id,volume,Cardiomegaly\na,a.nii.gz,1\n".write(to: partial, atomically: true, encoding: .utf8)
    #expect(throws: GreenRFMError.self) { try CohortLayout.manifest(csv: partial, schema: chest) }
  }

  @Test func epochOrderIsADeterministicPermutation() {
    for count in [0, 1, 2, 7, 100] {
      let p = EpochOrder.permutation(count: count, seed: 42, epoch: 3)
      #expect(p.sorted() == Array(0..<count))
      #expect(p == EpochOrder.permutation(count: count, seed: 42, epoch: 3))
    }
    let a = EpochOrder.permutation(count: 100, seed: 42, epoch: 0)
    #expect(a != EpochOrder.permutation(count: 100, seed: 42, epoch: 1))
    #expect(a != EpochOrder.permutation(count: 100, seed: 43, epoch: 0))
    #expect(a != Array(0..<100))
  }
}
