import Foundation
@testable import Reports  // SHA256 (internal)
import Testing
import Torch
import TorchNN
@testable import GreenRFM

/// The golden values of scripts/golden/make_bert_golden.py (HF transformers BertModel on all-MiniLM-L6-v2)
/// and the model folder they were made from.
///
/// The golden file holds no texts and no token ids (the reports are licensed for testing only, and ids decode
/// back to text). Its "items" metadata names each input by AccessionNo and sentence count, with SHA-256
/// digests of HF's ids and attention mask; `inputs()` rebuilds the batch from the CSV with our tokenizer and
/// checks those digests before any model output is compared.
private enum BertGolden {
  static let testsFolder = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
  static let repository = testsFolder.deletingLastPathComponent().deletingLastPathComponent()

  static let file: (tensors: [String: Tensor], metadata: [String: String]) = {
    try! SafeTensors.load(testsFolder.appendingPathComponent("Golden/bert_minilm.safetensors"))
  }()

  static func tensor(_ name: String) -> Tensor {
    guard let t = file.tensors[name] else { fatalError("golden tensor \(name) missing: rerun make_bert_golden.py") }
    return t
  }

  /// `.models/all-MiniLM-L6-v2`, which `scripts/setup.sh` makes; its absence is a failure, not a skip.
  static func minilmFolder() throws -> URL {
    let url = repository.appendingPathComponent(TextModelFolder.defaultRelativePath)
    try #require(FileManager.default.fileExists(atPath: url.appendingPathComponent("model.safetensors").path),
                 "\(url.path) is missing: run scripts/setup.sh (or scripts/setup.sh --no-build) first")
    return url
  }

  /// One encoder for the whole suite (loading reads 90 MB).
  nonisolated(unsafe) static var cachedEncoder: BertEncoder?
  static func encoder() throws -> BertEncoder {
    if let e = cachedEncoder { return e }
    let e = try TextModelFolder.loadEncoder(folder: minilmFolder())
    cachedEncoder = e
    return e
  }

  /// The real reports beside the checkout (../shared/data); its absence is a failure, not a skip.
  static func manualReports() throws -> URL {
    let url = repository.deletingLastPathComponent().appendingPathComponent("shared/data/reports/ctrate_manual_train.csv")
    try #require(FileManager.default.fileExists(atPath: url.path),
                 """
                 \(url.path) is missing: the BERT golden's inputs are rebuilt from these real reports at test time \
                 (the repository stores only digests of their token ids), so the golden comparisons cannot run
                 """)
    return url
  }

  /// One golden item: the report, how many leading sentences are kept (0 = all), and HF's digests.
  struct Item: Decodable {
    let accession: String
    let sentences: Int
    let ids_sha256: String
    let mask_sha256: String
  }
  static var items: [Item] {
    try! JSONDecoder().decode([Item].self, from: Data(file.metadata["items"]!.utf8))
  }

  /// SHA-256 (lowercase hex) of one row of ids or mask as little-endian int64 bytes, all positions including
  /// padding: the script's `hashlib.sha256(row.numpy().astype("<i8").tobytes()).hexdigest()`.
  static func digest(_ row: ArraySlice<Int64>) -> String {
    var bytes: [UInt8] = []
    bytes.reserveCapacity(row.count * 8)
    for v in row { withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) } }
    return SHA256.hex(bytes)
  }

  /// The golden batch [7, 128]: the items' texts rebuilt from the CSV (rows by AccessionNo), tokenised with
  /// our tokenizer and `tokenizeBatch`, and checked against HF's digests. Built once.
  nonisolated(unsafe) static var cachedInputs: (ids: Tensor, mask: Tensor)?
  static func inputs() throws -> (ids: Tensor, mask: Tensor) {
    if let b = cachedInputs { return b }
    let csv = try manualReports()
    let table = try CSVTable(contentsOf: csv)
    let id = try #require(table.column("AccessionNo")), text = try #require(table.column("report_text"))
    let reports = Dictionary(table.rows.map { ($0[id], $0[text]) }, uniquingKeysWith: { a, _ in a })
    // The script's cut: ".".join(report.split(".")[:k]) + "." (k = 0: the whole report).
    let texts = try items.map { item -> String in
      let report = try #require(reports[item.accession], "\(item.accession) not in \(csv.path)")
      guard item.sentences > 0 else { return report }
      return report.split(separator: ".", omittingEmptySubsequences: false).prefix(item.sentences)
        .joined(separator: ".") + "."
    }
    let maxLength = Int(file.metadata["max_length"]!)!
    let (ids, mask) = try tokenizeBatch(texts, tokenizer: TextModelFolder.loadTokenizer(folder: minilmFolder()),
                                        maxLength: maxLength)
    try #require(ids.shape == [items.count, maxLength] && mask.shape == ids.shape,
                 "tokenizeBatch gave \(ids.shape), HF gave [\(items.count), \(maxLength)]")
    let idValues = try ids.scalars(as: Int64.self), maskValues = try mask.scalars(as: Int64.self)
    for (i, item) in items.enumerated() {
      let row = i * maxLength..<(i + 1) * maxLength
      try #require(digest(idValues[row]) == item.ids_sha256,
                   "\(item.accession): our token ids differ from transformers' (SHA-256 of the ids)")
      try #require(digest(maskValues[row]) == item.mask_sha256,
                   "\(item.accession): our attention mask differs from transformers' (SHA-256 of the mask)")
    }
    cachedInputs = (ids, mask)
    return (ids, mask)
  }
}

