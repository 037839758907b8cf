import Foundation
import Testing
import Torch

/// The safetensors format, read independently of `SafeTensors.load` (8-byte little-endian header length,
/// JSON header, data section), so that the tests can check the loader's bytes against the file's.
struct RawSafeTensors {
  struct Entry {
    let dtype: String
    let shape: [Int]
    let begin: Int
    let end: Int
  }

  let headerLength: Int
  let entries: [String: Entry]
  let metadata: [String: String]
  let data: [UInt8]

  init(_ url: URL) throws {
    let bytes = [UInt8](try Data(contentsOf: url))
    headerLength = bytes[0..<8].enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) }
    let object = try #require(
      try JSONSerialization.jsonObject(with: Data(bytes[8..<(8 + headerLength)])) as? [String: Any])
    var entries: [String: Entry] = [:]
    var metadata: [String: String] = [:]
    for (name, value) in object {
      let fields = try #require(value as? [String: Any])
      if name == "__metadata__" {
        metadata = try #require(fields as? [String: String])
        continue
      }
      let offsets = try #require(fields["data_offsets"] as? [Int])
      entries[name] = Entry(dtype: try #require(fields["dtype"] as? String), shape: try #require(fields["shape"] as? [Int]),
                            begin: offsets[0], end: offsets[1])
    }
    self.entries = entries
    self.metadata = metadata
    data = Array(bytes[(8 + headerLength)...])
  }

  func bytes(of name: String) -> [UInt8] {
    let e = entries[name]!
    return Array(data[e.begin..<e.end])
  }

  /// The data offsets tile the data section exactly (no gap, no overlap, nothing after the last tensor).
  var offsetsTileData: Bool {
    var position = 0
    for e in entries.values.sorted(by: { ($0.begin, $0.end) < ($1.begin, $1.end) }) {
      if e.begin != position { return false }
      position = e.end
    }
    return position == data.count
  }
}

/// safetensors dtype names, as the format specifies them.
let safetensorsDTypeNames: [DType: String] = [
  .float32: "F32", .float16: "F16", .bfloat16: "BF16", .float64: "F64", .int64: "I64", .int32: "I32",
  .int16: "I16", .int8: "I8", .uint8: "U8", .bool: "BOOL",
]

@Suite("SafeTensors")
struct SafeTensorsTests {
  @Test("every tensor of the Python-written golden file loads with the file's dtype, shape and bytes")
  func pythonWrittenBytesAreKept() throws {
    let golden = try GoldenFile.load()
    let raw = try RawSafeTensors(golden.url)
    #expect(golden.tensors.count == raw.entries.count)
    #expect(golden.metadata == raw.metadata)
    for (name, entry) in raw.entries.sorted(by: { $0.key < $1.key }) {
      let t = try golden.tensor(name)
      #expect(safetensorsDTypeNames[t.dtype] == entry.dtype, "\(name): dtype")
      #expect(t.shape == entry.shape, "\(name): shape")
      #expect(try t.rawBytes() == raw.bytes(of: name), "\(name): bytes differ from the file's")
    }
    // The interop tensors cover every dtype the Swift layer supports.
    let interopDTypes = Set(golden.tensors.filter { $0.key.hasPrefix("interop.") }.map { $0.value.dtype })
    #expect(interopDTypes == Set(DType.allCases))
  }

  @Test("the metadata records the versions that made the golden file")
  func goldenMetadata() throws {
    let golden = try GoldenFile.load()
    for key in ["torch_version", "numpy_version", "safetensors_version", "generator"] {
      #expect(!(golden.metadata[key] ?? "").isEmpty, "metadata '\(key)'")
    }
  }

  @Test("half-precision values mean what PyTorch says they mean", arguments: ["f16", "bf16"])
  func halfPrecisionValues(_ name: String) throws {
    let golden = try GoldenFile.load()
    let t = try golden.tensor("interop.\(name)")
    #expect(t.dtype == (name == "f16" ? .float16 : .bfloat16))
    try expectClose(t.to(.float32), golden.tensor("interop.\(name).as_f32"), .exact, "interop.\(name) as float32")
  }

  @Test("integer and boolean values mean what PyTorch says they mean")
  func integerValues() throws {
    let golden = try GoldenFile.load()
    let ints = try golden.json("interop.int_values", as: [String: [Int64]].self)
    #expect(ints.count == 5)
    for (name, values) in ints {
      #expect(try golden.tensor(name).flatten().scalars(as: Int64.self) == values, "\(name)")
    }
    let bools = try golden.json("interop.bool_values", as: [Bool].self)
    #expect(try golden.tensor("interop.bool").flatten().scalars(as: Bool.self) == bools)
  }

