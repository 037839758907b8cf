import Foundation

/// NIfTI-1 and NIfTI-2 (`.nii`, `.nii.gz`) reading and NIfTI-1 writing, in Swift over the zlib shim.
///
/// Follows the NIfTI standard (nifti1.h / nifti2.h) and nibabel's choices where the standard leaves room:
/// the affine is the sform when `sform_code > 0`, else the qform when `qform_code > 0`, else nibabel's
/// `get_base_affine` (a centred, x-flipped diagonal); `scl_slope` 0 or non-finite means no scaling; spacing is
/// `pixdim[1...3]` (nibabel `get_zooms`). Both byte orders and the types uint8, int8, uint16, int16, uint32,
/// int32, uint64, int64, float32 and float64 are read. Of a 4D or higher image only the first volume is read.
public enum NIfTI {
  /// What the header says, before any voxel is read.
  public struct Header: Sendable, Equatable {
    public var version: Int  // 1 or 2
    public var bigEndian: Bool
    /// dim[1...3] (1 where dim[0] < 3).
    public var shape: [Int]
    /// dim[0] and all dims, for checks.
    public var dims: [Int]
    public var datatype: Int
    public var bitpix: Int
    public var pixdim: [Double]
    public var voxOffset: Int
    public var sclSlope: Double
    public var sclInter: Double
    public var qformCode: Int
    public var sformCode: Int
    public var quaternion: [Double]  // b, c, d
    public var qoffset: [Double]
    public var srow: [[Double]]  // 3 rows of 4
    public var isSingleFile: Bool  // magic n+1 / n+2 (data in the same file)

    /// The affine nibabel's `get_best_affine` gives (RAS+, mm).
    public var affine: Affine {
      if sformCode > 0 { return Affine(srow + [[0, 0, 0, 1]]) }
      if qformCode > 0 { return qformAffine }
      // nibabel get_base_affine: diagonal zooms with x flipped, centred on the middle voxel.
      let zooms = [-(pixdim[1]), pixdim[2], pixdim[3]]
      var rows = [[Double]](repeating: [0, 0, 0, 0], count: 4)
      for a in 0..<3 {
        rows[a][a] = zooms[a]
        rows[a][3] = -Double(shape[a] - 1) / 2 * zooms[a]
      }
      rows[3] = [0, 0, 0, 1]
      return Affine(rows)
    }

    /// The qform affine (nifti_quatern_to_mat44; qfac from pixdim[0], taken as 1 unless it is −1).
    public var qformAffine: Affine {
      var b = quaternion[0], c = quaternion[1], d = quaternion[2]
      var a = 1 - (b * b + c * c + d * d)
      if a < 1e-7 {
        let n = 1 / (b * b + c * c + d * d).squareRoot()
        b *= n; c *= n; d *= n
        a = 0
      } else {
        a = a.squareRoot()
      }
      let xd = pixdim[1] > 0 ? pixdim[1] : 1, yd = pixdim[2] > 0 ? pixdim[2] : 1
      var zd = pixdim[3] > 0 ? pixdim[3] : 1
      if pixdim[0] < 0 { zd = -zd }
      let r: [[Double]] = [
        [(a * a + b * b - c * c - d * d) * xd, 2 * (b * c - a * d) * yd, 2 * (b * d + a * c) * zd, qoffset[0]],
        [2 * (b * c + a * d) * xd, (a * a + c * c - b * b - d * d) * yd, 2 * (c * d - a * b) * zd, qoffset[1]],
        [2 * (b * d - a * c) * xd, 2 * (c * d + a * b) * yd, (a * a + d * d - c * c - b * b) * zd, qoffset[2]],
        [0, 0, 0, 1],
      ]
      return Affine(r)
    }

    var scalar: RawScalar? {
      switch datatype {
      case 2: return .uint8
      case 256: return .int8
      case 4: return .int16
      case 512: return .uint16
      case 8: return .int32
      case 768: return .uint32
      case 1024: return .int64
      case 1280: return .uint64
      case 16: return .float32
      case 64: return .float64
      default: return nil
      }
    }

    /// Bytes of voxel data the first 3D volume needs.
    var volumeBytes: Int { shape.reduce(1, *) * (scalar?.bytes ?? 0) }
  }

  static let datatypeNames: [Int: String] = [
    0: "unknown", 1: "binary", 32: "complex64", 128: "RGB24", 1536: "float128", 1792: "complex128", 2048: "complex256",
    2304: "RGBA32",
  ]

