import Foundation
import Torch
import TorchNN

/// Data-parallel training over a c10d process group (`torch.distributed`'s engine in libtorch), the way
/// `DistributedDataParallel` does it: every rank starts from rank 0's weights, trains on its own shard of every
/// epoch (`DataShard`), and steps with the gradients averaged over the ranks.
///
/// The losses are computed over the global batch: each rank gathers the per-item outputs (stage-1 logits, stage-2
/// latents) and the labels of every rank, so that masked BCE means, positive weights and the contrastive term's
/// negatives are those of the combined batch, as CLIP implementations do (open_clip's `gather_features` with
/// `local_loss` off). BatchNorm statistics are local to each rank's batch unless `syncBatchNorm` is on.
public enum DataParallel {
  /// The rank's part of every epoch.
  public static func shard(_ group: ProcessGroup?) -> DataShard {
    guard let group else { return .whole }
    return DataShard(rank: group.rank, count: group.worldSize)
  }

  /// Makes every `BatchNorm3d` of `model` use the statistics of the global batch (the sum over `group`'s ranks;
  /// without a group, the same formula over the local batch, which is what a multi-rank run is compared with).
  public static func synchroniseBatchNorm(_ model: Module, group: ProcessGroup?) {
    for (_, module) in model.namedModules() {
      guard let bn = module as? BatchNorm3d else { continue }
      if let group, group.worldSize > 1 {
        bn.crossReplicaSum = { try group.allReduceSumDifferentiable($0) }
      } else {
        bn.crossReplicaSum = { $0 }
      }
    }
  }

  /// Every rank's rows of `local` `[n, ...]` concatenated in rank order `[n × worldSize, ...]`, with gradient
  /// flowing into this rank's rows only, scaled by the world size.
  ///
  /// Every rank computes the same global loss L from the gathered rows, so the gradient of the sum of the ranks'
  /// losses with respect to this rank's rows is worldSize × ∂L/∂rows; the gradient average over the ranks then
  /// divides by worldSize again, and every parameter ends with exactly ∂L/∂θ of a single process over the combined
  /// batch (parameters used after the gather, such as the logit scale or the shared classifier, get ∂L/∂θ on every
  /// rank). The scale is applied as `x + (x − x.detach()) × (worldSize − 1)`, whose value is exactly `x`.
  /// - Parameter local: the same shape on every rank.
  public static func gatherWithLocalGradient(_ local: Tensor, group: ProcessGroup?) throws -> Tensor {
    guard let group, group.worldSize > 1 else { return local }
    let w = group.worldSize, n = local.shape[0]
    try checkSameRows(n, group: group)
    let all = try group.allGather(try local.detach().contiguous())
    let scaled = try local + (local - local.detach()) * Double(w - 1)
    var parts: [Tensor] = []
    for r in 0..<w {
      parts.append(r == group.rank ? scaled : try all.narrow(dim: 0, start: r * n, length: n))
    }
    return try Tensor.cat(parts)
  }

  /// Every rank's rows of `local` in rank order, without gradient (labels).
  public static func gather(_ local: Tensor, group: ProcessGroup?) throws -> Tensor {
    guard let group, group.worldSize > 1 else { return local }
    try checkSameRows(local.shape[0], group: group)
    return try group.allGather(try local.contiguous())
  }

  /// Every rank must gather the same number of rows (a volume that fails to load makes its batch smaller).
  static func checkSameRows(_ n: Int, group: ProcessGroup) throws {
    let counts = try group.allGather([Int64(n)])
    guard Set(counts).count == 1 else {
      throw GreenRFMError.invalidData(
        path: "rank \(group.rank)", reason: "the ranks' batches differ in size (\(counts.map(String.init).joined(separator: ", ")) items); "
          + "a data-parallel run needs every volume readable: run `greenrfm preprocess` first and drop the failures")
    }
  }
}