/// max |a − b| over all elements.
private func maxAbsoluteError(_ a: Tensor, _ b: Tensor) throws -> Double {
  #expect(a.shape == b.shape, "shapes differ: \(a.shape) vs \(b.shape)")
  return try (a.to(.float64) - b.to(.float64)).abs().max().item()
}

/// max |a − b| / max |b|: the error relative to the reference tensor's largest magnitude.
private func maxScaledError(_ a: Tensor, _ b: Tensor) throws -> Double {
  let scale = try b.to(.float64).abs().max().item()
  return try maxAbsoluteError(a, b) / Swift.max(scale, 1e-30)
}

private func temporaryFolder() throws -> URL {
  let dir = FileManager.default.temporaryDirectory.appendingPathComponent("greenrfm-bert-\(UUID().uuidString)")
  try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
  return dir
}

/// A tiny configuration for fast structural tests.
private let tinyConfig = BertConfig(vocabSize: 50, hiddenSize: 32, numHiddenLayers: 2, numAttentionHeads: 4,
                                    intermediateSize: 64, maxPositionEmbeddings: 16)

private func writeConfig(_ config: BertConfig, to folder: URL, extra: [String: Any] = [:]) throws {
  let data = try JSONEncoder().encode(config)
  var object = try JSONSerialization.jsonObject(with: data) as! [String: Any]
  for (k, v) in extra { object[k] = v }
  try JSONSerialization.data(withJSONObject: object).write(to: folder.appendingPathComponent("config.json"))
}

@Suite(.serialized) struct BertEncoderTests {
  // MARK: Golden comparisons with transformers' BertModel

  @Test func clsMatchesTransformersWithin1e4() throws {
    let encoder = try BertGolden.encoder()
    let (ids, mask) = try BertGolden.inputs()
    let cls = try withNoGrad { try encoder.pooledCLS(inputIDs: ids, attentionMask: mask) }
    #expect(cls.shape == [7, 384])
    #expect(cls.dtype == .float32)
    let error = try maxAbsoluteError(cls, BertGolden.tensor("cls"))
    print("BertEncoder CLS vs transformers: max |error| = \(error)")
    #expect(error <= 1e-4)
  }

  @Test func fullHiddenStateOfAShortPaddedItemMatches() throws {
    let encoder = try BertGolden.encoder()
    let (ids, mask) = try BertGolden.inputs()
    let hidden = try withNoGrad { try encoder.hiddenStates(inputIDs: ids, attentionMask: mask) }
    #expect(hidden.shape == [7, 128, 384])
    let error = try maxAbsoluteError(hidden.select(dim: 0, index: 0), BertGolden.tensor("hidden_short"))
    print("BertEncoder last_hidden_state[0] (12 tokens + 116 padding) vs transformers: max |error| = \(error)")
    #expect(error <= 1e-4)
  }

