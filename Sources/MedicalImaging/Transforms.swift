import Foundation

/// A preprocessing step: a small value with a name that maps a volume to a volume.
///
/// Deterministic transforms ignore the generator; random ones draw from it, so a seeded `SeededGenerator` makes a
/// whole pipeline reproducible (MONAI's `Randomizable`, with every draw in one place).
public protocol VolumeTransform: Sendable {
  /// A short name used in errors and sidecars (e.g. "resample(1.5,1.5,3)").
  var name: String { get }
  /// True when `apply` draws random numbers (caching must stop before the first such transform).
  var isRandom: Bool { get }
  /// Applies the transform.
  /// - Throws: `TransformError` with this transform's name and the input's shape.
  func apply(_ volume: Volume, generator: inout SeededGenerator) throws -> Volume
}

extension VolumeTransform {
  public var isRandom: Bool { false }
}

/// A failure inside a transform, rethrown with its name and the input shape (as MONAI does).
public struct TransformError: Error, CustomStringConvertible {
  public var transform: String
  public var inputShape: [Int]
  public var underlying: Error
  public var description: String { "transform \(transform) failed on a volume of shape \(inputShape): \(underlying)" }
}

/// SplitMix64: a small, fast, seedable generator (Steele, Lea & Flood 2014); the one source of randomness for
/// augmentation.
public struct SeededGenerator: RandomNumberGenerator, Sendable {
  private var state: UInt64
  public init(seed: UInt64) { state = seed }
  public mutating func next() -> UInt64 {
    state &+= 0x9E37_79B9_7F4A_7C15
    var z = state
    z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
    z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
    return z ^ (z >> 31)
  }
}

/// Transforms applied in order.
public struct Compose: VolumeTransform {
  public var transforms: [any VolumeTransform]
  public init(_ transforms: [any VolumeTransform]) { self.transforms = transforms }
  public var name: String { transforms.map(\.name).joined(separator: " → ") }
  public var isRandom: Bool { transforms.contains { $0.isRandom } }
  public func apply(_ volume: Volume, generator: inout SeededGenerator) throws -> Volume {
    var v = volume
    for t in transforms {
      do { v = try t.apply(v, generator: &generator) } catch let error as TransformError { throw error } catch {
        throw TransformError(transform: t.name, inputShape: v.shape, underlying: error)
      }
    }
    return v
  }
}

// MARK: - Reorientation

/// Reorients voxel axes to the given axis codes by an exact permutation and flips (no interpolation); the affine
/// is updated so every voxel keeps its world position. Matches nibabel `as_closest_canonical` for RAS and MONAI
/// `Orientation(axcodes:)`.
public struct Reorient: VolumeTransform {
  public var target: Orientation
  public init(to target: Orientation = .ras) { self.target = target }
  public var name: String { "reorient(\(target.codes))" }

  public func apply(_ volume: Volume, generator: inout SeededGenerator) throws -> Volume {
    Reorient.reorient(volume, to: target)
  }

  /// How to read a volume of `shape` in orientation `current` so that it comes out in `target`.
  struct Plan {
    /// For each new axis: the old axis it takes.
    var source: [Int]
    var newShape: [Int]
    /// Element strides in the old layout per new axis (negative when flipped) and the old index of new voxel 0.
    var stride: [Int]
    var start: Int
    /// New voxel → old voxel.
    var newToOld: Affine
  }

  static func plan(shape oldShape: [Int], from current: Orientation, to target: Orientation) -> Plan {
    // New axis a takes old axis p (the one following the same world axis); flipped if the signs differ.
    var source = [0, 0, 0], flip = [false, false, false]
    for a in 0..<3 {
      let p = current.worldAxes.firstIndex(of: target.worldAxes[a])!
      source[a] = p
      flip[a] = current.signs[p] != target.signs[a]
    }
    let oldStrides = [1, oldShape[0], oldShape[0] * oldShape[1]]
    var stride = [0, 0, 0], start = 0
    for a in 0..<3 {
      let s = oldStrides[source[a]]
      if flip[a] { stride[a] = -s; start += (oldShape[source[a]] - 1) * s } else { stride[a] = s }
    }
    var t = Affine.identity
    for r in 0..<3 { for c in 0..<4 { t[r, c] = 0 } }
    for a in 0..<3 {
      let p = source[a]
      if flip[a] { t[p, a] = -1; t[p, 3] = Double(oldShape[p] - 1) } else { t[p, a] = 1 }
    }
    return Plan(source: source, newShape: source.map { oldShape[$0] }, stride: stride, start: start, newToOld: t)
  }

