import Foundation

/// A structural check of a DICOM file, run before GDCM sees it (validation only, not a codec).
///
/// Debian's libgdcm is built with `assert()` enabled: a file cut short inside its meta header aborts the whole
/// process (`gdcmFileMetaInformation.cxx: is.good()`), which no C++ `catch` can stop. So every element is walked
/// here first: the 128-byte preamble and "DICM" (or a file that starts directly with group 0002 or 0008), the
/// group 0002 in explicit VR little endian, then the data set in the transfer syntax's encoding (implicit or
/// explicit VR little endian; deflated and big-endian data sets are not walked), with defined lengths,
/// undefined-length sequences and items, and encapsulated pixel data (items FFFE,E000, delimiters FFFE,E00D and
/// FFFE,E0DD). Any element whose length runs past the end of the file is a `.truncatedDICOM` error naming the
/// file and the byte offset. No value is interpreted (patient tags are never looked at).
enum DICOMStructure {
  struct Summary: Equatable {
    /// (0002,0010), trimmed; empty when the file has no meta header.
    var transferSyntax: String
    /// The byte length of the top-level (7FE0,0010) when it has a defined length (native pixel data).
    var pixelDataBytes: Int?
    /// Whether the transfer syntax stores pixels natively (uncompressed): implicit/explicit VR little endian,
    /// explicit big endian, or no meta header.
    var isNative: Bool {
      ["", "1.2.840.10008.1.2", "1.2.840.10008.1.2.1", "1.2.840.10008.1.2.2"].contains(transferSyntax)
    }
    /// Whether the data set was walked (false for deflated or big-endian encodings).
    var walkedDataSet: Bool
  }

  private struct Stop: Error {}

  /// Returns nil when the file does not look like DICOM at all (GDCM then decides, e.g. `.notDICOM`).
  /// - Throws: `.truncatedDICOM` naming the file and the offset of the element cut short.
  static func check(path: String) throws -> Summary? {
    let data = try FileIO.read(path)
    return try data.withUnsafeBytes { raw in try check(raw, path: path) }
  }

