import Foundation
import Testing
@testable import MedicalImaging

/// Regression tests for crafted inputs that used to crash the process or read wrong values silently.
@Suite struct RobustnessTests {
  static let ctSmall = Fixtures.dataPath("dicom/pydicom_single/CT_small.dcm")

  /// Writes the first `length` bytes of CT_small.dcm (or a patched copy) into `folder`.
  static func writeCopy(_ folder: String, _ name: String, length: Int? = nil, patch: (inout Data) -> Void = { _ in }) throws -> String {
    var data = try Data(contentsOf: URL(fileURLWithPath: ctSmall))
    patch(&data)
    if let length { data = data.prefix(length) }
    let path = folder + "/" + name
    try data.write(to: URL(fileURLWithPath: path))
    return path
  }

  // MARK: 1. truncated DICOM files (GDCM's live assert aborted the process)

  @Test func truncatedDICOMIsRejectedBeforeGDCMSeesIt() throws {
    let folder = try Fixtures.temporaryFolder()
    defer { try? FileManager.default.removeItem(atPath: folder) }
    let size = try Data(contentsOf: URL(fileURLWithPath: Self.ctSmall)).count
    // Cuts in the preamble, the meta header, the data set, and the pixel data.
    for length in [1, 100, 130] {
      // Shorter than the preamble: rejected without GDCM (CT_small's preamble is not zeros: "not DICOM").
      let path = try Self.writeCopy(folder, "short\(length).dcm", length: length)
      #expect(throws: MedicalImagingError.self) { _ = try DICOM.read(path: path) }
    }
    // 144, 248, 336: the file ends exactly after a meta header element (GDCM asserted there too).
    for length in [132, 133, 140, 144, 248, 336, 200, 300, 399, 401, 700, 1000, 3000, 6290, 6300, size - 3000, size - 200] {
      let path = try Self.writeCopy(folder, "cut\(length).dcm", length: length)
      do {
        _ = try DICOM.read(path: path)
        Issue.record("\(length) bytes read without error")
      } catch let error as MedicalImagingError {
        guard case .truncatedDICOM(let p, let offset, _) = error else { Issue.record("\(length): wrong error \(error)"); continue }
        #expect(p == path)
        #expect(offset <= length)
        #expect(error.description.contains("truncated") && error.description.contains("byte offset"))
      }
    }
    // 400 bytes ends exactly after an element: structurally whole, but no pixel data.
    let t400 = try Self.writeCopy(folder, "t.dcm", length: 400)
    #expect(throws: MedicalImagingError.self) { _ = try VolumeReader.read(path: t400) }
  }

  @Test func structureCheckAcceptsTheRealFiles() throws {
    let summary = try #require(try DICOMStructure.check(path: Self.ctSmall))
    #expect(summary.walkedDataSet)
    #expect(summary.pixelDataBytes == 128 * 128 * 2)
    // Encapsulated (JPEG 2000) pixel data walks through its items.
    let folder = Fixtures.dataPath("dicom/ts_abdomen_ct_series_j2k")
    let first = try #require(try FileManager.default.contentsOfDirectory(atPath: folder).sorted().first)
    let j2k = try #require(try DICOMStructure.check(path: folder + "/" + first))
    #expect(j2k.pixelDataBytes == nil)
  }

  @Test func aTruncatedSliceInAFolderIsSkippedNotFatal() throws {
    let folder = try Fixtures.temporaryFolder()
    defer { try? FileManager.default.removeItem(atPath: folder) }
    _ = try Self.writeCopy(folder, "a.dcm")
    _ = try Self.writeCopy(folder, "b.dcm", length: 400)
    let volume = try DICOM.read(path: folder)
    #expect(volume.shape == [128, 128, 1])
  }

  // MARK: 2. short native pixel data

