import Foundation
import Testing
import Torch

/// Creation, reading back, dtypes and the description.
@Suite("Tensor creation")
struct TensorCreationTests {
  @Test func zerosOnesFull() throws {
    let z = try Tensor.zeros([2, 3])
    #expect(z.shape == [2, 3] && z.rank == 2 && z.count == 6 && z.dtype == .float32 && z.device == .cpu)
    #expect(try z.scalars(as: Float.self) == [Float](repeating: 0, count: 6))
    let o = try Tensor.ones([4], dtype: .int32)
    #expect(o.dtype == .int32)
    #expect(try o.scalars(as: Int32.self) == [1, 1, 1, 1])
    let f = try Tensor.full([2, 2], value: 2.5, dtype: .float64)
    #expect(try f.scalars(as: Double.self) == [2.5, 2.5, 2.5, 2.5])
    let s = try Tensor.scalar(3)
    #expect(s.shape == [] && s.count == 1)
    #expect(try s.item() == 3)
    #expect(try Tensor.scalar(7, dtype: .int64).itemInt() == 7)
    let e = try Tensor.empty([0, 5])
    #expect(e.count == 0 && e.shape == [0, 5])
    #expect(try e.rawBytes().isEmpty)
  }

  @Test func arangeAndLinspace() throws {
    let a = try Tensor.arange(5)
    #expect(a.dtype == .int64)
    #expect(try a.scalars(as: Int64.self) == Array(0..<5))
    #expect(try Tensor.arange(2, 5).scalars(as: Int64.self) == [2, 3, 4])
    #expect(try Tensor.arange(3, dtype: .float64).scalars(as: Double.self) == [0, 1, 2])
    let b = try Tensor.arange(1, 2, step: 0.25, dtype: .float32)
    #expect(try b.scalars(as: Float.self) == stride(from: Float(1), to: 2, by: 0.25).map { $0 })
    let l = try Tensor.linspace(-1, 1, steps: 5)
    #expect(try l.scalars(as: Float.self) == [-1, -0.5, 0, 0.5, 1])
  }

  @Test("values in, values out, for every Swift element type")
  func fromValues() throws {
    let f = try Tensor([1, 2, 3, 4, 5, 6] as [Float], shape: [2, 3])
    #expect(f.shape == [2, 3] && f.dtype == .float32)
    #expect(try f.scalars(as: Float.self) == [1, 2, 3, 4, 5, 6])
    #expect(try f.scalars(as: Double.self) == [1, 2, 3, 4, 5, 6], "converted on the way out")
    #expect(try Tensor([Int64.min, -1, Int64.max]).scalars(as: Int64.self) == [Int64.min, -1, Int64.max])
    #expect(try Tensor([true, false]).scalars(as: Bool.self) == [true, false])
    #expect(try Tensor([0, 255] as [UInt8]).scalars(as: UInt8.self) == [0, 255])
    #expect(try Tensor([-128, 127] as [Int8]).dtype == .int8)
    #expect(try Tensor([1.5] as [Double]).dtype == .float64)
  }

  @Test("bfloat16 from raw bytes")
  func rawBytes() throws {
    // bfloat16 bit patterns of 1.0, -2.0 and 0.5, little-endian.
    let bits: [UInt8] = [0x80, 0x3F, 0x00, 0xC0, 0x00, 0x3F]
    let t = try bits.withUnsafeBytes { try Tensor(rawBytes: $0, shape: [3], dtype: .bfloat16) }
    #expect(try t.scalars(as: Float.self) == [1, -2, 0.5])
    #expect(try t.rawBytes() == bits)
    #expect(throws: TorchError.self) {
      try bits.withUnsafeBytes { try Tensor(rawBytes: $0, shape: [2], dtype: .bfloat16) }
    }
  }

  @Test func descriptionAndAlias() throws {
    let t = try Tensor.arange(0, 4, dtype: .float32)
    #expect(t.description.contains("3"))
    let alias = t.alias()
    try alias.fill(7)
    #expect(try t.scalars(as: Float.self) == [7, 7, 7, 7], "an alias shares storage")
  }

  @Test func dtypeProperties() {
    #expect(DType.allCases.count == 10)
    #expect(DType.bfloat16.byteCount == 2 && DType.int64.byteCount == 8 && DType.bool.byteCount == 1)
    #expect(DType.float16.isFloatingPoint && !DType.uint8.isFloatingPoint)
  }
}