  /// Parses a NIfTI-1 or NIfTI-2 header from the first bytes of a file (already inflated if gzipped).
  /// - Throws: `.invalidHeader` naming the field, `.truncatedFile` if fewer bytes than the header needs.
  public static func parseHeader(_ bytes: UnsafeRawBufferPointer, path: String) throws -> Header {
    guard bytes.count >= 4, let base = bytes.baseAddress else {
      throw MedicalImagingError.truncatedFile(path: path, expectedBytes: 348, actualBytes: bytes.count)
    }
    let le = ByteReader(base: base, count: bytes.count, bigEndian: false)
    let raw = le.u32(0)
    let version: Int, bigEndian: Bool
    switch raw {
    case 348: (version, bigEndian) = (1, false)
    case UInt32(348).byteSwapped: (version, bigEndian) = (1, true)
    case 540: (version, bigEndian) = (2, false)
    case UInt32(540).byteSwapped: (version, bigEndian) = (2, true)
    default:
      throw MedicalImagingError.invalidHeader(path: path, field: "sizeof_hdr",
                                              reason: "\(raw) is neither 348 (NIfTI-1) nor 540 (NIfTI-2) in either byte order")
    }
    let headerBytes = version == 1 ? 348 : 540
    guard bytes.count >= headerBytes else {
      throw MedicalImagingError.truncatedFile(path: path, expectedBytes: headerBytes, actualBytes: bytes.count)
    }
    let r = ByteReader(base: base, count: bytes.count, bigEndian: bigEndian)
    var dims: [Int], pixdim: [Double], datatype: Int, bitpix: Int, voxOffset: Double, slope: Double, inter: Double
    var qformCode: Int, sformCode: Int, quaternion: [Double], qoffset: [Double], srow: [[Double]], magic: String
    if version == 1 {
      magic = r.string(344, 4)
      guard magic == "n+1" || magic == "ni1" else {
        throw MedicalImagingError.invalidHeader(path: path, field: "magic", reason: "'\(magic)' is not n+1 or ni1")
      }
      dims = (0..<8).map { Int(r.i16(40 + 2 * $0)) }
      datatype = Int(r.i16(70))
      bitpix = Int(r.i16(72))
      pixdim = (0..<8).map { Double(r.f32(76 + 4 * $0)) }
      voxOffset = Double(r.f32(108))
      slope = Double(r.f32(112))
      inter = Double(r.f32(116))
      qformCode = Int(r.i16(252))
      sformCode = Int(r.i16(254))
      quaternion = (0..<3).map { Double(r.f32(256 + 4 * $0)) }
      qoffset = (0..<3).map { Double(r.f32(268 + 4 * $0)) }
      srow = (0..<3).map { row in (0..<4).map { Double(r.f32(280 + 16 * row + 4 * $0)) } }
    } else {
      magic = r.string(4, 3)
      guard magic == "n+2" || magic == "ni2" else {
        throw MedicalImagingError.invalidHeader(path: path, field: "magic", reason: "'\(magic)' is not n+2 or ni2")
      }
      datatype = Int(r.i16(12))
      bitpix = Int(r.i16(14))
      dims = try (0..<8).map {
        let v = r.i64(16 + 8 * $0)
        guard v >= Int64(Int32.min), v <= Int64(Int32.max) else {
          throw MedicalImagingError.invalidHeader(path: path, field: "dim[\($0)]", reason: "\(v) is out of range")
        }
        return Int(v)
      }
      pixdim = (0..<8).map { r.f64(104 + 8 * $0) }
      let offset = r.i64(168)
      voxOffset = offset >= 0 && offset < Int64(Int32.max) ? Double(offset) : -1
      slope = r.f64(176)
      inter = r.f64(184)
      qformCode = Int(r.i32(344))
      sformCode = Int(r.i32(348))
      quaternion = (0..<3).map { r.f64(352 + 8 * $0) }
      qoffset = (0..<3).map { r.f64(376 + 8 * $0) }
      srow = (0..<3).map { row in (0..<4).map { r.f64(400 + 32 * row + 8 * $0) } }
    }
    let ndim = dims[0]
    guard (1...7).contains(ndim) else {
      throw MedicalImagingError.invalidHeader(path: path, field: "dim[0]", reason: "\(ndim) dimensions (must be 1 to 7)")
    }
    for a in 1...ndim where dims[a] < 1 {
      throw MedicalImagingError.invalidHeader(path: path, field: "dim[\(a)]", reason: "\(dims[a]) voxels (must be ≥ 1)")
    }
    // The whole image (all dims, not only the 3D volume read) must have a representable voxel count.
    var total = 1
    for a in 1...ndim {
      let (p, overflow) = total.multipliedReportingOverflow(by: dims[a])
      guard !overflow else {
        throw MedicalImagingError.invalidHeader(path: path, field: "dim", reason: "dims \(Array(dims[1...ndim])) overflow the voxel count")
      }
      total = p
    }
    let shape = (1...3).map { $0 <= ndim ? dims[$0] : 1 }
    // Guard against products that overflow or are absurd before anything is allocated.
    var product = 1
    for n in shape {
      let (p, overflow) = product.multipliedReportingOverflow(by: n)
      guard !overflow, p <= 1 << 34 else {
        throw MedicalImagingError.invalidHeader(path: path, field: "dim", reason: "\(shape) voxels is too many")
      }
      product = p
    }
    var header = Header(
      version: version, bigEndian: bigEndian, shape: shape, dims: dims, datatype: datatype, bitpix: bitpix,
      pixdim: pixdim, voxOffset: 0, sclSlope: slope, sclInter: inter, qformCode: qformCode, sformCode: sformCode,
      quaternion: quaternion, qoffset: qoffset, srow: srow, isSingleFile: magic.hasPrefix("n+"))
    guard let scalar = header.scalar else {
      let name = datatypeNames[datatype].map { " (\($0))" } ?? ""
      throw MedicalImagingError.unsupportedFormat(path: path, reason: "NIfTI datatype \(datatype)\(name) is not a supported scalar type")
    }
    guard bitpix == scalar.bytes * 8 else {
      throw MedicalImagingError.invalidHeader(path: path, field: "bitpix", reason: "\(bitpix) disagrees with datatype \(scalar.name)")
    }
    guard header.isSingleFile else {
      throw MedicalImagingError.unsupportedFormat(path: path, reason: "header-only NIfTI pair (.hdr/.img) is not supported; convert to .nii")
    }
    guard voxOffset.isFinite, voxOffset >= Double(headerBytes), voxOffset < Double(Int32.max) else {
      throw MedicalImagingError.invalidHeader(path: path, field: "vox_offset", reason: "\(voxOffset) is before the end of the header")
    }
    header.voxOffset = Int(voxOffset)
    let spacing = Array(pixdim[1...3])
    for a in 0..<3 where !(spacing[a].isFinite && spacing[a] > 0) {
      // Only the axes that exist must have a spacing; nibabel also rejects negative zooms.
      if a < ndim || spacing[a] != 0 { throw MedicalImagingError.invalidSpacing(path: path, spacingMM: spacing) }
    }
    if sformCode > 0 {
      guard srow.allSatisfy({ $0.allSatisfy { $0.isFinite } }) else {
        throw MedicalImagingError.invalidHeader(path: path, field: "srow", reason: "non-finite sform entries")
      }
    } else if qformCode > 0 {
      guard (quaternion + qoffset).allSatisfy({ $0.isFinite }) else {
        throw MedicalImagingError.invalidHeader(path: path, field: "quatern", reason: "non-finite qform entries")
      }
    }
    if sformCode > 0 || qformCode > 0 {
      // A singular (e.g. all-zero) rotation/zoom block maps every voxel to one point: no usable geometry.
      let m = header.affine
      let det = m[0, 0] * (m[1, 1] * m[2, 2] - m[1, 2] * m[2, 1]) - m[0, 1] * (m[1, 0] * m[2, 2] - m[1, 2] * m[2, 0])
        + m[0, 2] * (m[1, 0] * m[2, 1] - m[1, 1] * m[2, 0])
      guard det.isFinite, det != 0 else {
        throw MedicalImagingError.invalidHeader(
          path: path, field: sformCode > 0 ? "srow" : "quatern", reason: "singular \(sformCode > 0 ? "sform" : "qform") affine (determinant \(det))")
      }
    }
    if slope.isFinite && slope != 0 && !inter.isFinite {
      throw MedicalImagingError.invalidHeader(path: path, field: "scl_inter", reason: "\(inter) is not finite")
    }
    return header
  }

