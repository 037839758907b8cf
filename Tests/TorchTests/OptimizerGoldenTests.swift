import Foundation
import Testing
import Torch

/// AdamW, SGD, clipGradNorm and CosineWithWarmup against torch.optim (values from
/// scripts/golden/make_torch_golden.py). The loss is `mse_loss(linear(X, W, b), Y)`; weights and biases
/// are two parameter groups.
@Suite("Optimizers and schedules against PyTorch")
struct OptimizerGoldenTests {
  struct AdamWParams: Decodable {
    let lr: Double
    let beta1: Double
    let beta2: Double
    let eps: Double
    let weightDecayWeight: Double
    let weightDecayBias: Double
    let steps: Int
  }

  struct SGDParams: Decodable {
    let lr: Double
    let momentum: Double
    let dampening: Double
    let nesterov: Bool
    let weightDecayWeight: Double
    let weightDecayBias: Double
    let steps: Int
  }

  /// Runs `steps` updates of `optimizer` on the golden least-squares problem `name` and compares the loss
  /// before each update and the parameters after it.
  static func run(_ name: String, golden: GoldenFile, steps: Int, weight: Tensor, bias: Tensor,
                  optimizer: any Optimizer, tolerance: Tolerance = .float32) throws {
    let x = try golden.tensor("\(name).X")
    let y = try golden.tensor("\(name).Y")
    for step in 1...steps {
      try optimizer.zeroGrad()
      let loss = try Functional.mseLoss(Functional.linear(x, weight: weight, bias: bias), y)
      try expectClose(loss, golden.tensor("\(name).step\(step).loss"), .float32, "\(name) loss before step \(step)")
      try loss.backward()
      try optimizer.step()
      try expectClose(weight, golden.tensor("\(name).step\(step).weight"), tolerance, "\(name) weight after step \(step)")
      try expectClose(bias, golden.tensor("\(name).step\(step).bias"), tolerance, "\(name) bias after step \(step)")
    }
  }

  @Test("AdamW: three steps, weights with decay and biases without, as torch.optim.AdamW")
  func adamW() throws {
    let golden = try GoldenFile.load()
    let p = try golden.json("adamw.params", as: AdamWParams.self)
    let weight = try golden.tensor("adamw.weight").requiringGrad()
    let bias = try golden.tensor("adamw.bias").requiringGrad()
    let optimizer = try AdamW(
      groups: [ParameterGroup(parameters: [("weight", weight)], weightDecay: p.weightDecayWeight),
               ParameterGroup(parameters: [("bias", bias)], weightDecay: p.weightDecayBias)],
      learningRate: p.lr, betas: (p.beta1, p.beta2), eps: p.eps)
    try Self.run("adamw", golden: golden, steps: p.steps, weight: weight, bias: bias, optimizer: optimizer)
    #expect(try optimizer.stepCount(of: "weight") == p.steps)
    #expect(try optimizer.stepCount(of: "bias") == p.steps)
    #expect(weight.requiresGrad && weight.isLeaf, "a step must not turn parameters into graph nodes")
  }

  @Test("AdamW state survives stateDict / loadStateDict: a restored optimizer continues identically")
  func adamWStateDict() throws {
    let golden = try GoldenFile.load()
    let p = try golden.json("adamw.params", as: AdamWParams.self)
    let x = try golden.tensor("adamw.X")
    let y = try golden.tensor("adamw.Y")
    func makeOptimizer(_ weight: Tensor, _ bias: Tensor) throws -> AdamW {
      try AdamW(groups: [ParameterGroup(parameters: [("weight", weight)], weightDecay: p.weightDecayWeight),
                         ParameterGroup(parameters: [("bias", bias)], weightDecay: p.weightDecayBias)],
                learningRate: p.lr, betas: (p.beta1, p.beta2), eps: p.eps)
    }
    func step(_ optimizer: AdamW, _ weight: Tensor, _ bias: Tensor) throws {
      try optimizer.zeroGrad()
      try Functional.mseLoss(Functional.linear(x, weight: weight, bias: bias), y).backward()
      try optimizer.step()
    }
    let weight = try golden.tensor("adamw.weight").requiringGrad()
    let bias = try golden.tensor("adamw.bias").requiringGrad()
    let first = try makeOptimizer(weight, bias)
    try step(first, weight, bias)
    try step(first, weight, bias)

    // A second optimizer over copies of the parameters, restored from the first one's state.
    let weight2 = try weight.detach().clone().requiringGrad()
    let bias2 = try bias.detach().clone().requiringGrad()
    let second = try makeOptimizer(weight2, bias2)
    try second.loadStateDict(first.stateDict())
    try step(first, weight, bias)
    try step(second, weight2, bias2)
    try expectClose(weight2, golden.tensor("adamw.step3.weight"), .float32, "restored weight after step 3")
    try expectClose(bias2, golden.tensor("adamw.step3.bias"), .float32, "restored bias after step 3")
    #expect(try second.stepCount(of: "weight") == 3)

    // Mis-shaped state is refused, naming the parameter.
    let bad = try first.stateDict().merging(["weight.exp_avg": Tensor.zeros([2, 2])]) { _, new in new }
    let error = #expect(throws: TorchError.self) { try second.loadStateDict(bad) }
    #expect(error.map { "\($0)" }?.contains("weight") == true)
  }