  @Test func gradientsMatchTransformersWithin1e4Relative() throws {
    let encoder = try BertGolden.encoder()
    let (ids, mask) = try BertGolden.inputs()
    for p in encoder.parameters() { try p.setGrad(nil) }
    let cls = try encoder.pooledCLS(inputIDs: ids, attentionMask: mask)
    try (cls * BertGolden.tensor("grad_weights")).sum().backward()
    let params = Dictionary(uniqueKeysWithValues: encoder.namedParameters().map { ($0.name, $0.tensor) })
    let keys = try JSONDecoder().decode([String].self, from: Data(BertGolden.file.metadata["grad_keys"]!.utf8))
    var worst = 0.0
    for key in keys {
      let grad = try #require(params[key]?.grad, "no gradient for \(key)")
      let error = try maxScaledError(grad, BertGolden.tensor("grad.\(key)"))
      print("BertEncoder d loss/d \(key): max |error| / max |reference| = \(error)")
      worst = max(worst, error)
      #expect(error <= 1e-4, "\(key)")
    }
    // The distinct ids of the batch, ascending (torch.unique in the script; the ids are not stored).
    let distinct = try Set(ids.scalars(as: Int64.self)).sorted()
    let rows = try Tensor(distinct, shape: [distinct.count])
    let wordGrad = try #require(params["embeddings.word_embeddings.weight"]?.grad).indexSelect(dim: 0, indices: rows)
    let error = try maxScaledError(wordGrad, BertGolden.tensor("grad.word_embeddings_rows"))
    print("BertEncoder d loss/d word_embeddings (\(rows.count) rows used): max |error| / max |reference| = \(error)")
    #expect(error <= 1e-4)
    for p in encoder.parameters() { try p.setGrad(nil) }
  }

  @Test func stateDictKeysEqualTransformersBertModel() throws {
    let json = Data(BertGolden.file.metadata["state_dict_keys"]!.utf8)
    let reference = try JSONDecoder().decode([String: [Int]].self, from: json)
    let config = try TextModelFolder.loadConfig(folder: BertGolden.minilmFolder())
    let encoder = try BertEncoder(config: config, generator: Generator(seed: 0))
    #expect(encoder.stateDict().mapValues(\.shape) == reference)
    #expect(encoder.namedBuffers().isEmpty)
  }

  @Test func tokenizeBatchEqualsTransformersForTheGoldenTexts() throws {
    // inputs() requires every item's id and mask digests to equal those of HF's fast tokenizer.
    let (ids, mask) = try BertGolden.inputs()
    #expect(ids.shape == [7, 128] && ids.dtype == .int64 && mask.dtype == .int64)
    // Token counts of the items (short to truncated), as the script prints them.
    #expect(try mask.sum(dims: [1]).to(.int64).scalars(as: Int64.self) == [12, 63, 25, 86, 110, 128, 128])
    #expect(BertGolden.file.tensors["input_ids"] == nil && BertGolden.file.tensors["attention_mask"] == nil)
    #expect(BertGolden.file.tensors.values.allSatisfy { $0.dtype == .float32 }, "the golden must hold no id tensors")
  }

  @Test func autocastBF16StaysCloseAndReturnsFloat32() throws {
    let encoder = try BertGolden.encoder()
    let (ids, mask) = try BertGolden.inputs()
    let cls = try withNoGrad {
      try withAutocast(dtype: .bfloat16) { try encoder.pooledCLS(inputIDs: ids, attentionMask: mask) }
    }
    #expect(cls.dtype == .float32)
    #expect(try cls.isFinite().all().item() == 1)
    let error = try maxScaledError(cls, BertGolden.tensor("cls"))
    print("BertEncoder CLS under bf16 autocast vs float32 transformers: max |error| / max |reference| = \(error)")
    #expect(error < 0.1)
  }

  // MARK: Structure, modes and initialisation

