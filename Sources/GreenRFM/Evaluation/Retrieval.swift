import Foundation
import Torch

/// How two latents are compared.
public enum Similarity: String, Sendable, Codable, CaseIterable {
  /// The raw dot product, as the contrastive loss uses in training (the default).
  case dot
  /// The cosine, i.e. the dot product of L2-normalised latents (the authors' retrieval script).
  case cosine
}

/// Recall@K and ranks of one retrieval direction.
public struct RetrievalMetrics: Sendable, Equatable {
  /// Queries (= candidates: the pool is paired row by row).
  public var poolSize: Int
  /// K → the fraction of queries whose paired candidate has rank ≤ K.
  public var recallAtK: [Int: Double]
  /// Mean rank of the paired candidate (1 = best).
  public var meanRank: Double
  /// Median rank (the mean of the two middle ranks for an even pool, as `numpy.median`).
  public var medianRank: Double
  /// The rank of each query's paired candidate, in query order.
  public var ranks: [Int]

  /// Recall@K for one K; nil when K was not computed.
  public func recall(atK k: Int) -> Double? { recallAtK[k] }

  /// Builds the summary from ranks.
  public init(ranks: [Int], ks: [Int]) {
    self.ranks = ranks
    poolSize = ranks.count
    var r: [Int: Double] = [:]
    for k in ks { r[k] = ranks.isEmpty ? 0 : Double(ranks.filter { $0 <= k }.count) / Double(ranks.count) }
    recallAtK = r
    meanRank = ranks.isEmpty ? .nan : Double(ranks.reduce(0, +)) / Double(ranks.count)
    let s = ranks.sorted()
    if s.isEmpty {
      medianRank = .nan
    } else if s.count % 2 == 1 {
      medianRank = Double(s[s.count / 2])
    } else {
      medianRank = (Double(s[s.count / 2 - 1]) + Double(s[s.count / 2])) / 2
    }
  }
}

/// MAP@K of volume→volume retrieval.
public struct MeanAveragePrecision: Sendable, Equatable {
  public var k: Int
  /// The mean of AP@K over the queries with at least one relevant candidate; nil when no query has one.
  public var value: Double?
  /// Queries averaged.
  public var queries: Int
  /// Queries left out because no other study shares a positive finding with them (or they have none).
  public var queriesWithoutRelevant: Int
  /// AP@K of each query (nil where left out), in query order.
  public var perQuery: [Double?]
}

/// Cross-modal and volume→volume retrieval over a paired pool, computed in chunks of queries with libtorch so that
/// memory stays bounded (a 50,000 × 768 float32 pool peaks well under 1 GB; see `bench/EVALUATION_RESULTS.md`).
///
/// Ranks: rank 1 is best. The rank of a query's paired candidate is 1 + the number of *other* candidates whose
/// similarity is greater than **or equal to** the paired one (the pessimistic rule: ties count against the model,
/// so a constant embedding gets the worst rank, never a lucky one). Paper: GreenRFM reports report→volume
/// Recall@{1, 5, 10, 50, 100} over the whole test pool (chance is K/N).
public enum Retrieval {
  /// The Ks reported by default.
  public static let defaultKs = [1, 5, 10, 50, 100]

  /// Report→volume and volume→report metrics of a paired pool (row i of each matrix is study i).
  public struct CrossModal: Sendable, Equatable {
    /// Queries are reports (text latents), candidates volumes.
    public var reportToVolume: RetrievalMetrics
    /// Queries are volumes, candidates reports.
    public var volumeToReport: RetrievalMetrics
    public var similarity: Similarity
  }