  /// Reads a `.nii` or `.nii.gz` file (gzip is detected by content, not by name).
  ///
  /// Values are `raw * scl_slope + scl_inter` (when the slope is finite and non-zero), as nibabel's
  /// `get_fdata()`; computed in Double and stored as Float.
  /// - Throws: `MedicalImagingError` naming the file: `.truncatedFile` (a gzip stream or data cut short),
  ///   `.dimensionMismatch` (the header's dims need more bytes than the data holds), `.invalidHeader`,
  ///   `.invalidSpacing` (zero, negative or NaN pixdim), `.unsupportedFormat`.
  /// - Parameter orientation: when given, voxels are converted straight into this orientation (one pass instead of
  ///   decode then `Reorient`; the result is identical to `Reorient.reorient(read(path:), to:)`).
  public static func read(path: String, orientation: Orientation? = nil) throws -> Volume {
    let file = try FileIO.read(path)
    var bytes = file
    if FileIO.isGzip(file) {
      // Gzip bomb guard: the header (from a prefix) says how many bytes the image needs; inflate at most that
      // (all dims, not only the first volume) plus 1 MiB of slack.
      var cap = 1 << 34
      var parsed: Header?
      if let prefix = FileIO.gunzipPrefix(file, capacity: 540), prefix.count >= 348 {
        do {
          parsed = try prefix.withUnsafeBytes { try parseHeader($0, path: path) }
        } catch let error as MedicalImagingError {
          // A bad header fails before anything is inflated (the full decode would throw the same).
          if case .truncatedFile = error {} else { throw error }
        }
      }
      if let header = parsed, let scalar = header.scalar {
        var total = header.voxOffset + (1 << 20), voxels = scalar.bytes, overflow = false
        for n in header.dims[1...header.dims[0]] where !overflow { (voxels, overflow) = voxels.multipliedReportingOverflow(by: n) }
        if !overflow, voxels < 1 << 34 { total += voxels; cap = min(cap, total) }
      }
      bytes = try FileIO.gunzip(file, path: path, maxBytes: cap, onTruncated: { produced in
        let expected = (try? partialExpectedBytes(file: file, path: path)) ?? 0
        return MedicalImagingError.truncatedFile(path: path, expectedBytes: max(expected, produced + 1), actualBytes: produced)
      })
    }
    return try decode(bytes, path: path, compressed: FileIO.isGzip(file), orientation: orientation)
  }

