import Foundation
import Testing
@testable import MedicalImaging

@Suite struct OrientationTests {
  @Test(arguments: ["RAS", "LPS", "PSR", "LAS", "IRP", "SAL"])
  func axisCodesRoundTripThroughAnAffine(codes: String) throws {
    let o = try Orientation(codes: codes)
    var rows = [[Double]](repeating: [0, 0, 0, 0], count: 4)
    for a in 0..<3 { rows[o.worldAxes[a]][a] = Double(o.signs[a]) * Double(a + 1) }
    rows[3] = [0, 0, 0, 1]
    #expect(Orientation(affine: Affine(rows)).codes == codes)
  }

  @Test(arguments: ["RRS", "XYZ", "RA", "RASP"])
  func badAxisCodesAreRejected(codes: String) {
    #expect(throws: MedicalImagingError.self) { _ = try Orientation(codes: codes) }
  }
}

@Suite struct ReorientTests {
  /// Every voxel keeps its world position and value.
  @Test(arguments: ["RAS", "LPS", "PSR", "IRA"])
  func reorientationKeepsWorldPositions(codes: String) throws {
    let source = rampVolume()
    let target = try Orientation(codes: codes)
    let out = Reorient.reorient(source, to: target)
    #expect(out.orientation == target)
    #expect(out.count == source.count)
    for k in 0..<out.shape[2] { for j in 0..<out.shape[1] { for i in 0..<out.shape[0] {
      let world = out.affine.world(Double(i), Double(j), Double(k))
      // Find the source voxel at that world position (the source affine is diagonal).
      let si = Int(((world[0] - 12) / -0.8).rounded()), sj = Int(((world[1] + 3) / -0.9).rounded()), sk = Int(((world[2] - 40) / 2.5).rounded())
      #expect(out[i, j, k] == source[si, sj, sk])
    } } }
  }

  /// A real scan: LPS → RAS → LPS gives back the same voxels and affine, bit for bit.
  @Test func roundTripIsExactOnARealScan() throws {
    let source = try NIfTI.read(path: Fixtures.dataPath("ct/ts_chest_cta_full_3mm.nii.gz"))
    #expect(source.orientation.codes == "LPS")
    let ras = Reorient.reorient(source, to: .ras)
    #expect(ras.orientation.codes == "RAS")
    #expect(ras.shape == source.shape)
    let back = Reorient.reorient(ras, to: .lps)
    #expect(back.voxels == source.voxels)
    #expect(back.affine == source.affine)
    #expect(back.spacingMM == source.spacingMM)
    // PSR (the t2 spine scan) → RAS permutes axes too.
    let spine = try NIfTI.read(path: Fixtures.dataPath("mri/sct_cervical_spine_t2.nii.gz"))
    let spineRAS = Reorient.reorient(spine, to: .ras)
    #expect(spineRAS.shape == [spine.shape[2], spine.shape[0], spine.shape[1]])
    let spineBack = Reorient.reorient(spineRAS, to: spine.orientation)
    #expect(spineBack.voxels == spine.voxels)
    #expect(spineBack.affine == spine.affine)
  }
}

@Suite struct FusedReadTests {
  /// Decoding straight into RAS equals decoding then reorienting, voxel for voxel and in geometry.
  @Test(arguments: ["ct/ts_chest_cta_full_3mm.nii.gz", "mri/monai_brain_t1_anatomical.nii", "mri/sct_cervical_spine_t2.nii.gz",
                    "ct/ts_abdomen_pelvis_ct_3mm.nii.gz"])
  func fusedDecodeAndReorientEqualsTheTwoSteps(relative: String) throws {
    let path = Fixtures.dataPath(relative)
    let twoSteps = Reorient.reorient(try NIfTI.read(path: path), to: .ras)
    let fused = try NIfTI.read(path: path, orientation: .ras)
    #expect(fused.shape == twoSteps.shape)
    #expect(fused.voxels == twoSteps.voxels)
    #expect(fused.affine == twoSteps.affine)
    #expect(fused.spacingMM == twoSteps.spacingMM)
    #expect(fused.orientation.codes == "RAS")
  }
}

