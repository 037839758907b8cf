import CGDCM
import Foundation

/// DICOM reading through GDCM: single files, multi-frame objects, and folders holding one or several series.
///
/// A folder's files are grouped by SeriesInstanceUID; unless a series is named, the CT series with the most
/// slices is taken (the largest series of any modality when there is no CT). Slices are sorted by
/// ImagePositionPatient projected on the slice normal (row cosines × column cosines), and each slice's stored
/// values are rescaled exactly once with its own RescaleSlope / RescaleIntercept (GDCM hands back stored values).
/// Geometry: i runs along a row (columns), j down the rows, k over sorted slices; the LPS affine
/// `[rowCos·Δcol, colCos·Δrow, (IPP_last − IPP_first)/(n − 1), IPP_first]` is converted to RAS+ by negating x, y.
/// Patient-identifying tags are never read into the volume nor logged.
public enum DICOM {
  /// What to do when a series is not a clean, evenly spaced stack.
  public struct ReadOptions: Sendable {
    /// Read this series of a folder (default: the CT series with most slices).
    public var seriesInstanceUID: String?
    /// Accept unevenly spaced slices (with a warning; the mean step is used) instead of throwing.
    public var allowIrregularSpacing: Bool
    /// Drop slices that duplicate an earlier one (same position or identical pixels; with a warning) instead
    /// of throwing.
    public var dropDuplicateSlices: Bool
    /// Relative tolerance on the slice gaps (default 1 %, plus 0.01 mm).
    public var spacingTolerance: Double

    public init(seriesInstanceUID: String? = nil, allowIrregularSpacing: Bool = false, dropDuplicateSlices: Bool = false,
                spacingTolerance: Double = 0.01) {
      self.seriesInstanceUID = seriesInstanceUID
      self.allowIrregularSpacing = allowIrregularSpacing
      self.dropDuplicateSlices = dropDuplicateSlices
      self.spacingTolerance = spacingTolerance
    }
  }

  /// One series found in a folder.
  public struct SeriesSummary: Sendable {
    public var seriesInstanceUID: String
    public var modality: String
    public var files: [String]
  }

  /// Reads a DICOM file (single- or multi-frame) or a folder of DICOM files.
  /// - Throws: `MedicalImagingError` naming the path: `.notDICOM`, `.nonImageDICOM`, `.noDICOMInFolder`,
  ///   `.seriesNotFound`, `.inconsistentSeries`, `.irregularSliceSpacing`, `.duplicateSlices`,
  ///   `.dicomDecodeFailed`, `.invalidSpacing`.
  public static func read(path: String, options: ReadOptions = ReadOptions()) throws -> Volume {
    var isFolder: ObjCBool = false
    guard FileManager.default.fileExists(atPath: path, isDirectory: &isFolder) else {
      throw MedicalImagingError.fileNotFound(path: path)
    }
    if !isFolder.boolValue {
      let file = try DICOMFile(path: path)
      if file.info.frames > 1 { return try multiFrameVolume(file) }
      return try stack([file], path: path, options: options)
    }
    let (series, seen) = try scan(folder: path)
    guard !series.isEmpty else { throw MedicalImagingError.noDICOMInFolder(path: path, filesSeen: seen) }
    var chosen: [DICOMFile]
    if let uid = options.seriesInstanceUID {
      guard let found = series[uid] else {
        throw MedicalImagingError.seriesNotFound(path: path, seriesInstanceUID: uid, available: series.keys.sorted())
      }
      chosen = found
    } else {
      let ranked = series.sorted { a, b in
        let aCT = a.value[0].modality == "CT", bCT = b.value[0].modality == "CT"
        if aCT != bCT { return aCT }
        if a.value.count != b.value.count { return a.value.count > b.value.count }
        return a.key < b.key
      }
      chosen = ranked[0].value
    }
    if chosen.count == 1 && chosen[0].info.frames > 1 { return try multiFrameVolume(chosen[0]) }
    var volume = try stack(chosen, path: path, options: options)
    if series.count > 1 {
      volume.warnings.append("\(path): \(series.count) series; read \(chosen[0].seriesInstanceUID) (\(chosen.count) slices)")
    }
    return volume
  }

  /// The series in a folder (files that are not DICOM images are skipped).
  public static func listSeries(folder: String) throws -> [SeriesSummary] {
    let (series, _) = try scan(folder: folder)
    return series.map { SeriesSummary(seriesInstanceUID: $0.key, modality: $0.value[0].modality, files: $0.value.map(\.path)) }
      .sorted { $0.seriesInstanceUID < $1.seriesInstanceUID }
  }

