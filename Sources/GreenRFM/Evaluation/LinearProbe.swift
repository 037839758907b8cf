import Foundation
import Torch

/// Linear probes: one L2-regularised logistic regression per finding on frozen embeddings.
///
/// Per finding j, on the training studies labelled 0/1 (n_j of them), with features standardised by the training
/// mean and standard deviation:
///
///     minimise  (1 / n_j) Σ_i BCE(x_i · w_j + b_j, y_ij) + (λ / 2) ‖w_j‖²      (the bias is not penalised)
///
/// — scikit-learn's `LogisticRegression(C = 1 / (λ · n_j))` on the standardised features. All findings are fitted
/// together in float64 by full-batch Nesterov-accelerated gradient descent with step 1/L (L bounded by a power
/// iteration), warm-started from the next-stronger λ, until every gradient entry is below `tolerance`. Nothing is
/// random, so a probe is deterministic. λ is chosen per finding by the validation AUROC.
public enum LinearProbe {
  /// Probe settings.
  public struct Options: Sendable, Equatable {
    /// The λ grid tried on the validation split (any order; fitted from the largest down).
    public var regularizations: [Double] = [10, 1, 0.1, 0.01, 0.001]
    /// λ for a finding whose validation AUROC is undefined at every λ.
    public var defaultRegularization: Double = 0.01
    public var maxIterations: Int = 2000
    /// Stop when every |gradient| entry of every finding is below this.
    public var tolerance: Double = 1e-6

    public init() {}
  }

  /// One finding's fitted probe.
  public struct FindingFit: Sendable, Equatable {
    /// The chosen λ.
    public var regularization: Double
    /// Validation AUROC at each λ of the grid (nil where undefined), in `Options.regularizations` order.
    public var validationAUROC: [Double?]
    /// False when the training studies of this finding have a single class: its probabilities are then the constant
    /// training prevalence (0 or 1), not a fitted model.
    public var fitted: Bool
    /// Weights on the standardised features `[D]` and the bias.
    public var weights: [Double]
    public var bias: Double
  }

  /// The outcome of a probe.
  public struct Result: Sendable {
    /// Test probabilities `[N_test][C]`.
    public var probabilities: [[Double]]
    public var fits: [FindingFit]
    /// Iterations used per λ, and whether each converged.
    public var iterations: [Int]
    public var converged: [Bool]
  }