  /// Reads only the header of a `.nii` / `.nii.gz` file (inflating at most its first 540 bytes).
  public static func readHeader(path: String) throws -> Header {
    let file = try FileIO.read(path)
    let prefix = FileIO.isGzip(file) ? (FileIO.gunzipPrefix(file, capacity: 540) ?? Data()) : file.prefix(540)
    return try Data(prefix).withUnsafeBytes { try parseHeader($0, path: path) }
  }

  /// Decodes NIfTI bytes (already inflated).
  public static func decode(_ bytes: Data, path: String, compressed: Bool = false, orientation: Orientation? = nil) throws -> Volume {
    try bytes.withUnsafeBytes { raw -> Volume in
      let header = try parseHeader(raw, path: path)
      guard let scalar = header.scalar else { throw MedicalImagingError.unsupportedFormat(path: path, reason: "datatype") }
      let needed = header.volumeBytes
      let available = raw.count - header.voxOffset
      guard available >= needed else {
        if compressed || available < 0 {
          throw MedicalImagingError.dimensionMismatch(
            path: path, reason: "dims \(header.shape) of \(scalar.name) need \(needed) bytes after vox_offset \(header.voxOffset), the data holds \(max(available, 0))")
        }
        throw MedicalImagingError.truncatedFile(path: path, expectedBytes: header.voxOffset + needed, actualBytes: raw.count)
      }
      var warnings: [String] = []
      var extra = 1
      if header.dims[0] > 3 {
        for n in header.dims[4...header.dims[0]] {
          let (p, overflow) = extra.multipliedReportingOverflow(by: n)
          guard !overflow else {
            throw MedicalImagingError.invalidHeader(path: path, field: "dim", reason: "dims \(Array(header.dims[1...header.dims[0]])) overflow the voxel count")
          }
          extra = p
        }
      }
      if extra > 1 { warnings.append("\(path): \(header.dims[0])D image; only the first 3D volume was read") }
      var slope = header.sclSlope, inter = header.sclInter
      if slope == 0 || !slope.isFinite { slope = 1; inter = 0 }
      if !inter.isFinite { inter = 0 }
      let count = header.shape.reduce(1, *)
      var voxels = [Float](repeating: 0, count: count)
      let affine = header.affine
      let spacing = Array(header.pixdim[1...3])
      let current = Orientation(affine: affine)
      if let target = orientation, target != current {
        // Fused decode + reorient: gather each output row straight from the raw bytes.
        let plan = Reorient.plan(shape: header.shape, from: current, to: target)
        let source = raw.baseAddress! + header.voxOffset
        let size = scalar.bytes, bigEndian = header.bigEndian
        voxels.withUnsafeMutableBufferPointer { out in
          Reorient.gatherRows(plan, into: out.baseAddress!) { row, first, step, n in
            if step == 1 {
              scalar.convert(from: source + first * size, count: n, bigEndian: bigEndian, slope: slope, intercept: inter, into: row)
            } else if scalar == .int16 && !bigEndian && slope == 1 && inter == 0 {
              var o = first
              for i in 0..<n { row[i] = Float(source.loadUnaligned(fromByteOffset: o * 2, as: Int16.self)); o += step }
            } else {
              var o = first
              for i in 0..<n { scalar.convert(from: source + o * size, count: 1, bigEndian: bigEndian, slope: slope, intercept: inter, into: row + i); o += step }
            }
          }
        }
        return Volume(shape: plan.newShape, voxels: voxels, affine: affine * plan.newToOld,
                      spacingMM: plan.source.map { spacing[$0] }, sourceDType: scalar.name, warnings: warnings)
      }
      voxels.withUnsafeMutableBufferPointer { out in
        let destination = out.baseAddress!, source = raw.baseAddress! + header.voxOffset
        parallelChunks(count) { start, end in
          scalar.convert(from: source + start * scalar.bytes, count: end - start, bigEndian: header.bigEndian,
                         slope: slope, intercept: inter, into: destination + start)
        }
      }
      return Volume(shape: header.shape, voxels: voxels, affine: affine, spacingMM: spacing,
                    sourceDType: scalar.name, warnings: warnings)
    }
  }