/// Seeded generators: equal seeds, equal streams, and the same streams as PyTorch. Serialized because two
/// tests seed libtorch's default generator (no other test draws from it).
@Suite("Generators", .serialized)
struct GeneratorTests {
  @Test func equalSeedsGiveEqualDraws() throws {
    let a = Generator(seed: 123)
    let b = Generator(seed: 123)
    let c = Generator(seed: 124)
    let x = try Tensor.randn([50], generator: a)
    #expect(try x.equals(Tensor.randn([50], generator: b)))
    #expect(try !x.equals(Tensor.randn([50], generator: c)))
    // The stream moves on: the second draw differs from the first.
    #expect(try !Tensor.rand([8], generator: a).equals(Tensor.rand([8], generator: Generator(seed: 123))))
  }

  @Test("the same draws as torch.Generator().manual_seed(seed)", arguments: [0, 42, (1 << 40) + 7] as [UInt64])
  func matchesPyTorch(_ seed: UInt64) throws {
    let golden = try GoldenFile.load()
    #expect(try golden.json("generator.seeds", as: [UInt64].self).contains(seed))
    let g = Generator(seed: seed)
    let prefix = "generator.\(seed)"
    try expectClose(Tensor.randn([3], generator: g), golden.tensor("\(prefix).randn3"), .exact, "randn(3)")
    try expectClose(Tensor.randn([4, 5], generator: g), golden.tensor("\(prefix).randn4x5"), .exact, "randn(4, 5)")
    try expectClose(Tensor.rand([10], generator: g), golden.tensor("\(prefix).rand10"), .exact, "rand(10)")
    #expect(try Tensor.randint(0, 100, [12], generator: g).equals(golden.tensor("\(prefix).randint12")))
    #expect(try Tensor.randperm(10, generator: g).equals(golden.tensor("\(prefix).randperm10")))
    let normal = try Tensor.empty([17])
    try normal.normalInPlace(mean: 2, std: 3, generator: g)
    try expectClose(normal, golden.tensor("\(prefix).normal17"), .exact, "normal_(2, 3)")
  }

  @Test("a saved state replays the same draws")
  func stateRoundTrip() throws {
    let g = Generator(seed: 5)
    _ = try Tensor.randn([7], generator: g)
    let state = try g.state()
    #expect(state.dtype == .uint8)
    let first = try Tensor.rand([9], generator: g)
    try g.setState(state)
    #expect(try Tensor.rand([9], generator: g).equals(first))
  }

  @Test("LibTorch.manualSeed seeds the default generator")
  func manualSeed() throws {
    LibTorch.manualSeed(99)
    let a = try Tensor.randn([6])
    LibTorch.manualSeed(99)
    #expect(try Tensor.randn([6]).equals(a))
  }

  @Test("dropout with a seeded default generator is reproducible, and the identity when not training")
  func dropout() throws {
    let x = try Tensor.ones([1000])
    LibTorch.manualSeed(11)
    let a = try Functional.dropout(x, p: 0.5, training: true)
    LibTorch.manualSeed(11)
    let b = try Functional.dropout(x, p: 0.5, training: true)
    #expect(try a.equals(b))
    let kept = try a.ne(0).sum().item()
    #expect(kept > 400 && kept < 600)
    #expect(try a.max().item() == 2, "kept values are scaled by 1 / (1 − p)")
    #expect(try Functional.dropout(x, p: 0.5, training: false).equals(x))
  }
}