  /// Tensors of every dtype and layout for the round trips: the golden interop tensors (Python-written),
  /// and Swift-made ones (a non-contiguous view, a view with a storage offset, one that requires grad).
  static func roundTripTensors(_ golden: GoldenFile) throws -> [String: Tensor] {
    var tensors = golden.tensors.filter { $0.key.hasPrefix("interop.") }
    let g = Generator(seed: 7)
    tensors["swift.arange_i64"] = try Tensor.arange(0, 10)
    tensors["swift.permuted_f32"] = try Tensor.randn([2, 3, 4], generator: g).permute([2, 0, 1])
    tensors["swift.narrowed_f64"] = try Tensor.randn([6, 3], dtype: .float64, generator: g).narrow(dim: 0, start: 2, length: 3)
    tensors["swift.requires_grad_bf16"] = try Tensor.randn([5], generator: g).requiringGrad().to(.bfloat16)
    tensors["swift.scalar_i64"] = try Tensor.scalar(-3, dtype: .int64)
    return tensors
  }

  static let roundTripMetadata = [
    "format": "pt",
    "quote and backslash": "a \"quoted\" C:\\path",
    "whitespace": "line 1\nline 2\ttab\r",
    "control": "bell \u{07} nul-free",
    "unicode": "ünïcødé ✓ 🧠 中文",
    "empty": "",
  ]

  @Test("Swift → file → Swift keeps names, dtypes, shapes, bytes and metadata")
  func swiftRoundTrip() throws {
    let golden = try GoldenFile.load()
    let tensors = try Self.roundTripTensors(golden)
    try withTemporaryDirectory { dir in
      let url = dir.appendingPathComponent("round trip.safetensors")
      try SafeTensors.save(tensors, metadata: Self.roundTripMetadata, to: url)
      let (loaded, metadata) = try SafeTensors.load(url)
      #expect(metadata == Self.roundTripMetadata)
      #expect(Set(loaded.keys) == Set(tensors.keys))
      for (name, original) in tensors {
        let t = try #require(loaded[name])
        #expect(t.dtype == original.dtype, "\(name): dtype")
        #expect(t.shape == original.shape, "\(name): shape")
        #expect(t.isContiguous() && !t.requiresGrad && t.device == .cpu, "\(name): layout")
        #expect(try t.rawBytes() == original.rawBytes(), "\(name): bytes")
      }
      // The layout the format prescribes, read independently of the loader.
      let raw = try RawSafeTensors(url)
      #expect(raw.headerLength % 8 == 0)
      #expect(raw.offsetsTileData)
      #expect(raw.metadata == Self.roundTripMetadata)
      // The atomic write leaves nothing but the file behind.
      #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path) == ["round trip.safetensors"])
      // Saving again replaces the file.
      try SafeTensors.save(["only": Tensor.ones([2])], to: url)
      let (again, noMetadata) = try SafeTensors.load(url)
      #expect(Array(again.keys) == ["only"] && noMetadata.isEmpty)
    }
  }

  @Test("saving refuses reserved names and reports unwritable paths")
  func saveErrors() throws {
    try withTemporaryDirectory { dir in
      let url = dir.appendingPathComponent("x.safetensors")
      for name in ["", "__metadata__"] {
        let error = #expect(throws: TorchError.self) { try SafeTensors.save([name: Tensor.ones([1])], to: url) }
        if case .invalidArgument = error {} else { Issue.record("name '\(name)': expected invalidArgument, got \(String(describing: error))") }
      }
      let missing = dir.appendingPathComponent("no such folder/x.safetensors")
      let error = #expect(throws: TorchError.self) { try SafeTensors.save(["a": Tensor.ones([1])], to: missing) }
      guard case let .io(path, _) = error else {
        Issue.record("expected TorchError.io, got \(String(describing: error))")
        return
      }
      #expect(path == missing.path)
    }
  }

  @Test("a missing file gives TorchError.io naming the path")
  func missingFile() throws {
    try withTemporaryDirectory { dir in
      for url in [dir.appendingPathComponent("absent.safetensors"), dir] {
        let error = #expect(throws: TorchError.self) { try SafeTensors.load(url) }
        guard case let .io(path, reason) = error else {
          Issue.record("\(url.path): expected TorchError.io, got \(String(describing: error))")
          continue
        }
        #expect(path == url.path)
        #expect(!reason.isEmpty)
        #expect(error.map { "\($0)" }?.contains(url.path) == true, "the description names the path")
      }
    }
  }

  /// A file of an 8-byte little-endian header length, then `header` and `data` as given.
  static func file(headerLength: UInt64? = nil, header: String, data: [UInt8] = []) -> Data {
    let h = Array(header.utf8)
    let n = headerLength ?? UInt64(h.count)
    return Data((0..<8).map { UInt8(truncatingIfNeeded: n >> (8 * $0)) } + h + data)
  }

  static let malformedCases = [
    "empty file", "shorter than the length field", "header length past the end", "header length huge",
    "header not JSON", "header a JSON array", "offsets past the end", "truncated data", "shape disagrees with offsets",
    "unsupported dtype", "missing fields", "metadata not strings", "negative size", "offsets reversed",
    "element count overflows", "byte count overflows", "fractional size", "boolean size", "BOOL byte not 0 or 1",
    "gap between tensors", "bytes after the last tensor",
  ]