  @Test func randomInitHasHuggingFaceStatisticsAndShapes() throws {
    let encoder = try BertEncoder(config: tinyConfig, generator: Generator(seed: 3))
    #expect(encoder.hiddenSize == 32)
    let state = encoder.stateDict()
    #expect(state.count == 5 + 16 * 2)
    #expect(try state["embeddings.word_embeddings.weight"]!.select(dim: 0, index: 0).abs().max().item() == 0)
    #expect(try state["embeddings.LayerNorm.weight"]!.eq(1.0).all().item() == 1)
    #expect(try state["encoder.layer.1.output.dense.bias"]!.abs().max().item() == 0)
    let std = try state["encoder.layer.0.intermediate.dense.weight"]!.std().item()
    #expect(abs(std - 0.02) < 0.002)

    let ids = try Tensor([2, 7, 9, 3, 2, 5, 0, 0] as [Int64], shape: [2, 4])
    let mask = try ids.ne(0.0).to(.int64)
    encoder.eval()
    let hidden = try encoder.hiddenStates(inputIDs: ids, attentionMask: mask)
    #expect(hidden.shape == [2, 4, 32])
    #expect(try encoder.pooledCLS(inputIDs: ids, attentionMask: mask).shape == [2, 32])
    let types = try Tensor([0, 0, 1, 1, 0, 1, 1, 1] as [Int64], shape: [2, 4])
    let typed = try encoder.hiddenStates(inputIDs: ids, attentionMask: mask, tokenTypeIDs: types)
    #expect(try typed.allClose(hidden) == false)
  }

  @Test func paddingDoesNotChangeTheTokensOutputs() throws {
    let encoder = try BertEncoder(config: tinyConfig, generator: Generator(seed: 4))
    encoder.eval()
    let short = try encoder.hiddenStates(inputIDs: Tensor([1, 8, 9, 2] as [Int64], shape: [1, 4]),
                                         attentionMask: Tensor.ones([1, 4], dtype: .int64))
    let padded = try encoder.hiddenStates(inputIDs: Tensor([1, 8, 9, 2, 0, 0, 0] as [Int64], shape: [1, 7]),
                                          attentionMask: Tensor([1, 1, 1, 1, 0, 0, 0] as [Int64], shape: [1, 7]))
    #expect(try maxAbsoluteError(padded.narrow(dim: 1, start: 0, length: 4), short) < 1e-5)
  }

  @Test func dropoutOnlyInTrainingMode() throws {
    let encoder = try BertEncoder(config: tinyConfig, generator: Generator(seed: 5))
    let ids = try Tensor([1, 8, 9, 2] as [Int64], shape: [1, 4])
    let mask = try Tensor.ones([1, 4], dtype: .int64)
    encoder.train()
    let a = try encoder.hiddenStates(inputIDs: ids, attentionMask: mask)
    let b = try encoder.hiddenStates(inputIDs: ids, attentionMask: mask)
    #expect(try a.allClose(b) == false)
    encoder.eval()
    #expect(try encoder.hiddenStates(inputIDs: ids, attentionMask: mask).equals(encoder.hiddenStates(inputIDs: ids, attentionMask: mask)))
  }

