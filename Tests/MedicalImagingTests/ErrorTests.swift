import Foundation
import Testing
import ZIPFoundation
@testable import MedicalImaging

/// Bad inputs: each gives an error that names the file and the problem.
@Suite struct BadInputTests {
  /// A real .nii.gz cut to half its bytes.
  @Test func truncatedNiftiGzIsATruncatedFileError() throws {
    let folder = try Fixtures.temporaryFolder()
    defer { try? FileManager.default.removeItem(atPath: folder) }
    let source = try Data(contentsOf: URL(fileURLWithPath: Fixtures.dataPath("ct/ts_abdomen_ct_small_3mm_30sl.nii.gz")))
    let path = folder + "/truncated.nii.gz"
    try source.prefix(source.count / 2).write(to: URL(fileURLWithPath: path))
    do {
      _ = try NIfTI.read(path: path)
      Issue.record("a truncated file was read")
    } catch let error as MedicalImagingError {
      guard case .truncatedFile(let p, let expected, let actual) = error else { Issue.record("wrong error \(error)"); return }
      #expect(p == path)
      // The header promises 352 + 122*101*30*2 bytes; fewer were inflated.
      #expect(expected == 352 + 122 * 101 * 30 * 2)
      #expect(actual < expected && actual > 0)
      #expect(error.description.contains("truncated.nii.gz") && error.description.contains("truncated"))
    }
  }

  /// A header whose dims need more bytes than the data holds.
  @Test(arguments: [false, true])
  func headerDimensionsDisagreeingWithTheData(gzip: Bool) throws {
    let folder = try Fixtures.temporaryFolder()
    defer { try? FileManager.default.removeItem(atPath: folder) }
    var bytes = NIfTI.encode(rampVolume())
    bytes.withUnsafeMutableBytes { $0.storeBytes(of: Int16(40), toByteOffset: 46, as: Int16.self) }  // dim[3] 3 → 40
    let path = folder + (gzip ? "/dims.nii.gz" : "/dims.nii")
    try (gzip ? FileIO.gzip(bytes) : bytes).write(to: URL(fileURLWithPath: path))
    #expect {
      _ = try NIfTI.read(path: path)
    } throws: { error in
      let e = error as! MedicalImagingError
      if gzip {
        guard case .dimensionMismatch(let p, let reason) = e else { return false }
        return p == path && reason.contains("[5, 4, 40]")
      }
      guard case .truncatedFile(let p, let expected, let actual) = e else { return false }
      return p == path && expected == 352 + 5 * 4 * 40 * 4 && actual == 352 + 5 * 4 * 3 * 4
    }
  }

  @Test(arguments: [Float(0), -1.5, Float.nan])
  func zeroNegativeOrNaNSpacingIsRejected(spacing: Float) throws {
    let folder = try Fixtures.temporaryFolder()
    defer { try? FileManager.default.removeItem(atPath: folder) }
    var bytes = NIfTI.encode(rampVolume())
    bytes.withUnsafeMutableBytes { $0.storeBytes(of: spacing, toByteOffset: 80 + 4, as: Float.self) }  // pixdim[2]
    let path = folder + "/spacing.nii"
    try bytes.write(to: URL(fileURLWithPath: path))
    #expect {
      _ = try NIfTI.read(path: path)
    } throws: { error in
      guard case .invalidSpacing(let p, let s) = error as! MedicalImagingError else { return false }
      return p == path && s.count == 3 && !(s[1] > 0) && (error as! MedicalImagingError).description.contains("invalid voxel spacing")
    }
  }

  @Test func npzSpacingMustBePositive() throws {
    #expect(throws: MedicalImagingError.invalidSpacing(path: "/x.npz", spacingMM: [1, 0, 1])) {
      _ = try NPZ.read(path: "/x.npz", spacingMM: [1, 0, 1])
    }
  }

  @Test func nonImageDICOMIsRejectedWithItsSOPClass() throws {
    let path = Fixtures.goldenPath("non_image_sr.dcm")
    #expect(throws: MedicalImagingError.nonImageDICOM(path: path, sopClassUID: "1.2.840.10008.5.1.4.1.1.88.11")) {
      _ = try DICOM.read(path: path)
    }
    #expect(MedicalImagingError.nonImageDICOM(path: path, sopClassUID: "1.2.840.10008.5.1.4.1.1.88.11").description.contains("not an image"))
  }

  @Test func folderWithoutDICOMIsRejected() throws {
    let folder = try Fixtures.temporaryFolder()
    defer { try? FileManager.default.removeItem(atPath: folder) }
    try Data("not dicom".utf8).write(to: URL(fileURLWithPath: folder + "/notes.txt"))
    try Data(repeating: 7, count: 300).write(to: URL(fileURLWithPath: folder + "/blob.bin"))
    #expect(throws: MedicalImagingError.noDICOMInFolder(path: folder, filesSeen: 2)) {
      _ = try VolumeReader.read(path: folder)
    }
  }

  @Test func aNonDICOMFileIsNotDICOM() throws {
    let folder = try Fixtures.temporaryFolder()
    defer { try? FileManager.default.removeItem(atPath: folder) }
    let path = folder + "/x.dcm"
    try Data(repeating: 0x41, count: 500).write(to: URL(fileURLWithPath: path))
    #expect(throws: MedicalImagingError.notDICOM(path: path)) { _ = try DICOM.read(path: path) }
  }

  @Test func npzWithoutTheExpectedArrayNamesWhatItHas() throws {
    let folder = try Fixtures.temporaryFolder()
    defer { try? FileManager.default.removeItem(atPath: folder) }
    let path = folder + "/scan.npz"
    try writeNPZ(path, arrays: ["image": npy(shape: [2, 3, 4], values: (0..<24).map(Int16.init)),
                                "mask": npy(shape: [2, 3, 4], values: [Int16](repeating: 1, count: 24))])
    #expect(throws: MedicalImagingError.missingArray(path: path, expected: "ct", available: ["image", "mask"])) {
      _ = try NPZ.read(path: path, spacingMM: [1, 1, 1])
    }
  }

  @Test func missingFileIsNamed() throws {
    #expect(throws: MedicalImagingError.fileNotFound(path: "/nonexistent/x.nii.gz")) { _ = try VolumeReader.read(path: "/nonexistent/x.nii.gz") }
  }

  @Test func npzWithoutSpacingAsksForIt() throws {
    #expect {
      _ = try VolumeReader.read(path: "/tmp/x.npz")
    } throws: { error in
      (error as! MedicalImagingError).description.contains("carry no spacing")
    }
  }
}

