import Foundation
import Testing

/// `greenrfm inspect` and `greenrfm preprocess`, run as the built binary on the real files in ../shared/data.
@Suite(.serialized) struct ImagingCommandLineTests {
  static let data = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("shared/data").standardizedFileURL.path

  static func json(_ text: String) throws -> [String: Any] {
    try JSONSerialization.jsonObject(with: Data(text.utf8)) as! [String: Any]
  }

  @Test(arguments: [
    ("ct/ts_chest_cta_full_3mm.nii.gz", [116, 83, 95], "LPS", "int16"),
    ("dicom/ts_abdomen_ct_series_j2k", [512, 512, 20], "LPS", "uint16"),
    ("dicom/pydicom_single/CT_small.dcm", [128, 128, 1], "LPS", "int16"),
    ("mri/monai_brain_t1_anatomical.nii", [33, 41, 25], "LAS", "int16"),
  ])
  func inspectPrintsTheDocumentedJSON(relative: String, shape: [Int], orientation: String, dtype: String) throws {
    let r = try CLI.run(["inspect", "\(Self.data)/\(relative)", "--json"])
    #expect(r.status == 0, "stderr: \(r.stderr)")
    let object = try Self.json(r.stdout)
    for key in ["shape", "spacing_mm", "orientation", "dtype", "hu_min", "hu_max", "hu_mean", "affine"] {
      #expect(object[key] != nil, "missing \(key)")
    }
    #expect((object["shape"] as? [Int]) == shape)
    #expect(object["orientation"] as? String == orientation)
    #expect(object["dtype"] as? String == dtype)
    #expect((object["affine"] as? [[Double]])?.count == 4)
  }

  @Test func inspectReadsTheJPEG2000SeriesInHU() throws {
    let r = try CLI.run(["inspect", "\(Self.data)/dicom/ts_abdomen_ct_series_j2k", "--json"])
    let object = try Self.json(r.stdout)
    #expect(object["hu_min"] as? Double == -1024)
    #expect(object["hu_max"] as? Double == 1839)
  }

  @Test func inspectFailsClearlyOnBadInput() throws {
    let dup = try CLI.run(["inspect", "\(Self.data)/dicom/lungmask_chest_ct_slice", "--json"])
    #expect(dup.status != 0)
    #expect(dup.stderr.contains("lungmask_chest_ct_slice") && dup.stderr.contains("duplicate slices"))
    let irregular = try CLI.run(["inspect", "\(Self.data)/dicom/monai_head_ct_16x16"])
    #expect(irregular.status != 0)
    #expect(irregular.stderr.contains("irregular slice spacing"))
    let ok = try CLI.run(["inspect", "\(Self.data)/dicom/monai_head_ct_16x16", "--allow-irregular-spacing", "--json"])
    #expect(ok.status == 0)
    #expect(ok.stderr.contains("warning"))
    let missing = try CLI.run(["inspect", "/nonexistent/scan.nii.gz"])
    #expect(missing.status != 0 && missing.stderr.contains("/nonexistent/scan.nii.gz"))
  }

  /// Two good inputs and one bad: outputs for the good ones, failures.csv naming the bad one, exit 1; a rerun
  /// reuses the cache.
  @Test func preprocessSkipsBadInputsRecordsThemAndResumes() throws {
    let dir = try CLI.temporaryDirectory()
    defer { try? FileManager.default.removeItem(at: dir) }
    let bad = dir.appendingPathComponent("broken.nii.gz")
    try Data([0x1f, 0x8b, 0x08, 0, 0, 0]).write(to: bad)
    let out = dir.appendingPathComponent("cache").path
    let args = ["preprocess", "\(Self.data)/ct/ts_chest_cta_full_3mm.nii.gz", "\(Self.data)/dicom/dcmqi_liver_ct_3slice",
                bad.path, "--output", out, "--protocol", "chest-ct", "--size", "64,64,32"]
    let first = try CLI.run(args)
    #expect(first.status == 1, "stderr: \(first.stderr)")
    #expect(first.stderr.contains("2 written, 0 reused, 1 failed"))
    let failures = try String(contentsOfFile: out + "/failures.csv", encoding: .utf8)
    #expect(failures.hasPrefix("input,error\n"))
    #expect(failures.contains("broken.nii.gz"))
    let outputs = try FileManager.default.contentsOfDirectory(atPath: out).filter { $0.hasSuffix(".nii.gz") }
    #expect(outputs.count == 2)
    for name in outputs {
      let r = try CLI.run(["inspect", out + "/" + name, "--json"])
      let object = try Self.json(r.stdout)
      #expect(object["orientation"] as? String == "RAS")
      #expect((object["shape"] as? [Int]) == [64, 64, 32])
      #expect((object["spacing_mm"] as? [Double]) == [1.5, 1.5, 3])
    }
    let second = try CLI.run(args)
    #expect(second.status == 1)
    #expect(second.stderr.contains("0 written, 2 reused, 1 failed"))
    let good = try CLI.run(Array(args.prefix(3)) + ["--output", out, "--protocol", "chest-ct", "--size", "64,64,32"])
    #expect(good.status == 0, "stderr: \(good.stderr)")
    #expect(try String(contentsOfFile: out + "/failures.csv", encoding: .utf8) == "input,error\n")
  }

