import Foundation
import MedicalImaging
import Reports

/// One rank's part of every epoch in data-parallel training (a distributed sampler): with `count` ranks and
/// micro-batches of `batchSize`, rank `r`'s batch `b` is batch `b·count + r` of the single-process epoch order, so the
/// ranks' shards are disjoint, each epoch's order is the same on every run, and the ranks' batches `b` together are
/// the single-process batches `b·count ..< (b+1)·count` (one batch of `batchSize × count` items, or `count`
/// accumulated micro-batches). Leftover items that do not fill a batch on every rank are dropped.
public struct DataShard: Equatable, Sendable {
  public var rank: Int
  public var count: Int
  public static let whole = DataShard(rank: 0, count: 1)

  /// - Traps: when `rank` is outside `0..<count`.
  public init(rank: Int, count: Int) {
    precondition(count >= 1 && (0..<count).contains(rank), "DataShard: rank \(rank) outside 0..<\(count)")
    self.rank = rank
    self.count = count
  }

  /// Full batches of `batchSize` each rank gets from `items` items.
  public func batches(items: Int, batchSize: Int) -> Int { items / (batchSize * count) }

  /// This rank's items of an epoch order, batch after batch (`batches(items:batchSize:) × batchSize` of them).
  public func select<T>(_ order: [T], batchSize: Int) -> [T] {
    guard count > 1 else { return order }
    var out: [T] = []
    for b in 0..<batches(items: order.count, batchSize: batchSize) {
      let lo = (b * count + rank) * batchSize
      out += order[lo..<(lo + batchSize)]
    }
    return out
  }
}

/// A deterministic order for each epoch: a permutation of `0..<count` from `(seed, epoch)`.
///
/// Algorithm (fixed, so the order is identical on every run, machine and Swift version): the generator is
/// `SeededGenerator` (SplitMix64) seeded with `mix(seed, epoch)`; a Fisher–Yates shuffle runs from the last position
/// down, swapping position `i` with `j = uniform(0...i)`, where `uniform` takes 64-bit draws and rejects those below
/// `2^64 mod (i + 1)` (no modulo bias). `mix` folds values with the SplitMix64 finaliser.
public enum EpochOrder {
  /// The permutation of `0..<count` for `(seed, epoch)`.
  /// - Traps: when `count` is negative.
  public static func permutation(count: Int, seed: UInt64, epoch: Int) -> [Int] {
    precondition(count >= 0, "EpochOrder.permutation: negative count \(count)")
    var order = Array(0..<count)
    guard count > 1 else { return order }
    var generator = SeededGenerator(seed: mix(seed, UInt64(bitPattern: Int64(epoch))))
    for i in stride(from: count - 1, through: 1, by: -1) {
      order.swapAt(i, uniform(i + 1, using: &generator))
    }
    return order
  }

  /// A uniform integer in `0..<bound` by rejection (unbiased, and independent of the standard library's algorithm).
  public static func uniform(_ bound: Int, using generator: inout SeededGenerator) -> Int {
    precondition(bound > 0, "EpochOrder.uniform: bound \(bound) must be > 0")
    let b = UInt64(bound)
    let threshold = (0 &- b) % b
    while true {
      let r = generator.next()
      if r >= threshold { return Int(r % b) }
    }
  }

  /// The SplitMix64 finaliser of `x + golden gamma`.
  public static func splitmix(_ x: UInt64) -> UInt64 {
    var z = x &+ 0x9E37_79B9_7F4A_7C15
    z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
    z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
    return z ^ (z >> 31)
  }

  /// Folds values into one seed: `h = splitmix(h ^ v)` for each value, from `h = 0x6A09E667F3BCC909`.
  public static func mix(_ values: UInt64...) -> UInt64 {
    values.reduce(0x6A09_E667_F3BC_C909) { splitmix($0 ^ $1) }
  }

  /// The augmentation seed of one item in one epoch: `mix(seed, epoch, itemIndex)` (cohort item index).
  public static func itemSeed(seed: UInt64, epoch: Int, item: Int) -> UInt64 {
    mix(seed, UInt64(bitPattern: Int64(epoch)), UInt64(bitPattern: Int64(item)))
  }
}