  /// Report→volume and volume→report Recall@K, mean and median rank, from one pass over the similarity matrix.
  /// - Parameters:
  ///   - imageLatents: `[N, D]` float32 or float64, any device.
  ///   - textLatents: `[N, D]`, row i the report of volume i.
  ///   - similarity: `.dot` (default, as in training) or `.cosine`.
  ///   - ks: the Ks of Recall@K.
  ///   - chunkSize: report rows per chunk (off the CPU, memory ≈ chunk · N · 4 bytes · 3 for float32).
  ///   - imagesPerBlock: on the CPU, images per `[imagesPerBlock, chunk]` similarity block, counted in one fused
  ///     pass (`Tensor.countGreaterOrEqual`); memory ≈ chunk · imagesPerBlock · 4 bytes.
  /// - Throws: `TorchError` from libtorch.
  /// - Traps: when the shapes differ or are not 2-D.
  public static func crossModal(imageLatents: Tensor, textLatents: Tensor, similarity: Similarity = .dot,
                                ks: [Int] = defaultKs, chunkSize: Int = 512, imagesPerBlock: Int = 4096) throws -> CrossModal {
    precondition(imageLatents.rank == 2 && imageLatents.shape == textLatents.shape,
                 "Retrieval.crossModal: image latents \(imageLatents.shape) and text latents \(textLatents.shape) must both be [N, D]")
    precondition(chunkSize >= 1 && imagesPerBlock >= 1, "Retrieval.crossModal: chunkSize and imagesPerBlock must be at least 1")
    return try withNoGrad {
      let n = imageLatents.shape[0]
      let images = try prepared(imageLatents, similarity)
      let texts = try prepared(textLatents, similarity)
      let imagesT = try images.t()
      // The paired similarities, d[i] = s(text i, image i): the reference each rank is counted against.
      // Computed in chunks so that no [N, D] temporary is made.
      let paired = try Tensor.empty([n], dtype: images.dtype, device: images.device)
      var p0 = 0
      while p0 < n {
        let len = Swift.min(chunkSize, n - p0)
        try paired.narrow(dim: 0, start: p0, length: len).copyFrom(
          (texts.narrow(dim: 0, start: p0, length: len) * images.narrow(dim: 0, start: p0, length: len)).sum(dims: [1]))
        p0 += len
      }
      var textRanks = [Int](repeating: 1, count: n)
      var imageCounts = try Tensor.zeros([n], dtype: .int64, device: imageLatents.device)
      let pairedRow = try paired.unsqueeze(dim: 0)
      var start = 0
      while start < n {
        let len = Swift.min(chunkSize, n - start)
        let textChunk = try texts.narrow(dim: 0, start: start, length: len)
        let dChunk = try paired.narrow(dim: 0, start: start, length: len)
        let rowCounts: Tensor
        if images.device == .cpu {
          // One fused pass per [imagesPerBlock, len] block of s transposed (a block of 4096 × 512 float32 stays in
          // the cache, and images · textsᵀ with textsᵀ contiguous runs at the BLAS's best rate on this shape;
          // docs/PERFORMANCE.md): volume → report counts texts t with s[t, i] >= d[i], report → volume counts
          // images i with s[t, i] >= d[t], both leaving out the pair itself (i = t) from the same block's value.
          let textChunkT = try textChunk.t().contiguous()  // [D, len]
          var rows = try Tensor.zeros([len], dtype: .int64)
          var j0 = 0
          while j0 < n {
            let width = Swift.min(imagesPerBlock, n - j0)
            let block = try images.narrow(dim: 0, start: j0, length: width).matmul(textChunkT)  // [width, len]
            let (perImage, perText) = try block.countGreaterOrEqual(
              rowThreshold: paired.narrow(dim: 0, start: j0, length: width), columnThreshold: dChunk,
              excludingDiagonal: j0 - start)
            rows = try rows + perText
            let columns = try imageCounts.narrow(dim: 0, start: j0, length: width)
            try columns.copyFrom(columns + perImage)
            j0 += width
          }
          rowCounts = rows
        } else {
          let s = try textChunk.matmul(imagesT)  // [len, N]: s[t, i]
          // Self comparisons: s[t, t] >= d[t] (true up to the rounding of matmul against the elementwise sum).
          let diagIndex = try Tensor.arange(Double(start), Double(start + len), device: s.device).unsqueeze(dim: 1)
          let selfGE = try s.gather(dim: 1, indices: diagIndex).squeeze(dim: 1).ge(dChunk).to(.int64)  // [len]
          // Report → volume: for each text row t, images i with s[t, i] >= d[t].
          rowCounts = try s.ge(dChunk.unsqueeze(dim: 1)).sum(dims: [1]) - selfGE
          // Volume → report: for each image column i, texts t in this chunk with s[t, i] >= d[i].
          imageCounts = try imageCounts + s.ge(pairedRow).sum(dims: [0]).to(.int64)
          let selfPadded = try Tensor.zeros([n], dtype: .int64, device: s.device)
          try selfPadded.narrow(dim: 0, start: start, length: len).copyFrom(selfGE)
          imageCounts = try imageCounts - selfPadded
        }
        for (k, c) in try rowCounts.to(.int64).to(.cpu).scalars(as: Int64.self).enumerated() {
          textRanks[start + k] = 1 + Int(c)
        }
        start += len
      }
      let imageRanks = try imageCounts.to(.cpu).scalars(as: Int64.self).map { 1 + Int($0) }
      return CrossModal(reportToVolume: RetrievalMetrics(ranks: textRanks, ks: ks),
                        volumeToReport: RetrievalMetrics(ranks: imageRanks, ks: ks), similarity: similarity)
    }
  }

