import Foundation
import ZIPFoundation

/// NumPy `.npy` arrays and `.npz` archives (RAD-ChestCT style: one 3D array of HU values), read with ZIPFoundation.
///
/// NPY/NPZ carry no geometry, so the caller gives the spacing (mm, along i, j, k) and the axis codes
/// (default "LPS", the DICOM-derived layout of RAD-ChestCT: a C-order `[slice, row, column]` array).
/// Axis mapping: the array's fastest-varying axis is i (for a C-order array of shape (a, b, c): i = c, j = b,
/// k = a; for a Fortran-order array: i = a, j = b, k = c); voxel 0 sits at the world origin.
public enum NPZ {
  /// Reads a `.npz` (the array named `arrayName`, or the only array in the archive) or a `.npy` file.
  /// - Parameters:
  ///   - spacingMM: voxel size in mm along i, j, k (each finite and > 0).
  ///   - orientation: the axis codes of the array's i, j, k.
  /// - Throws: `.missingArray` (an NPZ without the expected array), `.invalidNPY`, `.invalidSpacing`,
  ///   `.unreadable`, each naming the file.
  public static func read(path: String, spacingMM: [Double], orientation: Orientation = .lps,
                          arrayName: String = "ct") throws -> Volume {
    try validateSpacing(spacingMM, path: path)
    let data = try FileIO.read(path)
    if data.starts(with: [0x50, 0x4B]) {
      // File-backed, not in-memory: see `decode`.
      let archive: Archive
      do { archive = try Archive(url: URL(fileURLWithPath: path), accessMode: .read) } catch {
        throw MedicalImagingError.unreadable(path: path, reason: "not a readable NPZ (zip) archive: \(error)")
      }
      let npy = try extract(from: archive, path: path, arrayName: arrayName)
      return try decodeNPY(npy, path: path, spacingMM: spacingMM, orientation: orientation)
    }
    return try decodeNPY(data, path: path, spacingMM: spacingMM, orientation: orientation)
  }

  /// Decodes the bytes of an `.npz` or `.npy` file (see `read`); `path` is only used in errors.
  public static func decode(_ data: Data, path: String, spacingMM: [Double], orientation: Orientation = .lps,
                            arrayName: String = "ct") throws -> Volume {
    try validateSpacing(spacingMM, path: path)
    guard data.starts(with: [0x50, 0x4B]) else { return try decodeNPY(data, path: path, spacingMM: spacingMM, orientation: orientation) }
    // ZIPFoundation's in-memory archives crash on some malformed input and leak (both found by the fuzzer,
    // fuzz/README.md); its file-backed archives do neither, so go through a temporary file.
    let temporary = FileManager.default.temporaryDirectory.appendingPathComponent("greenrfm-npz-\(getpid())-\(UUID().uuidString).npz")
    do { try data.write(to: temporary) } catch {
      throw MedicalImagingError.unreadable(path: path, reason: "cannot stage the archive: \(error.localizedDescription)")
    }
    defer { try? FileManager.default.removeItem(at: temporary) }
    let archive: Archive
    do { archive = try Archive(url: temporary, accessMode: .read) } catch {
      throw MedicalImagingError.unreadable(path: path, reason: "not a readable NPZ (zip) archive: \(error)")
    }
    let npy = try extract(from: archive, path: path, arrayName: arrayName)
    return try decodeNPY(npy, path: path, spacingMM: spacingMM, orientation: orientation)
  }

  /// Decodes the bytes of one `.npy` array.
  static func decodeNPY(_ npy: Data, path: String, spacingMM: [Double], orientation: Orientation) throws -> Volume {
    let (shape, scalar, bigEndian, fortran, offset) = try parseNPYHeader(npy, path: path)
    guard shape.count == 3 else {
      throw MedicalImagingError.invalidNPY(path: path, reason: "shape \(shape) is not 3D")
    }
    guard !shape.contains(0) else {
      throw MedicalImagingError.invalidNPY(path: path, reason: "shape \(shape) has a zero dimension (an empty array is not a volume)")
    }
    let ijk = fortran ? shape : shape.reversed()
    let count = ijk.reduce(1, *)
    guard npy.count - offset >= count * scalar.bytes else {
      throw MedicalImagingError.dimensionMismatch(
        path: path, reason: "shape \(shape) of \(scalar.name) needs \(count * scalar.bytes) bytes, the array holds \(npy.count - offset)")
    }
    var voxels = [Float](repeating: 0, count: count)
    npy.withUnsafeBytes { raw in
      voxels.withUnsafeMutableBufferPointer { out in
        scalar.convert(from: raw.baseAddress! + offset, count: count, bigEndian: bigEndian, slope: 1, intercept: 0, into: out.baseAddress!)
      }
    }
    var rows = [[Double]](repeating: [0, 0, 0, 0], count: 4)
    for axis in 0..<3 { rows[orientation.worldAxes[axis]][axis] = Double(orientation.signs[axis]) * spacingMM[axis] }
    rows[3] = [0, 0, 0, 1]
    return Volume(shape: ijk, voxels: voxels, affine: Affine(rows), spacingMM: spacingMM, sourceDType: scalar.name,
                  warnings: ["\(path): NPY/NPZ has no geometry; spacing \(spacingMM) mm and orientation \(orientation.codes) as given"])
  }