/// Views and shape operations, checked against the same operation done on Swift arrays.
@Suite("Shape operations")
struct ShapeTests {
  /// 0, 1, 2, … as a float32 tensor of `shape`.
  static func iota(_ shape: [Int]) throws -> Tensor {
    try Tensor.arange(0, Double(shape.reduce(1, *)), dtype: .float32).reshape(shape)
  }

  @Test func reshapeViewFlatten() throws {
    let x = try Self.iota([2, 3, 4])
    #expect(try x.reshape([4, -1]).shape == [4, 6])
    #expect(try x.view([6, 4]).shape == [6, 4])
    #expect(try x.flatten().shape == [24])
    #expect(try x.flatten(startDim: 1).shape == [2, 12])
    #expect(try x.reshape([24]).scalars(as: Float.self) == (0..<24).map(Float.init))
    // A transposed tensor has no view of another shape, but reshape copies.
    #expect(throws: TorchError.self) { try x.transposed(0, 2).view([24]) }
    #expect(try x.transposed(0, 2).reshape([24]).count == 24)
  }

  @Test func permuteAndTranspose() throws {
    let x = try Self.iota([2, 3, 4])
    let p = try x.permute([2, 0, 1])
    #expect(p.shape == [4, 2, 3])
    #expect(p.strides == [1, 12, 4])
    #expect(!p.isContiguous())
    let values = try p.contiguous().scalars(as: Float.self)
    // p[k][i][j] == x[i][j][k] == 12 i + 4 j + k.
    var expected: [Float] = []
    for k in 0..<4 { for i in 0..<2 { for j in 0..<3 { expected.append(Float(12 * i + 4 * j + k)) } } }
    #expect(values == expected)
    #expect(try p.scalars(as: Float.self) == expected, "scalars reads a non-contiguous tensor in logical order")
    let m = try Self.iota([2, 3])
    #expect(try m.t().scalars(as: Float.self) == [0, 3, 1, 4, 2, 5])
  }

  @Test func narrowSliceSelect() throws {
    let x = try Self.iota([4, 5])
    #expect(try x.narrow(dim: 1, start: 1, length: 2).scalars(as: Float.self) == [1, 2, 6, 7, 11, 12, 16, 17])
    #expect(try x.slice(dim: 0, 1..<4, step: 2).scalars(as: Float.self) == [5, 6, 7, 8, 9, 15, 16, 17, 18, 19])
    #expect(try x.select(dim: 1, index: 4).scalars(as: Float.self) == [4, 9, 14, 19])
    // Views share storage.
    try x.narrow(dim: 0, start: 0, length: 1).fill(-1)
    #expect(try x.select(dim: 0, index: 0).scalars(as: Float.self) == [-1, -1, -1, -1, -1])
  }

  @Test func catAndStack() throws {
    let a = try Self.iota([2, 2])
    let b = try Self.iota([2, 2]) + 10
    #expect(try Tensor.cat([a, b], dim: 0).scalars(as: Float.self) == [0, 1, 2, 3, 10, 11, 12, 13])
    #expect(try Tensor.cat([a, b], dim: 1).scalars(as: Float.self) == [0, 1, 10, 11, 2, 3, 12, 13])
    let s = try Tensor.stack([a, b], dim: 1)
    #expect(s.shape == [2, 2, 2])
    #expect(try s.scalars(as: Float.self) == [0, 1, 10, 11, 2, 3, 12, 13])
  }

  @Test func squeezeUnsqueeze() throws {
    let x = try Tensor.zeros([1, 3, 1, 2])
    #expect(try x.squeeze().shape == [3, 2])
    #expect(try x.squeeze(dim: 2).shape == [1, 3, 2])
    #expect(try x.squeeze(dim: 1).shape == [1, 3, 1, 2], "a dimension of size 3 stays")
    #expect(try x.unsqueeze(dim: 0).shape == [1, 1, 3, 1, 2])
    #expect(try x.unsqueeze(dim: -1).shape == [1, 3, 1, 2, 1])
  }

