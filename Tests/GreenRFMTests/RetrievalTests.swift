import Foundation
import Reports
import Testing
import Torch
@testable import GreenRFM

/// Recall@K, ranks and MAP@K against the NumPy reference in scripts/golden/make_metrics_golden.py. Ranks and
/// recalls are integers or ratios of integers: compared exactly (within 1e-12).
@Suite struct RetrievalTests {
  nonisolated(unsafe) static let retrieval = MetricsGolden.object["retrieval"] as! [[String: Any]]
  nonisolated(unsafe) static let maps = MetricsGolden.object["map"] as! [[String: Any]]

  /// Report rows per chunk × images per CPU block: one block per chunk, and blocks smaller than a chunk so that a
  /// chunk's self pairs fall across block edges.
  @Test(arguments: [(1, 4096), (7, 4096), (512, 4096), (7, 5), (3, 4), (16, 3)])
  func recallAndRanksMatchNumPy(chunkSize: Int, imagesPerBlock: Int) throws {
    for dataset in Self.retrieval {
      let images = try MetricsGolden.tensor(dataset["images"]), texts = try MetricsGolden.tensor(dataset["texts"])
      let ks = MetricsGolden.ints(dataset["ks"])
      for result in dataset["results"] as! [[String: Any]] {
        let sim = Similarity(rawValue: result["similarity"] as! String)!
        let r = try Retrieval.crossModal(imageLatents: images, textLatents: texts, similarity: sim, ks: ks, chunkSize: chunkSize,
                                         imagesPerBlock: imagesPerBlock)
        for (direction, got) in [("reportToVolume", r.reportToVolume), ("volumeToReport", r.volumeToReport)] {
          let e = result[direction] as! [String: Any]
          let what = "\(dataset["name"]!) \(sim) \(direction) chunk \(chunkSize) block \(imagesPerBlock)"
          #expect(got.ranks == MetricsGolden.ints(e["ranks"]), "\(what) ranks")
          let recall = e["recall"] as! [String: Any]
          for k in ks {
            #expect(abs(got.recall(atK: k)! - (recall[String(k)] as! NSNumber).doubleValue) <= 1e-12, "\(what) R@\(k)")
          }
          #expect(abs(got.meanRank - (e["meanRank"] as! NSNumber).doubleValue) <= 1e-12, "\(what) mean rank")
          #expect(got.medianRank == (e["medianRank"] as! NSNumber).doubleValue, "\(what) median rank")
        }
      }
    }
  }