  /// The bytes of one `.npy` member of an `.npz`.
  static func extract(from archive: Archive, path: String, arrayName: String) throws -> Data {
    let entries = Array(archive).filter { $0.type == .file }
    let names = entries.map { $0.path.hasSuffix(".npy") ? String($0.path.dropLast(4)) : $0.path }
    var index = names.firstIndex(of: arrayName)
    if index == nil && entries.count == 1 { index = 0 }
    guard let index else { throw MedicalImagingError.missingArray(path: path, expected: arrayName, available: names) }
    let entry = entries[index]
    guard entry.uncompressedSize <= 1 << 34 else {
      throw MedicalImagingError.invalidNPY(path: path, reason: "array '\(names[index])' claims \(entry.uncompressedSize) bytes")
    }
    var out = Data()
    out.reserveCapacity(Int(min(entry.uncompressedSize, 1 << 30)))
    do {
      _ = try archive.extract(entry, skipCRC32: false) { chunk in out.append(chunk) }
    } catch {
      throw MedicalImagingError.unreadable(path: path, reason: "cannot extract array '\(names[index])': \(error)")
    }
    return out
  }

  /// Parses an NPY header: shape, scalar type, byte order, Fortran order and the offset of the data.
  /// - Throws: `.invalidNPY` naming the problem.
  static func parseNPYHeader(_ npy: Data, path: String) throws -> (shape: [Int], scalar: RawScalar, bigEndian: Bool, fortran: Bool, offset: Int) {
    let bytes = [UInt8](npy.prefix(12))
    guard bytes.count >= 10, bytes[0] == 0x93, Array(bytes[1...5]) == Array("NUMPY".utf8) else {
      throw MedicalImagingError.invalidNPY(path: path, reason: "missing the \\x93NUMPY magic")
    }
    let major = bytes[6]
    let headerLength: Int, start: Int
    switch major {
    case 1: headerLength = Int(bytes[8]) | Int(bytes[9]) << 8; start = 10
    case 2, 3:
      guard bytes.count >= 12 else { throw MedicalImagingError.invalidNPY(path: path, reason: "header cut short") }
      headerLength = Int(bytes[8]) | Int(bytes[9]) << 8 | Int(bytes[10]) << 16 | Int(bytes[11]) << 24; start = 12
    default: throw MedicalImagingError.invalidNPY(path: path, reason: "format version \(major) is unknown")
    }
    guard headerLength <= 1 << 20, npy.count >= start + headerLength else {
      throw MedicalImagingError.invalidNPY(path: path, reason: "header of \(headerLength) bytes runs past the end (\(npy.count) bytes)")
    }
    let text = String(decoding: npy.subdata(in: npy.startIndex + start..<npy.startIndex + start + headerLength), as: UTF8.self)
    func value(_ key: String) -> String? {
      guard let range = text.range(of: "'\(key)':") else { return nil }
      return String(text[range.upperBound...]).trimmingCharacters(in: .whitespaces)
    }
    guard let descrText = value("descr"), let quote = descrText.first, quote == "'" || quote == "\"" else {
      throw MedicalImagingError.invalidNPY(path: path, reason: "no 'descr' in the header")
    }
    let descr = String(descrText.dropFirst().prefix { $0 != quote })
    guard descr.count >= 2 else { throw MedicalImagingError.invalidNPY(path: path, reason: "dtype '\(descr)'") }
    let order = descr.first!, kind = String(descr.dropFirst())
    let bigEndian = order == ">"
    guard "<>|=".contains(order) else { throw MedicalImagingError.invalidNPY(path: path, reason: "dtype '\(descr)'") }
    let kinds: [String: RawScalar] = ["u1": .uint8, "i1": .int8, "u2": .uint16, "i2": .int16, "u4": .uint32, "i4": .int32,
                                      "u8": .uint64, "i8": .int64, "f4": .float32, "f8": .float64, "b1": .uint8]
    guard let scalar = kinds[kind] else { throw MedicalImagingError.invalidNPY(path: path, reason: "dtype '\(descr)' is not supported") }
    let fortran = value("fortran_order")?.hasPrefix("True") ?? false
    guard let shapeText = value("shape"), shapeText.first == "(", let close = shapeText.firstIndex(of: ")") else {
      throw MedicalImagingError.invalidNPY(path: path, reason: "no 'shape' in the header")
    }
    let inner = shapeText[shapeText.index(after: shapeText.startIndex)..<close]
    var shape: [Int] = []
    for part in inner.split(separator: ",") {
      let t = part.trimmingCharacters(in: .whitespaces)
      if t.isEmpty { continue }
      guard let n = Int(t), n >= 0, n <= 1 << 31 else { throw MedicalImagingError.invalidNPY(path: path, reason: "shape '\(inner)'") }
      shape.append(n)
    }
    var product = 1
    for n in shape {
      let (p, overflow) = product.multipliedReportingOverflow(by: n)
      guard !overflow, p <= 1 << 34 else { throw MedicalImagingError.invalidNPY(path: path, reason: "shape \(shape) is too large") }
      product = p
    }
    return (shape, scalar, bigEndian, fortran, start + headerLength)
  }
}