@Suite struct ResampleTests {
  /// Tolerance against scipy.ndimage.affine_transform(order=1) in float64: our arithmetic is float32 on HU values
  /// up to ~3100. Measured: 0 HU at 3 → 1.5/1.5/3 mm (weights 0 or ½) and 5.9e-5 HU at 3 → 4/2.5/5 mm.
  static let toleranceHU = 1e-3

  @Test(arguments: 0..<2)
  func trilinearMatchesScipy(caseIndex: Int) throws {
    let reference = (Fixtures.golden["resample"] as! [[String: Any]])[caseIndex]
    let source = try NIfTI.read(path: Fixtures.dataPath(reference["source"] as! String))
    var generator = SeededGenerator(seed: 0)
    let out = try Resample(spacingMM: doubles(reference["target_spacing_mm"])).apply(source, generator: &generator)
    #expect(out.shape == ints(reference["shape"]))
    var worst = 0.0
    for sample in reference["samples"] as! [[String: Any]] {
      let ijk = ints(sample["ijk"])
      worst = max(worst, abs(Double(out[ijk[0], ijk[1], ijk[2]]) - (sample["value"] as! Double)))
    }
    #expect(worst <= Self.toleranceHU, "max |Δ| = \(worst) HU")
    #expect(abs(out.statistics.mean - (reference["mean"] as! Double)) < 1e-3)
    #expect(abs(out.statistics.min - (reference["min"] as! Double)) < Self.toleranceHU)
    #expect(abs(out.statistics.max - (reference["max"] as! Double)) < Self.toleranceHU)
    // Voxel 0 stays put; the columns scale with the spacing.
    for r in 0..<3 { #expect(out.affine[r, 3] == source.affine[r, 3]) }
    #expect(out.affine.columnNormsMM.enumerated().allSatisfy { abs($0.element - out.spacingMM[$0.offset]) < 1e-9 })
  }

  @Test func aVolumeAlreadyAtTheTargetSpacingIsNotAltered() throws {
    let source = try NIfTI.read(path: Fixtures.dataPath("ct/ts_chest_cta_crop_1p5mm.nii.gz"))
    var generator = SeededGenerator(seed: 0)
    let out = try Resample(spacingMM: [1.5, 1.5, 1.5]).apply(source, generator: &generator)
    #expect(out.voxels == source.voxels)
    #expect(out.affine == source.affine)
    #expect(out.shape == source.shape)
  }

  @Test func nearestKeepsMaskLabels() throws {
    var mask = rampVolume(shape: [6, 6, 4])
    mask.voxels = mask.voxels.map { Float(Int($0) % 3) }
    mask.spacingMM = mask.affine.columnNormsMM
    var generator = SeededGenerator(seed: 0)
    let out = try Resample(spacingMM: [0.5, 0.5, 1.0], interpolation: .nearest).apply(mask, generator: &generator)
    #expect(Set(out.voxels).isSubset(of: [0, 1, 2]))
    #expect(out.shape == [10, 11, 10])
  }
}

@Suite struct IntensityAndCropTests {
  @Test(arguments: [(-2000.0, -1.0), (-1000.0, -1.0), (-400.0, 0.0), (200.0, 1.0), (3000.0, 1.0), (-700.0, -0.5)])
  func chestWindowMapsHUOntoMinusOneToOne(hu: Double, expected: Double) {
    #expect(abs(Double(HUWindow.chest.map(Float(hu))) - expected) < 1e-6)
  }

  @Test func abdomenWindowIsHUOverAThousand() {
    #expect(abs(HUWindow.abdomen.map(250) - 0.25) < 1e-6)
    #expect(HUWindow.abdomen.map(-1500) == -1)
  }

  @Test func centreCropAndPadKeepWorldPositionsAndPadWithAir() throws {
    let source = rampVolume(shape: [5, 4, 3])
    var generator = SeededGenerator(seed: 0)
    let out = try CenterCropOrPad(size: [3, 6, 3], padValue: -1000).apply(source, generator: &generator)
    #expect(out.shape == [3, 6, 3])
    // i cropped by 1 at the start, j padded by 1 before.
    #expect(out[0, 1, 0] == source[1, 0, 0])
    #expect(out[2, 4, 2] == source[3, 3, 2])
    #expect(out[0, 0, 0] == -1000 && out[0, 5, 0] == -1000)
    #expect(out.affine.world(0, 1, 0) == source.affine.world(1, 0, 0))
  }