  /// Runs `row(destination, oldIndexOfFirst, oldStride, count)` for every output row of a plan, in parallel.
  static func gatherRows(_ plan: Plan, into destination: UnsafeMutablePointer<Float>,
                         _ row: (UnsafeMutablePointer<Float>, Int, Int, Int) -> Void) {
    let (n0, n1, n2) = (plan.newShape[0], plan.newShape[1], plan.newShape[2])
    parallelChunks(n2, minimumChunk: 1) { k0, k1 in
      for k in k0..<k1 {
        for j in 0..<n1 {
          row(destination + (k * n1 + j) * n0, plan.start + k * plan.stride[2] + j * plan.stride[1], plan.stride[0], n0)
        }
      }
    }
  }

  /// Reorients `volume`; returns it unchanged when it already has the target orientation.
  public static func reorient(_ volume: Volume, to target: Orientation) -> Volume {
    let current = volume.orientation
    if current == target { return volume }
    let plan = plan(shape: volume.shape, from: current, to: target)
    var out = [Float](repeating: 0, count: volume.count)
    volume.voxels.withUnsafeBufferPointer { input in
      out.withUnsafeMutableBufferPointer { output in
        let src = input.baseAddress!
        gatherRows(plan, into: output.baseAddress!) { row, first, step, count in
          if step == 1 {
            row.update(from: src + first, count: count)
          } else {
            var o = first
            for i in 0..<count { row[i] = src[o]; o += step }
          }
        }
      }
    }
    var result = volume
    result.shape = plan.newShape
    result.voxels = out
    result.affine = volume.affine * plan.newToOld
    result.spacingMM = plan.source.map { volume.spacingMM[$0] }
    return result
  }
}

// MARK: - Resampling

/// Resamples to a target voxel spacing: trilinear for images, nearest neighbour for masks.
///
/// Output shape along each axis is `round(n × spacing / targetSpacing)` (at least 1); output voxel o samples the
/// input at `o × targetSpacing / spacing` (voxel 0 stays in place, so the affine's origin is unchanged and its
/// columns are scaled). Samples past the last voxel take the edge value. This equals
/// `scipy.ndimage.affine_transform(x, diag(ratio), order=1, mode="nearest")` (order=0 for nearest).
/// A volume already at the target spacing (within 1e-6 mm) is returned unaltered.
public struct Resample: VolumeTransform {
  public enum Interpolation: String, Sendable, Codable { case trilinear, nearest }
  public var targetSpacingMM: [Double]
  public var interpolation: Interpolation

  /// Chest and abdomen default: 1.5 × 1.5 × 3 mm (along the RAS axes i, j, k).
  public static let ctDefaultSpacingMM: [Double] = [1.5, 1.5, 3.0]

  /// - Precondition: three finite spacings > 0 (traps otherwise: a programmer error).
  public init(spacingMM: [Double] = Resample.ctDefaultSpacingMM, interpolation: Interpolation = .trilinear) {
    precondition(spacingMM.count == 3 && spacingMM.allSatisfy { $0.isFinite && $0 > 0 }, "Resample: bad target spacing \(spacingMM)")
    targetSpacingMM = spacingMM
    self.interpolation = interpolation
  }

  public var name: String { "resample(\(targetSpacingMM.map { String($0) }.joined(separator: ",")) mm, \(interpolation.rawValue))" }