  /// Opens every regular file under `folder` (recursively, hidden files skipped) and groups the images.
  static func scan(folder: String) throws -> (series: [String: [DICOMFile]], filesSeen: Int) {
    guard let enumerator = FileManager.default.enumerator(atPath: folder) else {
      throw MedicalImagingError.unreadable(path: folder, reason: "cannot list the folder")
    }
    var paths: [String] = []
    while let relative = enumerator.nextObject() as? String {
      let name = (relative as NSString).lastPathComponent
      if name.hasPrefix(".") || name == "DICOMDIR" { continue }
      let full = (folder as NSString).appendingPathComponent(relative)
      var isFolder: ObjCBool = false
      if FileManager.default.fileExists(atPath: full, isDirectory: &isFolder), !isFolder.boolValue { paths.append(full) }
    }
    paths.sort()
    let results = parallelMap(paths.count) { try DICOMFile(path: paths[$0]) }
    var opened: [DICOMFile] = [], skipped: [String] = []
    for (n, result) in results.enumerated() {
      switch result {
      case .success(let file): opened.append(file)
      case .failure(let error):
        // Non-DICOM files are expected in folders; files that are DICOM but broken (truncated, undecodable)
        // are named. Only file names are logged, never tags.
        if case MedicalImagingError.notDICOM = error { skipped.append((paths[n] as NSString).lastPathComponent); continue }
        skipped.append("\((paths[n] as NSString).lastPathComponent) (\(Self.shortReason(error, path: paths[n])))")
      }
    }
    if !skipped.isEmpty {
      let shown = skipped.prefix(20).joined(separator: ", ") + (skipped.count > 20 ? ", … (\(skipped.count - 20) more)" : "")
      let message = "warning: \(folder): skipped \(skipped.count) of \(paths.count) files that could not be opened as DICOM images: \(shown)\n"
      FileHandle.standardError.write(Data(message.utf8))
    }
    var series: [String: [DICOMFile]] = [:]
    for file in opened { series[file.seriesInstanceUID, default: []].append(file) }
    return (series, paths.count)
  }

  /// An error's description without the leading path (which the warning already names).
  static func shortReason(_ error: Error, path: String) -> String {
    let text = "\(error)"
    return text.hasPrefix(path + ": ") ? String(text.dropFirst(path.count + 2)) : text
  }