  @Test func rejectsBadInputs() throws {
    let encoder = try BertEncoder(config: tinyConfig, generator: Generator(seed: 6))
    let ids = try Tensor([Int64](repeating: 1, count: 4), shape: [1, 4])
    #expect(throws: GreenRFMError.self) {
      try encoder.hiddenStates(inputIDs: ids, attentionMask: Tensor.ones([1, 3], dtype: .int64))
    }
    #expect(throws: GreenRFMError.self) {
      try encoder.hiddenStates(inputIDs: ids.to(.float32), attentionMask: Tensor.ones([1, 4], dtype: .int64))
    }
    let long = try Tensor([Int64](repeating: 1, count: 17), shape: [1, 17])
    #expect(throws: GreenRFMError.self) {
      try encoder.hiddenStates(inputIDs: long, attentionMask: Tensor.ones([1, 17], dtype: .int64))
    }
  }

  // MARK: Configuration

  @Test func configDecodesHuggingFaceJSONAndIgnoresUnknownKeys() throws {
    let config = try TextModelFolder.loadConfig(folder: BertGolden.minilmFolder())
    #expect(config == BertConfig(vocabSize: 30522, hiddenSize: 384, numHiddenLayers: 6, numAttentionHeads: 12,
                                 intermediateSize: 1536, hiddenAct: "gelu", maxPositionEmbeddings: 512,
                                 typeVocabSize: 2, layerNormEps: 1e-12, hiddenDropoutProb: 0.1,
                                 attentionProbsDropoutProb: 0.1, padTokenID: 0))
    let minimal = #"{"vocab_size": 10, "hidden_size": 8, "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 16, "pad_token_id": null, "whatever": [1]}"#
    let decoded = try JSONDecoder().decode(BertConfig.self, from: Data(minimal.utf8))
    #expect(decoded.padTokenID == nil)
    #expect(decoded.layerNormEps == 1e-12 && decoded.hiddenAct == "gelu")
    for original in [config, decoded] {
      #expect(try JSONDecoder().decode(BertConfig.self, from: JSONEncoder().encode(original)) == original)
    }
  }

  /// (key, JSON value, expected words in the reason).
  @Test(arguments: [
    ("hidden_size", "30", "not a multiple"),
    ("hidden_act", #""swish""#, "not supported"),
    ("num_hidden_layers", "0", "at least 1"),
    ("pad_token_id", "50", "outside the vocabulary"),
    ("position_embedding_type", #""relative_key""#, "only \"absolute\""),
    ("vocab_size", #""many""#, "vocab_size"),
  ])
  func invalidConfigsNameTheFileAndTheReason(key: String, json: String, reason: String) throws {
    let folder = try temporaryFolder()
    defer { try? FileManager.default.removeItem(at: folder) }
    let value = try JSONSerialization.jsonObject(with: Data(json.utf8), options: .fragmentsAllowed)
    try writeConfig(tinyConfig, to: folder, extra: [key: value])
    let error = try #require(throws: GreenRFMError.self) { try TextModelFolder.loadConfig(folder: folder) }
    guard case let .invalidConfig(source, message) = error else { Issue.record("\(error)"); return }
    #expect(source == folder.appendingPathComponent("config.json").path)
    #expect(message.contains(reason), "\(message)")
  }

  @Test func missingRequiredKeyIsNamed() throws {
    let folder = try temporaryFolder()
    defer { try? FileManager.default.removeItem(at: folder) }
    try Data(#"{"vocab_size": 10, "hidden_size": 8, "num_hidden_layers": 1, "num_attention_heads": 2}"#.utf8)
      .write(to: folder.appendingPathComponent("config.json"))
    let error = try #require(throws: GreenRFMError.self) { try TextModelFolder.loadConfig(folder: folder) }
    #expect("\(error)".contains("intermediate_size") && "\(error)".contains(folder.path))
  }

  // MARK: Folders and checkpoints

  @Test func missingFolderAndFilesGiveErrorsNamingThePath() throws {
    let missing = "/nonexistent/greenrfm/bert-\(UUID().uuidString)"
    let error = try #require(throws: GreenRFMError.self) { try TextModelFolder.resolve(missing) }
    #expect("\(error)".contains(missing) && "\(error)".contains("scripts/setup.sh"), "\(error)")

    let folder = try temporaryFolder()
    defer { try? FileManager.default.removeItem(at: folder) }
    #expect(try TextModelFolder.resolve(folder.path).path == folder.standardizedFileURL.path)
    let noConfig = try #require(throws: GreenRFMError.self) { try TextModelFolder.loadEncoder(folder: folder) }
    #expect(noConfig == .missingFile(path: folder.appendingPathComponent("config.json").path, what: "BERT config.json"))
    try writeConfig(tinyConfig, to: folder)
    let noWeights = try #require(throws: GreenRFMError.self) { try TextModelFolder.loadEncoder(folder: folder) }
    #expect("\(noWeights)".contains(folder.appendingPathComponent("model.safetensors").path))
    let noVocab = try #require(throws: GreenRFMError.self) { try TextModelFolder.loadTokenizer(folder: folder) }
    #expect("\(noVocab)".contains("vocab.txt"))
  }

  @Test func resolveFindsTheDefaultFolderFromTheRepository() throws {
    let folder = try BertGolden.minilmFolder()
    guard ProcessInfo.processInfo.environment[TextModelFolder.environmentVariable] == nil else { return }
    // Found from the current directory (`swift test` runs in the package root) or above the test binary
    // (<repo>/.build*/…/debug/).
    #expect(try TextModelFolder.resolve(nil).resolvingSymlinksInPath() == folder.resolvingSymlinksInPath())
  }

  @Test func loadsPrefixedCheckpointsAndIgnoresHeads() throws {
    let folder = try temporaryFolder()
    defer { try? FileManager.default.removeItem(at: folder) }
    let source = try BertEncoder(config: tinyConfig, generator: Generator(seed: 7))
    var file = Dictionary(uniqueKeysWithValues: source.stateDict().map { ("bert.\($0.key)", $0.value) })
    file["bert.pooler.dense.weight"] = try Tensor.zeros([32, 32])
    file["cls.predictions.bias"] = try Tensor.zeros([50])
    file["bert.embeddings.position_ids"] = try Tensor.arange(16).unsqueeze(dim: 0)
    // Old TensorFlow-converted names.
    file["bert.embeddings.LayerNorm.gamma"] = file.removeValue(forKey: "bert.embeddings.LayerNorm.weight")
    try SafeTensors.save(file, to: folder.appendingPathComponent("model.safetensors"))
    try writeConfig(tinyConfig, to: folder)
    let loaded = try TextModelFolder.loadEncoder(folder: folder)
    #expect(!loaded.isTraining)
    for (key, tensor) in source.stateDict() {
      #expect(try loaded.stateDict()[key]!.equals(tensor), "\(key)")
    }
  }

  @Test(arguments: ["missing", "misshaped"])
  func missingOrMisshapedWeightsNameTheFileAndTheKey(kind: String) throws {
    let folder = try temporaryFolder()
    defer { try? FileManager.default.removeItem(at: folder) }
    var file = try BertEncoder(config: tinyConfig, generator: Generator(seed: 8)).stateDict()
    let key = "encoder.layer.1.attention.self.key.weight"
    if kind == "missing" { file[key] = nil } else { file[key] = try Tensor.zeros([32, 31]) }
    let weights = folder.appendingPathComponent("model.safetensors")
    try SafeTensors.save(file, to: weights)
    try writeConfig(tinyConfig, to: folder)
    let error = try #require(throws: GreenRFMError.self) { try TextModelFolder.loadEncoder(folder: folder) }
    guard case let .checkpoint(path, reason) = error else { Issue.record("\(error)"); return }
    #expect(path == weights.path)
    #expect(reason.contains(key) && reason.contains(kind == "missing" ? "missing" : "mis-shaped"), "\(reason)")
  }

  @Test func tokenizeBatchPadsToTheLongestAndTruncates() throws {
    let tokenizer = try TextModelFolder.loadTokenizer(folder: BertGolden.minilmFolder())
    let (ids, mask) = try tokenizeBatch(["normal", "the lungs are clear bilaterally without effusion"],
                                        tokenizer: tokenizer, maxLength: 6)
    #expect(ids.shape == [2, 6] && ids.dtype == .int64 && mask.dtype == .int64)
    #expect(try ids.scalars(as: Int64.self) == [101, 3671, 102, 0, 0, 0, 101, 1996, 8948, 2024, 3154, 102])
    #expect(try mask.scalars(as: Int64.self) == [1, 1, 1, 0, 0, 0, 1, 1, 1, 1, 1, 1])
    #expect(throws: GreenRFMError.self) { try tokenizeBatch([], tokenizer: tokenizer, maxLength: 8) }
    #expect(throws: GreenRFMError.self) { try tokenizeBatch(["x"], tokenizer: tokenizer, maxLength: 1) }
  }
}
