import Foundation
import Testing
import Torch
import TorchNN
@testable import GreenRFM

/// The golden values of scripts/golden/make_resnet_golden.py: torchvision 0.29's `r3d_18` with the
/// GreenRFM stem (Conv3d(1, 64, k, stride k, bias=False)) and `fc = Linear(512, 3)`.
private enum ResNetGolden {
  static let file: (tensors: [String: Tensor], metadata: [String: String]) = {
    let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
      .appendingPathComponent("Golden/resnet3d18.safetensors")
    return try! SafeTensors.load(url)
  }()

  static func tensor(_ name: String) -> Tensor {
    guard let t = file.tensors[name] else { fatalError("golden tensor \(name) missing: rerun make_resnet_golden.py") }
    return t
  }

  static func json<T: Decodable>(_ key: String, as type: T.Type) throws -> T {
    try JSONDecoder().decode(T.self, from: Data(try #require(file.metadata[key], "metadata \(key)").utf8))
  }

  /// The weights of every tensor, made by the formula that make_resnet_golden.py documents (the full state
  /// dict, 133 MB, is not committed): with the keys sorted by code point, key number k and
  /// v[i] = sin(0.61803398875 · i + k) in float64 (libtorch arange, mul, add, sin):
  /// 5-D convolution weights v·√(4 / fan_in); `fc.weight` v·√(2 / 512); 1-D `…weight` (BatchNorm)
  /// 1 + 0.1 v; `running_var` 1 + 0.5 v; biases and `running_mean` 0.1 v; `num_batches_tracked` 0;
  /// then float32, reshaped row-major.
  static func formulaState(for keysAndShapes: [String: [Int]]) throws -> [String: Tensor] {
    var out: [String: Tensor] = [:]
    for (k, key) in keysAndShapes.keys.sorted().enumerated() {
      let shape = keysAndShapes[key]!
      let n = shape.reduce(1, *)
      if key.hasSuffix("num_batches_tracked") {
        out[key] = try Tensor.zeros(shape, dtype: .int64)
        continue
      }
      var v = try (Tensor.arange(Double(n), dtype: .float64) * 0.61803398875 + Double(k)).sin()
      if shape.count == 5 {
        v = try v * (4.0 / Double(shape.dropFirst().reduce(1, *))).squareRoot()
      } else if key == "fc.weight" {
        v = try v * (2.0 / 512).squareRoot()
      } else if key.hasSuffix("running_var") {
        v = try v * 0.5 + 1.0
      } else if key.hasSuffix("weight") {
        v = try v * 0.1 + 1.0
      } else {
        v = try v * 0.1
      }
      out[key] = try v.to(.float32).reshape(shape)
    }
    return out
  }
}

/// max |a − b| / max |b|: the error relative to the reference tensor's largest magnitude.
private func scaledError(_ a: Tensor, _ b: Tensor) throws -> Double {
  #expect(a.shape == b.shape, "shapes differ: \(a.shape) vs \(b.shape)")
  let diff = try (a.to(.float64) - b.to(.float64)).abs().max().item()
  return diff / Swift.max(try b.to(.float64).abs().max().item(), 1e-30)
}

@Suite(.serialized) struct ResNetGoldenTests {
  @Test(arguments: [ResNetStem.lite, .standard])
  func matchesTorchvisionR3D18(stem: ResNetStem) throws {
    let name = stem == .lite ? "lite" : "standard"
    let keys = try ResNetGolden.json("\(name).state_dict_keys", as: [String: [Int]].self)
    let model = try ResNet3D18(stem: stem, inChannels: 1, classes: 3, generator: Generator(seed: 0))
    #expect(model.stateDict().mapValues(\.shape) == keys)

    // The generated weights equal the script's, key by key (float64 sums).
    let state = try ResNetGolden.formulaState(for: keys)
    let sums = try ResNetGolden.json("\(name).weight_sums", as: [String: Double].self)
    for (key, expected) in sums {
      let sum = try state[key]!.to(.float64).sum().item()
      #expect(abs(sum - expected) <= 1e-9 * max(1, abs(expected)), "\(key): \(sum) vs \(expected)")
    }
    try model.loadStateDict(state, strict: true)

    let x = ResNetGolden.tensor("\(name).x")
    let w = ResNetGolden.tensor("\(name).w")

    // (1) Evaluation mode: running statistics.
    model.eval()
    let logitsEval = try withNoGrad { try model(x) }
    let evalError = try scaledError(logitsEval, ResNetGolden.tensor("\(name).logits_eval"))
    print("ResNet3D18 \(name): eval logits max |error| / max |reference| = \(evalError)")
    #expect(evalError <= 1e-4)

    // (2) Training mode: batch statistics, running-statistics update, gradients.
    model.train()
    let xg = try x.clone().requiringGrad(true)
    let logitsTrain = try model(xg)
    try (logitsTrain * w).sum().backward()
    let trainError = try scaledError(logitsTrain, ResNetGolden.tensor("\(name).logits_train"))
    print("ResNet3D18 \(name): train logits max |error| / max |reference| = \(trainError)")
    #expect(trainError <= 1e-4)

    let params = Dictionary(uniqueKeysWithValues: model.namedParameters().map { ($0.name, $0.tensor) })
    var gradients: [(String, Tensor, Tensor)] = [
      ("input", try #require(xg.grad), ResNetGolden.tensor("\(name).grad_x")),
      ("layer4.1.conv2.0.weight[:8, :8]",
       try #require(params["layer4.1.conv2.0.weight"]?.grad).narrow(dim: 0, start: 0, length: 8)
         .narrow(dim: 1, start: 0, length: 8),
       ResNetGolden.tensor("\(name).grad.layer4.1.conv2.0.weight[:8,:8]")),
    ]
    for key in ["stem.0.weight", "fc.weight", "fc.bias"] {
      gradients.append((key, try #require(params[key]?.grad), ResNetGolden.tensor("\(name).grad.\(key)")))
    }
    for (label, got, expected) in gradients {
      let error = try scaledError(got, expected)
      print("ResNet3D18 \(name): d loss/d \(label) max |error| / max |reference| = \(error)")
      #expect(error <= 1e-3, "\(label)")
    }
    let squares = try params["layer4.1.conv2.0.weight"]!.grad!.to(.float64).square().sum().item()
    let expectedSquares = Double(try #require(ResNetGolden.file.metadata["\(name).grad.layer4.1.conv2.0.weight.sum_of_squares"]))!
    #expect(abs(squares - expectedSquares) <= 2e-3 * expectedSquares, "\(squares) vs \(expectedSquares)")

    let buffers = Dictionary(uniqueKeysWithValues: model.namedBuffers().map { ($0.name, $0.tensor) })
    for key in ["stem.1.running_mean", "stem.1.running_var", "layer4.1.conv2.1.running_mean",
                "layer4.1.conv2.1.running_var"] {
      let error = try scaledError(buffers[key]!, ResNetGolden.tensor("\(name).\(key)"))
      #expect(error <= 1e-4, "\(key): \(error)")
    }
  }
}
