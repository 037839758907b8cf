import AtomicWrite
import CImagingZlib
import Foundation

/// Small file helpers: whole-file reads (gzip-aware), atomic writes, CRC-32 content hashes.
enum FileIO {
  /// Reads a whole file.
  /// - Throws: `MedicalImagingError.fileNotFound` / `.unreadable`.
  static func read(_ path: String) throws -> Data {
    guard FileManager.default.fileExists(atPath: path) else { throw MedicalImagingError.fileNotFound(path: path) }
    do { return try Data(contentsOf: URL(fileURLWithPath: path), options: .alwaysMapped) } catch {
      throw MedicalImagingError.unreadable(path: path, reason: error.localizedDescription)
    }
  }

  /// True when `data` starts with the gzip magic bytes 1f 8b.
  static func isGzip(_ data: Data) -> Bool { data.count >= 2 && data[data.startIndex] == 0x1f && data[data.startIndex + 1] == 0x8b }

  /// Inflates a gzip stream; returns the bytes inflated, or throws naming the file.
  /// - Parameter maxBytes: refuse to inflate beyond this many bytes (a guard against decompression bombs).
  /// - Throws: `.truncatedFile` when the stream ends early (with `partial`, the bytes that did inflate, via
  ///   `onTruncated`), `.corruptCompressedData` otherwise.
  static func gunzip(_ data: Data, path: String, maxBytes: Int = 1 << 34,
                     onTruncated: ((Int) -> MedicalImagingError)? = nil) throws -> Data {
    // The gzip trailer's ISIZE (uncompressed size mod 2^32) is a good first guess for the buffer.
    var hint = 0
    if data.count >= 18 {
      let tail = data.suffix(4)
      hint = tail.enumerated().reduce(0) { $0 | (Int($1.element) << (8 * $1.offset)) }
      if hint > 4 * 1024 * 1024 * 1024 || hint < data.count / 2000 { hint = 0 }
    }
    var output: UnsafeMutablePointer<UInt8>?
    var produced = 0
    let status = data.withUnsafeBytes { raw -> Int32 in
      mi_inflate(raw.bindMemory(to: UInt8.self).baseAddress!, raw.count, hint, maxBytes, &output, &produced)
    }
    switch Int(status) {
    case Int(MI_Z_OK):
      guard let output else { return Data() }
      return Data(bytesNoCopy: output, count: produced, deallocator: .custom { pointer, _ in mi_free(pointer) })
    case Int(MI_Z_TRUNCATED):
      throw onTruncated?(produced) ?? MedicalImagingError.corruptCompressedData(
        path: path, reason: "gzip stream ends early (truncated file?) after \(produced) uncompressed bytes")
    case Int(MI_Z_TOO_LARGE):
      throw MedicalImagingError.corruptCompressedData(path: path, reason: "inflates to more than \(maxBytes) bytes")
    case Int(MI_Z_NO_MEMORY):
      throw MedicalImagingError.unreadable(path: path, reason: "out of memory while inflating")
    default:
      throw MedicalImagingError.corruptCompressedData(path: path, reason: "zlib data error after \(produced) bytes")
    }
  }

  /// Inflates at most `capacity` bytes of the start of a gzip stream (fewer if the stream is shorter).
  static func gunzipPrefix(_ data: Data, capacity: Int) -> Data? {
    var out = [UInt8](repeating: 0, count: capacity)
    var produced = 0
    let status = data.withUnsafeBytes { raw in
      out.withUnsafeMutableBufferPointer { o in
        mi_inflate_prefix(raw.bindMemory(to: UInt8.self).baseAddress!, raw.count, o.baseAddress!, capacity, &produced)
      }
    }
    guard status == MI_Z_OK else { return nil }
    return Data(out[0..<produced])
  }

  /// Compresses `data` into one gzip member.
  static func gzip(_ data: Data, level: Int32 = 1) throws -> Data {
    var output: UnsafeMutablePointer<UInt8>?
    var produced = 0
    let status = data.withUnsafeBytes { raw -> Int32 in
      let base = raw.bindMemory(to: UInt8.self).baseAddress ?? UnsafePointer(bitPattern: 1)!
      return mi_gzip(base, raw.count, level, &output, &produced)
    }
    guard status == MI_Z_OK, let output else { throw MedicalImagingError.writeFailed(path: "(memory)", reason: "gzip failed (\(status))") }
    return Data(bytesNoCopy: output, count: produced, deallocator: .custom { pointer, _ in mi_free(pointer) })
  }

  /// CRC-32 of `data`, continuing from `crc`.
  static func crc32(_ data: Data, continuing crc: UInt32 = 0) -> UInt32 {
    data.withUnsafeBytes { raw in mi_crc32(crc, raw.bindMemory(to: UInt8.self).baseAddress, raw.count) }
  }
}

/// Atomic file replacement (the shared `AtomicWrite` mechanism: temporary file, flush, rename, folder
/// flush) reporting failures as `MedicalImagingError.writeFailed`.
public enum AtomicFile {
  /// Writes `data` to `path` atomically, creating the parent folder if needed.
  /// - Throws: `MedicalImagingError.writeFailed` naming the path.
  public static func write(_ data: Data, to path: String) throws {
    do { try AtomicWrite.write(data, to: URL(fileURLWithPath: path)) } catch let f as AtomicWrite.Failure {
      throw MedicalImagingError.writeFailed(path: path, reason: f.reason)
    }
  }
}