  @Test func shortNativePixelDataIsRejected() throws {
    let folder = try Fixtures.temporaryFolder()
    defer { try? FileManager.default.removeItem(atPath: folder) }
    // Rows raised to 1000 (the element holds 128 rows).
    let rows = try Self.writeCopy(folder, "rows.dcm") { data in
      let tag = Data([0x28, 0x00, 0x10, 0x00, 0x55, 0x53, 0x02, 0x00])
      let at = data.range(of: tag)!.upperBound
      data[at] = 0xE8; data[at + 1] = 0x03
    }
    #expect(throws: MedicalImagingError.truncatedPixelData(path: rows, expectedBytes: 1000 * 128 * 2, actualBytes: 128 * 128 * 2)) {
      _ = try DICOM.read(path: rows)
    }
    #expect(MedicalImagingError.truncatedPixelData(path: rows, expectedBytes: 2, actualBytes: 1).description.contains(rows))
  }

  // MARK: 3. NaN voxels, zero dimensions

  @Test func nonFiniteVoxelsEncodeAsInt16() throws {
    var volume = rampVolume()
    volume.voxels[0] = .nan
    volume.voxels[1] = .infinity
    volume.voxels[2] = -.infinity
    let data = NIfTI.encode(volume, storage: .scaledInt16)
    let back = try NIfTI.decode(data, path: "mem.nii")
    #expect(back.voxels.allSatisfy { $0.isFinite })
    #expect(back.voxels[0] == 0)
    let peak = volume.voxels.filter { $0.isFinite }.map { abs($0) }.max()!
    #expect(abs(back.voxels[1] - peak) < 0.05 && abs(back.voxels[2] + peak) < 0.05)
  }

  @Test func percentileZScoreIgnoresNaN() throws {
    var volume = rampVolume()
    volume.voxels[5] = .nan
    var generator = SeededGenerator(seed: 0)
    let out = try PercentileZScore().apply(volume, generator: &generator)
    #expect(out.voxels.allSatisfy { $0.isFinite })
    #expect(out.voxels[5] == 0)
  }

  static func npy(shape: [Int]) -> Data {
    var header = "{'descr': '<f4', 'fortran_order': False, 'shape': (\(shape.map(String.init).joined(separator: ", ")),), }"
    while (10 + header.count + 1) % 64 != 0 { header += " " }
    header += "\n"
    var data = Data([0x93]) + Data("NUMPY".utf8) + Data([1, 0])
    data.append(contentsOf: [UInt8(header.utf8.count & 0xFF), UInt8(header.utf8.count >> 8)])
    data.append(Data(header.utf8))
    data.append(Data(count: shape.reduce(1, *) * 4))
    return data
  }

  @Test func zeroDimensionNPYIsRejected() throws {
    let folder = try Fixtures.temporaryFolder()
    defer { try? FileManager.default.removeItem(atPath: folder) }
    let path = folder + "/zero.npy"
    try Self.npy(shape: [0, 4, 4]).write(to: URL(fileURLWithPath: path))
    do {
      _ = try NPZ.read(path: path, spacingMM: [1, 1, 1])
      Issue.record("read a zero-dimension array")
    } catch let error as MedicalImagingError {
      guard case .invalidNPY(let p, let reason) = error else { Issue.record("wrong error \(error)"); return }
      #expect(p == path && reason.contains("zero dimension"))
    }
    let good = folder + "/good.npy"
    try Self.npy(shape: [2, 3, 4]).write(to: URL(fileURLWithPath: good))
    #expect(try NPZ.read(path: good, spacingMM: [1, 1, 1]).shape == [4, 3, 2])
  }

  // MARK: 4. NIfTI-2 dims that overflow

  @Test func nifti2HugeExtraDimsThrowInsteadOfTrapping() throws {
    var header = [UInt8](repeating: 0, count: 544)
    func put<T>(_ value: T, _ offset: Int) { withUnsafeBytes(of: value) { for (n, b) in $0.enumerated() { header[offset + n] = b } } }
    put(Int32(540), 0)
    for (n, b) in Array("n+2\0\r\n\u{1A}\n".utf8).enumerated() { header[4 + n] = b }
    put(Int16(16), 12)
    put(Int16(32), 14)
    let big = Int64(Int32.max)
    for (n, d) in [Int64(7), 2, 2, 2, big, big, big, big].enumerated() { put(d, 16 + 8 * n) }
    for n in 0..<8 { put(Double(1), 104 + 8 * n) }
    put(Int64(544), 168)
    var data = Data(header)
    data.append(Data(count: 32))
    do {
      _ = try NIfTI.decode(data, path: "huge.nii")
      Issue.record("decoded")
    } catch let error as MedicalImagingError {
      guard case .invalidHeader(_, let field, let reason) = error else { Issue.record("wrong error \(error)"); return }
      #expect(field == "dim" && reason.contains("overflow"))
    }
  }

  // MARK: 5. absurd output sizes

  @Test func absurdResampleAndCropSizesThrow() throws {
    var generator = SeededGenerator(seed: 0)
    var volume = rampVolume()
    volume.spacingMM = [500, 500, 500]
    do {
      _ = try Resample(spacingMM: [1.5, 1.5, 3]).apply(volume, generator: &generator)
      Issue.record("resampled")
    } catch let error as MedicalImagingError {
      #expect(error.description.contains("budget"))
    }
    #expect(throws: MedicalImagingError.self) {
      _ = try Resample(spacingMM: [1e-300, 1e-300, 1e-300]).apply(rampVolume(), generator: &generator)
    }
    #expect(throws: MedicalImagingError.self) {
      _ = try CenterCropOrPad(size: [4096, 4096, 4096], padValue: 0).apply(rampVolume(), generator: &generator)
    }
    #expect(throws: MedicalImagingError.self) {
      _ = try RandomCrop(size: [4096, 4096, 4096], padValue: 0).apply(rampVolume(), generator: &generator)
    }
    // Ordinary sizes still work.
    #expect(try CenterCropOrPad(size: [8, 8, 8], padValue: 0).apply(rampVolume(), generator: &generator).shape == [8, 8, 8])
  }

  // MARK: 6. reader options are part of the cache key

  @Test func cacheKeyIncludesReaderOptions() throws {
    let folder = try Fixtures.temporaryFolder()
    defer { try? FileManager.default.removeItem(atPath: folder) }
    let input = folder + "/a.npy"
    try Self.npy(shape: [4, 6, 6]).write(to: URL(fileURLWithPath: input))
    var config = try PreprocessConfig.preset("chest-ct")
    config.size = [8, 8, 8]
    let cache = PreprocessCache(folder: folder + "/cache", config: config)
    let path = cache.outputPath(for: input)
    #expect(try cache.process(input: input, readOptions: .init(npzSpacingMM: [1, 1, 1])) == .written(path: path))
    #expect(try cache.process(input: input, readOptions: .init(npzSpacingMM: [1, 1, 1])) == .reused(path: path))
    #expect(try cache.process(input: input, readOptions: .init(npzSpacingMM: [2, 2, 2])) == .written(path: path))
    #expect(try cache.process(input: input, readOptions: .init(npzSpacingMM: [2, 2, 2])) == .reused(path: path))
    let a = PreprocessCache.readOptionsKey(input: folder, options: .init())
    let b = PreprocessCache.readOptionsKey(input: folder, options: .init(dicom: .init(allowIrregularSpacing: true)))
    let c = PreprocessCache.readOptionsKey(input: folder, options: .init(dicom: .init(dropDuplicateSlices: true)))
    #expect(a != b && a != c && b != c)
  }

  // MARK: 7. statistics with non-finite voxels

  @Test func summaryOfNaNVolumeEncodesAsJSON() throws {
    var volume = rampVolume()
    volume.voxels[0] = .nan
    volume.voxels[1] = .infinity
    let summary = VolumeSummary(path: "x.nii", format: .nifti, volume: volume)
    #expect(summary.non_finite_voxels == 2)
    #expect(summary.hu_min == 2 && summary.hu_max == Double(volume.voxels.last!))
    let json = try summary.json()
    #expect(json.contains("\"non_finite_voxels\" : 2"))
    var empty = rampVolume()
    empty.voxels = empty.voxels.map { _ in .nan }
    #expect(throws: Never.self) { _ = try VolumeSummary(path: "y.nii", format: .nifti, volume: empty).json() }
  }

  // MARK: 9. singular affines and non-finite scl_inter

  @Test func singularAffineAndNonFiniteInterceptAreRejected() throws {
    let good = NIfTI.encode(rampVolume())
    #expect(try NIfTI.decode(good, path: "good.nii").shape == [5, 4, 3])
    var zeroSform = good
    for o in stride(from: 280, to: 328, by: 4) { zeroSform.replaceSubrange(o..<o + 4, with: withUnsafeBytes(of: Float(0)) { Data($0) }) }
    do {
      _ = try NIfTI.decode(zeroSform, path: "z.nii")
      Issue.record("decoded a singular sform")
    } catch let error as MedicalImagingError {
      guard case .invalidHeader(let p, let field, let reason) = error else { Issue.record("wrong error \(error)"); return }
      #expect(p == "z.nii" && field == "srow" && reason.contains("singular"))
    }
    var nanInter = good
    nanInter.replaceSubrange(116..<120, with: withUnsafeBytes(of: Float.nan) { Data($0) })
    do {
      _ = try NIfTI.decode(nanInter, path: "i.nii")
      Issue.record("decoded a NaN scl_inter")
    } catch let error as MedicalImagingError {
      guard case .invalidHeader(_, let field, _) = error else { Issue.record("wrong error \(error)"); return }
      #expect(field == "scl_inter")
    }
  }

  // Gzip bomb: a small header followed by far more inflated data than the image needs.

  @Test func gzipInflationIsCappedByTheHeader() throws {
    let folder = try Fixtures.temporaryFolder()
    defer { try? FileManager.default.removeItem(atPath: folder) }
    var plain = NIfTI.encode(rampVolume())
    plain.append(Data(count: 8 << 20))
    let path = folder + "/bomb.nii.gz"
    try FileIO.gzip(plain, level: 1).write(to: URL(fileURLWithPath: path))
    do {
      _ = try NIfTI.read(path: path)
      Issue.record("inflated a bomb")
    } catch let error as MedicalImagingError {
      guard case .corruptCompressedData(let p, let reason) = error else { Issue.record("wrong error \(error)"); return }
      #expect(p == path && reason.contains("inflates to more than"))
    }
    let good = folder + "/good.nii.gz"
    try FileIO.gzip(NIfTI.encode(rampVolume()), level: 1).write(to: URL(fileURLWithPath: good))
    #expect(try NIfTI.read(path: good).shape == [5, 4, 3])
  }
}