/// One batch of volumes as CPU floats, ready for `Tensor(voxels, shape: shape)`.
public struct VolumeBatch: Sendable {
  /// The epoch and the batch's position in it (`0..<batchesPerEpoch`); the resume point after this batch is
  /// `batchIndex + 1`.
  public var epoch: Int
  public var batchIndex: Int
  /// Cohort item indices of the volumes in this batch, in batch order (items that failed are left out).
  public var indices: [Int]
  public var ids: [String]
  /// Row-major float32 values of shape `[N, 1, D, H, W]` with D = k, H = j, W = i of the RAS volume (see
  /// `VolumeTensor`): values in [−1, 1] after a HU window, z-scores for MRI.
  public var voxels: [Float]
  /// `[N, 1, D, H, W]`.
  public var shape: [Int]
  /// `N × C` row-major labels (C = schema findings): 1, 0 or −1.
  public var labels: [Int8]
  /// The report text of each volume (nil where the cohort has none).
  public var reports: [String?]

  /// The number of volumes.
  public var count: Int { indices.count }
}

/// How a `VolumeLoader` reads, caches and augments volumes, and how it batches them.
///
/// Paper (METHOD.md, authors' code): training caches reorient → resample 1.5×1.5×3 mm → HU window → centre
/// pad/crop to the training canvas (chest 240×240×120), then draws a random 192×192×96 crop per item; evaluation
/// caches the centre 192×192×96 directly and draws nothing. Use `training(protocol:cacheFolder:)` and
/// `evaluation(protocol:cacheFolder:)` for these settings.
public struct VolumeLoaderConfig: Codable, Sendable, Equatable {
  /// The deterministic part, cached on disk (its `size` is the canvas, in voxels along i, j, k).
  public var preprocess: PreprocessConfig
  /// The preprocessing cache folder (see `PreprocessCache`).
  public var cacheFolder: String
  /// The random crop size in voxels along (i, j, k), taken from the cached canvas; nil = no random crop (the
  /// batch holds the canvas itself).
  public var trainingCrop: [Int]?
  /// Random flips of each axis with probability 0.5 (training augmentation).
  public var flips: Bool
  /// Volumes per batch (≥ 1).
  public var batchSize: Int
  /// Background threads that read, preprocess and augment (≥ 1); each builds whole batches.
  public var workers: Int
  /// The most batches finished or being built ahead of the consumer (≥ 1); parallelism is min(workers, queueDepth).
  public var queueDepth: Int
  /// Shuffle each epoch (`EpochOrder.permutation`); false = cohort order.
  public var shuffle: Bool
  /// Drop the last batch when it would be smaller than `batchSize`.
  public var dropLast: Bool
  /// Seed of the order and of every augmentation draw.
  public var seed: UInt64

  public init(preprocess: PreprocessConfig, cacheFolder: String, trainingCrop: [Int]? = nil, flips: Bool = false,
              batchSize: Int = 2, workers: Int = 2, queueDepth: Int = 2, shuffle: Bool = false, dropLast: Bool = false,
              seed: UInt64 = 0) {
    self.preprocess = preprocess
    self.cacheFolder = cacheFolder
    self.trainingCrop = trainingCrop
    self.flips = flips
    self.batchSize = batchSize
    self.workers = workers
    self.queueDepth = queueDepth
    self.shuffle = shuffle
    self.dropLast = dropLast
    self.seed = seed
  }

  /// The training canvas and random crop per protocol (METHOD.md): chest 240×240×120 → 192×192×96, abdomen
  /// 280×280×180 → 224×224×144, MRI 240×240×24 → 192×192×20; shuffled, last partial batch dropped.
  /// - Throws: `MedicalImagingError.invalidArgument` for an unknown protocol.
  public static func training(protocol name: String, cacheFolder: String, batchSize: Int = 2, workers: Int = 2,
                              seed: UInt64 = 0) throws -> VolumeLoaderConfig {
    var preprocess = try PreprocessConfig.preset(name)
    let crop: [Int]
    switch name {
    case "chest-ct": (preprocess.size, crop) = ([240, 240, 120], [192, 192, 96])
    case "abdomen-ct": (preprocess.size, crop) = ([280, 280, 180], [224, 224, 144])
    default: (preprocess.size, crop) = ([240, 240, 24], [192, 192, 20])
    }
    return VolumeLoaderConfig(preprocess: preprocess, cacheFolder: cacheFolder, trainingCrop: crop, flips: false,
                              batchSize: batchSize, workers: workers, queueDepth: max(2, workers), shuffle: true,
                              dropLast: true, seed: seed)
  }