  public func apply(_ volume: Volume, generator: inout SeededGenerator) throws -> Volume {
    try validateSpacing(volume.spacingMM, path: "(volume)")
    if zip(volume.spacingMM, targetSpacingMM).allSatisfy({ abs($0 - $1) < 1e-6 }) { return volume }
    let ratio = (0..<3).map { targetSpacingMM[$0] / volume.spacingMM[$0] }
    let exact = (0..<3).map { (Double(volume.shape[$0]) * volume.spacingMM[$0] / targetSpacingMM[$0] + 0.5).rounded(.down) }
    guard exact.allSatisfy({ $0.isFinite && $0 < Double(voxelBudget) }) else {
      throw MedicalImagingError.invalidArgument(
        name: "resample", reason: "output size \(exact) voxels (input \(volume.shape) at \(volume.spacingMM) mm → \(targetSpacingMM) mm) exceeds the budget of \(voxelBudget) voxels")
    }
    let newShape = exact.map { max(1, Int($0)) }
    try checkVoxelBudget(newShape, what: "resample output (input \(volume.shape) at \(volume.spacingMM) mm → \(targetSpacingMM) mm)")
    let n = volume.shape
    // Per-axis source indices and weights.
    func taps(_ axis: Int) -> (lower: [Int], upper: [Int], weight: [Float]) {
      var lower = [Int](), upper = [Int](), weight = [Float]()
      for o in 0..<newShape[axis] {
        let x = Double(o) * ratio[axis]
        let last = n[axis] - 1
        if interpolation == .nearest {
          let r = min(last, max(0, Int(x.rounded(.toNearestOrEven))))
          lower.append(r); upper.append(r); weight.append(0)
        } else if x >= Double(last) {
          lower.append(last); upper.append(last); weight.append(0)
        } else {
          let f = x.rounded(.down)
          lower.append(Int(f)); upper.append(min(Int(f) + 1, last)); weight.append(Float(x - f))
        }
      }
      return (lower, upper, weight)
    }
    let ti = taps(0), tj = taps(1), tk = taps(2)
    let (m0, m1, m2) = (newShape[0], newShape[1], newShape[2])
    let plane = n[0] * n[1]
    var out = [Float](repeating: 0, count: m0 * m1 * m2)
    volume.voxels.withUnsafeBufferPointer { input in
      out.withUnsafeMutableBufferPointer { output in
        let src = input.baseAddress!, dst = output.baseAddress!
        parallelChunks(m2, minimumChunk: 1) { k0, k1 in
          // Row buffers: interpolate along k and j first into a row of the input's i extent, then along i.
          var row = [Float](repeating: 0, count: n[0])
          for k in k0..<k1 {
            let ka = tk.lower[k] * plane, kb = tk.upper[k] * plane, wk = tk.weight[k]
            for j in 0..<m1 {
              let ja = tj.lower[j] * n[0], jb = tj.upper[j] * n[0], wj = tj.weight[j]
              let p00 = src + ka + ja, p01 = src + ka + jb, p10 = src + kb + ja, p11 = src + kb + jb
              row.withUnsafeMutableBufferPointer { r in
                for i in 0..<n[0] {
                  let a = p00[i] + (p01[i] - p00[i]) * wj
                  let b = p10[i] + (p11[i] - p10[i]) * wj
                  r[i] = a + (b - a) * wk
                }
                let line = dst + (k * m1 + j) * m0
                for i in 0..<m0 {
                  let lo = r[ti.lower[i]], hi = r[ti.upper[i]]
                  line[i] = lo + (hi - lo) * ti.weight[i]
                }
              }
            }
          }
        }
      }
    }
    var result = volume
    result.shape = newShape
    result.voxels = out
    for c in 0..<3 { for r in 0..<3 { result.affine[r, c] = volume.affine[r, c] * ratio[c] } }
    result.spacingMM = targetSpacingMM
    return result
  }
}

// MARK: - Intensity

/// Clips HU to [lowerHU, upperHU] and maps that range linearly onto [−1, 1].
/// Chest: [−1000, 200] (i.e. (HU + 400) / 600); abdomen: [−1000, 1000] (HU / 1000).
public struct HUWindow: VolumeTransform, Codable, Equatable {
  public var lowerHU: Double
  public var upperHU: Double
  public static let chest = HUWindow(lowerHU: -1000, upperHU: 200)
  public static let abdomen = HUWindow(lowerHU: -1000, upperHU: 1000)

  /// - Precondition: lowerHU < upperHU, both finite.
  public init(lowerHU: Double, upperHU: Double) {
    precondition(lowerHU.isFinite && upperHU.isFinite && lowerHU < upperHU, "HUWindow: need lower < upper, got [\(lowerHU), \(upperHU)]")
    self.lowerHU = lowerHU
    self.upperHU = upperHU
  }

  public var name: String { "huWindow(\(lowerHU),\(upperHU))" }

  /// The output value of one HU value.
  public func map(_ hu: Float) -> Float {
    let lo = Float(lowerHU), hi = Float(upperHU)
    let scale = 2 / (hi - lo), centre = (lo + hi) / 2
    return (min(max(hu, lo), hi) - centre) * scale
  }

  public func apply(_ volume: Volume, generator: inout SeededGenerator) throws -> Volume {
    var result = volume
    let lo = Float(lowerHU), hi = Float(upperHU)
    let scale = 2 / (hi - lo), centre = (lo + hi) / 2
    result.voxels.withUnsafeMutableBufferPointer { buffer in
      let p = buffer.baseAddress!
      parallelChunks(buffer.count) { s, e in
        for n in s..<e { p[n] = (min(max(p[n], lo), hi) - centre) * scale }
      }
    }
    return result
  }
}

