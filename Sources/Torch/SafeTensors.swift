import AtomicWrite
import Foundation

/// Reading and writing the safetensors format (Hugging Face): an 8-byte little-endian header length, a
/// JSON header `{name: {dtype, shape, data_offsets}, "__metadata__": {string: string}}` padded with
/// spaces to a multiple of 8 bytes, then the tensors' bytes in C order, little-endian.
///
/// Files written here load in Python's `safetensors` package and vice versa with identical bytes per
/// tensor. Tensors are laid out as the reference writer lays them out (larger element types first, then by
/// name), so every tensor starts at a multiple of its element size; writes are atomic (a temporary file in the same folder,
/// flushed, then renamed), so a crash never leaves a half-written file under the final name.
public enum SafeTensors {
  static let dtypeNames: [DType: String] = [
    .float32: "F32", .float16: "F16", .bfloat16: "BF16", .float64: "F64", .int64: "I64", .int32: "I32",
    .int16: "I16", .int8: "I8", .uint8: "U8", .bool: "BOOL",
  ]
  static let dtypesByName = Dictionary(uniqueKeysWithValues: dtypeNames.map { ($0.value, $0.key) })

  /// The rank of each dtype in the reference implementation's `Dtype` enum; its writer orders tensors by
  /// descending rank, then by name.
  static let referenceRank: [DType: Int] = [
    .bool: 0, .uint8: 4, .int8: 5, .int16: 9, .float16: 11, .bfloat16: 12, .int32: 13, .float32: 15,
    .float64: 17, .int64: 18,
  ]

  /// Writes `tensors` (any device; copied to the CPU) and string `metadata` to `url` atomically.
  /// - Throws: `TorchError.io` naming the path when the file cannot be written;
  ///   `TorchError.invalidArgument` for an empty or reserved tensor name.
  public static func save(_ tensors: [String: Tensor], metadata: [String: String] = [:], to url: URL) throws {
    let names = tensors.keys.sorted { a, b in
      let ra = referenceRank[tensors[a]!.dtype]!, rb = referenceRank[tensors[b]!.dtype]!
      return ra != rb ? ra > rb : a < b
    }
    var prepared: [(String, Tensor)] = []
    var entries: [String] = []
    var offset = 0
    for name in names {
      guard !name.isEmpty, name != "__metadata__" else {
        throw TorchError.invalidArgument("safetensors: invalid tensor name '\(name)'")
      }
      let t = try tensors[name]!.detach().to(.cpu).contiguous()
      let bytes = t.count * t.dtype.byteCount
      let shape = t.shape.map(String.init).joined(separator: ",")
      entries.append(
        "\(jsonString(name)):{\"dtype\":\"\(dtypeNames[t.dtype]!)\",\"shape\":[\(shape)],\"data_offsets\":[\(offset),\(offset + bytes)]}")
      offset += bytes
      prepared.append((name, t))
    }
    if !metadata.isEmpty {
      let items = metadata.keys.sorted().map { "\(jsonString($0)):\(jsonString(metadata[$0]!))" }
      entries.insert("\"__metadata__\":{\(items.joined(separator: ","))}", at: 0)
    }
    var header = Array("{\(entries.joined(separator: ","))}".utf8)
    while header.count % 8 != 0 { header.append(0x20) }

    try AtomicFile.write(to: url) { handle in
      var length = UInt64(header.count).littleEndian
      try handle.write(contentsOf: Data(bytes: &length, count: 8))
      try handle.write(contentsOf: Data(header))
      for (_, t) in prepared where t.count > 0 {
        try t.withUnsafeRawBytes { raw in try handle.write(contentsOf: Data(raw)) }
      }
    }
  }

