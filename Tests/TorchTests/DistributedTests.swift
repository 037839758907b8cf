import Foundation
import Testing
import Torch

/// The c10d collectives over Gloo, with two ranks as two threads of this process (c10d allows several groups per
/// process; the store server runs in rank 0's thread). Values are chosen so that every result is known exactly.
@Suite("Distributed collectives (Gloo)", .serialized)
struct DistributedTests {
  /// Runs `body(rank)` on two threads, each with its own joined group; returns the two results in rank order.
  func twoRanks<T: Sendable>(_ body: @escaping @Sendable (ProcessGroup) throws -> T) throws -> [T] {
    let port = try DistributedEnvironment.freeLoopbackPort()
    let results = Results<T>()
    let group = DispatchGroup()
    for rank in 0..<2 {
      group.enter()
      Thread {
        defer { group.leave() }
        do {
          let pg = try ProcessGroup(DistributedEnvironment(masterAddress: "127.0.0.1", masterPort: port, rank: rank,
                                                           worldSize: 2), timeoutSeconds: 30)
          results.set(rank, .success(try body(pg)))
        } catch {
          results.set(rank, .failure(error))
        }
      }.start()
    }
    #expect(group.wait(timeout: .now() + 60) == .success, "the ranks did not finish within 60 s")
    return try (0..<2).map { try results.get($0).get() }
  }

  @Test func allReduceBroadcastAndAllGatherGiveTheExactValues() throws {
    let out = try twoRanks { pg -> [[Float]] in
      let r = Float(pg.rank)
      let sum = try Tensor([1 + r, 10 * (1 + r)], shape: [2])
      try pg.allReduce(sum)
      let maximum = try Tensor([r, -r], shape: [2])
      try pg.allReduce(maximum, op: .max)
      let b = try Tensor([r + 5, r + 7], shape: [2])
      try pg.broadcast(b, root: 1)
      let gathered = try pg.allGather(try Tensor([r, r + 0.5], shape: [1, 2]))
      #expect(gathered.shape == [2, 2])
      return [try sum.scalars(), try maximum.scalars(), try b.scalars(), try gathered.reshape([-1]).scalars()]
    }
    for rank in 0..<2 {
      #expect(out[rank][0] == [3, 30])
      #expect(out[rank][1] == [1, 0])
      #expect(out[rank][2] == [6, 8])
      #expect(out[rank][3] == [0, 0.5, 1, 1.5])
    }
  }

  @Test func differentiableAllReduceSumsTheGradientsOfEveryRank() throws {
    // Rank r's loss is (r + 1) · Σ allReduce(x_r): the gradient of x_r in the sum of both losses is 1 + 2 = 3.
    let grads = try twoRanks { pg -> [Float] in
      let x = try Tensor([Float(pg.rank), 2], shape: [2]).requiringGrad()
      let s = try pg.allReduceSumDifferentiable(x)
      #expect(try s.scalars() as [Float] == [1, 4])
      try (s.sum() * Double(pg.rank + 1)).backward()
      return try x.grad!.scalars()
    }
    #expect(grads == [[3, 3], [3, 3]])
  }

  @Test func averagedGradientsAndBroadcastParametersAreTheSameOnBothRanks() throws {
    let out = try twoRanks { pg -> [[Float]] in
      let w = try Tensor([Float(pg.rank), 1, 2], shape: [3]).requiringGrad()
      let unused = try Tensor([Float(9)], shape: [1]).requiringGrad()
      try pg.broadcastTensors([w])
      try (w * Double(pg.rank + 1)).sum().backward()
      try pg.averageGradients([w, unused])
      #expect(unused.grad == nil)  // no rank had a gradient: it stays without one
      return [try w.detach().scalars(), try w.grad!.scalars()]
    }
    #expect(out[0] == [[0, 1, 2], [1.5, 1.5, 1.5]])
    #expect(out[1] == out[0])
  }

  @Test func aBadEnvironmentIsAnErrorNotACrash() {
    let error = #expect(throws: TorchError.self) {
      try ProcessGroup(DistributedEnvironment(masterAddress: "127.0.0.1", masterPort: try DistributedEnvironment.freeLoopbackPort(), rank: 0, worldSize: 1),
                       backend: "mpi")
    }
    #expect("\(String(describing: error))".contains("unknown backend 'mpi'"))
  }
}

final class Results<T>: @unchecked Sendable {
  private let lock = NSLock()
  private var values: [Int: Result<T, Error>] = [:]
  func set(_ i: Int, _ r: Result<T, Error>) { lock.lock(); values[i] = r; lock.unlock() }
  func get(_ i: Int) -> Result<T, Error> {
    lock.lock(); defer { lock.unlock() }
    return values[i] ?? .failure(TorchError.invalidArgument("rank \(i) did not finish"))
  }
}
