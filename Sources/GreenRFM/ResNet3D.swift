import Foundation
import Torch
import TorchNN

/// The stem of the GreenRFM image encoder. Paper: MUST/Task-aligning — torchvision's `r3d_18` stem
/// (3→64, kernel 3×7×7) is replaced by a one-channel convolution that downsamples isotropically.
public enum ResNetStem: String, Sendable, Codable, CaseIterable {
  /// Kernel 2³, stride 2 (the GreenRFM standard model): 346.5 GMAC for a 96×192×192 chest crop.
  case standard
  /// Kernel 4³, stride 4 (GreenRFM lite): about 8× less compute (43.5 GMAC), the same parameter count.
  case lite

  public var kernelAndStride: Int { self == .standard ? 2 : 4 }
}

/// Fills a convolution weight with N(0, 2/fan_out), torchvision's `kaiming_normal_(mode="fan_out",
/// nonlinearity="relu")` for video ResNets.
func kaimingNormalFanOut(_ w: Tensor, generator: Generator?) throws {
  let shape = w.shape
  let fanOut = shape[0] * shape.dropFirst(2).reduce(1, *)
  try withNoGrad { try w.normalInPlace(mean: 0, std: (2.0 / Double(fanOut)).squareRoot(), generator: generator) }
}

/// A 3×3×3 convolution + BatchNorm3d (+ ReLU), registered as torchvision's `Sequential(Conv3DSimple,
/// BatchNorm3d[, ReLU])` so that keys read `conv1.0.weight`, `conv1.1.running_mean`, ….
final class ConvBN: Module {
  let conv: Conv3d
  let bn: BatchNorm3d
  let relu: Bool

  init(_ inPlanes: Int, _ outPlanes: Int, kernel: Int, stride: Int, padding: Int, relu: Bool,
       generator: Generator?) throws {
    conv = try Conv3d(inChannels: inPlanes, outChannels: outPlanes, kernelSize: [kernel], stride: [stride],
                      padding: [padding], bias: false)
    try kaimingNormalFanOut(conv.weight, generator: generator)
    bn = try BatchNorm3d(features: outPlanes)
    self.relu = relu
    super.init()
    register("0", conv)
    register("1", bn)
    if relu { register("2", ReLU()) }
  }

  override func forward(_ x: Tensor) throws -> Tensor {
    // In-place ReLU as torchvision's nn.ReLU(inplace=True): one activation buffer fewer per layer.
    let y = try bn(conv(x))
    if relu { try y.reluInPlace() }
    return y
  }
}

/// torchvision's video `BasicBlock`: two 3×3×3 convolutions with a residual connection, and a 1×1×1
/// strided projection (`downsample`) when the shape changes.
final class BasicBlock3D: Module {
  let conv1: ConvBN
  let conv2: ConvBN
  let downsample: ConvBN?

  init(_ inPlanes: Int, _ planes: Int, stride: Int, generator: Generator?) throws {
    conv1 = try ConvBN(inPlanes, planes, kernel: 3, stride: stride, padding: 1, relu: true, generator: generator)
    conv2 = try ConvBN(planes, planes, kernel: 3, stride: 1, padding: 1, relu: false, generator: generator)
    downsample = (stride != 1 || inPlanes != planes)
      ? try ConvBN(inPlanes, planes, kernel: 1, stride: stride, padding: 0, relu: false, generator: generator) : nil
    super.init()
    register("conv1", conv1)
    register("conv2", conv2)
    if let d = downsample { register("downsample", d) }
  }

  override func forward(_ x: Tensor) throws -> Tensor {
    let residual = try downsample.map { try $0(x) } ?? x
    // `out += residual; relu(out)` in place, as torchvision's BasicBlock.
    let out = try conv2(conv1(x))
    try out.addInPlace(residual)
    try out.reluInPlace()
    return out
  }
}

/// The GreenRFM image encoder: torchvision's `r3d_18` (BasicBlock stages 64-128-256-512, two blocks
/// each, stride 2 at the start of stages 2–4, global average pooling to 512) with a one-channel stem
/// of kernel and stride 2 (standard) or 4 (lite), followed by BatchNorm3d and ReLU.
///
/// Parameter names equal torchvision's `r3d_18().state_dict()` keys (`stem.0.weight`,
/// `layer2.0.downsample.1.running_var`, …) except that `fc` exists only when `classes` is given.
/// Initialisation follows torchvision (Kaiming-normal fan-out convolutions, BN 1/0, fc N(0, 0.01)).
public final class ResNet3D18: Module {
  public let stemKind: ResNetStem
  let stem: ConvBN
  let layers: [Module]
  /// The optional linear head over the 512 pooled features.
  public let fc: Linear?

  public static let featureCount = 512

  /// - Parameters:
  ///   - stem: `.standard` (2³, stride 2) or `.lite` (4³, stride 4).
  ///   - inChannels: 1 for CT.
  ///   - classes: size of a linear head `fc` (nil: the encoder returns the 512 features).
  ///   - generator: source of the initial weights (libtorch's default generator when nil).
  public init(stem: ResNetStem = .lite, inChannels: Int = 1, classes: Int? = nil, generator: Generator? = nil)
    throws
  {
    stemKind = stem
    let k = stem.kernelAndStride
    self.stem = try ConvBN(inChannels, 64, kernel: k, stride: k, padding: 0, relu: true, generator: generator)
    var built: [Module] = []
    var inPlanes = 64
    for (i, planes) in [64, 128, 256, 512].enumerated() {
      let stride = i == 0 ? 1 : 2
      let blocks = [try BasicBlock3D(inPlanes, planes, stride: stride, generator: generator),
                    try BasicBlock3D(planes, planes, stride: 1, generator: generator)]
      inPlanes = planes
      built.append(Sequential(blocks))
    }
    layers = built
    if let c = classes {
      let head = try Linear(inFeatures: 512, outFeatures: c)
      try withNoGrad {
        try head.weight.normalInPlace(mean: 0, std: 0.01, generator: generator)
        try head.bias!.zero()
      }
      fc = head
    } else {
      fc = nil
    }
    super.init()
    register("stem", self.stem)
    for (i, l) in layers.enumerated() { register("layer\(i + 1)", l) }
    if let fc { register("fc", fc) }
  }

  /// The pooled 512-d features.
  /// - Parameter x: `[N, C, D, H, W]` (C = `inChannels`).
  /// - Returns: `[N, 512]`.
  public func features(_ x: Tensor) throws -> Tensor {
    var h = try stem(x)
    for l in layers { h = try l(h) }
    return try Functional.adaptiveAvgPool3d(h, outputSize: [1, 1, 1]).flatten(startDim: 1)
  }

  /// `[N, C, D, H, W]` → `[N, classes]` through `fc` when present, else the `[N, 512]` features.
  public override func forward(_ x: Tensor) throws -> Tensor {
    let f = try features(x)
    return try fc.map { try $0(f) } ?? f
  }
}