  @Test func flipAndPad() throws {
    let x = try Self.iota([2, 3])
    #expect(try x.flip([1]).scalars(as: Float.self) == [2, 1, 0, 5, 4, 3])
    #expect(try x.flip([0, 1]).scalars(as: Float.self) == [5, 4, 3, 2, 1, 0])
    // (1, 2) on the last dimension, (0, 1) on the first.
    let p = try x.padded([1, 2, 0, 1], value: -1)
    #expect(p.shape == [3, 6])
    #expect(try p.scalars(as: Float.self) == [-1, 0, 1, 2, -1, -1, -1, 3, 4, 5, -1, -1, -1, -1, -1, -1, -1, -1])
    #expect(try x.padded([-1, 0]).scalars(as: Float.self) == [1, 2, 4, 5], "negative padding crops")
  }

  @Test func indexSelectGatherMaskWhere() throws {
    let x = try Self.iota([3, 4])
    let rows = try Tensor([2, 0] as [Int64])
    #expect(try x.indexSelect(dim: 0, indices: rows).scalars(as: Float.self) == [8, 9, 10, 11, 0, 1, 2, 3])
    #expect(try x.indexSelect(dim: 1, indices: rows).scalars(as: Float.self) == [2, 0, 6, 4, 10, 8])
    let idx = try Tensor([3, 0, 1] as [Int64], shape: [3, 1])
    #expect(try x.gather(dim: 1, indices: idx).scalars(as: Float.self) == [3, 4, 9])
    let mask = try x.gt(5)
    #expect(mask.dtype == .bool)
    #expect(try x.maskedFill(mask, 0).scalars(as: Float.self) == [0, 1, 2, 3, 4, 5, 0, 0, 0, 0, 0, 0])
    #expect(try Tensor.where(mask, x, -x).scalars(as: Float.self) == [0, -1, -2, -3, -4, -5, 6, 7, 8, 9, 10, 11])
  }

  @Test func expand() throws {
    let x = try Tensor([1, 2, 3] as [Float], shape: [3, 1])
    let e = try x.expand([3, 2])
    #expect(e.strides == [1, 0])
    #expect(try e.scalars(as: Float.self) == [1, 1, 2, 2, 3, 3])
  }
}

/// Element-wise arithmetic with broadcasting, comparisons and dtype rules.
@Suite("Arithmetic")
struct ArithmeticTests {
  @Test func broadcasting() throws {
    let m = try Tensor([1, 2, 3, 4, 5, 6] as [Float], shape: [2, 3])
    let row = try Tensor([10, 20, 30] as [Float])
    let column = try Tensor([100, 200] as [Float], shape: [2, 1])
    #expect(try (m + row).scalars(as: Float.self) == [11, 22, 33, 14, 25, 36])
    #expect(try (m * column).scalars(as: Float.self) == [100, 200, 300, 800, 1000, 1200])
    #expect(try (row - column).shape == [2, 3])
    #expect(try (row / column).scalars(as: Float.self) == [0.1, 0.2, 0.3, 0.05, 0.1, 0.15])
    #expect(throws: TorchError.self) { try m + Tensor.ones([2]) }
  }

  @Test func scalarOperands() throws {
    let x = try Tensor([1, 2, 4] as [Float])
    #expect(try (x + 1).scalars(as: Float.self) == [2, 3, 5])
    #expect(try (x - 1).scalars(as: Float.self) == [0, 1, 3])
    #expect(try (x * 2).scalars(as: Float.self) == [2, 4, 8])
    #expect(try (x / 2).scalars(as: Float.self) == [0.5, 1, 2])
    #expect(try (1 - x).scalars(as: Float.self) == [0, -1, -3])
    #expect(try (2 * x).scalars(as: Float.self) == [2, 4, 8])
    #expect(try (1 + x).scalars(as: Float.self) == [2, 3, 5])
    #expect(try (4 / x).scalars(as: Float.self) == [4, 2, 1])
    #expect(try (-x).scalars(as: Float.self) == [-1, -2, -4])
    #expect(try x.pow(2).scalars(as: Float.self) == [1, 4, 16])
    #expect(try x.sqrt().scalars(as: Float.self) == [1, Float(2).squareRoot(), 2])
    #expect(try x.clamp(min: 1.5, max: 3).scalars(as: Float.self) == [1.5, 2, 3])
    #expect(try x.clamp(max: 2).scalars(as: Float.self) == [1, 2, 2])
  }