  /// Volume→volume MAP@K: relevance is sharing at least one positive finding (label 1 in both).
  ///
  /// For query i the candidates are all other studies, ordered by decreasing similarity, ties by increasing index
  /// (a stable sort). With rel_k ∈ {0, 1} the relevance of the k-th candidate and R the number of relevant
  /// candidates in the pool,
  ///
  ///     AP@K = (1 / min(K, R)) · Σ_{k=1..K} rel_k · (Σ_{m=1..k} rel_m) / k
  ///
  /// and MAP@K is the mean over the queries with R > 0 (the others are counted, not averaged as 0).
  /// Matches the NumPy reference in `scripts/golden/make_metrics_golden.py`.
  /// - Parameters:
  ///   - latents: `[N, D]` image latents.
  ///   - labels: `[N][C]` labels; only 1 counts as positive.
  ///   - k: the cut-off K (the precursor reports MAP@50).
  ///   - chunkSize: query rows per block.
  public static func volumeToVolumeMAP(latents: Tensor, labels: [[Int8]], k: Int = 50, similarity: Similarity = .dot,
                                       chunkSize: Int = 256) throws -> MeanAveragePrecision {
    precondition(latents.rank == 2 && latents.shape[0] == labels.count,
                 "Retrieval.volumeToVolumeMAP: latents \(latents.shape) and \(labels.count) label rows")
    precondition(k >= 1 && chunkSize >= 1, "Retrieval.volumeToVolumeMAP: k and chunkSize must be at least 1")
    let n = labels.count
    let c = labels.first?.count ?? 0
    return try withNoGrad {
      let x = try prepared(latents, similarity)
      let xT = try x.t()
      let positives = try Tensor(labels.flatMap { $0.map { $0 == 1 ? Float(1) : Float(0) } }, shape: [n, c])
        .to(latents.device)
      let positivesT = try positives.t()
      let take = Swift.min(k, n - 1)
      var perQuery: [Double?] = []
      perQuery.reserveCapacity(n)
      var start = 0
      while start < n {
        let len = Swift.min(chunkSize, n - start)
        let diagIndex = try Tensor.arange(Double(start), Double(start + len), device: x.device).unsqueeze(dim: 1)
        var s = try x.narrow(dim: 0, start: start, length: len).matmul(xT)  // [len, N]
        let columns = try Tensor.arange(Double(n), device: s.device).unsqueeze(dim: 0)  // [1, N]
        let selfMask = try columns.eq(diagIndex)  // [len, N]: true at (q, start + q)
        s = try s.maskedFill(selfMask, -.infinity)
        // Shared positive findings, excluding self.
        let shared = try positives.narrow(dim: 0, start: start, length: len).matmul(positivesT).gt(0.5)
          .logicalAnd(selfMask.logicalNot())  // [len, N] bool
        let relevantCounts = try shared.sum(dims: [1]).to(.int64).to(.cpu).scalars(as: Int64.self)
        var relevance: [UInt8] = []
        if take > 0 {
          let order = try s.sort(dim: 1, descending: true, stable: true).indices.narrow(dim: 1, start: 0, length: take)
          relevance = try shared.gather(dim: 1, indices: order).to(.uint8).to(.cpu).scalars(as: UInt8.self)
        }
        for q in 0..<len {
          let r = Int(relevantCounts[q])
          guard r > 0, take > 0 else {
            perQuery.append(nil)
            continue
          }
          var hits = 0, sum = 0.0
          for j in 0..<take where relevance[q * take + j] != 0 {
            hits += 1
            sum += Double(hits) / Double(j + 1)
          }
          perQuery.append(sum / Double(Swift.min(k, r)))
        }
        start += len
      }
      let values = perQuery.compactMap { $0 }
      return MeanAveragePrecision(k: k, value: values.isEmpty ? nil : values.reduce(0, +) / Double(values.count),
                                  queries: values.count, queriesWithoutRelevant: n - values.count, perQuery: perQuery)
    }
  }

  /// The latents ready for dot products: L2-normalised rows for `.cosine`, as given for `.dot`.
  static func prepared(_ x: Tensor, _ similarity: Similarity) throws -> Tensor {
    // The CPU counting kernel takes float32 and float64; half-precision latents are ranked in float32.
    let x = x.device == .cpu && x.dtype != .float32 && x.dtype != .float64 ? try x.to(.float32) : x
    switch similarity {
    case .dot: return x
    case .cosine: return try x / x.norm(dims: [1], keepDim: true).clamp(min: 1e-12)
    }
  }
}
