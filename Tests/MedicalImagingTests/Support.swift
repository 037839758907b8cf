import Foundation
import Testing
@testable import MedicalImaging

/// Paths and golden values shared by the MedicalImaging tests.
enum Fixtures {
  /// The repository root (three levels above this file).
  static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent()
  /// ../shared/data beside the checkout (real files, read in place, never copied).
  static let data = repository.deletingLastPathComponent().appendingPathComponent("shared/data").standardizedFileURL.path

  static func dataPath(_ relative: String) -> String { (data as NSString).appendingPathComponent(relative) }

  static func goldenPath(_ name: String) -> String {
    Bundle.module.url(forResource: "Golden", withExtension: nil)!.appendingPathComponent(name).path
  }

  nonisolated(unsafe) static let golden: [String: Any] = {
    let data = try! Data(contentsOf: URL(fileURLWithPath: goldenPath("imaging_golden.json")))
    return try! JSONSerialization.jsonObject(with: data) as! [String: Any]
  }()

  static var goldenVolumes: [[String: Any]] { golden["volumes"] as! [[String: Any]] }

  static func goldenVolume(_ relative: String) -> [String: Any] {
    goldenVolumes.first { ($0["path"] as! String) == relative }!
  }

  static func temporaryFolder() throws -> String {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("mi-tests-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url.path
  }
}

/// A small synthetic volume with distinct values (value = i + 10 j + 100 k), LPS-ish rotated affine.
func rampVolume(shape: [Int] = [5, 4, 3], affine: Affine? = nil) -> Volume {
  var voxels = [Float]()
  for k in 0..<shape[2] { for j in 0..<shape[1] { for i in 0..<shape[0] { voxels.append(Float(i + 10 * j + 100 * k)) } } }
  let a = affine ?? Affine([[-0.8, 0, 0, 12], [0, -0.9, 0, -3], [0, 0, 2.5, 40], [0, 0, 0, 1]])
  return Volume(shape: shape, voxels: voxels, affine: a)
}

func doubles(_ any: Any?) -> [Double] { (any as! [Any]).map { ($0 as! NSNumber).doubleValue } }
func ints(_ any: Any?) -> [Int] { (any as! [Any]).map { ($0 as! NSNumber).intValue } }