/// Little helpers to read numbers from raw bytes in either byte order.
struct ByteReader {
  let base: UnsafeRawPointer
  let count: Int
  let bigEndian: Bool

  func u16(_ o: Int) -> UInt16 { let v = base.loadUnaligned(fromByteOffset: o, as: UInt16.self); return bigEndian ? v.byteSwapped : v }
  func i16(_ o: Int) -> Int16 { Int16(bitPattern: u16(o)) }
  func u32(_ o: Int) -> UInt32 { let v = base.loadUnaligned(fromByteOffset: o, as: UInt32.self); return bigEndian ? v.byteSwapped : v }
  func i32(_ o: Int) -> Int32 { Int32(bitPattern: u32(o)) }
  func u64(_ o: Int) -> UInt64 { let v = base.loadUnaligned(fromByteOffset: o, as: UInt64.self); return bigEndian ? v.byteSwapped : v }
  func i64(_ o: Int) -> Int64 { Int64(bitPattern: u64(o)) }
  func f32(_ o: Int) -> Float { Float(bitPattern: u32(o)) }
  func f64(_ o: Int) -> Double { Double(bitPattern: u64(o)) }
  func string(_ o: Int, _ length: Int) -> String {
    let bytes = UnsafeRawBufferPointer(start: base + o, count: length)
    let end = bytes.firstIndex(of: 0) ?? length
    return String(decoding: bytes[0..<end], as: UTF8.self)
  }
}

/// Element types of raw voxel data on disk, with conversion to Float.
enum RawScalar: Sendable {
  case uint8, int8, uint16, int16, uint32, int32, uint64, int64, float32, float64

  var bytes: Int {
    switch self {
    case .uint8, .int8: return 1
    case .uint16, .int16: return 2
    case .uint32, .int32, .float32: return 4
    case .uint64, .int64, .float64: return 8
    }
  }

  var name: String {
    switch self {
    case .uint8: return "uint8"
    case .int8: return "int8"
    case .uint16: return "uint16"
    case .int16: return "int16"
    case .uint32: return "uint32"
    case .int32: return "int32"
    case .uint64: return "uint64"
    case .int64: return "int64"
    case .float32: return "float32"
    case .float64: return "float64"
    }
  }

  /// Converts `count` values at `source` into `destination`, applying `value * slope + intercept` (in Double
  /// when a rescale applies), swapping bytes if `bigEndian`.
  func convert(from source: UnsafeRawPointer, count: Int, bigEndian: Bool, slope: Double, intercept: Double,
               into destination: UnsafeMutablePointer<Float>) {
    let identity = slope == 1 && intercept == 0
    @inline(__always) func run<T>(_ type: T.Type, _ load: (Int) -> Double, _ fast: (Int) -> Float) {
      if identity {
        for n in 0..<count { destination[n] = fast(n) }
      } else {
        for n in 0..<count { destination[n] = Float(load(n) * slope + intercept) }
      }
    }
    let size = bytes
    switch self {
    case .uint8:
      let p = source.assumingMemoryBound(to: UInt8.self)
      run(UInt8.self, { Double(p[$0]) }, { Float(p[$0]) })
    case .int8:
      let p = source.assumingMemoryBound(to: Int8.self)
      run(Int8.self, { Double(p[$0]) }, { Float(p[$0]) })
    case .uint16:
      let f = { (n: Int) -> UInt16 in let v = source.loadUnaligned(fromByteOffset: n * size, as: UInt16.self); return bigEndian ? v.byteSwapped : v }
      run(UInt16.self, { Double(f($0)) }, { Float(f($0)) })
    case .int16:
      let f = { (n: Int) -> Int16 in let v = source.loadUnaligned(fromByteOffset: n * size, as: Int16.self); return bigEndian ? v.byteSwapped : v }
      run(Int16.self, { Double(f($0)) }, { Float(f($0)) })
    case .uint32:
      let f = { (n: Int) -> UInt32 in let v = source.loadUnaligned(fromByteOffset: n * size, as: UInt32.self); return bigEndian ? v.byteSwapped : v }
      run(UInt32.self, { Double(f($0)) }, { Float(Double(f($0))) })
    case .int32:
      let f = { (n: Int) -> Int32 in let v = source.loadUnaligned(fromByteOffset: n * size, as: Int32.self); return bigEndian ? v.byteSwapped : v }
      run(Int32.self, { Double(f($0)) }, { Float(Double(f($0))) })
    case .uint64:
      let f = { (n: Int) -> UInt64 in let v = source.loadUnaligned(fromByteOffset: n * size, as: UInt64.self); return bigEndian ? v.byteSwapped : v }
      run(UInt64.self, { Double(f($0)) }, { Float(Double(f($0))) })
    case .int64:
      let f = { (n: Int) -> Int64 in let v = source.loadUnaligned(fromByteOffset: n * size, as: Int64.self); return bigEndian ? v.byteSwapped : v }
      run(Int64.self, { Double(f($0)) }, { Float(Double(f($0))) })
    case .float32:
      let f = { (n: Int) -> Float in let v = source.loadUnaligned(fromByteOffset: n * size, as: UInt32.self); return Float(bitPattern: bigEndian ? v.byteSwapped : v) }
      run(Float.self, { Double(f($0)) }, { f($0) })
    case .float64:
      let f = { (n: Int) -> Double in let v = source.loadUnaligned(fromByteOffset: n * size, as: UInt64.self); return Double(bitPattern: bigEndian ? v.byteSwapped : v) }
      run(Double.self, { f($0) }, { Float(f($0)) })
    }
  }
}