/// MRI normalisation: clip to the [lowerPercentile, upperPercentile] percentiles, then z-score (mean 0, std 1).
public struct PercentileZScore: VolumeTransform {
  public var lowerPercentile: Double = 1
  public var upperPercentile: Double = 99
  public init(lowerPercentile: Double = 1, upperPercentile: Double = 99) {
    self.lowerPercentile = lowerPercentile
    self.upperPercentile = upperPercentile
  }
  public var name: String { "percentileZScore(\(lowerPercentile),\(upperPercentile))" }

  public func apply(_ volume: Volume, generator: inout SeededGenerator) throws -> Volume {
    guard !volume.voxels.isEmpty else { return volume }
    // NaN voxels are ignored for the statistics (numpy.nanpercentile) and become 0 (the mean) in the output.
    let sorted = volume.voxels.filter { !$0.isNaN }.sorted()
    guard !sorted.isEmpty else { var all = volume; all.voxels = all.voxels.map { _ in 0 }; return all }
    // Linear interpolation between closest ranks (numpy.percentile's default).
    func percentile(_ q: Double) -> Float {
      let x = q / 100 * Double(sorted.count - 1)
      let lo = Int(x.rounded(.down)), hi = min(lo + 1, sorted.count - 1)
      return sorted[lo] + (sorted[hi] - sorted[lo]) * Float(x - Double(lo))
    }
    let lo = percentile(lowerPercentile), hi = percentile(upperPercentile)
    var result = volume
    var sum = 0.0, sumSquares = 0.0
    for n in result.voxels.indices where !result.voxels[n].isNaN {
      let v = min(max(result.voxels[n], lo), hi)
      result.voxels[n] = v
      sum += Double(v)
      sumSquares += Double(v) * Double(v)
    }
    let count = Double(sorted.count)
    let mean = sum / count
    let std = max((sumSquares / count - mean * mean).squareRoot(), 1e-8)
    result.voxels = result.voxels.map { $0.isNaN ? 0 : Float((Double($0) - mean) / std) }
    return result
  }
}

// MARK: - Crop and pad

/// Centre crop and/or pad to a size (voxels along i, j, k), padding with `padValue` (air: −1000 HU before
/// windowing, −1 after). Crop start along an axis is ⌊(n − size) / 2⌋; padding before is ⌊(size − n) / 2⌋.
/// The affine is shifted so voxels keep their world positions.
public struct CenterCropOrPad: VolumeTransform {
  public var size: [Int]
  public var padValue: Float
  public static let chestSize = [192, 192, 96]
  public static let abdomenSize = [224, 224, 144]

  public init(size: [Int], padValue: Float) {
    precondition(size.count == 3 && size.allSatisfy { $0 > 0 }, "CenterCropOrPad: bad size \(size)")
    self.size = size
    self.padValue = padValue
  }
  public var name: String { "centerCropOrPad(\(size.map(String.init).joined(separator: "×")))" }

  public func apply(_ volume: Volume, generator: inout SeededGenerator) throws -> Volume {
    var offset = [0, 0, 0]
    for a in 0..<3 {
      let slack: Int = volume.shape[a] - size[a]
      offset[a] = slack >= 0 ? slack / 2 : -((-slack) / 2)
    }
    try checkVoxelBudget(size, what: "crop/pad size")
    return crop(volume, size: size, start: offset, padValue: padValue)
  }
}

/// The most voxels a transform will allocate (2^30 floats = 4 GiB).
public let voxelBudget = 1 << 30

/// Throws `.invalidArgument` when `shape`'s voxel count overflows or exceeds `voxelBudget`.
@discardableResult
func checkVoxelBudget(_ shape: [Int], what: String) throws -> Int {
  var product = 1
  for n in shape {
    let (p, overflow) = product.multipliedReportingOverflow(by: n)
    guard n >= 0, !overflow, p <= voxelBudget else {
      throw MedicalImagingError.invalidArgument(name: what, reason: "\(shape.map(String.init).joined(separator: "×")) voxels exceeds the budget of \(voxelBudget) voxels")
    }
    product = p
  }
  return product
}