@Suite struct NPZTests {
  /// A C-order (k, j, i) int16 array: i = last axis, values as written.
  @Test func readsACOrderArrayWithTheGivenSpacing() throws {
    let folder = try Fixtures.temporaryFolder()
    defer { try? FileManager.default.removeItem(atPath: folder) }
    let path = folder + "/scan.npz"
    let values = (0..<24).map { Int16($0 * 10 - 100) }
    try writeNPZ(path, arrays: ["ct": npy(shape: [2, 3, 4], values: values)])
    let volume = try NPZ.read(path: path, spacingMM: [0.8, 0.7, 2.0])
    #expect(volume.shape == [4, 3, 2])
    #expect(volume.voxels == values.map(Float.init))
    #expect(volume[1, 2, 1] == Float(values[1 * 12 + 2 * 4 + 1]))
    #expect(volume.spacingMM == [0.8, 0.7, 2.0])
    #expect(volume.orientation.codes == "LPS")
    #expect(volume.sourceDType == "int16")
  }

  @Test func readsABigEndianFortranOrderNPY() throws {
    let folder = try Fixtures.temporaryFolder()
    defer { try? FileManager.default.removeItem(atPath: folder) }
    let path = folder + "/scan.npy"
    let header = "{'descr': '>f4', 'fortran_order': True, 'shape': (3, 2, 2), }"
    var data = npyHeader(header)
    for v in 0..<12 { withUnsafeBytes(of: Float(v).bitPattern.bigEndian) { data.append(contentsOf: $0) } }
    try data.write(to: URL(fileURLWithPath: path))
    let volume = try NPZ.read(path: path, spacingMM: [1, 1, 1], orientation: .ras)
    #expect(volume.shape == [3, 2, 2])
    #expect(volume.voxels == (0..<12).map(Float.init))
  }

  @Test func shortArrayDataIsADimensionMismatch() throws {
    let folder = try Fixtures.temporaryFolder()
    defer { try? FileManager.default.removeItem(atPath: folder) }
    let path = folder + "/short.npz"
    var array = npy(shape: [2, 3, 4], values: (0..<24).map(Int16.init))
    array.removeLast(10)
    try writeNPZ(path, arrays: ["ct": array])
    #expect {
      _ = try NPZ.read(path: path, spacingMM: [1, 1, 1])
    } throws: { error in
      guard case .dimensionMismatch(let p, _) = error as! MedicalImagingError else { return false }
      return p == path
    }
  }
}

func npyHeader(_ dictionary: String) -> Data {
  var text = dictionary
  while (10 + text.utf8.count + 1) % 64 != 0 { text += " " }
  text += "\n"
  var data = Data([0x93] + Array("NUMPY".utf8) + [1, 0])
  data.append(UInt8(text.utf8.count & 0xff))
  data.append(UInt8(text.utf8.count >> 8))
  data.append(contentsOf: Array(text.utf8))
  return data
}

func npy(shape: [Int], values: [Int16]) -> Data {
  let shapeText = shape.map(String.init).joined(separator: ", ") + (shape.count == 1 ? "," : "")
  var data = npyHeader("{'descr': '<i2', 'fortran_order': False, 'shape': (\(shapeText)), }")
  values.withUnsafeBytes { data.append(contentsOf: $0) }
  return data
}

func writeNPZ(_ path: String, arrays: [String: Data]) throws {
  let archive = try Archive(url: URL(fileURLWithPath: path), accessMode: .create)
  for (name, data) in arrays.sorted(by: { $0.key < $1.key }) {
    try archive.addEntry(with: name + ".npy", type: .file, uncompressedSize: Int64(data.count), compressionMethod: .deflate) { position, size in
      data.subdata(in: Int(position)..<Int(position) + size)
    }
  }
}
