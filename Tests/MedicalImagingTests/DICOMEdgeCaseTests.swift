import Foundation
import Testing
@testable import MedicalImaging

/// Series geometry edge cases from the real data: reported clearly, never silently stacked.
@Suite struct DICOMEdgeCaseTests {
  /// MONAI head series: z = −99.48, 103.02, 104.27, 105.52 mm.
  @Test func irregularHeadSeriesIsAnErrorListingTheGaps() throws {
    let path = Fixtures.dataPath("dicom/monai_head_ct_16x16")
    let gaps = doubles(Fixtures.goldenVolume("dicom/monai_head_ct_16x16")["gaps_mm"])
    do {
      _ = try DICOM.read(path: path)
      Issue.record("the irregular series was stacked")
    } catch let error as MedicalImagingError {
      guard case .irregularSliceSpacing(let p, let found) = error else { Issue.record("wrong error: \(error)"); return }
      #expect(p == path)
      #expect(found.count == gaps.count)
      for (a, b) in zip(found, gaps) { #expect(abs(a - b) < 1e-6) }
      #expect(error.description.contains("202.500") && error.description.contains("1.250"))
    }
  }

  /// With `allowIrregularSpacing` the series is read with a warning, and matches pydicom's stack.
  @Test func irregularHeadSeriesCanBeReadWithAWarning() throws {
    let relative = "dicom/monai_head_ct_16x16"
    let volume = try DICOM.read(path: Fixtures.dataPath(relative), options: .init(allowIrregularSpacing: true))
    check(volume, against: Fixtures.goldenVolume(relative), relative: relative)
    #expect(volume.warnings.contains { $0.contains("irregular slice spacing") })
  }

  /// lungmask: one slice stored twice (z = 0 and 1 mm) with identical pixels.
  @Test func duplicatedChestSliceIsAnError() throws {
    let path = Fixtures.dataPath("dicom/lungmask_chest_ct_slice")
    #expect(ints((Fixtures.goldenVolume("dicom/lungmask_chest_ct_slice")["identical_slice_pairs"] as! [Any])[0]) == [0, 1])
    do {
      _ = try DICOM.read(path: path)
      Issue.record("the duplicated slice was stacked")
    } catch let error as MedicalImagingError {
      guard case .duplicateSlices(let p, let reason) = error else { Issue.record("wrong error: \(error)"); return }
      #expect(p == path)
      #expect(reason.contains("1.dcm duplicates 0.dcm") && reason.contains("identical pixel data"))
    }
  }

  @Test func duplicatedChestSliceCanBeDroppedWithAWarning() throws {
    let path = Fixtures.dataPath("dicom/lungmask_chest_ct_slice")
    let volume = try DICOM.read(path: path, options: .init(dropDuplicateSlices: true))
    #expect(volume.shape == [512, 512, 1])
    #expect(volume.warnings.contains { $0.contains("dropped a duplicate slice") })
    check(volume, against: Fixtures.goldenVolume("dicom/lungmask_chest_ct_slice/0.dcm"), relative: "lungmask 0.dcm")
  }

  /// Two series in one folder: the CT series with most slices is chosen, or the one named.
  @Test func seriesAreGroupedAndTheLargestCTSeriesIsChosen() throws {
    let folder = try Fixtures.temporaryFolder()
    defer { try? FileManager.default.removeItem(atPath: folder) }
    for name in ["01.dcm", "02.dcm", "03.dcm"] {
      try FileManager.default.createSymbolicLink(atPath: folder + "/liver-" + name, withDestinationPath: Fixtures.dataPath("dicom/dcmqi_liver_ct_3slice/" + name))
    }
    try FileManager.default.createSymbolicLink(atPath: folder + "/small.dcm", withDestinationPath: Fixtures.dataPath("dicom/pydicom_single/CT_small.dcm"))
    let series = try DICOM.listSeries(folder: folder)
    #expect(series.count == 2)
    let volume = try DICOM.read(path: folder)
    #expect(volume.shape == [512, 512, 3])
    #expect(volume.warnings.contains { $0.contains("2 series") })
    let small = series.first { $0.files.count == 1 }!
    let named = try DICOM.read(path: folder, options: .init(seriesInstanceUID: small.seriesInstanceUID))
    #expect(named.shape == [128, 128, 1])
    #expect(throws: MedicalImagingError.self) { _ = try DICOM.read(path: folder, options: .init(seriesInstanceUID: "1.2.3")) }
  }

  /// Slices sort by position along the normal, whatever the file order: the J2K series' files run from
  /// z = −766.5 down to −804.5 mm, so voxel k = 0 is the last file and the k axis points superior.
  @Test func slicesAreSortedByPositionAlongTheNormal() throws {
    let volume = try DICOM.read(path: Fixtures.dataPath("dicom/dcmqi_liver_ct_3slice"))
    #expect(abs(volume.affine[2, 3] - (-128.690002)) < 1e-6)
    #expect(abs(volume.affine[2, 2] - 1.0) < 1e-5)
    let j2k = try DICOM.read(path: Fixtures.dataPath("dicom/ts_abdomen_ct_series_j2k"))
    #expect(j2k.affine[2, 3] == -804.5)
    #expect(j2k.affine[2, 2] == 2.0)
  }
}