/// A window of `size` starting at input voxel `start` (negative or past the end: padded with `padValue`).
func crop(_ volume: Volume, size: [Int], start: [Int], padValue: Float) -> Volume {
  if size == volume.shape && start == [0, 0, 0] { return volume }
  let n = volume.shape
  var out = [Float](repeating: padValue, count: size[0] * size[1] * size[2])
  let i0 = max(0, -start[0]), i1 = min(size[0], n[0] - start[0])
  volume.voxels.withUnsafeBufferPointer { input in
    out.withUnsafeMutableBufferPointer { output in
      guard i0 < i1 else { return }
      for k in 0..<size[2] {
        let sk = k + start[2]
        if sk < 0 || sk >= n[2] { continue }
        for j in 0..<size[1] {
          let sj = j + start[1]
          if sj < 0 || sj >= n[1] { continue }
          let src = input.baseAddress! + (sk * n[1] + sj) * n[0] + start[0]
          let dst = output.baseAddress! + (k * size[1] + j) * size[0]
          (dst + i0).update(from: src + i0, count: i1 - i0)
        }
      }
    }
  }
  var result = volume
  result.shape = size
  result.voxels = out
  let origin = volume.affine.world(Double(start[0]), Double(start[1]), Double(start[2]))
  for r in 0..<3 { result.affine[r, 3] = origin[r] }
  return result
}

/// Random crop to `size` (voxels along i, j, k): a uniformly drawn start in every axis (padding first with
/// `padValue` where the volume is smaller).
public struct RandomCrop: VolumeTransform {
  public var size: [Int]
  public var padValue: Float
  public init(size: [Int], padValue: Float) {
    precondition(size.count == 3 && size.allSatisfy { $0 > 0 }, "RandomCrop: bad size \(size)")
    self.size = size
    self.padValue = padValue
  }
  public var name: String { "randomCrop(\(size.map(String.init).joined(separator: "×")))" }
  public var isRandom: Bool { true }
  public func apply(_ volume: Volume, generator: inout SeededGenerator) throws -> Volume {
    var start = [0, 0, 0]
    for a in 0..<3 {
      let slack = volume.shape[a] - size[a]
      start[a] = slack >= 0 ? Int.random(in: 0...slack, using: &generator) : -((size[a] - volume.shape[a]) / 2)
    }
    try checkVoxelBudget(size, what: "random crop size")
    return crop(volume, size: size, start: start, padValue: padValue)
  }
}

/// Flips each voxel axis listed in `axes` with probability `probability` (an exact index reversal; the affine
/// follows, so world positions are kept).
public struct RandomFlip: VolumeTransform {
  public var axes: [Int]
  public var probability: Double
  public init(axes: [Int] = [0, 1, 2], probability: Double = 0.5) {
    self.axes = axes
    self.probability = probability
  }
  public var name: String { "randomFlip(\(axes), p=\(probability))" }
  public var isRandom: Bool { true }
  public func apply(_ volume: Volume, generator: inout SeededGenerator) throws -> Volume {
    var v = volume
    for axis in axes where Double.random(in: 0..<1, using: &generator) < probability {
      var target = v.orientation
      target.signs[axis] = -target.signs[axis]
      v = Reorient.reorient(v, to: target)
    }
    return v
  }
}

/// Intensity jitter: `value × (1 + s) + o` with s uniform in ±`scale`, o uniform in ±`shift`.
public struct IntensityJitter: VolumeTransform {
  public var scale: Float
  public var shift: Float
  public init(scale: Float = 0.1, shift: Float = 0.1) {
    self.scale = scale
    self.shift = shift
  }
  public var name: String { "intensityJitter(±\(scale), ±\(shift))" }
  public var isRandom: Bool { true }
  public func apply(_ volume: Volume, generator: inout SeededGenerator) throws -> Volume {
    let s = 1 + Float.random(in: -scale...scale, using: &generator)
    let o = Float.random(in: -shift...shift, using: &generator)
    var v = volume
    v.voxels = v.voxels.map { $0 * s + o }
    return v
  }
}

// MARK: - Tensor

/// A volume as a `[1, D, H, W]` float array: the voxel-axis mapping is D = k, H = j, W = i.
///
/// With the volume stored i fastest, this is the same memory order (row-major `[1, D, H, W]`, W fastest), so
/// `values` is the volume's voxels without a copy. After `Reorient(to: .ras)`, W runs towards patient right,
/// H anterior, D superior.
public struct VolumeTensor: Sendable {
  /// [1, D, H, W].
  public var shape: [Int]
  /// Row-major values.
  public var values: [Float]

  public init(_ volume: Volume) {
    shape = [1, volume.shape[2], volume.shape[1], volume.shape[0]]
    values = volume.voxels
  }

  /// The value at (0, d, h, w).
  public subscript(d d: Int, h h: Int, w w: Int) -> Float { values[(d * shape[2] + h) * shape[3] + w] }
}