  /// The evaluation setting per protocol: the centre crop cached directly (chest 192×192×96, abdomen 224×224×144,
  /// MRI 192×192×20), no random draws, cohort order, every item.
  /// - Throws: `MedicalImagingError.invalidArgument` for an unknown protocol.
  public static func evaluation(protocol name: String, cacheFolder: String, batchSize: Int = 2, workers: Int = 2) throws
    -> VolumeLoaderConfig
  {
    var preprocess = try PreprocessConfig.preset(name)
    if name == "mri" { preprocess.size = [192, 192, 20] }
    return VolumeLoaderConfig(preprocess: preprocess, cacheFolder: cacheFolder, trainingCrop: nil, flips: false,
                              batchSize: batchSize, workers: workers, queueDepth: max(2, workers), shuffle: false,
                              dropLast: false, seed: 0)
  }

  /// The shape of one volume in a batch: `[1, D, H, W]`.
  public var itemShape: [Int] {
    let s = trainingCrop ?? preprocess.size
    return [1, s[2], s[1], s[0]]
  }

  /// Checks ranges.
  /// - Throws: `GreenRFMError.invalidConfig` naming the field.
  public func validate() throws {
    do { try preprocess.validate() } catch {
      throw GreenRFMError.invalidConfig(source: "loader.preprocess", reason: "\(error)")
    }
    func bad(_ field: String, _ reason: String) -> GreenRFMError { .invalidConfig(source: "loader.\(field)", reason: reason) }
    if let crop = trainingCrop {
      guard crop.count == 3, crop.allSatisfy({ $0 > 0 && $0 <= 4096 }) else {
        throw bad("trainingCrop", "\(crop) must be three voxel counts in 1...4096")
      }
    }
    guard batchSize >= 1 else { throw bad("batchSize", "\(batchSize) must be ≥ 1") }
    guard (1...256).contains(workers) else { throw bad("workers", "\(workers) must be in 1...256") }
    guard queueDepth >= 1 else { throw bad("queueDepth", "\(queueDepth) must be ≥ 1") }
    guard !cacheFolder.isEmpty else { throw bad("cacheFolder", "must not be empty") }
  }
}

/// Reads a cohort's volumes through the preprocessing cache and serves augmented batches from background threads.
///
/// Order and augmentation are functions of `(seed, epoch, item index)` only: the same config and cohort give the same
/// batches whatever the worker count, queue depth or timing. Batch `b` of an epoch holds the items at positions
/// `b·batchSize ..< (b+1)·batchSize` of the epoch order; an item that fails to read or preprocess is left out of its
/// batch (which comes out smaller; a batch whose items all failed is skipped) and recorded in `failures`, once, and
/// not retried by this loader. Items without a volume path are failures from the start.
public final class VolumeLoader: @unchecked Sendable {
  public let cohort: Cohort
  public let config: VolumeLoaderConfig
  let cache: PreprocessCache
  /// Cohort indices that have a volume path, in cohort order.
  let usable: [Int]
  private let lock = NSLock()
  private var failureList: [(id: String, path: String, reason: String)] = []
  private var failureIndices: [Int] = []
  private var failed: Set<Int> = []
  private var cached: [Int: String] = [:]
  private var written = 0
  private var reused = 0

  /// This rank's part of every epoch (data-parallel training); `.whole` otherwise.
  public let shard: DataShard

  /// - Parameter shard: a rank's part of every epoch; a shard of more than one rank needs `dropLast`.
  /// - Throws: `GreenRFMError.invalidConfig` (see `VolumeLoaderConfig.validate`); `.invalidData` when no item has
  ///   a volume path.
  public init(cohort: Cohort, config: VolumeLoaderConfig, shard: DataShard = .whole) throws {
    try config.validate()
    guard shard.count == 1 || config.dropLast else {
      throw GreenRFMError.invalidConfig(source: "loader.dropLast", reason: "a data-parallel shard needs dropLast")
    }
    self.shard = shard
    self.cohort = cohort
    self.config = config
    cache = PreprocessCache(folder: config.cacheFolder, config: config.preprocess)
    var usable: [Int] = []
    for (i, item) in cohort.items.enumerated() {
      if item.volumePath != nil { usable.append(i) } else {
        failureList.append((id: item.id, path: "", reason: "no volume path"))
        failureIndices.append(i)
        failed.insert(i)
      }
    }
    guard !usable.isEmpty else {
      throw GreenRFMError.invalidData(path: cohort.name, reason: "no item of the cohort has a volume (\(cohort.items.count) items)")
    }
    self.usable = usable
  }