  /// Stacks single-frame slices into a volume.
  static func stack(_ input: [DICOMFile], path: String, options: ReadOptions) throws -> Volume {
    var files = input
    let first = files[0]
    for f in files.dropFirst() {
      guard f.info.columns == first.info.columns, f.info.rows == first.info.rows else {
        throw MedicalImagingError.inconsistentSeries(
          path: path, reason: "\(f.name) is \(f.info.columns)×\(f.info.rows), \(first.name) is \(first.info.columns)×\(first.info.rows)")
      }
      guard zip(f.orientation, first.orientation).allSatisfy({ abs($0 - $1) < 1e-4 }) else {
        throw MedicalImagingError.inconsistentSeries(path: path, reason: "\(f.name) has a different ImageOrientationPatient from \(first.name)")
      }
      guard f.info.frames == 1 else {
        throw MedicalImagingError.inconsistentSeries(path: path, reason: "\(f.name) is multi-frame inside a series of single frames")
      }
    }
    let rowCos = Array(first.orientation[0..<3]), colCos = Array(first.orientation[3..<6])
    let normal = cross(rowCos, colCos)
    files.sort { dot($0.position, normal) < dot($1.position, normal) }
    var warnings: [String] = []

    // Decode all slices (in parallel: each GDCM reader is independent).
    let sliceCount = Int(first.info.columns) * Int(first.info.rows)
    let sorted = files
    var slices: [[Float]] = []
    for result in parallelMap(files.count, { try sorted[$0].decodeRescaled() }) {
      do { slices.append(try result.get()) } catch let error as MedicalImagingError { throw error } catch {
        throw MedicalImagingError.dicomDecodeFailed(path: path, reason: "\(error)")
      }
    }

    // Duplicates: the same position, or identical pixels (a slice stored twice).
    var keep: [Int] = []
    var seenPixels: [UInt32: [Int]] = [:]
    for n in 0..<files.count {
      var duplicateOf: Int?
      var why = ""
      if let last = keep.last, abs(dot(files[n].position, normal) - dot(files[last].position, normal)) < 1e-3 {
        duplicateOf = last
        why = "same position \(String(format: "%.3f", dot(files[n].position, normal))) mm along the slice normal"
      }
      let crc = slices[n].withUnsafeBytes { FileIO.crc32(Data($0)) }
      if duplicateOf == nil, let candidates = seenPixels[crc], let match = candidates.first(where: { slices[$0] == slices[n] }) {
        duplicateOf = match
        why = "identical pixel data (at \(String(format: "%.3f", dot(files[match].position, normal))) and \(String(format: "%.3f", dot(files[n].position, normal))) mm)"
      }
      if let original = duplicateOf {
        let message = "\(files[n].name) duplicates \(files[original].name): \(why)"
        if !options.dropDuplicateSlices { throw MedicalImagingError.duplicateSlices(path: path, reason: message) }
        warnings.append("\(path): dropped a duplicate slice: \(message)")
        continue
      }
      seenPixels[crc, default: []].append(n)
      keep.append(n)
    }
    files = keep.map { files[$0] }
    slices = keep.map { slices[$0] }

    let n = files.count
    var step: [Double]
    if n > 1 {
      let distances = files.map { dot($0.position, normal) }
      let gaps = (1..<n).map { distances[$0] - distances[$0 - 1] }
      let mean = (distances[n - 1] - distances[0]) / Double(n - 1)
      if gaps.contains(where: { abs($0 - mean) > options.spacingTolerance * abs(mean) + 0.01 }) {
        if !options.allowIrregularSpacing { throw MedicalImagingError.irregularSliceSpacing(path: path, gapsMM: gaps) }
        warnings.append(MedicalImagingError.irregularSliceSpacing(path: path, gapsMM: gaps).description + " (stacked anyway at the mean step \(mean) mm)")
      }
      step = (0..<3).map { (files[n - 1].position[$0] - files[0].position[$0]) / Double(n - 1) }
    } else {
      let thickness = first.doubleTag(0x0018, 0x0088) ?? first.doubleTag(0x0018, 0x0050) ?? 1
      step = normal.map { $0 * thickness }
    }
    let pixel = first.pixelSpacing
    let spacing = [pixel[1], pixel[0], norm(step)]
    try validateSpacing(spacing, path: path)
    var voxels = [Float]()
    voxels.reserveCapacity(sliceCount * n)
    for s in slices { voxels.append(contentsOf: s) }
    let affine = rasAffine(rowCos: rowCos, colCos: colCos, pixelSpacing: pixel, step: step, origin: files[0].position)
    return Volume(shape: [Int(first.info.columns), Int(first.info.rows), n], voxels: voxels, affine: affine,
                  spacingMM: spacing, sourceDType: first.scalar.name, warnings: warnings + files[0].warnings)
  }

  /// A multi-frame object (Enhanced CT/MR, or legacy multi-frame) as a volume, frames along k.
  static func multiFrameVolume(_ file: DICOMFile) throws -> Volume {
    var warnings = file.warnings
    let frames = Int(file.info.frames)
    let positions = file.framePositions()
    let orientation = file.orientation
    let rowCos = Array(orientation[0..<3]), colCos = Array(orientation[3..<6])
    let normal = cross(rowCos, colCos)
    var step: [Double], origin: [Double]
    if positions.count == frames, frames > 1 {
      let distances = positions.map { dot($0, normal) }
      let gaps = (1..<frames).map { distances[$0] - distances[$0 - 1] }
      let mean = (distances[frames - 1] - distances[0]) / Double(frames - 1)
      if gaps.contains(where: { abs($0 - mean) > 0.01 * abs(mean) + 0.01 }) {
        throw MedicalImagingError.irregularSliceSpacing(path: file.path, gapsMM: gaps)
      }
      step = (0..<3).map { (positions[frames - 1][$0] - positions[0][$0]) / Double(frames - 1) }
      origin = positions[0]
    } else {
      let between = file.doubleTag(0x0018, 0x0088) ?? file.doubleTag(0x0018, 0x0050) ?? 1
      step = normal.map { $0 * between }
      origin = file.hasPosition ? file.position : [0, 0, 0]
      warnings.append("\(file.path): multi-frame object without per-frame positions; frames assumed \(between) mm apart along the slice normal")
    }
    let pixel = file.pixelSpacing
    let spacing = [pixel[1], pixel[0], norm(step)]
    try validateSpacing(spacing, path: file.path)
    let voxels = try file.decodeRescaled()
    let affine = rasAffine(rowCos: rowCos, colCos: colCos, pixelSpacing: pixel, step: step, origin: origin)
    return Volume(shape: [Int(file.info.columns), Int(file.info.rows), frames], voxels: voxels, affine: affine,
                  spacingMM: spacing, sourceDType: file.scalar.name, warnings: warnings)
  }

