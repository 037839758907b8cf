import Foundation
import Testing
@testable import MedicalImaging

/// Every real file in ../shared/data/{ct,dicom,mri} against nibabel / pydicom golden values
/// (scripts/golden/make_imaging_golden.py).
@Suite struct ReaderGoldenTests {
  /// Volumes that read cleanly with default options (the irregular head series and the duplicated chest slice
  /// must not: see `DICOMEdgeCaseTests`).
  static let clean = Fixtures.goldenVolumes.map { $0["path"] as! String }.filter {
    $0 != "dicom/monai_head_ct_16x16" && $0 != "dicom/lungmask_chest_ct_slice"
  }

  @Test(arguments: clean)
  func matchesNibabelAndPydicom(relative: String) throws {
    let expected = Fixtures.goldenVolume(relative)
    let volume = try VolumeReader.read(path: Fixtures.dataPath(relative))
    check(volume, against: expected, relative: relative)
  }

  @Test func everyRealFileHasAGoldenEntry() throws {
    let covered = Set(Fixtures.goldenVolumes.map { $0["path"] as! String })
    for folder in ["ct", "mri"] {
      for name in try FileManager.default.contentsOfDirectory(atPath: Fixtures.dataPath(folder)) {
        #expect(covered.contains("\(folder)/\(name)"), "no golden entry for \(folder)/\(name)")
      }
    }
    for name in try FileManager.default.contentsOfDirectory(atPath: Fixtures.dataPath("dicom")) {
      #expect(covered.contains("dicom/\(name)"), "no golden entry for dicom/\(name)")
    }
  }

  /// JPEG 2000 lossless series: every slice's HU values are exactly pydicom's (sum and sum of squares per slice,
  /// accumulated in Double, are integers well inside 2^53, so equality is exact).
  @Test func jpeg2000SeriesDecodesToExactlyPydicomsHU() throws {
    let relative = "dicom/ts_abdomen_ct_series_j2k"
    let expected = Fixtures.goldenVolume(relative)
    #expect((expected["transfer_syntax"] as! String).contains("JPEG 2000"))
    let volume = try DICOM.read(path: Fixtures.dataPath(relative))
    let sums = doubles(expected["slice_sums"]), squares = doubles(expected["slice_sums_of_squares"])
    let plane = volume.shape[0] * volume.shape[1]
    #expect(volume.shape[2] == sums.count)
    for k in 0..<volume.shape[2] {
      var s = 0.0, q = 0.0
      for n in k * plane..<(k + 1) * plane {
        let v = Double(volume.voxels[n])
        s += v
        q += v * v
      }
      #expect(s == sums[k], "slice \(k) sum")
      #expect(q == squares[k], "slice \(k) sum of squares")
    }
    #expect(volume.statistics.min == -1024)
    #expect(volume.statistics.max == 1839)
  }

  /// Synthetic signed CT slices compressed by pydicom (RLE Lossless, JPEG 2000 Lossless): HU equal voxel for voxel.
  @Test(arguments: ["synthetic_ct_rle.dcm", "synthetic_ct_j2k.dcm"])
  func compressedDICOMMatchesPydicomExactly(file: String) throws {
    let expected = (Fixtures.golden["synthetic"] as! [[String: Any]]).first { ($0["file"] as! String) == file }!
    let volume = try DICOM.read(path: Fixtures.goldenPath(file))
    #expect(volume.shape == ints(expected["shape"]))
    #expect(volume.sourceDType == expected["dtype"] as! String)
    let values = doubles(expected["values_fortran_order"])
    #expect(volume.voxels.map(Double.init) == values)
    #expect(volume.spacingMM == [0.6, 0.7, 2.5])
  }

  @Test(arguments: ["tiny_nifti2_be.nii", "tiny_qform_scaled.nii.gz"])
  func syntheticNIfTIMatchesNibabelVoxelForVoxel(file: String) throws {
    let expected = (Fixtures.golden["synthetic"] as! [[String: Any]]).first { ($0["file"] as! String) == file }!
    let volume = try NIfTI.read(path: Fixtures.goldenPath(file))
    #expect(volume.shape == ints(expected["shape"]))
    #expect(volume.orientation.codes == expected["orientation"] as! String)
    #expect(volume.sourceDType == expected["dtype"] as! String)
    let values = doubles(expected["values_fortran_order"])
    #expect(values.count == volume.count)
    for (n, v) in values.enumerated() { #expect(abs(Double(volume.voxels[n]) - v) <= 1e-5 * max(1, abs(v)), "voxel \(n)") }
    let affine = (expected["affine"] as! [Any]).map { doubles($0) }
    for r in 0..<4 { for c in 0..<4 { #expect(abs(volume.affine[r, c] - affine[r][c]) < 1e-6, "affine[\(r)][\(c)]") } }
  }
}

/// Shape, spacing, orientation, dtype, HU statistics and affine of `volume` against a golden entry.
func check(_ volume: Volume, against expected: [String: Any], relative: String) {
  #expect(volume.shape == ints(expected["shape"]), "\(relative) shape")
  let spacing = doubles(expected["spacing_mm"])
  for a in 0..<3 { #expect(abs(volume.spacingMM[a] - spacing[a]) < 1e-6, "\(relative) spacing[\(a)] \(volume.spacingMM) vs \(spacing)") }
  #expect(volume.orientation.codes == expected["orientation"] as! String, "\(relative) orientation")
  #expect(volume.sourceDType == expected["dtype"] as! String, "\(relative) dtype")
  let stats = volume.statistics
  // Integer-valued data: min and max are exact; the mean differs only by summation order (Double).
  #expect(stats.min == expected["hu_min"] as! Double, "\(relative) hu_min")
  #expect(stats.max == expected["hu_max"] as! Double, "\(relative) hu_max")
  let mean = expected["hu_mean"] as! Double
  #expect(abs(stats.mean - mean) <= 1e-9 * max(1, abs(mean)), "\(relative) hu_mean \(stats.mean) vs \(mean)")
  let affine = (expected["affine"] as! [Any]).map { doubles($0) }
  for r in 0..<4 { for c in 0..<4 { #expect(abs(volume.affine[r, c] - affine[r][c]) < 1e-6, "\(relative) affine[\(r)][\(c)]") } }
}