  /// The size a truncated gzip file's header promises (for the error message).
  private static func partialExpectedBytes(file: Data, path: String) throws -> Int {
    guard let prefix = FileIO.gunzipPrefix(file, capacity: 540) else { return 0 }
    guard prefix.count >= 348 else { return 0 }
    return try prefix.withUnsafeBytes { raw in
      let header = try parseHeader(raw, path: path)
      return header.voxOffset + header.volumeBytes
    }
  }

  // MARK: - Writing

  /// How `write` stores voxel values.
  public enum StorageType: String, Sendable, Codable {
    /// float32, exact.
    case float32
    /// int16 with `scl_slope = max|v| / 32767`, `scl_inter = 0` (quantisation error ≤ slope / 2); compact.
    case scaledInt16
  }

  /// Writes a NIfTI-1 single file (`.nii`, or gzip-compressed `.nii.gz` when the path ends so), atomically.
  ///
  /// sform and qform are both set from the affine (codes 1, scanner), `pixdim` from `spacingMM`, units mm.
  /// - Throws: `.writeFailed` naming the path.
  public static func write(_ volume: Volume, to path: String, storage: StorageType = .float32, gzipLevel: Int32 = 1) throws {
    let data = encode(volume, storage: storage)
    let bytes = path.hasSuffix(".gz") ? try FileIO.gzip(data, level: gzipLevel) : data
    try AtomicFile.write(bytes, to: path)
  }