  @Test("SGD with momentum and weight decay, as torch.optim.SGD", arguments: ["sgd.momentum", "sgd.nesterov"])
  func sgd(_ name: String) throws {
    let golden = try GoldenFile.load()
    let p = try golden.json("\(name).params", as: SGDParams.self)
    let weight = try golden.tensor("\(name).weight").requiringGrad()
    let bias = try golden.tensor("\(name).bias").requiringGrad()
    let optimizer = try SGD(
      groups: [ParameterGroup(parameters: [("weight", weight)], weightDecay: p.weightDecayWeight),
               ParameterGroup(parameters: [("bias", bias)], weightDecay: p.weightDecayBias)],
      learningRate: p.lr, momentum: p.momentum, dampening: p.dampening, nesterov: p.nesterov)
    try Self.run(name, golden: golden, steps: p.steps, weight: weight, bias: bias, optimizer: optimizer)
    #expect(try optimizer.stateDict().keys.sorted() == ["bias.momentum_buffer", "weight.momentum_buffer"])
  }

  @Test("a parameter without a gradient is left alone by a step")
  func parameterWithoutGradientIsSkipped() throws {
    let a = try Tensor.ones([3]).requiringGrad()
    let frozen = try Tensor.ones([3]).requiringGrad()
    for optimizer in [try AdamW(parameters: [("a", a), ("frozen", frozen)], learningRate: 0.1) as any Optimizer,
                      try SGD(groups: [ParameterGroup(parameters: [("a", a), ("frozen", frozen)], weightDecay: 0.1)],
                              learningRate: 0.1, momentum: 0.9)] {
      try optimizer.zeroGrad()
      try (a * 2.0).sum().backward()
      try optimizer.step()
      #expect(try frozen.equals(Tensor.ones([3])))
      #expect(try a.lt(1).all().item() == 1)
    }
  }

  struct ClipParams: Decodable {
    let maxNorm: Double
    let normType: Double
    let count: Int
  }

  @Test("clipGradNorm returns the total norm and scales the gradients, as clip_grad_norm_")
  func clipGradNormAgainstPyTorch() throws {
    let golden = try GoldenFile.load()
    let p = try golden.json("clip.params", as: ClipParams.self)
    var parameters: [Tensor] = []
    for i in 0..<p.count {
      let g = try golden.tensor("clip.grad\(i)")
      let parameter = try Tensor.zeros(g.shape).requiringGrad()
      try parameter.setGrad(g)
      parameters.append(parameter)
    }
    // A parameter without a gradient is ignored.
    parameters.append(try Tensor.zeros([4]).requiringGrad())
    let total = try clipGradNorm(parameters, maxNorm: p.maxNorm, normType: p.normType)
    try expectClose(total, golden.tensor("clip.total_norm").item(), .float32, "total norm")
    for i in 0..<p.count {
      try expectClose(#require(parameters[i].grad), golden.tensor("clip.clipped\(i)"), .float32, "clipped grad \(i)")
    }
    #expect(parameters[p.count].grad == nil)

    // Below the bound nothing changes, and the same norm is reported.
    let before = try parameters[0].grad!.clone()
    let again = try clipGradNorm(parameters, maxNorm: 1e6, normType: p.normType)
    expectClose(again, p.maxNorm, Tolerance(rtol: 1e-5, atol: 0), "norm after clipping")
    try expectClose(#require(parameters[0].grad), before, .exact, "unclipped gradient")
  }

  struct ScheduleParams: Decodable {
    let baseLr: Double
    let warmupSteps: Int
    let totalSteps: Int
    let floorLr: Double
    let warmupStartFactor: Double
  }

  @Test("CosineWithWarmup equals SequentialLR([LinearLR, CosineAnnealingLR])",
        arguments: ["schedule.a", "schedule.b"])
  func cosineWithWarmup(_ name: String) throws {
    let golden = try GoldenFile.load()
    let p = try golden.json("\(name).params", as: ScheduleParams.self)
    let schedule = try CosineWithWarmup(baseLR: p.baseLr, warmupSteps: p.warmupSteps, totalSteps: p.totalSteps,
                                        floorLR: p.floorLr, warmupStartFactor: p.warmupStartFactor)
    let expected = try golden.tensor("\(name).lr").scalars(as: Double.self)
    #expect(expected.count == p.totalSteps)
    for (step, lr) in expected.enumerated() {
      expectClose(schedule.learningRate(at: step), lr, .float64, "\(name) learning rate at step \(step)")
    }
  }

  @Test("CosineWithWarmup refuses impossible settings",
        arguments: [(5, 5, 0.0, 0.1), (-1, 10, 0.0, 0.1), (2, 10, 1.0, 0.1), (2, 10, 0.0, 0.0), (2, 10, 0.0, 1.5)])
  func cosineWithWarmupValidation(_ warmup: Int, _ total: Int, _ floor: Double, _ startFactor: Double) {
    #expect(throws: TorchError.self) {
      try CosineWithWarmup(baseLR: 1e-3, warmupSteps: warmup, totalSteps: total, floorLR: floor,
                           warmupStartFactor: startFactor)
    }
  }
}