  /// Reads every tensor (as CPU tensors) and the metadata of a safetensors file.
  /// - Throws: `TorchError.io` when the file cannot be read; `TorchError.invalidFormat` naming the path
  ///   and the problem when the header is malformed, a dtype is unknown, or offsets disagree with shapes
  ///   or the file size.
  public static func load(_ url: URL) throws -> (tensors: [String: Tensor], metadata: [String: String]) {
    let path = url.path
    let data: Data
    do {
      data = try Data(contentsOf: url, options: .alwaysMapped)
    } catch {
      throw TorchError.io(path: path, reason: "cannot read: \((error as NSError).localizedDescription)")
    }
    func bad(_ reason: String) -> TorchError { .invalidFormat(path: path, reason: "not a valid safetensors file: \(reason)") }
    guard data.count >= 8 else { throw bad("\(data.count) bytes, shorter than the 8-byte header length") }
    let headerLength = data.withUnsafeBytes { UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self)) }
    guard headerLength <= UInt64(data.count - 8), headerLength <= 100_000_000 else {
      throw bad("header length \(headerLength) exceeds the file size \(data.count)")
    }
    let headerEnd = 8 + Int(headerLength)
    let json: Any
    do {
      json = try JSONSerialization.jsonObject(with: data.subdata(in: 8..<headerEnd))
    } catch {
      throw bad("the header is not JSON")
    }
    guard let object = json as? [String: Any] else { throw bad("the header is not a JSON object") }
    let dataSize = data.count - headerEnd
    var metadata: [String: String] = [:]
    var tensors: [String: Tensor] = [:]
    var spans: [(begin: Int, end: Int, name: String)] = []
    for (name, value) in object {
      if name == "__metadata__" {
        guard let m = value as? [String: Any] else { throw bad("__metadata__ is not an object") }
        for (k, v) in m {
          guard let s = v as? String else { throw bad("metadata value of '\(k)' is not a string") }
          metadata[k] = s
        }
        continue
      }
      guard let entry = value as? [String: Any], let dtypeName = entry["dtype"] as? String,
        let shapeAny = entry["shape"] as? [Any], let offsetsAny = entry["data_offsets"] as? [Any]
      else { throw bad("tensor '\(name)' lacks dtype, shape or data_offsets") }
      guard let dtype = dtypesByName[dtypeName] else { throw bad("tensor '\(name)' has unsupported dtype \(dtypeName)") }
      /// A JSON number that is a non-negative integer (not 1.9, not true).
      func integer(_ v: Any, _ what: String) throws -> Int {
        guard let number = v as? NSNumber, String(cString: number.objCType) != "c", number.doubleValue >= 0,
          number.doubleValue == number.doubleValue.rounded(), number.doubleValue < 9.0e18
        else { throw bad("tensor '\(name)' has a bad \(what) value \(v)") }
        return number.intValue
      }
      let shape = try shapeAny.map { try integer($0, "shape") }
      let offsets = try offsetsAny.map { try integer($0, "offset") }
      guard offsets.count == 2, offsets[0] <= offsets[1], offsets[1] <= dataSize else {
        throw bad("tensor '\(name)' has offsets \(offsets) outside the \(dataSize) data bytes")
      }
      let (elements, overflow) = shape.reduce((1, false)) { acc, n in
        let r = acc.0.multipliedReportingOverflow(by: n)
        return (r.partialValue, acc.1 || r.overflow)
      }
      let bytes = elements.multipliedReportingOverflow(by: dtype.byteCount)
      guard !overflow, !bytes.overflow, bytes.partialValue == offsets[1] - offsets[0] else {
        throw bad("tensor '\(name)' of shape \(shape) \(dtypeName) does not fit its \(offsets[1] - offsets[0]) bytes")
      }
      spans.append((offsets[0], offsets[1], name))
      if dtype == .bool {
        let invalid = data[(headerEnd + offsets[0])..<(headerEnd + offsets[1])].contains { $0 > 1 }
        if invalid { throw bad("tensor '\(name)' is BOOL but holds bytes other than 0 and 1") }
      }
      tensors[name] = try data.withUnsafeBytes { raw in
        try Tensor(rawBytes: UnsafeRawBufferPointer(rebasing: raw[(headerEnd + offsets[0])..<(headerEnd + offsets[1])]),
                   shape: shape, dtype: dtype)
      }
    }
    // As the reference loader: the tensors must tile the data section exactly, without gaps or overlaps.
    var position = 0
    for span in spans.sorted(by: { ($0.begin, $0.end) < ($1.begin, $1.end) }) {
      guard span.begin == position else {
        throw bad("tensor '\(span.name)' starts at byte \(span.begin) of the data, expected \(position) (gap or overlap)")
      }
      position = span.end
    }
    guard position == dataSize else { throw bad("\(dataSize - position) bytes after the last tensor") }
    return (tensors, metadata)
  }

  static func jsonString(_ s: String) -> String {
    var out = "\""
    for scalar in s.unicodeScalars {
      switch scalar {
      case "\"": out += "\\\""
      case "\\": out += "\\\\"
      case "\n": out += "\\n"
      case "\r": out += "\\r"
      case "\t": out += "\\t"
      default:
        if scalar.value < 0x20 {
          out += String(format: "\\u%04x", scalar.value)
        } else {
          out.unicodeScalars.append(scalar)
        }
      }
    }
    return out + "\""
  }
}

/// Atomic file replacement (the shared `AtomicWrite` mechanism) reporting failures as `TorchError.io`.
public enum AtomicFile {
  /// - Throws: `TorchError.io` naming `url` when the folder is missing or not writable, or the write fails.
  public static func write(to url: URL, _ body: (FileHandle) throws -> Void) throws {
    do { try AtomicWrite.write(to: url, createFolder: false, body) } catch let f as AtomicWrite.Failure {
      throw TorchError.io(path: f.path, reason: f.reason)
    }
  }

  /// Writes `data` to `url` atomically.
  public static func write(_ data: Data, to url: URL) throws {
    try write(to: url) { try $0.write(contentsOf: data) }
  }
}
