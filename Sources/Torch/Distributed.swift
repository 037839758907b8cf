import CTorch
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Where a rank finds its process group: the environment contract of PyTorch's launcher (`torchrun`, and
/// `torch.distributed.init_process_group(init_method="env://")`).
///
/// `MASTER_ADDR`, `MASTER_PORT`, `RANK`, `WORLD_SIZE` are required together; `LOCAL_RANK` (the rank on this machine,
/// which picks the GPU) defaults to `RANK`.
public struct DistributedEnvironment: Equatable, Sendable {
  /// A TCP port on 127.0.0.1 that was free a moment ago (bound to port 0, read back, released): the rendezvous port
  /// of a single-machine run.
  /// - Throws: `TorchError.invalidArgument` when no socket can be bound.
  public static func freeLoopbackPort() throws -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { throw TorchError.invalidArgument("cannot open a socket to find a free port") }
    defer { close(fd) }
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_port = 0
    addr.sin_addr.s_addr = inet_addr("127.0.0.1")
    var len = socklen_t(MemoryLayout<sockaddr_in>.size)
    let ok = withUnsafeMutablePointer(to: &addr) {
      $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) == 0 && getsockname(fd, $0, &len) == 0 }
    }
    guard ok else { throw TorchError.invalidArgument("cannot bind a socket on 127.0.0.1 to find a free port") }
    return Int(UInt16(bigEndian: addr.sin_port))
  }

  public var masterAddress: String
  public var masterPort: Int
  public var rank: Int
  public var worldSize: Int
  public var localRank: Int

  public init(masterAddress: String, masterPort: Int, rank: Int, worldSize: Int, localRank: Int? = nil) {
    self.masterAddress = masterAddress
    self.masterPort = masterPort
    self.rank = rank
    self.worldSize = worldSize
    self.localRank = localRank ?? rank
  }

  /// The variables a launcher sets.
  public static let variables = ["MASTER_ADDR", "MASTER_PORT", "RANK", "WORLD_SIZE", "LOCAL_RANK"]

  /// Reads the contract from `environment`; nil when none of `RANK` and `WORLD_SIZE` is set (a single-process run).
  /// - Throws: `TorchError.invalidArgument` naming the variable that is missing or malformed.
  public static func from(_ environment: [String: String] = ProcessInfo.processInfo.environment) throws
    -> DistributedEnvironment?
  {
    guard environment["RANK"] != nil || environment["WORLD_SIZE"] != nil else { return nil }
    func value(_ name: String) throws -> String {
      guard let v = environment[name], !v.isEmpty else {
        throw TorchError.invalidArgument(
          "\(name) is not set; a distributed rank needs MASTER_ADDR, MASTER_PORT, RANK and WORLD_SIZE "
            + "(as torchrun or `greenrfm launch` sets them)")
      }
      return v
    }
    func integer(_ name: String, _ range: ClosedRange<Int>) throws -> Int {
      let v = try value(name)
      guard let n = Int(v), range.contains(n) else {
        throw TorchError.invalidArgument("\(name)=\(v) is not an integer in \(range.lowerBound)...\(range.upperBound)")
      }
      return n
    }
    let world = try integer("WORLD_SIZE", 1...65_536)
    let rank = try integer("RANK", 0...(world - 1))
    let local = environment["LOCAL_RANK"] == nil ? rank : try integer("LOCAL_RANK", 0...(world - 1))
    return DistributedEnvironment(masterAddress: try value("MASTER_ADDR"), masterPort: try integer("MASTER_PORT", 1...65_535),
                                  rank: rank, worldSize: world, localRank: local)
  }
}

/// A joined c10d process group (libtorch's `torch.distributed` engine): a TCP store on rank 0 for the rendezvous,
/// the Gloo backend for CPU tensors or NCCL for CUDA tensors (CUDA builds only).
///
/// Collectives block and must be called in the same order on every rank. A collective throws
/// `TorchError.libtorch` when a peer dies (Gloo reports the closed connection at once) or when `timeout` passes.
public final class ProcessGroup: @unchecked Sendable {
  let handle: OpaquePointer
  public let rank: Int
  public let worldSize: Int
  public let backend: String
  /// Where this group's collectives take their tensors: the CPU for Gloo, `cuda:LOCAL_RANK` for NCCL.
  public let device: Device

  /// Joins the group. Rank 0 hosts the store and waits for the others; the others connect to it.
  /// - Parameters: `backend`: "gloo" or "nccl"; `timeoutSeconds`: the rendezvous and every collective.
  /// - Throws: `TorchError.libtorch` naming the master address when a rank cannot reach it (or, on rank 0, when
  ///   the other ranks do not join) within the time-out.
  public init(_ env: DistributedEnvironment, backend: String = "gloo", timeoutSeconds: Double = 300) throws {
    var out: OpaquePointer?
    try check(ct_dist_init(env.masterAddress, Int32(env.masterPort), Int32(env.rank), Int32(env.worldSize), backend,
                           Int64((timeoutSeconds * 1000).rounded()), &out),
              "init_process_group(\(backend), rank \(env.rank) of \(env.worldSize))")
    handle = out!
    rank = env.rank
    worldSize = env.worldSize
    self.backend = backend
    device = backend == "nccl" ? .cuda(env.localRank) : .cpu
  }

