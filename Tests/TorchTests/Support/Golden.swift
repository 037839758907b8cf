import Foundation
import Testing
import Torch

/// The golden values of `scripts/golden/make_torch_golden.py`: PyTorch's inputs and answers, read with
/// the Swift `SafeTensors.load` (so every golden test also exercises the loader).
///
/// Each test loads its own copy, so tests that mark tensors as requiring gradients or update them in
/// place never share a tensor with another test running in parallel.
struct GoldenFile {
  let url: URL
  let tensors: [String: Tensor]
  let metadata: [String: String]

  /// Loads `Golden/<name>` from the test bundle.
  static func load(_ name: String = "torch_core.safetensors") throws -> GoldenFile {
    let folder = try #require(Bundle.module.url(forResource: "Golden", withExtension: nil),
                              "the Golden resource folder is missing from the test bundle")
    let url = folder.appendingPathComponent(name)
    let (tensors, metadata) = try SafeTensors.load(url)
    return GoldenFile(url: url, tensors: tensors, metadata: metadata)
  }

  /// The tensor `name`; a missing name fails the test (the golden file and the test disagree).
  func tensor(_ name: String, sourceLocation: SourceLocation = #_sourceLocation) throws -> Tensor {
    try #require(tensors[name], "golden tensor '\(name)' is missing; rerun make_torch_golden.py",
                 sourceLocation: sourceLocation)
  }

  /// The JSON object stored in the metadata under `key`, decoded with snake_case keys.
  func json<T: Decodable>(_ key: String, as type: T.Type = T.self,
                          sourceLocation: SourceLocation = #_sourceLocation) throws -> T {
    let text = try #require(metadata[key], "golden metadata '\(key)' is missing", sourceLocation: sourceLocation)
    let decoder = JSONDecoder()
    decoder.keyDecodingStrategy = .convertFromSnakeCase
    return try decoder.decode(T.self, from: Data(text.utf8))
  }
}

/// Named tolerances for comparing with PyTorch: `|actual − expected| ≤ atol + rtol·|expected|`.
struct Tolerance: CustomStringConvertible {
  var rtol: Double
  var atol: Double

  /// float32 results of the same libtorch kernels: relative 1e-5; the small absolute term only matters
  /// for values that are themselves near zero after cancellation (gradients, centred outputs).
  static let float32 = Tolerance(rtol: 1e-5, atol: 1e-12)
  /// float64 values computed in closed form in Swift and recursively in Python (learning rates).
  static let float64 = Tolerance(rtol: 1e-9, atol: 1e-15)
  /// bfloat16 results (8 bits of mantissa) against float32 ones.
  static let bfloat16 = Tolerance(rtol: 2e-2, atol: 2e-2)
  /// Bit-for-bit, NaN equal to NaN.
  static let exact = Tolerance(rtol: 0, atol: 0)

  var description: String { "rtol \(rtol), atol \(atol)" }

  func accepts(_ actual: Double, _ expected: Double) -> Bool {
    if actual.isNaN || expected.isNaN { return actual.isNaN && expected.isNaN }
    if actual.isInfinite || expected.isInfinite { return actual == expected }
    return Swift.abs(actual - expected) <= atol + rtol * Swift.abs(expected)
  }
}

/// Expects equal shapes and element-wise closeness; on failure reports the worst element.
func expectClose(_ actual: Tensor, _ expected: Tensor, _ tolerance: Tolerance = .float32, _ what: String,
                 sourceLocation: SourceLocation = #_sourceLocation) throws {
  #expect(actual.shape == expected.shape, "\(what): shape \(actual.shape), expected \(expected.shape)",
          sourceLocation: sourceLocation)
  guard actual.shape == expected.shape else { return }
  let a = try actual.scalars(as: Double.self)
  let e = try expected.scalars(as: Double.self)
  var failures = 0
  var worst: (index: Int, excess: Double)? = nil
  for i in a.indices where !tolerance.accepts(a[i], e[i]) {
    failures += 1
    let excess = Swift.abs(a[i] - e[i]) - (tolerance.atol + tolerance.rtol * Swift.abs(e[i]))
    if worst == nil || !(excess <= worst!.excess) { worst = (i, excess) }
  }
  if let w = worst {
    let message = "\(what): \(failures) of \(a.count) elements outside \(tolerance); worst at flat index "
      + "\(w.index): \(a[w.index]) vs \(e[w.index])"
    Issue.record(Comment(rawValue: message), sourceLocation: sourceLocation)
  }
}

/// Expects `actual` to be within `tolerance` of `expected`.
func expectClose(_ actual: Double, _ expected: Double, _ tolerance: Tolerance = .float32, _ what: String,
                 sourceLocation: SourceLocation = #_sourceLocation) {
  #expect(tolerance.accepts(actual, expected), "\(what): \(actual) vs \(expected) (\(tolerance))",
          sourceLocation: sourceLocation)
}

/// A fresh temporary folder, removed when `body` returns.
func withTemporaryDirectory<R>(_ body: (URL) throws -> R) throws -> R {
  let dir = FileManager.default.temporaryDirectory
    .appendingPathComponent("TorchTests-\(ProcessInfo.processInfo.processIdentifier)-\(UUID().uuidString)")
  try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
  defer { try? FileManager.default.removeItem(at: dir) }
  return try body(dir)
}

/// The package root (this file is Tests/TorchTests/Support/Golden.swift).
let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
  .deletingLastPathComponent().deletingLastPathComponent()

/// The reference Python of scripts/reference-env.sh, when this checkout has one (CI does not).
let referencePython = packageRoot.appendingPathComponent(".venv-ref/bin/python")
let hasReferencePython = FileManager.default.isExecutableFile(atPath: referencePython.path)