  static func rasAffine(rowCos: [Double], colCos: [Double], pixelSpacing: [Double], step: [Double], origin: [Double]) -> Affine {
    var rows = [[Double]](repeating: [0, 0, 0, 0], count: 4)
    for a in 0..<3 {
      let flip: Double = a < 2 ? -1 : 1  // LPS → RAS
      rows[a] = [flip * rowCos[a] * pixelSpacing[1], flip * colCos[a] * pixelSpacing[0], flip * step[a], flip * origin[a]]
    }
    rows[3] = [0, 0, 0, 1]
    return Affine(rows)
  }
}

func dot(_ a: [Double], _ b: [Double]) -> Double { a[0] * b[0] + a[1] * b[1] + a[2] * b[2] }
func cross(_ a: [Double], _ b: [Double]) -> [Double] {
  [a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]]
}
func norm(_ a: [Double]) -> Double { dot(a, a).squareRoot() }

/// One DICOM file opened through the GDCM shim; owns the handle.
final class DICOMFile: @unchecked Sendable {
  let path: String
  let handle: OpaquePointer
  let info: mi_dicom_image_info
  let seriesInstanceUID: String
  let modality: String
  let orientation: [Double]
  let position: [Double]
  let hasPosition: Bool
  let pixelSpacing: [Double]
  let slope: Double
  let intercept: Double
  let scalar: RawScalar
  var warnings: [String] = []

  var name: String { (path as NSString).lastPathComponent }

  /// Opens `path`; throws `.notDICOM`, `.nonImageDICOM` or `.dicomDecodeFailed`.
  init(path: String) throws {
    self.path = path
    // Walk the file's structure first: GDCM aborts the process (a live assert) on some truncated files.
    let structure = try DICOMStructure.check(path: path)
    var pointer: OpaquePointer?
    let status = path.withCString { mi_dicom_open($0, &pointer) }
    if status == MI_DICOM_NO_IMAGE, let pointer {
      let sop = Self.tag(pointer, 0x0008, 0x0016) ?? ""
      mi_dicom_close(pointer)
      throw MedicalImagingError.nonImageDICOM(path: path, sopClassUID: sop)
    }
    guard status == MI_DICOM_OK, let pointer else {
      if let pointer { mi_dicom_close(pointer) }
      if status == MI_DICOM_NOT_DICOM { throw MedicalImagingError.notDICOM(path: path) }
      throw MedicalImagingError.dicomDecodeFailed(path: path, reason: String(cString: mi_dicom_last_error()))
    }
    handle = pointer
    var info = mi_dicom_image_info()
    guard mi_dicom_image_info_get(pointer, &info) == MI_DICOM_OK else {
      mi_dicom_close(pointer)
      throw MedicalImagingError.dicomDecodeFailed(path: path, reason: String(cString: mi_dicom_last_error()))
    }
    self.info = info
    guard info.columns > 0, info.rows > 0, info.frames > 0, info.samples_per_pixel > 0 else {
      mi_dicom_close(pointer)
      throw MedicalImagingError.invalidHeader(
        path: path, field: "Rows/Columns/NumberOfFrames",
        reason: "\(info.columns) columns × \(info.rows) rows × \(info.frames) frames × \(info.samples_per_pixel) samples: a zero dimension")
    }
    if let structure, structure.isNative, let present = structure.pixelDataBytes {
      // Native pixel data: the element must hold the whole image (GDCM would zero-fill the rest).
      var bits = 1, overflow = false
      for n in [Int(info.columns), Int(info.rows), Int(info.frames), Int(info.samples_per_pixel), Int(max(info.bits_allocated, 1))] where !overflow {
        (bits, overflow) = bits.multipliedReportingOverflow(by: n)
      }
      let expected = overflow ? Int.max : (bits + 7) / 8
      if expected > present {
        mi_dicom_close(pointer)
        throw MedicalImagingError.truncatedPixelData(path: path, expectedBytes: expected, actualBytes: present)
      }
    }
    guard info.samples_per_pixel == 1 else {
      mi_dicom_close(pointer)
      throw MedicalImagingError.unsupportedFormat(path: path, reason: "\(info.samples_per_pixel) samples per pixel (colour); only greyscale images are volumes")
    }
    let scalars: [Int32: RawScalar] = [
      Int32(MI_DICOM_UINT8): .uint8, Int32(MI_DICOM_INT8): .int8, Int32(MI_DICOM_UINT16): .uint16, Int32(MI_DICOM_INT16): .int16,
      Int32(MI_DICOM_UINT32): .uint32, Int32(MI_DICOM_INT32): .int32, Int32(MI_DICOM_FLOAT32): .float32, Int32(MI_DICOM_FLOAT64): .float64,
    ]
    guard let scalar = scalars[info.scalar_type] else {
      mi_dicom_close(pointer)
      throw MedicalImagingError.unsupportedFormat(path: path, reason: "pixel type \(info.bits_allocated)-bit (GDCM scalar \(info.scalar_type))")
    }
    self.scalar = scalar
    seriesInstanceUID = Self.tag(pointer, 0x0020, 0x000E) ?? ""
    modality = Self.tag(pointer, 0x0008, 0x0060) ?? ""
    let iop = Self.numbers(Self.tag(pointer, 0x0020, 0x0037))
    let ipp = Self.numbers(Self.tag(pointer, 0x0020, 0x0032))
    let spacing = Self.numbers(Self.tag(pointer, 0x0028, 0x0030))
    var notes: [String] = []
    if iop.count == 6 {
      orientation = iop
    } else {
      orientation = withUnsafeBytes(of: info.direction_cosines) { Array($0.bindMemory(to: Double.self)) }
      notes.append("no ImageOrientationPatient; GDCM's direction cosines \(orientation) used")
    }
    hasPosition = ipp.count == 3
    position = hasPosition ? ipp : withUnsafeBytes(of: info.origin) { Array($0.bindMemory(to: Double.self)) }
    if spacing.count == 2 {
      pixelSpacing = spacing
    } else {
      pixelSpacing = [1, 1]
      notes.append("no PixelSpacing; 1 mm assumed")
    }
    let tagSlope = Self.numbers(Self.tag(pointer, 0x0028, 0x1053)).first
    let tagIntercept = Self.numbers(Self.tag(pointer, 0x0028, 0x1052)).first
    if tagSlope != nil || tagIntercept != nil {
      slope = tagSlope ?? 1
      intercept = tagIntercept ?? 0
    } else {
      slope = info.slope
      intercept = info.intercept
    }
    warnings = notes.map { "\(path): \($0)" }
  }