  /// Batches per epoch: ⌊n / batchSize⌋ with `dropLast`, else ⌈n / batchSize⌉, for the n items with a volume path
  /// (items that fail while loading make batches smaller, not fewer).
  public var batchesPerEpoch: Int {
    if shard.count > 1 { return shard.batches(items: usable.count, batchSize: config.batchSize) }
    return config.dropLast ? usable.count / config.batchSize : (usable.count + config.batchSize - 1) / config.batchSize
  }

  /// The cohort item indices of epoch `epoch`, in order.
  public func order(epoch: Int) -> [Int] {
    let all = config.shuffle ? EpochOrder.permutation(count: usable.count, seed: config.seed, epoch: epoch).map { usable[$0] }
                             : usable
    return shard.select(all, batchSize: config.batchSize)
  }

  /// Items that failed to read or preprocess so far, each once, in the order they failed.
  public var failures: [(id: String, path: String, reason: String)] {
    lock.lock(); defer { lock.unlock() }
    return failureList
  }

  /// Cache entries this loader wrote and reused (each item counted once per loader).
  public var cacheCounts: (written: Int, reused: Int) {
    lock.lock(); defer { lock.unlock() }
    return (written, reused)
  }

  /// The batches of epoch `epoch`, from batch `startBatch` on (earlier batches are neither read nor built: exact
  /// resume). See `VolumeBatchSequence`.
  /// - Traps: when `startBatch` is negative.
  public func batches(epoch: Int, startBatch: Int = 0) -> VolumeBatchSequence {
    precondition(startBatch >= 0, "VolumeLoader.batches: negative startBatch \(startBatch)")
    return VolumeBatchSequence(loader: self, epoch: epoch, startBatch: startBatch)
  }

  /// Preprocesses every item with a volume into the cache, on `config.workers` threads.
  /// - Parameter progress: called after each item with (done, total), serialised (never concurrently).
  /// - Returns: the failures among these items (also added to `failures`).
  @discardableResult
  public func preprocessAll(progress: (@Sendable (_ done: Int, _ total: Int) -> Void)? = nil)
    -> [(id: String, path: String, reason: String)]
  {
    let progressLock = NSLock()
    let state = Counter()
    let total = usable.count
    DispatchQueue.concurrentPerform(iterations: min(config.workers, total)) { _ in
      while true {
        let n = state.take()
        guard n < total else { return }
        _ = cachedPath(usable[n])
        progressLock.lock()
        let done = state.finish()
        progress?(done, total)
        progressLock.unlock()
      }
    }
    let ids = Set(usable)
    lock.lock(); defer { lock.unlock() }
    return zip(failureIndices, failureList).filter { ids.contains($0.0) }.map(\.1)
  }

  // MARK: - Items

  private func recordFailure(_ index: Int, path: String, reason: String) {
    lock.lock(); defer { lock.unlock() }
    if failed.insert(index).inserted {
      failureList.append((id: cohort.items[index].id, path: path, reason: reason))
      failureIndices.append(index)
    }
  }

  /// The cache file of an item (preprocessing it on first use), or nil after recording a failure.
  func cachedPath(_ index: Int) -> String? {
    lock.lock()
    if failed.contains(index) { lock.unlock(); return nil }
    if let p = cached[index] { lock.unlock(); return p }
    lock.unlock()
    let source = cohort.items[index].volumePath ?? ""
    do {
      let outcome = try cache.process(input: source, readOptions: cohort.readOptions)
      lock.lock(); defer { lock.unlock() }
      switch outcome {
      case .written(let p): cached[index] = p; written += 1; return p
      case .reused(let p): cached[index] = p; reused += 1; return p
      }
    } catch {
      recordFailure(index, path: source, reason: "\(error)")
      return nil
    }
  }

