import Foundation
import Testing
import Torch
import TorchNN
@testable import GreenRFM

/// Reads the state_dict key lists that scripts/golden/make_nn_golden.py took from bench/reference_models.py
/// (the torchvision r3d_18 layout with the GreenRFM stem).
func referenceStateDictKeys(_ model: String) throws -> [String: [Int]] {
  let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .appendingPathComponent("TorchNNTests/Golden/nn.safetensors")
  let meta = try SafeTensors.load(url).metadata
  let json = try JSONSerialization.jsonObject(with: Data(meta["state_dict_keys"]!.utf8)) as! [String: [String: [Int]]]
  return json[model]!
}

@Suite struct ResNet3DTests {
  @Test func liteKeysAndShapesEqualTheTorchvisionLayout() throws {
    let model = try ResNet3D18(stem: .lite, classes: 18, generator: Generator(seed: 0))
    #expect(model.stateDict().mapValues(\.shape) == (try referenceStateDictKeys("resnet3d18_lite_fc18")))
  }

  @Test func standardKeysAndShapesEqualTheTorchvisionLayout() throws {
    let model = try ResNet3D18(stem: .standard, generator: Generator(seed: 0))
    let reference = try referenceStateDictKeys("resnet3d18_standard")
    #expect(model.stateDict().mapValues(\.shape) == reference)
    let bufferSuffixes = ["running_mean", "running_var", "num_batches_tracked"]
    let referenceCount = reference.filter { key, _ in !bufferSuffixes.contains { key.hasSuffix($0) } }
      .values.reduce(0) { $0 + $1.reduce(1, *) }
    #expect(model.parameterCount == referenceCount)
  }

  @Test(arguments: [(ResNetStem.lite, 4), (.standard, 2)])
  func stemDownsamplesByItsStride(stem: ResNetStem, stride: Int) throws {
    let model = try ResNet3D18(stem: stem, generator: Generator(seed: 0))
    model.eval()
    let x = try Tensor.randn([1, 1, 16, 32, 32], generator: Generator(seed: 1))
    let stemOut = try withNoGrad { try model.stem(x) }
    #expect(stemOut.shape == [1, 64, 16 / stride, 32 / stride, 32 / stride])
    let features = try withNoGrad { try model(x) }
    #expect(features.shape == [1, 512])
  }
}