  deinit { mi_dicom_close(handle) }

  static func tag(_ handle: OpaquePointer, _ group: UInt16, _ element: UInt16) -> String? {
    var buffer = [CChar](repeating: 0, count: 4096)
    var present: Int32 = 0
    guard mi_dicom_tag_string(handle, group, element, &buffer, buffer.count, &present) == MI_DICOM_OK, present != 0 else { return nil }
    return String(cString: buffer).trimmingCharacters(in: .whitespaces)
  }

  static func numbers(_ text: String?) -> [Double] {
    guard let text, !text.isEmpty else { return [] }
    let parts = text.split(separator: "\\").map { Double($0.trimmingCharacters(in: .whitespaces)) }
    return parts.contains(where: { $0 == nil }) ? [] : parts.map { $0! }
  }

  func doubleTag(_ group: UInt16, _ element: UInt16) -> Double? {
    Self.numbers(Self.tag(handle, group, element)).first.flatMap { $0 > 0 && $0.isFinite ? $0 : nil }
  }

  /// Per-frame positions (LPS, mm) of a multi-frame object; empty when it has none.
  func framePositions() -> [[Double]] {
    let frames = Int(info.frames)
    var buffer = [Double](repeating: 0, count: 3 * frames)
    var count: UInt32 = 0
    guard mi_dicom_frame_positions(handle, &buffer, UInt32(frames), &count) == MI_DICOM_OK else { return [] }
    return (0..<Int(count)).map { Array(buffer[3 * $0..<3 * $0 + 3]) }
  }

  /// Decodes the pixels and applies the modality rescale once: `stored * slope + intercept`.
  func decodeRescaled() throws -> [Float] {
    let bytes = Int(info.buffer_bytes)
    let count = Int(info.columns) * Int(info.rows) * Int(info.frames)
    guard bytes >= count * scalar.bytes else {
      throw MedicalImagingError.dicomDecodeFailed(path: path, reason: "GDCM buffer of \(bytes) bytes for \(count) \(scalar.name) pixels")
    }
    let raw = UnsafeMutableRawPointer.allocate(byteCount: max(bytes, 1), alignment: 16)
    defer { raw.deallocate() }
    guard mi_dicom_decode(handle, raw, bytes) == MI_DICOM_OK else {
      throw MedicalImagingError.dicomDecodeFailed(path: path, reason: String(cString: mi_dicom_last_error()))
    }
    var values = [Float](repeating: 0, count: count)
    values.withUnsafeMutableBufferPointer { out in
      scalar.convert(from: raw, count: count, bigEndian: false, slope: slope, intercept: intercept, into: out.baseAddress!)
    }
    return values
  }
}
