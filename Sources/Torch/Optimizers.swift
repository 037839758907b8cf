import CTorch

/// Parameters that share optimizer settings, e.g. weights with decay and biases without.
///
/// Names are the parameters' `state_dict` keys; they key the optimizer's state in checkpoints.
public struct ParameterGroup {
  public var parameters: [(name: String, tensor: Tensor)]
  /// Decoupled weight decay (AdamW) or L2 penalty (SGD) for this group.
  public var weightDecay: Double
  /// Multiplies the optimizer's learning rate for this group.
  public var learningRateScale: Double

  public init(parameters: [(name: String, tensor: Tensor)], weightDecay: Double, learningRateScale: Double = 1) {
    self.parameters = parameters
    self.weightDecay = weightDecay
    self.learningRateScale = learningRateScale
  }

  /// The rule of Hugging Face's and the GreenRFM authors' stage-2 training: no weight decay on biases and
  /// LayerNorm weights (`*.bias`, `*LayerNorm.weight`, `*layer_norm.weight`, `*.norm.weight`).
  public static func isExemptFromDecay(_ name: String) -> Bool {
    name.hasSuffix("bias") || name.hasSuffix("LayerNorm.weight") || name.hasSuffix("layer_norm.weight")
      || name.hasSuffix("norm.weight")
  }

  /// Two groups: parameters with `weightDecay`, and those that `exempt` excludes from decay (decay 0).
  /// Empty groups are dropped. Frozen parameters (not requiring gradients) are left out.
  public static func splitForWeightDecay(
    _ parameters: [(name: String, tensor: Tensor)], weightDecay: Double,
    exempt: (String) -> Bool = ParameterGroup.isExemptFromDecay
  ) -> [ParameterGroup] {
    let trainable = parameters.filter { $0.tensor.requiresGrad }
    let decay = trainable.filter { !exempt($0.name) }
    let noDecay = trainable.filter { exempt($0.name) }
    return [ParameterGroup(parameters: decay, weightDecay: weightDecay),
            ParameterGroup(parameters: noDecay, weightDecay: 0)].filter { !$0.parameters.isEmpty }
  }
}

/// What every optimizer offers the trainer.
public protocol Optimizer: AnyObject {
  /// The base learning rate (each group scales it by its `learningRateScale`).
  var learningRate: Double { get set }
  var groups: [ParameterGroup] { get }
  /// Applies one update from the parameters' current gradients; parameters without a gradient are skipped.
  func step() throws
  /// Optimizer state (moments, step counts) by stable keys `<parameter name>.<state name>`.
  func stateDict() throws -> [String: Tensor]
  /// Restores state from `stateDict()`.
  /// - Throws: `TorchError.invalidArgument` naming a key that is missing or has the wrong shape.
  func loadStateDict(_ state: [String: Tensor]) throws
}

extension Optimizer {
  /// Removes every parameter's gradient (PyTorch's `zero_grad(set_to_none=True)`).
  public func zeroGrad() throws {
    for g in groups { for p in g.parameters { try p.tensor.setGrad(nil) } }
  }

  /// All parameters of all groups.
  public var allParameters: [Tensor] { groups.flatMap { $0.parameters.map(\.tensor) } }
}

/// AdamW with bias correction and decoupled weight decay (Loshchilov & Hutter), matching
/// `torch.optim.AdamW` step for step; the update runs in libtorch's fused kernel (`torch._fused_adamw_`,
/// the kernel of `AdamW(fused=True)`).
public final class AdamW: Optimizer {
  public var learningRate: Double
  public let beta1: Double
  public let beta2: Double
  public let eps: Double
  public let groups: [ParameterGroup]
  private var expAvg: [String: Tensor] = [:]
  private var expAvgSq: [String: Tensor] = [:]
  private var steps: [String: Tensor] = [:]

  /// - Parameters:
  ///   - groups: parameter groups; names must be unique across groups.
  ///   - learningRate: base learning rate (PyTorch default 1e-3).
  ///   - betas: moment decay rates (0.9, 0.999).
  ///   - eps: denominator term (1e-8).
  public init(groups: [ParameterGroup], learningRate: Double = 1e-3, betas: (Double, Double) = (0.9, 0.999),
              eps: Double = 1e-8) throws {
    let names = groups.flatMap { $0.parameters.map(\.name) }
    guard Set(names).count == names.count else {
      throw TorchError.invalidArgument("AdamW: a parameter name appears in more than one place")
    }
    self.groups = groups
    self.learningRate = learningRate
    self.beta1 = betas.0
    self.beta2 = betas.1
    self.eps = eps
  }

  /// One group with a single weight decay (PyTorch default 1e-2).
  public convenience init(parameters: [(name: String, tensor: Tensor)], learningRate: Double = 1e-3,
                          betas: (Double, Double) = (0.9, 0.999), eps: Double = 1e-8,
                          weightDecay: Double = 1e-2) throws {
    try self.init(groups: [ParameterGroup(parameters: parameters, weightDecay: weightDecay)],
                  learningRate: learningRate, betas: betas, eps: eps)
  }

  /// Number of updates applied to the named parameter so far.
  public func stepCount(of name: String) throws -> Int { try Int(steps[name]?.item() ?? 0) }