  @Test func randomTransformsAreReproducibleFromTheSeed() throws {
    let source = try NIfTI.read(path: Fixtures.dataPath("ct/ts_abdomen_ct_small_3mm_30sl.nii.gz"))
    let augment = Compose([RandomCrop(size: [64, 64, 16], padValue: -1000), RandomFlip(), IntensityJitter(scale: 0.1, shift: 20)])
    #expect(augment.isRandom)
    var g1 = SeededGenerator(seed: 7), g2 = SeededGenerator(seed: 7), g3 = SeededGenerator(seed: 8)
    let a = try augment.apply(source, generator: &g1), b = try augment.apply(source, generator: &g2)
    let c = try augment.apply(source, generator: &g3)
    #expect(a.voxels == b.voxels && a.affine == b.affine)
    #expect(a.voxels != c.voxels)
    #expect(a.shape == [64, 64, 16])
  }

  @Test func tensorIsOneByDepthHeightWidthWithWAlongI() {
    let volume = rampVolume(shape: [5, 4, 3])
    let tensor = VolumeTensor(volume)
    #expect(tensor.shape == [1, 3, 4, 5])
    #expect(tensor[d: 2, h: 1, w: 4] == volume[4, 1, 2])
    #expect(tensor[d: 2, h: 1, w: 4] == 4 + 10 + 200)
  }

  @Test func aFailingTransformIsRethrownWithItsNameAndShape() throws {
    var bad = rampVolume()
    bad.spacingMM = [1, 0, 1]
    var generator = SeededGenerator(seed: 0)
    do {
      _ = try Compose([Resample()]).apply(bad, generator: &generator)
      Issue.record("no error")
    } catch let error as TransformError {
      #expect(error.transform.hasPrefix("resample"))
      #expect(error.inputShape == [5, 4, 3])
    }
  }
}

@Suite struct NIfTIWriterTests {
  @Test func float32RoundTripIsExact() throws {
    let folder = try Fixtures.temporaryFolder()
    defer { try? FileManager.default.removeItem(atPath: folder) }
    let source = try NIfTI.read(path: Fixtures.dataPath("mri/sct_cervical_spine_t2.nii.gz"))
    let path = folder + "/out.nii.gz"
    try NIfTI.write(source, to: path)
    let back = try NIfTI.read(path: path)
    #expect(back.voxels == source.voxels)
    #expect(back.shape == source.shape)
    #expect(back.orientation == source.orientation)
    for r in 0..<4 { for c in 0..<4 { #expect(abs(back.affine[r, c] - source.affine[r, c]) < 1e-4) } }
    // The qform written alongside the sform describes the same geometry.
    let header = try NIfTI.encode(source).withUnsafeBytes { try NIfTI.parseHeader($0, path: path) }
    let q = header.qformAffine
    for r in 0..<3 { for c in 0..<4 { #expect(abs(q[r, c] - source.affine[r, c]) < 1e-4, "qform[\(r)][\(c)]") } }
    let leftovers = try FileManager.default.contentsOfDirectory(atPath: folder)
    #expect(leftovers == ["out.nii.gz"])
  }

  @Test func scaledInt16StaysWithinHalfAStep() throws {
    let folder = try Fixtures.temporaryFolder()
    defer { try? FileManager.default.removeItem(atPath: folder) }
    var volume = rampVolume(shape: [8, 7, 6])
    volume.voxels = volume.voxels.map { $0 / 600 - 0.4 }
    let path = folder + "/q.nii"
    try NIfTI.write(volume, to: path, storage: .scaledInt16)
    let back = try NIfTI.read(path: path)
    let peak = volume.voxels.map(abs).max()!
    let worst = zip(back.voxels, volume.voxels).map { abs($0 - $1) }.max()!
    #expect(back.sourceDType == "int16")
    #expect(worst <= peak / 32767 / 2 * 1.001)
  }
}
