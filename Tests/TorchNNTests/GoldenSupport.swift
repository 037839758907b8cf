import Foundation
import Testing
import Torch

/// The golden tensors made by scripts/golden/make_nn_golden.py.
enum Golden {
  static let file: (tensors: [String: Tensor], metadata: [String: String]) = {
    let url = Bundle.module.url(forResource: "Golden", withExtension: nil)!.appendingPathComponent("nn.safetensors")
    return try! SafeTensors.load(url)
  }()

  static func tensor(_ name: String) -> Tensor {
    guard let t = file.tensors[name] else { fatalError("golden tensor \(name) missing: rerun make_nn_golden.py") }
    return t
  }

  /// Expected state_dict keys and shapes by model name.
  static func stateDictKeys(_ model: String) -> [String: [Int]] {
    let json = try! JSONSerialization.jsonObject(with: Data(file.metadata["state_dict_keys"]!.utf8)) as! [String: [String: [Int]]]
    return json[model]!
  }
}

/// Largest |a − b| / max(|b|, floor) over all elements (the floor keeps near-zero references meaningful).
func maxRelativeError(_ a: Tensor, _ b: Tensor, floor: Double = 1e-3) throws -> Double {
  #expect(a.shape == b.shape, "shapes differ: \(a.shape) vs \(b.shape)")
  let x = try a.to(.float64).scalars(as: Double.self)
  let y = try b.to(.float64).scalars(as: Double.self)
  return zip(x, y).map { abs($0 - $1) / max(abs($1), floor) }.max() ?? 0
}