  @Test("integer tensors stay integer with integral scalars")
  func integerDTypes() throws {
    let i = try Tensor([1, 2, 3] as [Int64])
    #expect(try (i + 1).dtype == .int64)
    #expect(try (i * 3).scalars(as: Int64.self) == [3, 6, 9])
    #expect(try (i + 0.5).dtype == .float32, "a fractional scalar promotes, as in PyTorch")
    #expect(try i.to(.float32).dtype == .float32)
  }

  @Test func comparisonsAndLogic() throws {
    let a = try Tensor([1, 5, 3] as [Float])
    let b = try Tensor([2, 5, 1] as [Float])
    #expect(try a.lt(b).scalars(as: Bool.self) == [true, false, false])
    #expect(try a.le(b).scalars(as: Bool.self) == [true, true, false])
    #expect(try a.eq(b).scalars(as: Bool.self) == [false, true, false])
    #expect(try a.ne(b).scalars(as: Bool.self) == [true, false, true])
    #expect(try a.ge(3).scalars(as: Bool.self) == [false, true, true])
    #expect(try a.gt(b).logicalOr(a.eq(b)).scalars(as: Bool.self) == [false, true, true])
    #expect(try a.gt(b).logicalAnd(a.eq(b)).any().item() == 0)
    #expect(try a.maximum(b).scalars(as: Float.self) == [2, 5, 3])
    #expect(try a.minimum(b).scalars(as: Float.self) == [1, 5, 1])
  }

  @Test func inPlace() throws {
    let x = try Tensor.ones([3])
    try x.addInPlace(Tensor([1, 2, 3] as [Float]), alpha: 2)
    #expect(try x.scalars(as: Float.self) == [3, 5, 7])
    try x.mulInPlace(0.5)
    #expect(try x.scalars(as: Float.self) == [1.5, 2.5, 3.5])
    try x.copyFrom(Tensor([9] as [Float]))
    #expect(try x.scalars(as: Float.self) == [9, 9, 9], "copy broadcasts")
    try x.zero()
    #expect(try x.sum().item() == 0)
  }
}

/// Reductions and matrix products.
@Suite("Reductions")
struct ReductionTests {
  static let values: [Float] = [3, -1, 4, 1, -5, 9, 2, 6]

  @Test func sumMeanMaxMin() throws {
    let x = try Tensor(Self.values, shape: [2, 4])
    #expect(try x.sum().item() == 19)
    #expect(try x.mean().item() == 19.0 / 8)
    #expect(try x.sum(dims: [1]).scalars(as: Float.self) == [7, 12])
    #expect(try x.sum(dims: [0], keepDim: true).shape == [1, 4])
    #expect(try x.mean(dims: [0]).scalars(as: Float.self) == [-1, 4, 3, 3.5])
    #expect(try x.max().item() == 9)
    #expect(try x.min().item() == -5)
    #expect(try x.max(dims: [1]).scalars(as: Float.self) == [4, 9])
    let (values, indices) = try x.max(dim: 1)
    #expect(try values.scalars(as: Float.self) == [4, 9])
    #expect(try indices.scalars(as: Int64.self) == [2, 1])
    let (minValues, minIndices) = try x.min(dim: 0, keepDim: true)
    #expect(minValues.shape == [1, 4])
    #expect(try minValues.scalars(as: Float.self) == [-5, -1, 2, 1])
    #expect(try minIndices.scalars(as: Int64.self) == [1, 0, 1, 0])
    #expect(try x.prod(dim: 1).scalars(as: Float.self) == [-12, -540])
  }

