import Foundation
import MedicalImaging
import Reports
import Testing
@testable import GreenRFM

/// A manifest over the real volumes in ../shared/data (four NIfTI CTs and one DICOM folder), plus one missing and
/// one corrupt file, in a temporary folder.
struct LoaderFixture {
  let dir: URL
  let cohort: Cohort
  let schema: LabelSchema

  init?() throws {
    let ct = CohortData.root.appendingPathComponent("ct")
    let dicom = CohortData.root.appendingPathComponent("dicom/dcmqi_liver_ct_3slice")
    let names = ["ts_chest_cta_full_3mm", "ts_chest_cta_crop_1p5mm", "ts_abdomen_pelvis_ct_3mm", "ts_abdomen_ct_small_3mm_30sl"]
    let files = names.map { ct.appendingPathComponent("\($0).nii.gz").path }
    guard (files + [dicom.path]).allSatisfy({ FileManager.default.fileExists(atPath: $0) }) else { return nil }
    schema = try LabelSchema.load("chest-ct-18")
    dir = try cohortTemporaryDirectory()
    try Data("not a NIfTI file at all".utf8).write(to: dir.appendingPathComponent("corrupt.nii.gz"))
    var lines = [(["id", "volume", "report"] + schema.displayNames).map(CSVTable.escape).joined(separator: ",")]
    let rows = names.map { ($0, ct.appendingPathComponent("\($0).nii.gz").path) }
      + [("liver_dicom", dicom.path), ("missing", "missing.nii.gz"), ("corrupt", "corrupt.nii.gz")]
    for (r, (id, path)) in rows.enumerated() {
      let labels = (0..<18).map { String(($0 + r) % 3 - 1) }
      lines.append(([id, path, "report of \(id)"] + labels).joined(separator: ","))
    }
    let csv = dir.appendingPathComponent("manifest.csv")
    try (lines.joined(separator: "\n") + "\n").write(to: csv, atomically: true, encoding: .utf8)
    cohort = try CohortLayout.manifest(csv: csv, schema: schema)
  }

  /// Chest protocol at 4 mm, canvas 80×80×48 (i, j, k), random crop 64×64×32: batches [N, 1, 32, 64, 64].
  func config(workers: Int, cache: String = "cache", batchSize: Int = 2, queueDepth: Int = 2) throws -> VolumeLoaderConfig {
    var preprocess = try PreprocessConfig.preset("chest-ct")
    preprocess.spacingMM = [4, 4, 4]
    preprocess.size = [80, 80, 48]
    return VolumeLoaderConfig(preprocess: preprocess, cacheFolder: dir.appendingPathComponent(cache).path,
                              trainingCrop: [64, 64, 32], flips: true, batchSize: batchSize, workers: workers,
                              queueDepth: queueDepth, shuffle: true, dropLast: false, seed: 7)
  }
}

/// FNV-1a over the float bit patterns.
func checksum(_ values: [Float]) -> UInt64 {
  values.reduce(0xcbf2_9ce4_8422_2325) { ($0 ^ UInt64($1.bitPattern)) &* 0x100_0000_01b3 }
}

struct BatchDigest: Equatable {
  var batchIndex: Int
  var indices: [Int]
  var shape: [Int]
  var voxels: UInt64
  var labels: [Int8]
  init(_ b: VolumeBatch) {
    (batchIndex, indices, shape, voxels, labels) = (b.batchIndex, b.indices, b.shape, checksum(b.voxels), b.labels)
  }
}

func digests(_ loader: VolumeLoader, epoch: Int, startBatch: Int = 0) throws -> [BatchDigest] {
  try loader.batches(epoch: epoch, startBatch: startBatch).collect().map(BatchDigest.init)
}