  static func check(_ bytes: UnsafeRawBufferPointer, path: String) throws -> Summary? {
    let size = bytes.count
    func u16(_ o: Int) -> UInt16 { UInt16(bytes[o]) | UInt16(bytes[o + 1]) << 8 }
    func u32(_ o: Int) -> UInt32 { UInt32(u16(o)) | UInt32(u16(o + 2)) << 16 }
    func truncated(_ offset: Int, _ what: String) -> MedicalImagingError {
      .truncatedDICOM(path: path, offset: offset, reason: what)
    }
    func tagName(_ g: UInt16, _ e: UInt16) -> String { String(format: "(%04X,%04X)", g, e) }
    func isVR(_ o: Int) -> Bool {
      (0x41...0x5A).contains(bytes[o]) && (0x41...0x5A).contains(bytes[o + 1])
    }
    let longVRs: Set<String> = ["OB", "OD", "OF", "OL", "OV", "OW", "SQ", "UC", "UN", "UR", "UT", "SV", "UV"]

    var p: Int
    var hasMeta = true
    if size >= 132, bytes[128] == 0x44, bytes[129] == 0x49, bytes[130] == 0x43, bytes[131] == 0x4D {
      p = 132
    } else if size >= 2, u16(0) == 0x0002 {
      p = 0
    } else if size >= 2, u16(0) == 0x0008 {
      p = 0
      hasMeta = false
    } else if size > 0, size < 132, bytes.prefix(min(size, 128)).allSatisfy({ $0 == 0 }) {
      // A preamble cut before "DICM".
      throw truncated(size, "the file ends inside the 128-byte preamble / \"DICM\" marker")
    } else if size < 132 {
      // Too short for a preamble and "DICM", and no group 0002/0008 at its start: not DICOM (GDCM is not asked).
      throw MedicalImagingError.notDICOM(path: path)
    } else {
      return nil
    }

    // Group 0002, explicit VR little endian.
    var transferSyntax = ""
    if hasMeta {
      while p < size {
        guard p + 2 <= size else { throw truncated(p, "the file ends inside an element tag") }
        if u16(p) != 0x0002 { break }
        guard p + 8 <= size else { throw truncated(p, "the file ends inside a meta header element") }
        let element = u16(p + 2)
        guard isVR(p + 4) else { return Summary(transferSyntax: "", pixelDataBytes: nil, walkedDataSet: false) }
        let vr = String(decoding: [bytes[p + 4], bytes[p + 5]], as: UTF8.self)
        var length: Int, start: Int
        if longVRs.contains(vr) {
          guard p + 12 <= size else { throw truncated(p, "the file ends inside the header of \(tagName(2, element))") }
          length = Int(u32(p + 8)); start = p + 12
        } else {
          length = Int(u16(p + 6)); start = p + 8
        }
        guard length != 0xFFFF_FFFF, start + length <= size else {
          throw truncated(p, "meta header element \(tagName(2, element)) declares \(length) bytes, only \(size - start) remain")
        }
        if element == 0x0010 {
          transferSyntax = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[start..<start + length]), as: UTF8.self)
            .trimmingCharacters(in: CharacterSet(charactersIn: "\0 "))
        }
        p = start + length
      }
    }

    // GDCM also asserts when the file ends right after (or inside) the meta header: require a data set.
    if hasMeta && p >= size {
      throw truncated(p, "the file ends after the file meta information (no data set)")
    }
    let dataSetStart = p

    // The data set.
    var explicit: Bool
    switch transferSyntax {
    case "1.2.840.10008.1.2.1.99", "1.2.840.10008.1.2.2":
      return Summary(transferSyntax: transferSyntax, pixelDataBytes: nil, walkedDataSet: false)
    case "1.2.840.10008.1.2": explicit = false
    case "": explicit = p + 6 <= size && isVR(p + 4)  // no meta header: guess from the first element
    default: explicit = true
    }
    var pixelDataBytes: Int?

    /// Walks elements from `p` until `end` (defined length), an item delimiter (`untilDelimiter`), or the end of
    /// the file (top level). Returns the offset after the last element (after the delimiter, if any).
    func walk(from start: Int, end: Int?, untilDelimiter: Bool, depth: Int) throws -> Int {
      guard depth < 64 else { throw Stop() }
      var p = start
      let limit = end ?? size
      while true {
        if p == limit {
          if untilDelimiter { throw truncated(p, "the file ends inside an undefined-length item (no item delimiter)") }
          return p
        }
        guard p + 8 <= limit else {
          // A few zero bytes of padding after the last element are tolerated (pydicom stops there too).
          if end == nil && !untilDelimiter && p > dataSetStart && (p..<limit).allSatisfy({ bytes[$0] == 0 }) { return limit }
          throw truncated(p, "the file ends inside an element header")
        }
        let group = u16(p), element = u16(p + 2)
        if group == 0xFFFE {
          // Delimiters have no VR in any encoding.
          if element == 0xE00D && untilDelimiter { return p + 8 }
          throw Stop()  // an unexpected delimiter: not ours to judge
        }
        var length: Int, valueStart: Int, vr = ""
        if explicit {
          guard isVR(p + 4) else { throw Stop() }  // not the encoding we expected: leave it to GDCM
          vr = String(decoding: [bytes[p + 4], bytes[p + 5]], as: UTF8.self)
          if longVRs.contains(vr) {
            guard p + 12 <= limit else { throw truncated(p, "the file ends inside the header of \(tagName(group, element))") }
            length = Int(u32(p + 8)); valueStart = p + 12
          } else {
            length = Int(u16(p + 6)); valueStart = p + 8
          }
        } else {
          length = Int(u32(p + 4)); valueStart = p + 8
        }
        if length == 0xFFFF_FFFF {
          p = try sequence(from: valueStart, depth: depth + 1)
        } else {
          guard valueStart + length <= limit else {
            throw truncated(p, "element \(tagName(group, element)) declares \(length) bytes, only \(limit - valueStart) remain")
          }
          if depth == 0 && group == 0x7FE0 && element == 0x0010 { pixelDataBytes = length }
          p = valueStart + length
        }
      }
    }

    /// Items (FFFE,E000) of an undefined-length sequence or of encapsulated pixel data, up to (FFFE,E0DD).
    func sequence(from start: Int, depth: Int) throws -> Int {
      guard depth < 64 else { throw Stop() }
      var p = start
      while true {
        guard p + 8 <= size else { throw truncated(p, "the file ends inside an undefined-length sequence (no sequence delimiter)") }
        let group = u16(p), element = u16(p + 2), length = Int(u32(p + 4))
        guard group == 0xFFFE else {
          throw Stop()
        }
        switch element {
        case 0xE0DD: return p + 8
        case 0xE000:
          if length == 0xFFFF_FFFF {
            p = try walk(from: p + 8, end: nil, untilDelimiter: true, depth: depth + 1)
          } else {
            guard p + 8 + length <= size else {
              throw truncated(p, "item declares \(length) bytes, only \(size - p - 8) remain")
            }
            p += 8 + length
          }
        default:
          throw Stop()
        }
      }
    }

    do {
      _ = try walk(from: p, end: nil, untilDelimiter: false, depth: 0)
    } catch is Stop {
      return Summary(transferSyntax: transferSyntax, pixelDataBytes: nil, walkedDataSet: false)
    }
    return Summary(transferSyntax: transferSyntax, pixelDataBytes: pixelDataBytes, walkedDataSet: true)
  }
}