  /// One item's voxels for `epoch` (cache read + augmentation), `[1, D, H, W]` row-major, or nil (failure recorded).
  func itemVoxels(_ index: Int, epoch: Int) -> [Float]? {
    guard let path = cachedPath(index) else { return nil }
    let source = cohort.items[index].volumePath ?? ""
    do {
      var volume = try NIfTI.read(path: path)
      guard volume.shape == config.preprocess.size else {
        throw GreenRFMError.invalidData(path: path, reason: "cache entry has shape \(volume.shape), expected \(config.preprocess.size)")
      }
      var steps: [any VolumeTransform] = []
      if let crop = config.trainingCrop {
        let pad: Float = config.preprocess.normalization == "huWindow"
          ? HUWindow(lowerHU: config.preprocess.windowHU[0], upperHU: config.preprocess.windowHU[1]).map(Float(config.preprocess.padHU))
          : (volume.voxels.min() ?? 0)
        steps.append(RandomCrop(size: crop, padValue: pad))
      }
      if config.flips { steps.append(RandomFlip(axes: [0, 1, 2], probability: 0.5)) }
      if !steps.isEmpty {
        var generator = SeededGenerator(seed: EpochOrder.itemSeed(seed: config.seed, epoch: epoch, item: index))
        volume = try Compose(steps).apply(volume, generator: &generator)
      }
      return VolumeTensor(volume).values
    } catch {
      recordFailure(index, path: source, reason: "cache \(path): \(error)")
      return nil
    }
  }

  /// Builds batch `b` of an epoch whose order is `order`; nil when every item failed or `cancelled()` turned true.
  func makeBatch(_ b: Int, epoch: Int, order: [Int], cancelled: () -> Bool) -> VolumeBatch? {
    let lo = b * config.batchSize, hi = min(lo + config.batchSize, order.count)
    let itemShape = config.itemShape
    let perItem = itemShape.reduce(1, *)
    var batch = VolumeBatch(epoch: epoch, batchIndex: b, indices: [], ids: [], voxels: [], shape: [], labels: [], reports: [])
    batch.voxels.reserveCapacity((hi - lo) * perItem)
    for index in order[lo..<hi] {
      if cancelled() { return nil }
      guard let values = itemVoxels(index, epoch: epoch) else { continue }
      precondition(values.count == perItem, "VolumeLoader: item \(index) has \(values.count) voxels, expected \(perItem)")
      let item = cohort.items[index]
      batch.indices.append(index)
      batch.ids.append(item.id)
      batch.voxels.append(contentsOf: values)
      batch.labels.append(contentsOf: item.labels)
      batch.reports.append(item.reportText)
    }
    guard !batch.indices.isEmpty else { return nil }
    batch.shape = [batch.indices.count] + itemShape
    return batch
  }

  // MARK: - Thread accounting (tests check that no worker outlives its sequence)

  static let liveWorkers = Counter()

  final class Counter: @unchecked Sendable {
    private let lock = NSLock()
    private var next = 0
    private var done = 0
    func take() -> Int { lock.lock(); defer { lock.unlock() }; next += 1; return next - 1 }
    func finish() -> Int { lock.lock(); defer { lock.unlock() }; done += 1; return done }
    func add(_ n: Int) { lock.lock(); next += n; lock.unlock() }
    var value: Int { lock.lock(); defer { lock.unlock() }; return next }
  }
}

/// The batches of one epoch from a start batch, built ahead by background threads and delivered in order.
///
/// Iterate with a throwing `next()`:
/// ```swift
/// let it = loader.batches(epoch: e, startBatch: b).makeIterator()
/// while let batch = try it.next() { … }
/// ```
/// A batch whose items all failed is skipped (its items are in `failures`); if no batch of the pass has any item,
/// `next()` throws `GreenRFMError.invalidData` once and then returns nil. Workers start on the first `next()`;
/// dropping the iterator cancels them without waiting: they finish the item in hand and exit, and a worker blocked
/// on a full queue wakes and exits. (Not a Swift `Sequence`: its iterator throws.)
public struct VolumeBatchSequence: Sendable {
  let loader: VolumeLoader
  public let epoch: Int
  public let startBatch: Int

  /// A new pass (its own workers, started on the first `next()`).
  public func makeIterator() -> Iterator { Iterator(pipeline: BatchPipeline(loader: loader, epoch: epoch, startBatch: startBatch)) }