@Suite("Volume loader", .serialized)
struct VolumeLoaderTests {
  @Test func batchesFailuresCacheAndDeterminism() throws {
    guard let fx = try LoaderFixture() else { return }
    defer { try? FileManager.default.removeItem(at: fx.dir) }
    // The manifest keeps 6 rows; the missing file is skipped by the cohort.
    #expect(fx.cohort.items.map(\.id) == ["ts_chest_cta_full_3mm", "ts_chest_cta_crop_1p5mm", "ts_abdomen_pelvis_ct_3mm",
                                         "ts_abdomen_ct_small_3mm_30sl", "liver_dicom", "corrupt"])
    #expect(fx.cohort.skipped.map(\.id) == ["missing"])
    #expect(fx.cohort.skipped[0].reason.contains("missing.nii.gz"))

    let loader = try VolumeLoader(cohort: fx.cohort, config: try fx.config(workers: 1))
    #expect(loader.batchesPerEpoch == 3)
    let epoch0 = try loader.batches(epoch: 0).collect()
    #expect(epoch0.map(\.batchIndex).count == epoch0.count)
    #expect(epoch0.reduce(0) { $0 + $1.count } == 5)
    for b in epoch0 {
      #expect(b.shape == [b.count, 1, 32, 64, 64])
      #expect(b.voxels.count == b.count * 32 * 64 * 64)
      #expect(b.labels.count == b.count * 18)
      #expect(b.voxels.allSatisfy { $0 >= -1 && $0 <= 1 })
      for (n, index) in b.indices.enumerated() {
        #expect(Array(b.labels[(n * 18)..<((n + 1) * 18)]) == fx.cohort.items[index].labels)
        #expect(b.reports[n] == "report of \(fx.cohort.items[index].id)")
        #expect(b.ids[n] == fx.cohort.items[index].id)
      }
    }
    // The batch order is the epoch order with the corrupt item left out.
    let corrupt = 5
    #expect(epoch0.flatMap(\.indices) == loader.order(epoch: 0).filter { $0 != corrupt })
    // The corrupt file is a failure with its path and reason.
    let failures = loader.failures
    #expect(failures.count == 1)
    #expect(failures.first?.id == "corrupt")
    #expect(failures.first?.path.hasSuffix("corrupt.nii.gz") == true)
    #expect(failures.first?.reason.isEmpty == false)

    // One cache entry per good volume (a .nii.gz and its .json sidecar).
    let cacheFolder = fx.dir.appendingPathComponent("cache").path
    let entries = try FileManager.default.contentsOfDirectory(atPath: cacheFolder).sorted()
    #expect(entries.filter { $0.hasSuffix(".nii.gz") }.count == 5)
    #expect(entries.filter { $0.hasSuffix(".json") }.count == 5)
    #expect(loader.cacheCounts.written == 5 && loader.cacheCounts.reused == 0)
    let modified = try entries.map { try FileManager.default.attributesOfItem(atPath: cacheFolder + "/" + $0)[.modificationDate] as? Date }

    // Epoch 1: another order and other crops; the cache is untouched.
    let epoch1 = try digests(loader, epoch: 1)
    #expect(epoch1.flatMap(\.indices) != epoch0.flatMap(\.indices))
    #expect(epoch1.flatMap(\.indices).sorted() == epoch0.flatMap(\.indices).sorted())
    #expect(try FileManager.default.contentsOfDirectory(atPath: cacheFolder).sorted() == entries)
    #expect(try entries.map { try FileManager.default.attributesOfItem(atPath: cacheFolder + "/" + $0)[.modificationDate] as? Date } == modified)
    #expect(loader.failures.count == 1)

    // A second loader (2 workers, same cache): every entry reused, and identical batches for the same seed and epoch.
    let two = try VolumeLoader(cohort: fx.cohort, config: try fx.config(workers: 2))
    let again0 = try digests(two, epoch: 0)
    #expect(again0 == epoch0.map(BatchDigest.init))
    #expect(two.cacheCounts.written == 0 && two.cacheCounts.reused == 5)
    #expect(try digests(two, epoch: 1) == epoch1)
    // And a third with 1 worker and a deeper queue.
    let deep = try VolumeLoader(cohort: fx.cohort, config: try fx.config(workers: 1, queueDepth: 3))
    #expect(try digests(deep, epoch: 0) == again0)

    // Resume: startBatch 1 equals batches 1… of a full pass.
    let resumed = try digests(two, epoch: 1, startBatch: 1)
    #expect(resumed == Array(epoch1.dropFirst()))
    #expect(try digests(two, epoch: 1, startBatch: 3).isEmpty)
  }

  @Test func evaluationConfigIsCentreCropWithoutDraws() throws {
    guard let fx = try LoaderFixture() else { return }
    defer { try? FileManager.default.removeItem(at: fx.dir) }
    var config = try fx.config(workers: 2, cache: "eval", batchSize: 4)
    (config.trainingCrop, config.flips, config.shuffle) = (nil, false, false)
    let loader = try VolumeLoader(cohort: fx.cohort, config: config)
    let a = try digests(loader, epoch: 0), b = try digests(loader, epoch: 5)
    #expect(a.map(\.shape) == [[4, 1, 48, 80, 80], [1, 1, 48, 80, 80]])  // the corrupt item leaves the last batch with 1
    #expect(a.map(\.voxels) == b.map(\.voxels))
    #expect(a.flatMap(\.indices) == [0, 1, 2, 3, 4])
    // The cached canvas is what a fresh PreprocessCache run gives (centre crop/pad of the preprocessed volume).
    let batch = try loader.batches(epoch: 0).collect()[0]
    let cached = try NIfTI.read(path: PreprocessCache(folder: config.cacheFolder, config: config.preprocess)
      .outputPath(for: fx.cohort.items[0].volumePath!))
    #expect(Array(batch.voxels[0..<(80 * 80 * 48)]) == VolumeTensor(cached).values)
  }

  @Test func droppingTheSequenceEarlyStopsWorkers() throws {
    guard let fx = try LoaderFixture() else { return }
    defer { try? FileManager.default.removeItem(at: fx.dir) }
    let loader = try VolumeLoader(cohort: fx.cohort, config: try fx.config(workers: 2, cache: "drop", batchSize: 1, queueDepth: 1))
    #expect(loader.batchesPerEpoch == 6)
    do {
      let it = loader.batches(epoch: 0).makeIterator()
      let first = try it.next()
      #expect(first?.count == 1)
      #expect(VolumeLoader.liveWorkers.value > 0)
    }  // the iterator is dropped here, with a full queue and a worker waiting
    let dropped = Date()
    // Workers finish the item in hand and exit.
    while VolumeLoader.liveWorkers.value > 0 && Date().timeIntervalSince(dropped) < 60 { Thread.sleep(forTimeInterval: 0.01) }
    #expect(VolumeLoader.liveWorkers.value == 0)
    #expect(Date().timeIntervalSince(dropped) < 30)
    // A new pass still works after the cancelled one.
    #expect(try loader.batches(epoch: 0).collect().count == 5)
    let ended = Date()
    while VolumeLoader.liveWorkers.value > 0 && Date().timeIntervalSince(ended) < 60 { Thread.sleep(forTimeInterval: 0.01) }
    #expect(VolumeLoader.liveWorkers.value == 0)
  }

  /// One process skips a batch whose items all failed; a data-parallel rank must not (it would run a batch ahead of
  /// the others), so its stream ends with an error naming the batch, while the other rank's stream is unaffected.
  @Test func aWhollyFailedBatchStopsADataParallelRankInsteadOfSkipping() throws {
    let schema = try LabelSchema.load("chest-ct-18")
    let dir = try cohortTemporaryDirectory()
    defer { try? FileManager.default.removeItem(at: dir) }
    let good = try #require(CohortData.file("ct/ts_abdomen_ct_small_3mm_30sl.nii.gz"))
    let zeros = [Int8](repeating: 0, count: 18)
    // Order 0, 1, 2, 3 (no shuffle); with 2 ranks and batches of 1, rank 0 gets items 0 and 2, rank 1 items 1 and 3.
    let items = [CohortItem(id: "a", volumePath: good.path, labels: zeros),
                 CohortItem(id: "b", volumePath: good.path, labels: zeros),
                 CohortItem(id: "gone", volumePath: dir.appendingPathComponent("gone.nii.gz").path, labels: zeros),
                 CohortItem(id: "d", volumePath: good.path, labels: zeros)]
    let cohort = Cohort(name: "shard cohort", schema: schema, items: items)
    var preprocess = try PreprocessConfig.preset("chest-ct")
    preprocess.size = [16, 16, 8]
    let config = VolumeLoaderConfig(preprocess: preprocess, cacheFolder: dir.appendingPathComponent("cache").path,
                                    batchSize: 1, workers: 1, dropLast: true)
    let rank0 = try VolumeLoader(cohort: cohort, config: config, shard: DataShard(rank: 0, count: 2))
    let it0 = rank0.batches(epoch: 0).makeIterator()
    #expect(try it0.next()?.ids == ["a"])
    let error = #expect(throws: GreenRFMError.self) { try it0.next() }
    #expect(error.map { "\($0)" }?.contains("data-parallel") == true)
    #expect(try it0.next() == nil)
    let rank1 = try VolumeLoader(cohort: cohort, config: config, shard: DataShard(rank: 1, count: 2))
    #expect(try rank1.batches(epoch: 0).collect().map(\.ids) == [["b"], ["d"]])
    // The same cohort in one process skips the failed batch.
    let whole = try VolumeLoader(cohort: cohort, config: config)
    #expect(try whole.batches(epoch: 0).collect().map(\.ids) == [["a"], ["b"], ["d"]])
  }

  @Test func everyItemFailingIsAnErrorAndBadConfigsAreRejected() throws {
    let schema = try LabelSchema.load("chest-ct-18")
    let dir = try cohortTemporaryDirectory()
    defer { try? FileManager.default.removeItem(at: dir) }
    let bad = dir.appendingPathComponent("bad.nii.gz")
    try Data("junk".utf8).write(to: bad)
    let items = [CohortItem(id: "bad", volumePath: bad.path, labels: Array(repeating: 0, count: 18)),
                 CohortItem(id: "gone", volumePath: dir.appendingPathComponent("gone.nii.gz").path, labels: Array(repeating: 0, count: 18)),
                 CohortItem(id: "textonly", reportText: "no volume", labels: Array(repeating: 0, count: 18))]
    let cohort = Cohort(name: "bad cohort", schema: schema, items: items)
    var preprocess = try PreprocessConfig.preset("chest-ct")
    preprocess.size = [16, 16, 8]
    let config = VolumeLoaderConfig(preprocess: preprocess, cacheFolder: dir.appendingPathComponent("cache").path, batchSize: 1)
    let loader = try VolumeLoader(cohort: cohort, config: config)
    #expect(loader.batchesPerEpoch == 2)
    let it = loader.batches(epoch: 0).makeIterator()
    #expect(throws: GreenRFMError.self) { try it.next() }
    #expect(try it.next() == nil)
    #expect(Set(loader.failures.map(\.id)) == ["bad", "gone", "textonly"])
    #expect(loader.failures.first { $0.id == "gone" }?.reason.contains("gone.nii.gz") == true)
    // preprocessAll reports the same failures with progress.
    let seen = LockedCount()
    let failures = loader.preprocessAll { done, total in seen.set(done, total) }
    #expect(Set(failures.map(\.id)) == ["bad", "gone"])
    #expect(seen.last?.0 == 2 && seen.last?.1 == 2)

    var broken = config
    broken.batchSize = 0
    #expect(throws: GreenRFMError.self) { try VolumeLoader(cohort: cohort, config: broken) }
    broken = config
    broken.trainingCrop = [16, 16]
    #expect(throws: GreenRFMError.self) { try VolumeLoader(cohort: cohort, config: broken) }
    #expect(throws: GreenRFMError.self) {
      try VolumeLoader(cohort: Cohort(name: "empty", schema: schema, items: [items[2]]), config: config)
    }
  }

  @Test func presetsFollowTheMethod() throws {
    let train = try VolumeLoaderConfig.training(protocol: "chest-ct", cacheFolder: "/tmp/c")
    #expect(train.preprocess.size == [240, 240, 120] && train.trainingCrop == [192, 192, 96] && train.itemShape == [1, 96, 192, 192])
    #expect(train.shuffle && train.dropLast)
    let eval = try VolumeLoaderConfig.evaluation(protocol: "chest-ct", cacheFolder: "/tmp/c")
    #expect(eval.preprocess.size == [192, 192, 96] && eval.trainingCrop == nil && !eval.shuffle && !eval.dropLast)
    let abdomen = try VolumeLoaderConfig.training(protocol: "abdomen-ct", cacheFolder: "/tmp/c")
    #expect(abdomen.preprocess.size == [280, 280, 180] && abdomen.trainingCrop == [224, 224, 144])
    // Codable round trip.
    let data = try JSONEncoder().encode(train)
    #expect(try JSONDecoder().decode(VolumeLoaderConfig.self, from: data) == train)
  }
}

final class LockedCount: @unchecked Sendable {
  private let lock = NSLock()
  private var value: (Int, Int)?
  func set(_ a: Int, _ b: Int) { lock.lock(); value = (a, b); lock.unlock() }
  /// Adds `a` to the first count and 1 to the second.
  func add(_ a: Int) { lock.lock(); value = ((value?.0 ?? 0) + a, (value?.1 ?? 0) + 1); lock.unlock() }
  var last: (Int, Int)? { lock.lock(); defer { lock.unlock() }; return value }
}