  /// Small host values (flags, counts) reduced over the ranks through a tensor on the group's device.
  public func allReduce(_ values: [Float], op: ReduceOp) throws -> [Float] {
    let t = try Tensor(values, shape: [values.count]).to(device)
    try allReduce(t, op: op)
    return try t.to(.cpu).scalars()
  }

  /// Every rank's host values (the same count on every rank), in rank order.
  public func allGather(_ values: [Int64]) throws -> [Int64] {
    try allGather(try Tensor(values, shape: [values.count]).to(device)).to(.cpu).scalars()
  }

  deinit { ct_dist_free(handle) }

  public enum ReduceOp {
    case sum, max, min
    var code: ct_dist_reduce_op {
      switch self {
      case .sum: return CT_DIST_SUM
      case .max: return CT_DIST_MAX
      case .min: return CT_DIST_MIN
      }
    }
  }

  /// Reduces a contiguous tensor over the ranks, in place (as `torch.distributed.all_reduce`).
  public func allReduce(_ t: Tensor, op: ReduceOp = .sum) throws {
    try check(ct_dist_all_reduce(handle, t.handle, op.code), "all_reduce")
  }

  /// The sum over ranks as a new tensor whose backward sums the gradients over ranks (SyncBatchNorm's statistics).
  public func allReduceSumDifferentiable(_ t: Tensor) throws -> Tensor {
    try make("all_reduce (autograd)") { ct_dist_all_reduce_sum_autograd(handle, t.handle, $0) }
  }

  /// Overwrites a contiguous tensor with `root`'s values, in place (as `torch.distributed.broadcast`).
  public func broadcast(_ t: Tensor, root: Int = 0) throws {
    try check(ct_dist_broadcast(handle, t.handle, Int32(root)), "broadcast")
  }

  /// Every rank's tensor (the same shape everywhere) concatenated along dim 0 in rank order, without gradient
  /// (as `torch.distributed.all_gather` followed by `torch.cat`).
  public func allGather(_ t: Tensor) throws -> Tensor {
    try make("all_gather") { ct_dist_all_gather(handle, t.handle, $0) }
  }

  /// Waits until every rank reaches this point.
  public func barrier() throws { try check(ct_dist_barrier(handle), "barrier") }

  // MARK: - Data-parallel helpers

  /// Copies rank 0's values of every tensor to the other ranks (parameters and buffers at start-up, as
  /// `DistributedDataParallel`'s constructor does). Tensors are sent in flat buckets of one dtype.
  public func broadcastTensors(_ tensors: [Tensor], root: Int = 0, bucketBytes: Int = 25 << 20) throws {
    try withNoGrad {
      for bucket in Self.buckets(tensors, bucketBytes: bucketBytes) {
        let flat = try Tensor.cat(try bucket.map { try $0.contiguous().reshape([-1]) })
        try broadcast(flat, root: root)
        try scatterBack(flat, into: bucket)
      }
    }
  }

  /// Replaces every parameter's gradient by its mean over the ranks, in flat buckets of about `bucketBytes`
  /// (`DistributedDataParallel`'s default is 25 MiB). A parameter without a gradient on this rank takes part with
  /// zeros so that every rank sends the same buckets.
  public func averageGradients(_ parameters: [Tensor], bucketBytes: Int = 25 << 20) throws {
    guard worldSize > 1 else { return }
    try withNoGrad {
      // Parameters with a gradient on some rank take part (with zeros where a rank has none); those without a
      // gradient on every rank stay without one, so that the optimizer skips them as in a single process.
      let flags = try allReduce(parameters.map { $0.grad == nil ? Float(0) : Float(1) }, op: .max)
      var grads: [Tensor] = []
      for (p, flag) in zip(parameters, flags) where flag > 0 {
        if p.grad == nil { try p.setGrad(try Tensor.zeros(p.shape, dtype: p.dtype, device: p.device)) }
        grads.append(p.grad!)
      }
      for bucket in Self.buckets(grads, bucketBytes: bucketBytes) {
        let flat = try Tensor.cat(try bucket.map { try $0.contiguous().reshape([-1]) })
        try allReduce(flat)
        try flat.mulInPlace(1 / Double(worldSize))
        try scatterBack(flat, into: bucket)
      }
    }
  }

  func scatterBack(_ flat: Tensor, into tensors: [Tensor]) throws {
    var offset = 0
    for t in tensors {
      let n = t.count
      try t.copyFrom(try flat.narrow(dim: 0, start: offset, length: n).reshape(t.shape))
      offset += n
    }
  }

  /// Consecutive tensors grouped by dtype and device into buckets of at most about `bucketBytes`.
  static func buckets(_ tensors: [Tensor], bucketBytes: Int) -> [[Tensor]] {
    var out: [[Tensor]] = []
    var current: [Tensor] = []
    var bytes = 0
    for t in tensors {
      let size = t.count * t.dtype.byteCount
      if let first = current.first, first.dtype != t.dtype || first.device != t.device || bytes + size > bucketBytes {
        out.append(current)
        current = []
        bytes = 0
      }
      current.append(t)
      bytes += size
    }
    if !current.isEmpty { out.append(current) }
    return out
  }
}