  /// Every batch of the pass, in order (a convenience for small evaluation cohorts: holds them all in memory).
  /// - Throws: as `Iterator.next()`.
  public func collect() throws -> [VolumeBatch] {
    let it = makeIterator()
    var out: [VolumeBatch] = []
    while let b = try it.next() { out.append(b) }
    return out
  }

  /// Owns the pipeline; cancels it on deinit.
  public final class Iterator {
    let pipeline: BatchPipeline
    init(pipeline: BatchPipeline) { self.pipeline = pipeline }
    deinit { pipeline.cancel() }
    /// The next batch in order, nil at the end of the pass.
    /// - Throws: `GreenRFMError.invalidData` when every item of the pass failed.
    public func next() throws -> VolumeBatch? { try pipeline.next()?.get() }
  }
}

/// The shared state of one pass: claimed, finished and delivered batch numbers under one condition variable.
final class BatchPipeline: @unchecked Sendable {
  enum Slot { case batch(VolumeBatch), empty }

  let loader: VolumeLoader
  let epoch: Int
  let order: [Int]
  let start: Int
  let end: Int
  private let condition = NSCondition()
  private var nextToClaim: Int
  private var nextToYield: Int
  private var ready: [Int: Slot] = [:]
  private var cancelled = false
  private var started = false
  private var yieldedAny = false
  private var finished = false

  init(loader: VolumeLoader, epoch: Int, startBatch: Int) {
    self.loader = loader
    self.epoch = epoch
    order = loader.order(epoch: epoch)
    end = loader.batchesPerEpoch
    start = startBatch
    nextToClaim = startBatch
    nextToYield = startBatch
  }

  var isCancelled: Bool {
    condition.lock(); defer { condition.unlock() }
    return cancelled
  }

  func cancel() {
    condition.lock()
    cancelled = true
    condition.broadcast()
    condition.unlock()
  }

  private func startWorkers() {
    let count = min(loader.config.workers, max(0, end - nextToClaim))
    VolumeLoader.liveWorkers.add(count)
    for w in 0..<count {
      let thread = Thread { [self] in
        self.work()
        VolumeLoader.liveWorkers.add(-1)
      }
      thread.name = "greenrfm.loader.e\(epoch).w\(w)"
      thread.start()
    }
  }

  private func work() {
    let depth = loader.config.queueDepth
    while true {
      condition.lock()
      while !cancelled && nextToClaim < end && nextToClaim >= nextToYield + depth { condition.wait() }
      if cancelled || nextToClaim >= end {
        condition.unlock()
        return
      }
      let b = nextToClaim
      nextToClaim += 1
      condition.unlock()
      let batch = loader.makeBatch(b, epoch: epoch, order: order, cancelled: { [self] in self.isCancelled })
      condition.lock()
      ready[b] = batch.map(Slot.batch) ?? .empty
      condition.broadcast()
      condition.unlock()
    }
  }

  func next() -> Result<VolumeBatch, Error>? {
    condition.lock()
    defer { condition.unlock() }
    if !started {
      started = true
      startWorkers()
    }
    while true {
      if finished || cancelled { return nil }
      if nextToYield >= end {
        finished = true
        if !yieldedAny && start < end {
          return .failure(GreenRFMError.invalidData(
            path: loader.cohort.name,
            reason: "every item of epoch \(epoch), batches \(start)..<\(end), failed to load; see the loader's failures (\(loader.failures.count))"))
        }
        return nil
      }
      while ready[nextToYield] == nil && !cancelled { condition.wait() }
      if cancelled { return nil }
      let slot = ready.removeValue(forKey: nextToYield)!
      nextToYield += 1
      condition.broadcast()
      if case .batch(let batch) = slot {
        yieldedAny = true
        return .success(batch)
      }
      // One process skips a batch whose items all failed; a data-parallel rank cannot, or it would train on batch
      // b + 1 while the others are on batch b (and meet them at a different collective).
      if loader.shard.count > 1 {
        finished = true
        return .failure(GreenRFMError.invalidData(
          path: loader.cohort.name,
          reason: "every item of batch \(nextToYield - 1) of epoch \(epoch) failed to load on this rank; a data-parallel "
            + "run stops rather than skip a batch on one rank (see the loader's failures, \(loader.failures.count))"))
      }
    }
  }
}
