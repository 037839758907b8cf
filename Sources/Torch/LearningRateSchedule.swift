import Foundation

/// A learning rate per optimizer step.
public protocol LearningRateSchedule: Sendable {
  /// The learning rate for the update with 0-based index `step`.
  func learningRate(at step: Int) -> Double
}

/// The same learning rate at every step.
public struct ConstantSchedule: LearningRateSchedule {
  public let value: Double
  public init(_ value: Double) { self.value = value }
  public func learningRate(at step: Int) -> Double { value }
}

/// Linear warm-up followed by cosine annealing to a floor.
///
/// For step `s` of `totalSteps`, with `W = warmupSteps`:
/// - `s < W`: `base · (f + (1 − f) · s / W)`, `f = warmupStartFactor`;
/// - `s ≥ W`: `floor + (base − floor) · (1 + cos(π · min(1, (s − W) / (totalSteps − W)))) / 2`.
///
/// This equals PyTorch's `SequentialLR([LinearLR(start_factor=f, total_iters=W),
/// CosineAnnealingLR(T_max=totalSteps − W, eta_min=floor)], milestones=[W])`, the schedule of the
/// GreenRFM authors' training (cosine to 1e-6 over all steps) with an optional warm-up.
public struct CosineWithWarmup: LearningRateSchedule {
  public let baseLR: Double
  public let warmupSteps: Int
  public let totalSteps: Int
  public let floorLR: Double
  public let warmupStartFactor: Double

  /// - Throws: `TorchError.invalidArgument` unless `0 ≤ warmupSteps < totalSteps`, `floorLR ≤ baseLR` and
  ///   `0 < warmupStartFactor ≤ 1`.
  public init(baseLR: Double, warmupSteps: Int, totalSteps: Int, floorLR: Double = 0,
              warmupStartFactor: Double = 0.01) throws {
    guard warmupSteps >= 0, totalSteps > warmupSteps else {
      throw TorchError.invalidArgument(
        "cosine schedule: need 0 ≤ warm-up steps (\(warmupSteps)) < total steps (\(totalSteps))")
    }
    guard floorLR >= 0, floorLR <= baseLR else {
      throw TorchError.invalidArgument("cosine schedule: the floor \(floorLR) must lie in [0, \(baseLR)]")
    }
    guard warmupStartFactor > 0, warmupStartFactor <= 1 else {
      throw TorchError.invalidArgument("cosine schedule: warm-up start factor must lie in (0, 1]")
    }
    self.baseLR = baseLR
    self.warmupSteps = warmupSteps
    self.totalSteps = totalSteps
    self.floorLR = floorLR
    self.warmupStartFactor = warmupStartFactor
  }

  public func learningRate(at step: Int) -> Double {
    if step < warmupSteps {
      return baseLR * (warmupStartFactor + (1 - warmupStartFactor) * Double(step) / Double(warmupSteps))
    }
    let progress = Swift.min(1, Double(step - warmupSteps) / Double(totalSteps - warmupSteps))
    return floorLR + (baseLR - floorLR) * (1 + cos(Double.pi * progress)) / 2
  }
}