  /// Encodes a volume as NIfTI-1 bytes (uncompressed).
  public static func encode(_ volume: Volume, storage: StorageType = .float32) -> Data {
    var header = [UInt8](repeating: 0, count: 352)
    func put<T>(_ value: T, _ offset: Int) { withUnsafeBytes(of: value) { for (n, b) in $0.enumerated() { header[offset + n] = b } } }
    put(Int32(348), 0)
    put(UInt8(ascii: "r"), 38)  // regular = 'r', as nibabel writes
    put(Int16(3), 40)
    for a in 0..<3 { put(Int16(clamping: volume.shape[a]), 42 + 2 * a) }
    for a in 3..<7 { put(Int16(1), 42 + 2 * a) }
    var slope: Float = 1
    switch storage {
    case .float32:
      put(Int16(16), 70)
      put(Int16(32), 72)
    case .scaledInt16:
      put(Int16(4), 70)
      put(Int16(16), 72)
      let peak = volume.voxels.reduce(Float(0)) { $1.isFinite ? max($0, abs($1)) : $0 }
      slope = peak > 0 && peak.isFinite ? peak / 32767 : 1
    }
    // qform from the affine: rotation part normalised, qfac −1 when the determinant is negative.
    var rotation = (0..<3).map { r in (0..<3).map { volume.affine[r, $0] } }
    let norms = volume.affine.columnNormsMM
    for c in 0..<3 where norms[c] > 0 { for r in 0..<3 { rotation[r][c] /= norms[c] } }
    let det = rotation[0][0] * (rotation[1][1] * rotation[2][2] - rotation[1][2] * rotation[2][1])
      - rotation[0][1] * (rotation[1][0] * rotation[2][2] - rotation[1][2] * rotation[2][0])
      + rotation[0][2] * (rotation[1][0] * rotation[2][1] - rotation[1][1] * rotation[2][0])
    let qfac: Float = det < 0 ? -1 : 1
    if det < 0 { for r in 0..<3 { rotation[r][2] = -rotation[r][2] } }
    let q = quaternion(rotation)
    put(qfac, 76)
    for a in 0..<3 { put(Float(volume.spacingMM[a]), 80 + 4 * a) }
    for a in 3..<7 { put(Float(1), 80 + 4 * a) }
    put(Float(352), 108)
    put(slope, 112)
    put(Float(0), 116)
    put(UInt8(2), 123)  // xyzt_units: mm
    let description = Array("GreenRFM MedicalImaging".utf8)
    for (n, b) in description.enumerated() { header[148 + n] = b }
    put(Int16(1), 252)
    put(Int16(1), 254)
    for a in 0..<3 { put(Float(q[a]), 256 + 4 * a) }
    for a in 0..<3 { put(Float(volume.affine[a, 3]), 268 + 4 * a) }
    for r in 0..<3 { for c in 0..<4 { put(Float(volume.affine[r, c]), 280 + 16 * r + 4 * c) } }
    header[344] = UInt8(ascii: "n"); header[345] = UInt8(ascii: "+"); header[346] = UInt8(ascii: "1")
    var data = Data(header)
    switch storage {
    case .float32:
      volume.voxels.withUnsafeBytes { data.append(contentsOf: $0) }
    case .scaledInt16:
      let inverse = 1 / slope
      // Non-finite voxels: NaN → 0, ±inf clamped to ±32767 (Int(NaN) would trap).
      let values = volume.voxels.map { v -> Int16 in
        let scaled = (v * inverse).rounded()
        if scaled.isNaN { return 0 }
        return scaled >= 32767 ? 32767 : scaled <= -32768 ? -32768 : Int16(scaled)
      }
      values.withUnsafeBytes { data.append(contentsOf: $0) }
    }
    return data
  }

  /// Quaternion (b, c, d) of a proper rotation matrix, with a ≥ 0 (as nifti_mat44_to_quatern).
  static func quaternion(_ r: [[Double]]) -> [Double] {
    let trace = r[0][0] + r[1][1] + r[2][2]
    var a = 0.5 * (1 + trace).squareRoot(), b: Double, c: Double, d: Double
    if a > 0.5 {
      b = 0.25 * (r[2][1] - r[1][2]) / a
      c = 0.25 * (r[0][2] - r[2][0]) / a
      d = 0.25 * (r[1][0] - r[0][1]) / a
    } else {
      let xd = 1 + r[0][0] - (r[1][1] + r[2][2]), yd = 1 + r[1][1] - (r[0][0] + r[2][2]), zd = 1 + r[2][2] - (r[0][0] + r[1][1])
      if xd > 1 {
        b = 0.5 * xd.squareRoot(); c = 0.25 * (r[0][1] + r[1][0]) / b; d = 0.25 * (r[0][2] + r[2][0]) / b; a = 0.25 * (r[2][1] - r[1][2]) / b
      } else if yd > 1 {
        c = 0.5 * yd.squareRoot(); b = 0.25 * (r[0][1] + r[1][0]) / c; d = 0.25 * (r[1][2] + r[2][1]) / c; a = 0.25 * (r[0][2] - r[2][0]) / c
      } else {
        d = 0.5 * max(zd, 0).squareRoot(); b = 0.25 * (r[0][2] + r[2][0]) / d; c = 0.25 * (r[1][2] + r[2][1]) / d; a = 0.25 * (r[1][0] - r[0][1]) / d
      }
      if a < 0 { b = -b; c = -c; d = -d }
    }
    return [b, c, d]
  }
}