  @Test func preprocessRejectsBadOverridesBeforeAnyWork() throws {
    let r = try CLI.run(["preprocess", "x.nii.gz", "--output", "/tmp/never", "--protocol", "chest-ct", "--spacing-mm", "1.5,0,3"])
    #expect(r.status != 0)
    #expect(r.stderr.contains("--spacing-mm"))
    let p = try CLI.run(["preprocess", "x.nii.gz", "--output", "/tmp/never", "--protocol", "knee"])
    #expect(p.status != 0)
    #expect(p.stderr.contains("knee"))
  }

  /// A small float32 NIfTI-1 (4×4×4, 1 mm, no sform/qform) with one NaN voxel.
  static func nanNIfTI(_ url: URL) throws {
    var header = [UInt8](repeating: 0, count: 352)
    func put<T>(_ value: T, _ offset: Int) { withUnsafeBytes(of: value) { for (n, b) in $0.enumerated() { header[offset + n] = b } } }
    put(Int32(348), 0)
    for (n, d) in [Int16(3), 4, 4, 4, 1, 1, 1, 1].enumerated() { put(d, 40 + 2 * n) }
    put(Int16(16), 70)
    put(Int16(32), 72)
    for n in 0..<8 { put(Float(1), 76 + 4 * n) }
    put(Float(352), 108)
    header[344] = UInt8(ascii: "n"); header[345] = UInt8(ascii: "+"); header[346] = UInt8(ascii: "1")
    var values = (0..<64).map { Float($0) }
    values[10] = .nan
    var data = Data(header)
    values.withUnsafeBytes { data.append(contentsOf: $0) }
    try data.write(to: url)
  }

  /// A truncated DICOM file is an error naming it (GDCM used to abort the process), a NaN voxel neither breaks
  /// `inspect --json` nor `preprocess --protocol mri`, and one bad slice does not stop a batch.
  @Test func truncatedDICOMAndNaNVoxelsFailCleanly() throws {
    let dir = try CLI.temporaryDirectory()
    defer { try? FileManager.default.removeItem(at: dir) }
    let cut = dir.appendingPathComponent("t.dcm")
    try Data(contentsOf: URL(fileURLWithPath: "\(Self.data)/dicom/pydicom_single/CT_small.dcm")).prefix(401).write(to: cut)
    let inspect = try CLI.run(["inspect", cut.path])
    #expect(inspect.status == 1, "stderr: \(inspect.stderr)")
    #expect(inspect.stderr.contains(cut.path) && inspect.stderr.contains("truncated"))

    let nan = dir.appendingPathComponent("nan.nii")
    try Self.nanNIfTI(nan)
    let json = try CLI.run(["inspect", nan.path, "--json"])
    #expect(json.status == 0, "stderr: \(json.stderr)")
    let object = try Self.json(json.stdout)
    #expect(object["non_finite_voxels"] as? Int == 1)
    #expect(object["hu_max"] as? Double == 63)

    let out = dir.appendingPathComponent("cache").path
    let batch = try CLI.run(["preprocess", nan.path, cut.path, "--output", out, "--protocol", "mri", "--size", "8,8,8"])
    #expect(batch.status == 1, "stderr: \(batch.stderr)")
    #expect(batch.stderr.contains("1 written, 0 reused, 1 failed"))
    #expect(try String(contentsOfFile: out + "/failures.csv", encoding: .utf8).contains("t.dcm"))
  }

  @Test func absurdSizesAreErrorsNotAborts() throws {
    let dir = try CLI.temporaryDirectory()
    defer { try? FileManager.default.removeItem(at: dir) }
    let out = dir.appendingPathComponent("cache").path
    let input = "\(Self.data)/mri/monai_brain_t1_anatomical.nii"
    let spacing = try CLI.run(["preprocess", input, "--output", out, "--protocol", "mri", "--spacing-mm", "0.001,0.001,0.001"])
    #expect(spacing.status == 1)
    #expect(try String(contentsOfFile: out + "/failures.csv", encoding: .utf8).contains("budget"))
    let size = try CLI.run(["preprocess", input, "--output", out, "--protocol", "mri", "--size", "4096,4096,4096"])
    #expect(size.status == 1)
    #expect(try String(contentsOfFile: out + "/failures.csv", encoding: .utf8).contains("budget"))
  }
}