  /// Fits per-finding probes on `train`, picks λ on `validation`, and predicts `test`.
  /// - Parameters:
  ///   - trainFeatures: `[N_train, D]` embeddings; any float dtype (computed in float64 on their device).
  ///   - trainLabels: `[N_train][C]`, 1/0 (others ignored per finding).
  ///   - validationFeatures / validationLabels: the validation split, same layout.
  ///   - testFeatures: `[N_test, D]`.
  /// - Traps: on mismatched shapes.
  public static func run(trainFeatures: Tensor, trainLabels: [[Int8]], validationFeatures: Tensor,
                         validationLabels: [[Int8]], testFeatures: Tensor, options: Options = Options()) throws -> Result {
    precondition(trainFeatures.rank == 2 && trainFeatures.shape[0] == trainLabels.count,
                 "LinearProbe.run: train features \(trainFeatures.shape) and \(trainLabels.count) label rows")
    precondition(validationFeatures.rank == 2 && validationFeatures.shape[0] == validationLabels.count
                 && validationFeatures.shape[1] == trainFeatures.shape[1] && testFeatures.rank == 2
                 && testFeatures.shape[1] == trainFeatures.shape[1],
                 "LinearProbe.run: validation \(validationFeatures.shape), test \(testFeatures.shape), train \(trainFeatures.shape)")
    precondition(!options.regularizations.isEmpty && options.regularizations.allSatisfy { $0 > 0 },
                 "LinearProbe.run: the λ grid must be non-empty and positive")
    return try withNoGrad {
      let c = trainLabels.first?.count ?? 0
      let n = trainLabels.count
      let device = trainFeatures.device
      let xTrain = try trainFeatures.to(.float64)
      let mean = try xTrain.mean(dims: [0], keepDim: true)
      let std = try xTrain.std(dims: [0], correction: 0, keepDim: true).clamp(min: 1e-12)
      func standardised(_ x: Tensor) throws -> Tensor { try (x.to(.float64).to(device) - mean) / std }
      let x = try standardised(trainFeatures)
      let xVal = try standardised(validationFeatures)
      let xTest = try standardised(testFeatures)

      let y = try Tensor(trainLabels.flatMap { $0.map { $0 == 1 ? 1.0 : 0.0 } }, shape: [n, c]).to(device)
      var maskValues = trainLabels.flatMap { $0.map { ($0 == 0 || $0 == 1) ? 1.0 : 0.0 } }
      let counts = (0..<c).map { j in stride(from: j, to: maskValues.count, by: c).reduce(0.0) { $0 + maskValues[$1] } }
      let positivesPerFinding = (0..<c).map { j in trainLabels.reduce(0) { $0 + ($1[j] == 1 ? 1 : 0) } }
      let fittable = (0..<c).map { positivesPerFinding[$0] > 0 && Double(positivesPerFinding[$0]) < counts[$0] }
      // A single-class finding has no finite optimum: leave it out of the loss (its weights stay 0).
      for i in 0..<n { for j in 0..<c where !fittable[j] { maskValues[i * c + j] = 0 } }
      let mask = try Tensor(maskValues, shape: [n, c]).to(device)
      let invCounts = try Tensor(counts.map { $0 > 0 ? 1 / $0 : 0 }, shape: [1, c]).to(device)

      // L ≤ (1/4) · λmax(X̃ᵀX̃ / n_j) + λ with X̃ = [X, 1]; λmax(X̃ᵀX̃) by power iteration from a ones vector.
      let d = x.shape[1]
      let xb = try Tensor.cat([x, Tensor.ones([n, 1], dtype: .float64, device: device)], dim: 1)  // [n, D+1]
      var v = try Tensor.ones([d + 1, 1], dtype: .float64, device: device) / (Double(d + 1)).squareRoot()
      var eig = 0.0
      for _ in 0..<100 {
        let w = try xb.t().matmul(xb.matmul(v))
        let norm = try w.norm().item()
        if norm == 0 { break }
        let next = try w / norm
        let change = try (next - v).abs().max().item()
        eig = norm
        v = next
        if change < 1e-9 { break }
      }
      eig *= 1.05

      let sortedLambdas = options.regularizations.sorted(by: >)
      var weights = try Tensor.zeros([d + 1, c], dtype: .float64, device: device)
      var fitsByLambda: [Double: Tensor] = [:]
      var iterations: [Int] = [], converged: [Bool] = []
      let penaltyMask = try Tensor.cat([Tensor.ones([d, 1], dtype: .float64, device: device),
                                        Tensor.zeros([1, 1], dtype: .float64, device: device)], dim: 0)  // [D+1, 1]
      for lambda in sortedLambdas {
        let lipschitz = try Tensor(counts.map { $0 > 0 ? 0.25 * eig / $0 + lambda : 1 }, shape: [1, c]).to(device)
        let step = try 1 / lipschitz
        func gradient(_ w: Tensor) throws -> Tensor {
          let residual = try (xb.matmul(w).sigmoid() - y) * mask * invCounts  // [n, C]
          return try xb.t().matmul(residual) + w * penaltyMask * lambda
        }
        var previous = weights
        var current = weights
        var done = false
        var k = 0
        while k < options.maxIterations {
          k += 1
          let momentum = Double(k - 1) / Double(k + 2)
          let lookahead = try current + (current - previous) * momentum
          let g = try gradient(lookahead)
          previous = current
          current = try lookahead - g * step
          if k % 10 == 0 {
            let gNow = try gradient(current)
            if try gNow.abs().max().item() < options.tolerance {
              done = true
              break
            }
          }
        }
        weights = current
        fitsByLambda[lambda] = current
        iterations.append(k)
        converged.append(done)
      }

      // Validation AUROC per λ (grid order as given) and finding.
      let valColumns = (0..<c).map { j in validationLabels.map { $0[j] } }
      var valAUROC = [[Double?]](repeating: [], count: c)
      for lambda in options.regularizations {
        let w = fitsByLambda[lambda]!
        let p = try probabilities(xVal, w, device: device)
        for j in 0..<c {
          valAUROC[j].append(Metrics.auroc(scores: p.map { $0[j] }, labels: valColumns[j]))
        }
      }
      var fits: [FindingFit] = []
      let chosen = try Tensor.zeros([d + 1, c], dtype: .float64, device: device)
      for j in 0..<c {
        // The best validation AUROC; ties go to the larger λ.
        var best: (lambda: Double, auroc: Double)? = nil
        for (lambda, a) in zip(options.regularizations, valAUROC[j]) {
          guard let a else { continue }
          if best == nil || a > best!.auroc || (a == best!.auroc && lambda > best!.lambda) { best = (lambda, a) }
        }
        let lambda = best?.lambda ?? options.defaultRegularization
        let w = try (fitsByLambda[lambda] ?? fitsWith(lambda: lambda, fitsByLambda)).select(dim: 1, index: j)
        try chosen.select(dim: 1, index: j).copyFrom(w)
        let values = try w.to(.cpu).contiguous().scalars(as: Double.self)
        fits.append(FindingFit(regularization: lambda, validationAUROC: valAUROC[j], fitted: fittable[j],
                               weights: Array(values[..<d]), bias: values[d]))
      }
      var test = try probabilities(xTest, chosen, device: device)
      for j in 0..<c where !fittable[j] {
        let prevalence = counts[j] > 0 ? Double(positivesPerFinding[j]) / counts[j] : 0
        for i in test.indices { test[i][j] = prevalence }
      }
      return Result(probabilities: test, fits: fits, iterations: iterations, converged: converged)
    }
  }

  /// The fit of the grid λ nearest to `lambda` (for a default λ outside the grid).
  private static func fitsWith(lambda: Double, _ fits: [Double: Tensor]) throws -> Tensor {
    let nearest = fits.keys.min { Swift.abs(log($0) - log(lambda)) < Swift.abs(log($1) - log(lambda)) }!
    return fits[nearest]!
  }

  /// sigmoid([X, 1] · W) as `[N][C]`.
  private static func probabilities(_ x: Tensor, _ w: Tensor, device: Device) throws -> [[Double]] {
    let n = x.shape[0], c = w.shape[1]
    let xb = try Tensor.cat([x, Tensor.ones([n, 1], dtype: .float64, device: device)], dim: 1)
    let p = try xb.matmul(w).sigmoid().to(.cpu).contiguous().scalars(as: Double.self)
    return (0..<n).map { i in Array(p[(i * c)..<((i + 1) * c)]) }
  }
}