  @Test func argmaxAndTopk() throws {
    let x = try Tensor(Self.values, shape: [2, 4])
    #expect(try x.argmax().itemInt() == 5, "flat index over all elements")
    #expect(try x.argmax(dim: 1).scalars(as: Int64.self) == [2, 1])
    #expect(try x.argmax(dim: 0, keepDim: true).shape == [1, 4])
    let (values, indices) = try x.topk(2, dim: 1)
    #expect(try values.scalars(as: Float.self) == [4, 3, 9, 6])
    #expect(try indices.scalars(as: Int64.self) == [2, 0, 1, 3])
    let (smallest, _) = try x.flatten().topk(3, largest: false)
    #expect(try smallest.scalars(as: Float.self) == [-5, -1, 1])
    let (sorted, order) = try Tensor(Self.values).sort(descending: true)
    #expect(try sorted.scalars(as: Float.self) == Self.values.sorted(by: >))
    #expect(try order.scalars(as: Int64.self).map { Self.values[Int($0)] } == Self.values.sorted(by: >))
  }

  @Test func normsAndVariance() throws {
    let x = try Tensor([3, 4] as [Float])
    #expect(try x.norm().item() == 5)
    #expect(try x.norm(p: 1).item() == 7)
    #expect(try x.norm(p: .infinity).item() == 4)
    let m = try Tensor([3, 4, 6, 8] as [Float], shape: [2, 2])
    #expect(try m.norm(dims: [1]).scalars(as: Float.self) == [5, 10])
    let v = try Tensor([1, 2, 3, 4] as [Float])
    expectClose(try v.variance().item(), 5.0 / 3, .float32, "variance, unbiased by default")
    #expect(try v.variance(correction: 0).item() == 1.25)
    expectClose(try v.std().item(), (5.0 / 3).squareRoot(), .float32, "std")
    #expect(try v.cumsum(dim: 0).scalars(as: Float.self) == [1, 3, 6, 10])
  }

  @Test func matmul() throws {
    let a = try Tensor([1, 2, 3, 4, 5, 6] as [Float], shape: [2, 3])
    let b = try Tensor([7, 8, 9, 10, 11, 12] as [Float], shape: [3, 2])
    // [[1·7 + 2·9 + 3·11, 1·8 + 2·10 + 3·12], [4·7 + 5·9 + 6·11, 4·8 + 5·10 + 6·12]]
    #expect(try a.matmul(b).scalars(as: Float.self) == [58, 64, 139, 154])
    let identity = try Tensor([1, 0, 0, 1] as [Float], shape: [2, 2])
    #expect(try a.t().matmul(identity).equals(a.t().contiguous()))
    let y = try Functional.linear(a, weight: b.t(), bias: Tensor([1, -1] as [Float]))
    #expect(try y.scalars(as: Float.self) == [59, 63, 140, 153])
  }

  @Test func allCloseAndEquals() throws {
    let a = try Tensor([1, 2] as [Float])
    #expect(try a.allClose(a + 1e-7))
    #expect(try !a.allClose(a + 1e-3))
    #expect(try a.equals(a.clone()))
    #expect(try !a.equals(Tensor([1, 2, 3] as [Float])))
  }
}

/// Autograd: leaves, backward, accumulation, clearing, no-grad scopes.
@Suite("Autograd")
struct AutogradTests {
  @Test func backwardAccumulatesAndClears() throws {
    let x = try Tensor([1, -2, 3] as [Float])
    #expect(!x.requiresGrad && x.isLeaf && x.grad == nil)
    try x.requiringGrad()
    #expect(x.requiresGrad)
    let y = try (x * x).sum()
    #expect(y.requiresGrad && !y.isLeaf)
    try y.backward(retainGraph: true)
    #expect(try #require(x.grad).scalars(as: Float.self) == [2, -4, 6])
    try y.backward()
    #expect(try #require(x.grad).scalars(as: Float.self) == [4, -8, 12], "gradients accumulate")
    try x.setGrad(nil)
    #expect(x.grad == nil)
    try x.setGrad(Tensor.ones([3]))
    #expect(try #require(x.grad).scalars(as: Float.self) == [1, 1, 1])
  }