  public func step() throws {
    try withNoGrad {
      for group in groups {
        var params: [Tensor] = [], m: [Tensor] = [], v: [Tensor] = [], s: [Tensor] = []
        for (name, p) in group.parameters where p.grad != nil {
          if expAvg[name] == nil {
            // In the parameter's memory layout: the fused kernel walks parameter, gradient and state in one
            // flat order (PyTorch creates them with zeros_like(p, memory_format=torch.preserve_format) too).
            expAvg[name] = try Tensor.zeros(like: p)
            expAvgSq[name] = try Tensor.zeros(like: p)
            steps[name] = try Tensor.zeros([], dtype: .float32, device: p.device)
          }
          params.append(p)
          m.append(expAvg[name]!)
          v.append(expAvgSq[name]!)
          s.append(steps[name]!)
        }
        if params.isEmpty { continue }
        try withHandles(params) { ph, n in
          try withHandles(m) { mh, _ in
            try withHandles(v) { vh, _ in
              try withHandles(s) { sh, _ in
                try check(
                  ct_adamw_step(ph, mh, vh, sh, n, learningRate * group.learningRateScale, beta1, beta2,
                                group.weightDecay, eps), "AdamW.step")
              }
            }
          }
        }
      }
    }
  }

  public func stateDict() throws -> [String: Tensor] {
    var out: [String: Tensor] = [:]
    for (name, t) in expAvg { out["\(name).exp_avg"] = t }
    for (name, t) in expAvgSq { out["\(name).exp_avg_sq"] = t }
    for (name, t) in steps { out["\(name).step"] = t }
    return out
  }

  public func loadStateDict(_ state: [String: Tensor]) throws {
    for group in groups {
      for (name, p) in group.parameters {
        guard let m = state["\(name).exp_avg"], let v = state["\(name).exp_avg_sq"], let s = state["\(name).step"]
        else {
          // A parameter that had no gradient yet has no state: that is allowed, but only for all three keys.
          if state["\(name).exp_avg"] != nil || state["\(name).exp_avg_sq"] != nil || state["\(name).step"] != nil {
            throw TorchError.invalidArgument("AdamW state for '\(name)' is incomplete")
          }
          continue
        }
        guard m.shape == p.shape, v.shape == p.shape else {
          throw TorchError.invalidArgument(
            "AdamW state for '\(name)' has shape \(m.shape), the parameter has \(p.shape)")
        }
        // Copied into the parameter's memory layout (saved state is contiguous; the parameter may be channels-last).
        let mean = try Tensor.zeros(like: p), square = try Tensor.zeros(like: p)
        try mean.copyFrom(m)
        try square.copyFrom(v)
        expAvg[name] = mean
        expAvgSq[name] = square
        steps[name] = try s.to(.float32).to(p.device).clone()
      }
    }
  }
}

/// Stochastic gradient descent with momentum, dampening, Nesterov and L2 weight decay, matching
/// `torch.optim.SGD`.
public final class SGD: Optimizer {
  public var learningRate: Double
  public let momentum: Double
  public let dampening: Double
  public let nesterov: Bool
  public let groups: [ParameterGroup]
  private var buffers: [String: Tensor] = [:]

  public init(groups: [ParameterGroup], learningRate: Double, momentum: Double = 0, dampening: Double = 0,
              nesterov: Bool = false) throws {
    guard !nesterov || (momentum > 0 && dampening == 0) else {
      throw TorchError.invalidArgument("SGD: Nesterov momentum needs momentum > 0 and no dampening")
    }
    self.groups = groups
    self.learningRate = learningRate
    self.momentum = momentum
    self.dampening = dampening
    self.nesterov = nesterov
  }

  public func step() throws {
    try withNoGrad {
      for group in groups {
        for (name, p) in group.parameters {
          guard var d = p.grad else { continue }
          if group.weightDecay != 0 { d = try d + p * group.weightDecay }
          if momentum != 0 {
            if let buf = buffers[name] {
              try buf.mulInPlace(momentum)
              try buf.addInPlace(d, alpha: 1 - dampening)
            } else {
              buffers[name] = try d.clone().detach()
            }
            let buf = buffers[name]!
            d = nesterov ? try d + buf * momentum : buf
          }
          try p.addInPlace(d, alpha: -learningRate * group.learningRateScale)
        }
      }
    }
  }

  public func stateDict() throws -> [String: Tensor] {
    Dictionary(uniqueKeysWithValues: buffers.map { ("\($0.key).momentum_buffer", $0.value) })
  }

  public func loadStateDict(_ state: [String: Tensor]) throws {
    for group in groups {
      for (name, p) in group.parameters {
        guard let b = state["\(name).momentum_buffer"] else { continue }
        guard b.shape == p.shape else {
          throw TorchError.invalidArgument("SGD state for '\(name)' has shape \(b.shape), the parameter has \(p.shape)")
        }
        buffers[name] = try b.to(p.dtype).to(p.device).clone()
      }
    }
  }
}

/// Scales gradients in place so that their global `normType`-norm is at most `maxNorm`, as
/// `torch.nn.utils.clip_grad_norm_`. Tensors without a gradient are ignored.
/// - Returns: the global norm before clipping.
@discardableResult
public func clipGradNorm(_ parameters: [Tensor], maxNorm: Double, normType: Double = 2) throws -> Double {
  var total = 0.0
  try withHandles(parameters) { hs, n in
    try check(ct_clip_grad_norm(hs, n, maxNorm, normType, &total), "clip_grad_norm")
  }
  return total
}