  @Test(arguments: [1, 64])
  func mapAtKMatchesNumPy(chunkSize: Int) throws {
    for dataset in Self.maps {
      let x = try MetricsGolden.tensor(dataset["latents"])
      let labels = MetricsGolden.labelMatrix(dataset["labels"])
      for e in dataset["results"] as! [[String: Any]] {
        let k = e["k"] as! Int
        let m = try Retrieval.volumeToVolumeMAP(latents: x, labels: labels, k: k, chunkSize: chunkSize)
        let what = "\(dataset["name"]!)@\(k)"
        #expect(abs(m.value! - (e["value"] as! NSNumber).doubleValue) <= 1e-12, "\(what): \(m.value!)")
        #expect(m.queries == e["queries"] as! Int, "\(what)")
        let perQuery = (e["perQuery"] as! [Any]).map(MetricsGolden.optionalDouble)
        for (a, b) in zip(m.perQuery, perQuery) {
          #expect((a == nil) == (b == nil), "\(what)")
          if let a, let b { #expect(abs(a - b) <= 1e-12, "\(what)") }
        }
      }
    }
  }

  @Test func tiesCountAgainstTheModel() throws {
    // Constant latents: every candidate ties with the pair, so every rank is the pool size (pessimistic rule).
    let x = try Tensor.ones([5, 3], dtype: .float64)
    let r = try Retrieval.crossModal(imageLatents: x, textLatents: x, ks: [1, 5])
    #expect(r.reportToVolume.ranks == [5, 5, 5, 5, 5])
    #expect(r.reportToVolume.recall(atK: 1) == 0 && r.reportToVolume.recall(atK: 5) == 1)
    #expect(r.volumeToReport.medianRank == 5)
  }

  @Test func identicalPairsRankFirstWithFloat32() throws {
    let x = try Tensor.randn([64, 32], generator: Generator(seed: 3))
    let r = try Retrieval.crossModal(imageLatents: x, textLatents: x, similarity: .cosine, chunkSize: 10)
    #expect(r.reportToVolume.recall(atK: 1) == 1 && r.volumeToReport.recall(atK: 1) == 1)
  }

  @Test func zeroShotProbabilityIsTheSoftmaxOfTheTwoSimilarities() throws {
    let img = try Tensor([1.0, 2.0, 0.5, -1.0], shape: [2, 2])
    let pos = try Tensor([1.0, 0.0, 0.0, 1.0, 1.0, 1.0], shape: [3, 2])
    let neg = try Tensor([0.0, 1.0, 1.0, 0.0, -1.0, 0.0], shape: [3, 2])
    let p = try ZeroShot.probabilities(imageLatents: img, positiveLatents: pos, negativeLatents: neg)
      .scalars(as: Double.self)
    let imgs = [[1.0, 2.0], [0.5, -1.0]], ps = [[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]], ns = [[0.0, 1.0], [1.0, 0.0], [-1.0, 0.0]]
    func dot(_ a: [Double], _ b: [Double]) -> Double { zip(a, b).map(*).reduce(0, +) }
    for i in 0..<2 {
      for c in 0..<3 {
        let a = dot(imgs[i], ps[c]), b = dot(imgs[i], ns[c])
        let expected = exp(a) / (exp(a) + exp(b))
        #expect(abs(p[i * 3 + c] - expected) < 1e-12)
      }
    }
    let ens = try ZeroShot.ensembleProbabilities(imageLatents: img, prompts: [(pos, neg), (neg, pos)])
    #expect(try ens.scalars(as: Double.self).allSatisfy { abs($0 - 0.5) < 1e-12 })
  }

  @Test func templatesAreTheAuthorsFiveAndUserFilesAreChecked() throws {
    #expect(ZeroShot.authorsTemplates.count == 5)
    #expect(ZeroShot.defaultTemplate == ZeroShot.authorsTemplates[2].template)
    let schema = try LabelSchema.load("chest-ct-18")
    let prompts = ZeroShot.prompts(for: Array(schema.findings.prefix(1)), template: ZeroShot.defaultTemplate)
    #expect(prompts.positive == ["There is \(schema.findings[0].prompt)."])
    #expect(prompts.negative == ["There is no \(schema.findings[0].prompt)."])
    #expect(try ZeroShot.templates(named: "all").count == 5)
    #expect(throws: GreenRFMError.self) { try ZeroShot.templates(named: "nope") }

    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("zs-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: dir) }
    let good = dir.appendingPathComponent("t.json"), bad = dir.appendingPathComponent("b.json")
    try Data(#"[{"positive": "{Finding} seen.", "negative": "No {finding}."}]"#.utf8).write(to: good)
    try Data(#"[{"positive": "seen.", "negative": "", "extra": 1}]"#.utf8).write(to: bad)
    let t = try ZeroShot.loadTemplates(from: good)
    #expect(t[0].prompts(for: "pleural effusion") == ("Pleural effusion seen.", "No pleural effusion."))
    do {
      _ = try ZeroShot.loadTemplates(from: bad)
      Issue.record("expected an error")
    } catch let error as GreenRFMError {
      #expect("\(error)".contains("b.json") && "\(error)".contains("extra"))
    }
  }

  @Test func reportShowsTheRetrievalTable() throws {
    let dataset = Self.retrieval[0]
    let r = try Retrieval.crossModal(imageLatents: MetricsGolden.tensor(dataset["images"]),
                                     textLatents: MetricsGolden.tensor(dataset["texts"]))
    let m = try Retrieval.volumeToVolumeMAP(latents: MetricsGolden.tensor(Self.maps[0]["latents"]),
                                            labels: MetricsGolden.labelMatrix(Self.maps[0]["labels"]), k: 50)
    let report = EvaluationReport(title: "Retrieval", retrieval: r, volumeToVolume: m)
    let keys = report.metrics()
    #expect(keys["retrieval/reportToVolume/recall@5"] as? Double == r.reportToVolume.recall(atK: 5))
    #expect(keys["retrieval/volumeToVolume/map@50"] as? Double == m.value)
    let env = ProcessInfo.processInfo.environment["GREENRFM_REPORT_DEMO_DIR"]
    let dir = env.map { URL(fileURLWithPath: $0) }
      ?? FileManager.default.temporaryDirectory.appendingPathComponent("rep-\(UUID().uuidString)")
    defer { if env == nil { try? FileManager.default.removeItem(at: dir) } }
    let files = try report.write(to: dir)
    #expect(files.map(\.lastPathComponent) == ["metrics.json", "report.html"])
    let html = try String(contentsOf: dir.appendingPathComponent("report.html"), encoding: .utf8)
    #expect(html.contains("Report → volume") && html.contains("MAP@50"))
  }

  /// The retrieval benchmark (bench/retrieval.sh): a 50,000 × 768 float32 pool, both directions, peak RSS.
  /// Runs only with GREENRFM_BENCH_RETRIEVAL=1; writes JSON to GREENRFM_BENCH_OUTPUT when set.
  @Test(.enabled(if: ProcessInfo.processInfo.environment["GREENRFM_BENCH_RETRIEVAL"] == "1"))
  func benchmarkRetrieval50k() throws {
    let env = ProcessInfo.processInfo.environment
    let n = Int(env["GREENRFM_BENCH_N"] ?? "") ?? 50_000, d = Int(env["GREENRFM_BENCH_D"] ?? "") ?? 768
    let chunk = Int(env["GREENRFM_BENCH_CHUNK"] ?? "") ?? 512
    let rssBefore = ProcessMemory.peakResidentBytes ?? 0
    let g = Generator(seed: 0)
    let images = try Tensor.randn([n, d], generator: g)
    let texts = try Tensor.randn([n, d], generator: g)  // texts = images + 10 · noise, without temporaries
    try texts.mulInPlace(10)
    try texts.addInPlace(images)
    let rssData = ProcessMemory.peakResidentBytes ?? 0
    let start = Date()
    let r = try Retrieval.crossModal(imageLatents: images, textLatents: texts, chunkSize: chunk)
    let seconds = Date().timeIntervalSince(start)
    let peak = ProcessMemory.peakResidentBytes ?? 0
    let result: [String: Any] = [
      "pool": n, "dim": d, "chunk": chunk, "threads": LibTorch.threadCount, "seconds": seconds,
      "peak_rss_bytes": peak, "peak_rss_before_bytes": rssBefore, "peak_rss_after_data_bytes": rssData,
      "recall@1": r.reportToVolume.recall(atK: 1)!, "recall@100": r.reportToVolume.recall(atK: 100)!,
      "volumeToReport/recall@1": r.volumeToReport.recall(atK: 1)!, "medianRank": r.reportToVolume.medianRank,
    ]
    let data = try JSONSerialization.data(withJSONObject: result, options: [.sortedKeys])
    print(String(decoding: data, as: UTF8.self))
    if let path = env["GREENRFM_BENCH_OUTPUT"] { try data.write(to: URL(fileURLWithPath: path)) }
    #expect(peak < 1 << 30, "peak RSS \(peak) bytes")
  }
}