  @Test("backward with an explicit gradient, and detach")
  func explicitGradient() throws {
    let x = try Tensor.arange(0, 4, dtype: .float32).requiringGrad()
    let y = try x * 3
    try y.backward(gradient: Tensor([1, 0, 2, 1] as [Float]))
    #expect(try #require(x.grad).scalars(as: Float.self) == [3, 0, 6, 3])
    let d = try y.detach()
    #expect(!d.requiresGrad && d.isLeaf)
    #expect(try d.equals(y))
  }

  @Test func gradientsOfCommonFunctions() throws {
    let x = try Tensor([0.5, -1, 2] as [Float]).requiringGrad()
    try x.sigmoid().sum().backward()
    let s = try x.detach().sigmoid()
    try expectClose(#require(x.grad), s * (1 - s), .float32, "dσ/dx = σ(1 − σ)")
    try x.setGrad(nil)
    try x.exp().mean().backward()
    try expectClose(#require(x.grad), x.detach().exp() / 3, .float32, "d mean(exp x)/dx")
  }

  @Test func noGradScope() throws {
    let x = try Tensor.ones([2]).requiringGrad()
    #expect(isGradEnabled)
    let y = try withNoGrad {
      #expect(!isGradEnabled)
      return try x * 2
    }
    #expect(isGradEnabled, "restored afterwards")
    #expect(!y.requiresGrad)
    // Restored also when the body throws.
    #expect(throws: TorchError.self) {
      try withNoGrad { _ = try x.reshape([5]) }
    }
    #expect(isGradEnabled)
    try withGradEnabled(false) {
      let tracked = try withGradEnabled(true) { try x * 2 }
      #expect(tracked.requiresGrad)
      #expect(!isGradEnabled)
    }
  }

  @Test("autocast to bfloat16 runs conv3d in bfloat16")
  func autocastConv3d() throws {
    let g = Generator(seed: 3)
    let x = try Tensor.randn([1, 2, 4, 4, 4], generator: g)
    let w = try Tensor.randn([3, 2, 3, 3, 3], generator: g)
    let reference = try Functional.conv3d(x, weight: w, padding: [1, 1, 1])
    #expect(reference.dtype == .float32)
    let mixed = try withAutocast(device: .cpu, dtype: .bfloat16) {
      try Functional.conv3d(x, weight: w, padding: [1, 1, 1])
    }
    #expect(mixed.dtype == .bfloat16)
    try expectClose(mixed.to(.float32), reference, Tolerance(rtol: 2e-2, atol: 5e-2), "bfloat16 conv3d")
    let after = try Functional.conv3d(x, weight: w, padding: [1, 1, 1])
    #expect(after.dtype == .float32, "autocast ends with the scope")
  }

  @Test("autocast scopes nest: an inner scope restores the outer one's dtype")
  func nestedAutocast() throws {
    let g = Generator(seed: 4)
    let x = try Tensor.randn([1, 2, 4, 4, 4], generator: g)
    let w = try Tensor.randn([3, 2, 3, 3, 3], generator: g)
    let (inner, outer, disabled) = try withAutocast(dtype: .float16) { () throws -> (DType, DType, DType) in
      let inner = try withAutocast(dtype: .bfloat16) { try Functional.conv3d(x, weight: w).dtype }
      let disabled = try withAutocast(enabled: false) { try Functional.conv3d(x, weight: w).dtype }
      return (inner, try Functional.conv3d(x, weight: w).dtype, disabled)
    }
    #expect(inner == .bfloat16)
    #expect(outer == .float16)
    #expect(disabled == .float32)
    #expect(try Functional.conv3d(x, weight: w).dtype == .float32)
  }
}