  static func malformed(_ name: String) throws -> Data {
    let entry = #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#
    switch name {
    case "empty file": return Data()
    case "shorter than the length field": return Data([16, 0, 0, 0, 0])
    case "header length past the end": return file(headerLength: 1000, header: "{}      ")
    case "header length huge": return file(headerLength: UInt64.max, header: "{}      ")
    case "header not JSON": return file(header: "not json")
    case "header a JSON array": return file(header: "[1,2,3] ")
    case "offsets past the end": return file(header: entry, data: [0, 0, 128, 63])
    case "truncated data":
      let whole = file(header: entry, data: [UInt8](repeating: 0, count: 8))
      return whole.prefix(whole.count - 3)
    case "shape disagrees with offsets":
      return file(header: #"{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}"#, data: [UInt8](repeating: 0, count: 8))
    case "unsupported dtype":
      return file(header: #"{"a":{"dtype":"F8_E4M3","shape":[2],"data_offsets":[0,2]}}"#, data: [0, 0])
    case "missing fields": return file(header: #"{"a":{"dtype":"F32"}}"#)
    case "metadata not strings": return file(header: #"{"__metadata__":{"k":1}}"#)
    case "negative size":
      return file(header: #"{"a":{"dtype":"U8","shape":[-2],"data_offsets":[0,2]}}"#, data: [0, 0])
    case "offsets reversed":
      return file(header: #"{"a":{"dtype":"U8","shape":[2],"data_offsets":[2,0]}}"#, data: [0, 0])
    case "element count overflows":
      return file(header: #"{"a":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,0]}}"#)
    case "byte count overflows":
      return file(header: #"{"a":{"dtype":"F64","shape":[4611686018427387904],"data_offsets":[0,0]}}"#)
    case "fractional size":
      return file(header: #"{"a":{"dtype":"U8","shape":[1.9],"data_offsets":[0,1]}}"#, data: [0])
    case "boolean size":
      return file(header: #"{"a":{"dtype":"U8","shape":[true],"data_offsets":[0,1]}}"#, data: [0])
    case "BOOL byte not 0 or 1":
      return file(header: #"{"a":{"dtype":"BOOL","shape":[3],"data_offsets":[0,3]}}"#, data: [1, 7, 0])
    case "gap between tensors":
      return file(header: #"{"a":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}}"#, data: [0, 0])
    case "bytes after the last tensor":
      return file(header: #"{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}"#, data: [0, 0])
    default: throw TorchError.invalidArgument("no malformed case '\(name)'")
    }
  }

  @Test("a malformed file gives TorchError.invalidFormat naming the path", arguments: malformedCases)
  func malformedFile(_ name: String) throws {
    try withTemporaryDirectory { dir in
      let url = dir.appendingPathComponent("\(name).safetensors")
      try Self.malformed(name).write(to: url)
      let error = #expect(throws: TorchError.self) { try SafeTensors.load(url) }
      guard case let .invalidFormat(path, reason) = error else {
        Issue.record("\(name): expected TorchError.invalidFormat, got \(String(describing: error))")
        return
      }
      #expect(path == url.path)
      #expect(reason.contains("safetensors"), "\(reason)")
    }
  }

  @Test("Swift-written files load in Python's safetensors with identical bytes",
        .enabled(if: hasReferencePython,
                 "skipped: no .venv-ref/bin/python in this checkout (make it with scripts/reference-env.sh)"))
  func pythonReadsSwiftFiles() throws {
    let golden = try GoldenFile.load()
    let tensors = try Self.roundTripTensors(golden)
    try withTemporaryDirectory { dir in
      let file = dir.appendingPathComponent("from-swift.safetensors")
      try SafeTensors.save(tensors, metadata: Self.roundTripMetadata, to: file)
      var expected: [String: Any] = [:]
      for (name, t) in tensors {
        expected[name] = [
          "dtype": safetensorsDTypeNames[t.dtype]!, "shape": t.shape,
          "hex": try t.rawBytes().map { String(format: "%02x", $0) }.joined(),
        ] as [String: Any]
      }
      let json = dir.appendingPathComponent("expected.json")
      try JSONSerialization.data(withJSONObject: ["tensors": expected, "metadata": Self.roundTripMetadata],
                                 options: [.sortedKeys]).write(to: json)

      let process = Process()
      process.executableURL = referencePython
      process.arguments = [packageRoot.appendingPathComponent("scripts/golden/check_safetensors_roundtrip.py").path,
                           file.path, json.path, "--golden", golden.url.path]
      let output = Pipe()
      process.standardOutput = output
      process.standardError = output
      try process.run()
      let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
      process.waitUntilExit()
      #expect(process.terminationStatus == 0, "check_safetensors_roundtrip.py:\n\(text)")
      #expect(text.contains("ok:"), "\(text)")
    }
  }
}
