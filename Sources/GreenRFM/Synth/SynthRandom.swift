import Foundation
import MedicalImaging

/// The one source of randomness of the synthetic cohort: `MedicalImaging.SeededGenerator` (SplitMix64) with
/// documented draws, so a cohort depends only on its seed and never on the system generator, the Swift
/// standard library's `random(in:)` implementation or the number of threads.
///
/// Each patient has independent streams (anatomy, finding draws, one per finding's parameters, report wording,
/// noise), each seeded by `SynthRandom.seed(cohortSeed, split, patientIndex, stream)`, so forcing a finding on or
/// off changes neither the anatomy nor another finding's parameters.
struct SynthRandom {
  private var generator: SeededGenerator

  init(seed: UInt64) { generator = SeededGenerator(seed: seed) }

  /// A seed mixed from several 64-bit parts with the SplitMix64 finaliser (order matters).
  static func seed(_ parts: UInt64...) -> UInt64 {
    var h: UInt64 = 0x243F_6A88_85A3_08D3
    for p in parts {
      h = finalise(h ^ finalise(p &+ 0x9E37_79B9_7F4A_7C15))
    }
    return h
  }

  static func finalise(_ value: UInt64) -> UInt64 {
    var z = value
    z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
    z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
    return z ^ (z >> 31)
  }

  mutating func next() -> UInt64 { generator.next() }

  /// Uniform in [0, 1) with 53 random bits.
  mutating func uniform() -> Double { Double(generator.next() >> 11) * 0x1p-53 }

  /// Uniform in [a, b).
  mutating func uniform(_ a: Double, _ b: Double) -> Double { a + (b - a) * uniform() }

  /// Uniform integer in 0..<n (modulo bias below 2⁻⁵⁰ for the small n used here).
  mutating func int(_ n: Int) -> Int { Int(generator.next() % UInt64(max(n, 1))) }

  /// Uniform integer in a...b.
  mutating func int(_ a: Int, _ b: Int) -> Int { a + int(b - a + 1) }

  mutating func bernoulli(_ p: Double) -> Bool { uniform() < p }

  /// Standard normal (Box–Muller, one value per call).
  mutating func normal() -> Double {
    let u1 = max(uniform(), 0x1p-60), u2 = uniform()
    return (-2 * Foundation.log(u1)).squareRoot() * Foundation.cos(2 * Double.pi * u2)
  }

  mutating func pick<T>(_ items: [T]) -> T { items[int(items.count)] }

  /// A uniformly random unit vector.
  mutating func direction() -> Vec3 {
    let z = uniform(-1, 1), phi = uniform(0, 2 * Double.pi)
    let r = (1 - z * z).squareRoot()
    return Vec3(r * Foundation.cos(phi), r * Foundation.sin(phi), z)
  }
}

/// A point or vector in the body frame, in mm: x towards the patient's left, y towards posterior, z towards
/// superior (0 at the lowest slice).
struct Vec3: Equatable, Sendable {
  var x, y, z: Double
  init(_ x: Double, _ y: Double, _ z: Double) { (self.x, self.y, self.z) = (x, y, z) }
  static func + (a: Vec3, b: Vec3) -> Vec3 { Vec3(a.x + b.x, a.y + b.y, a.z + b.z) }
  static func - (a: Vec3, b: Vec3) -> Vec3 { Vec3(a.x - b.x, a.y - b.y, a.z - b.z) }
  static func * (a: Vec3, s: Double) -> Vec3 { Vec3(a.x * s, a.y * s, a.z * s) }
  func dot(_ b: Vec3) -> Double { x * b.x + y * b.y + z * b.z }
  func cross(_ b: Vec3) -> Vec3 { Vec3(y * b.z - z * b.y, z * b.x - x * b.z, x * b.y - y * b.x) }
  var length: Double { dot(self).squareRoot() }
  var normalised: Vec3 { let l = length; return l > 0 ? self * (1 / l) : Vec3(0, 0, 1) }
  /// Linear interpolation: `a` at s = 0, `b` at s = 1.
  static func lerp(_ a: Vec3, _ b: Vec3, _ s: Double) -> Vec3 { a + (b - a) * s }
}
