import Foundation
import Reports
import Torch
import TorchNN

// MARK: - Configuration

/// The architecture of a BERT text encoder, decoded from a Hugging Face `config.json` (snake_case keys).
///
/// Matches `transformers.BertConfig`: keys this encoder does not use (`architectures`, `model_type`,
/// `initializer_range`, `use_cache`, …) are ignored, because HF configs carry many. The five keys that fix
/// the parameter shapes (`vocab_size`, `hidden_size`, `num_hidden_layers`, `num_attention_heads`,
/// `intermediate_size`) are required; the others default to `BertConfig`'s defaults in transformers.
/// Only absolute position embeddings are supported (`position_embedding_type` must be absent or
/// `"absolute"`).
public struct BertConfig: Codable, Sendable, Equatable {
  /// WordPiece vocabulary size (rows of `embeddings.word_embeddings.weight`).
  public var vocabSize: Int
  /// Width H of every token representation.
  public var hiddenSize: Int
  public var numHiddenLayers: Int
  /// Attention heads per layer; `hiddenSize` must be a multiple of it.
  public var numAttentionHeads: Int
  /// Width of the feed-forward layer.
  public var intermediateSize: Int
  /// Feed-forward activation: `"gelu"` (exact, erf), `"gelu_new"` / `"gelu_pytorch_tanh"` (tanh
  /// approximation) or `"relu"`.
  public var hiddenAct: String
  /// The longest input in tokens (rows of `embeddings.position_embeddings.weight`).
  public var maxPositionEmbeddings: Int
  /// Segment vocabulary (rows of `embeddings.token_type_embeddings.weight`), 2 for BERT.
  public var typeVocabSize: Int
  /// ε of every LayerNorm.
  public var layerNormEps: Double
  /// Dropout probability after the embeddings, attention output and feed-forward output (training only).
  public var hiddenDropoutProb: Double
  /// Dropout probability on the attention weights (training only).
  public var attentionProbsDropoutProb: Double
  /// The `[PAD]` id, whose word-embedding row is initialised to zero and receives no gradient; nil: none.
  public var padTokenID: Int?

  /// The supported values of `hiddenAct`.
  public static let supportedActivations = ["gelu", "gelu_new", "gelu_pytorch_tanh", "relu"]

  public init(vocabSize: Int = 30522, hiddenSize: Int = 768, numHiddenLayers: Int = 12, numAttentionHeads: Int = 12,
              intermediateSize: Int = 3072, hiddenAct: String = "gelu", maxPositionEmbeddings: Int = 512,
              typeVocabSize: Int = 2, layerNormEps: Double = 1e-12, hiddenDropoutProb: Double = 0.1,
              attentionProbsDropoutProb: Double = 0.1, padTokenID: Int? = 0) {
    self.vocabSize = vocabSize
    self.hiddenSize = hiddenSize
    self.numHiddenLayers = numHiddenLayers
    self.numAttentionHeads = numAttentionHeads
    self.intermediateSize = intermediateSize
    self.hiddenAct = hiddenAct
    self.maxPositionEmbeddings = maxPositionEmbeddings
    self.typeVocabSize = typeVocabSize
    self.layerNormEps = layerNormEps
    self.hiddenDropoutProb = hiddenDropoutProb
    self.attentionProbsDropoutProb = attentionProbsDropoutProb
    self.padTokenID = padTokenID
  }

  enum CodingKeys: String, CodingKey {
    case vocabSize = "vocab_size", hiddenSize = "hidden_size", numHiddenLayers = "num_hidden_layers"
    case numAttentionHeads = "num_attention_heads", intermediateSize = "intermediate_size"
    case hiddenAct = "hidden_act", maxPositionEmbeddings = "max_position_embeddings"
    case typeVocabSize = "type_vocab_size", layerNormEps = "layer_norm_eps"
    case hiddenDropoutProb = "hidden_dropout_prob", attentionProbsDropoutProb = "attention_probs_dropout_prob"
    case padTokenID = "pad_token_id"
  }

  private struct PositionKey: CodingKey {
    var stringValue: String
    var intValue: Int? { nil }
    init?(stringValue: String) { self.stringValue = stringValue }
    init?(intValue: Int) { nil }
  }

  public init(from decoder: Decoder) throws {
    let c = try decoder.container(keyedBy: CodingKeys.self)
    let d = BertConfig()
    vocabSize = try c.decode(Int.self, forKey: .vocabSize)
    hiddenSize = try c.decode(Int.self, forKey: .hiddenSize)
    numHiddenLayers = try c.decode(Int.self, forKey: .numHiddenLayers)
    numAttentionHeads = try c.decode(Int.self, forKey: .numAttentionHeads)
    intermediateSize = try c.decode(Int.self, forKey: .intermediateSize)
    hiddenAct = try c.decodeIfPresent(String.self, forKey: .hiddenAct) ?? d.hiddenAct
    maxPositionEmbeddings = try c.decodeIfPresent(Int.self, forKey: .maxPositionEmbeddings) ?? d.maxPositionEmbeddings
    typeVocabSize = try c.decodeIfPresent(Int.self, forKey: .typeVocabSize) ?? d.typeVocabSize
    layerNormEps = try c.decodeIfPresent(Double.self, forKey: .layerNormEps) ?? d.layerNormEps
    hiddenDropoutProb = try c.decodeIfPresent(Double.self, forKey: .hiddenDropoutProb) ?? d.hiddenDropoutProb
    attentionProbsDropoutProb = try c.decodeIfPresent(Double.self, forKey: .attentionProbsDropoutProb)
      ?? d.attentionProbsDropoutProb
    // A present `"pad_token_id": null` means no padding row; an absent key means BERT's 0.
    padTokenID = c.contains(.padTokenID) ? try c.decodeIfPresent(Int.self, forKey: .padTokenID) : d.padTokenID
    let extra = try decoder.container(keyedBy: PositionKey.self)
    if let key = PositionKey(stringValue: "position_embedding_type"),
       let kind = try extra.decodeIfPresent(String.self, forKey: key), kind != "absolute" {
      throw DecodingError.dataCorruptedError(
        forKey: key, in: extra, debugDescription: "position_embedding_type \"\(kind)\" is not supported (only \"absolute\")")
    }
  }

  /// Writes HF `config.json` keys; a nil `padTokenID` is written as `null` so that it reads back as nil.
  public func encode(to encoder: Encoder) throws {
    var c = encoder.container(keyedBy: CodingKeys.self)
    try c.encode(vocabSize, forKey: .vocabSize)
    try c.encode(hiddenSize, forKey: .hiddenSize)
    try c.encode(numHiddenLayers, forKey: .numHiddenLayers)
    try c.encode(numAttentionHeads, forKey: .numAttentionHeads)
    try c.encode(intermediateSize, forKey: .intermediateSize)
    try c.encode(hiddenAct, forKey: .hiddenAct)
    try c.encode(maxPositionEmbeddings, forKey: .maxPositionEmbeddings)
    try c.encode(typeVocabSize, forKey: .typeVocabSize)
    try c.encode(layerNormEps, forKey: .layerNormEps)
    try c.encode(hiddenDropoutProb, forKey: .hiddenDropoutProb)
    try c.encode(attentionProbsDropoutProb, forKey: .attentionProbsDropoutProb)
    if let pad = padTokenID { try c.encode(pad, forKey: .padTokenID) } else { try c.encodeNil(forKey: .padTokenID) }
  }

  /// Checks ranges and consistency.
  /// - Parameter source: the file or option named in the error.
  /// - Throws: `GreenRFMError.invalidConfig` naming `source` and the first offending value.
  public func validate(source: String = "BertConfig") throws {
    func fail(_ reason: String) -> GreenRFMError { .invalidConfig(source: source, reason: reason) }
    for (name, value) in [("vocab_size", vocabSize), ("hidden_size", hiddenSize), ("num_hidden_layers", numHiddenLayers),
                          ("num_attention_heads", numAttentionHeads), ("intermediate_size", intermediateSize),
                          ("max_position_embeddings", maxPositionEmbeddings), ("type_vocab_size", typeVocabSize)]
    where value < 1 {
      throw fail("\(name) must be at least 1, got \(value)")
    }
    guard hiddenSize % numAttentionHeads == 0 else {
      throw fail("hidden_size \(hiddenSize) is not a multiple of num_attention_heads \(numAttentionHeads)")
    }
    guard Self.supportedActivations.contains(hiddenAct) else {
      throw fail("hidden_act \"\(hiddenAct)\" is not supported (one of \(Self.supportedActivations.joined(separator: ", ")))")
    }
    guard layerNormEps > 0, layerNormEps.isFinite else { throw fail("layer_norm_eps must be positive, got \(layerNormEps)") }
    for (name, p) in [("hidden_dropout_prob", hiddenDropoutProb), ("attention_probs_dropout_prob", attentionProbsDropoutProb)]
    where !(0..<1).contains(p) {
      throw fail("\(name) must lie in [0, 1), got \(p)")
    }
    if let pad = padTokenID, !(0..<vocabSize).contains(pad) {
      throw fail("pad_token_id \(pad) lies outside the vocabulary 0..<\(vocabSize)")
    }
  }

  /// Reads and validates a Hugging Face `config.json`.
  /// - Throws: `GreenRFMError.missingFile` when `url` does not exist; `GreenRFMError.invalidConfig` naming
  ///   the file when it is not JSON, lacks a required key, has a wrongly typed value, or fails `validate`.
  public static func load(contentsOf url: URL) throws -> BertConfig {
    guard FileManager.default.fileExists(atPath: url.path) else {
      throw GreenRFMError.missingFile(path: url.path, what: "BERT config.json")
    }
    let data: Data
    do { data = try Data(contentsOf: url) } catch {
      throw GreenRFMError.invalidConfig(source: url.path, reason: "unreadable: \(error.localizedDescription)")
    }
    let config: BertConfig
    do { config = try JSONDecoder().decode(BertConfig.self, from: data) } catch let error as DecodingError {
      throw GreenRFMError.invalidConfig(source: url.path, reason: describe(error))
    }
    try config.validate(source: url.path)
    return config
  }

  private static func describe(_ error: DecodingError) -> String {
    func path(_ keys: [CodingKey]) -> String { keys.map(\.stringValue).joined(separator: ".") }
    switch error {
    case let .keyNotFound(key, _): return "required key \"\(key.stringValue)\" is missing"
    case let .typeMismatch(type, ctx): return "\"\(path(ctx.codingPath))\" is not a \(type)"
    case let .valueNotFound(type, ctx): return "\"\(path(ctx.codingPath))\" is null, expected a \(type)"
    case let .dataCorrupted(ctx):
      return ctx.codingPath.isEmpty ? "not valid JSON (\(ctx.debugDescription))" : ctx.debugDescription
    @unknown default: return "\(error)"
    }
  }
}

// MARK: - Modules

/// The feed-forward activation named by `BertConfig.hiddenAct`.
enum BertActivation {
  case gelu, geluTanh, relu

  init(_ name: String) {
    switch name {
    case "gelu_new", "gelu_pytorch_tanh": self = .geluTanh
    case "relu": self = .relu
    default: self = .gelu
    }
  }

  func callAsFunction(_ x: Tensor) throws -> Tensor {
    switch self {
    case .gelu: return try x.gelu()
    case .geluTanh: return try x.gelu(approximateTanh: true)
    case .relu: return try x.relu()
    }
  }
}

/// HF's `_init_weights` for BERT: Linear weights N(0, 0.02), biases 0 (LayerNorm is already 1/0).
private func bertLinear(_ inFeatures: Int, _ outFeatures: Int, generator: Generator?) throws -> Linear {
  let l = try Linear(inFeatures: inFeatures, outFeatures: outFeatures)
  try withNoGrad {
    try l.weight.normalInPlace(mean: 0, std: 0.02, generator: generator)
    try l.bias!.zero()
  }
  return l
}

/// An embedding table initialised N(0, 0.02) with the padding row zero, as HF's `_init_weights`.
private func bertEmbedding(_ count: Int, _ dimension: Int, paddingIndex: Int?, generator: Generator?) throws -> Embedding {
  let e = try Embedding(count: count, dimension: dimension, paddingIndex: paddingIndex)
  try withNoGrad {
    try e.weight.normalInPlace(mean: 0, std: 0.02, generator: generator)
    if let p = e.paddingIndex { try e.weight.select(dim: 0, index: p).zero() }
  }
  return e
}

/// `BertEmbeddings`: word + absolute position + token type embeddings, LayerNorm, dropout.
final class BertEmbeddings: Module {
  let wordEmbeddings: Embedding
  let positionEmbeddings: Embedding
  let tokenTypeEmbeddings: Embedding
  let layerNorm: LayerNorm
  let dropout: Dropout

  init(_ c: BertConfig, generator: Generator?) throws {
    wordEmbeddings = try bertEmbedding(c.vocabSize, c.hiddenSize, paddingIndex: c.padTokenID, generator: generator)
    positionEmbeddings = try bertEmbedding(c.maxPositionEmbeddings, c.hiddenSize, paddingIndex: nil, generator: generator)
    tokenTypeEmbeddings = try bertEmbedding(c.typeVocabSize, c.hiddenSize, paddingIndex: nil, generator: generator)
    layerNorm = try LayerNorm([c.hiddenSize], eps: c.layerNormEps)
    dropout = Dropout(c.hiddenDropoutProb)
    super.init()
    register("word_embeddings", wordEmbeddings)
    register("position_embeddings", positionEmbeddings)
    register("token_type_embeddings", tokenTypeEmbeddings)
    register("LayerNorm", layerNorm)
    register("dropout", dropout)
  }

  /// ids, token types `[N, L]` int64 → `[N, L, H]`.
  func forward(inputIDs: Tensor, tokenTypeIDs: Tensor) throws -> Tensor {
    let length = inputIDs.shape[1]
    let positions = try Tensor.arange(Double(length), dtype: .int64, device: inputIDs.device).unsqueeze(dim: 0)
    let x = try wordEmbeddings(inputIDs) + tokenTypeEmbeddings(tokenTypeIDs) + positionEmbeddings(positions)
    return try dropout(layerNorm(x))
  }
}

/// `BertSelfAttention` (`query`, `key`, `value`): multi-head scaled dot-product attention.
final class BertSelfAttention: Module {
  let heads: Int
  let query: Linear
  let key: Linear
  let value: Linear
  let dropoutProbability: Double

  init(_ c: BertConfig, generator: Generator?) throws {
    heads = c.numAttentionHeads
    query = try bertLinear(c.hiddenSize, c.hiddenSize, generator: generator)
    key = try bertLinear(c.hiddenSize, c.hiddenSize, generator: generator)
    value = try bertLinear(c.hiddenSize, c.hiddenSize, generator: generator)
    dropoutProbability = c.attentionProbsDropoutProb
    super.init()
    register("query", query)
    register("key", key)
    register("value", value)
  }

  /// x `[N, L, H]`, additive mask `[N, 1, 1, L]` → context `[N, L, H]`.
  func forward(_ x: Tensor, additiveMask: Tensor) throws -> Tensor {
    let (n, l, h) = (x.shape[0], x.shape[1], x.shape[2])
    func split(_ t: Tensor) throws -> Tensor { try t.view([n, l, heads, h / heads]).transposed(1, 2) }
    let context = try Functional.scaledDotProductAttention(
      query: split(query(x)), key: split(key(x)), value: split(value(x)), mask: additiveMask,
      dropout: isTraining ? dropoutProbability : 0)
    return try context.transposed(1, 2).reshape([n, l, h])
  }
}

/// `BertSelfOutput` / `BertOutput`: dense, dropout, residual, LayerNorm.
final class BertResidualOutput: Module {
  let dense: Linear
  let layerNorm: LayerNorm
  let dropout: Dropout

  init(_ inFeatures: Int, _ c: BertConfig, generator: Generator?) throws {
    dense = try bertLinear(inFeatures, c.hiddenSize, generator: generator)
    layerNorm = try LayerNorm([c.hiddenSize], eps: c.layerNormEps)
    dropout = Dropout(c.hiddenDropoutProb)
    super.init()
    register("dense", dense)
    register("LayerNorm", layerNorm)
    register("dropout", dropout)
  }

  func forward(_ x: Tensor, residual: Tensor) throws -> Tensor {
    try layerNorm(dropout(dense(x)) + residual)
  }
}

/// `BertAttention` (`self`, `output`).
final class BertAttention: Module {
  let selfAttention: BertSelfAttention
  let output: BertResidualOutput

  init(_ c: BertConfig, generator: Generator?) throws {
    selfAttention = try BertSelfAttention(c, generator: generator)
    output = try BertResidualOutput(c.hiddenSize, c, generator: generator)
    super.init()
    register("self", selfAttention)
    register("output", output)
  }
}

/// `BertIntermediate` (`dense` H → intermediate, then the activation).
final class BertIntermediate: Module {
  let dense: Linear
  let activation: BertActivation

  init(_ c: BertConfig, generator: Generator?) throws {
    dense = try bertLinear(c.hiddenSize, c.intermediateSize, generator: generator)
    activation = BertActivation(c.hiddenAct)
    super.init()
    register("dense", dense)
  }

  override func forward(_ x: Tensor) throws -> Tensor { try activation(dense(x)) }
}

/// `BertLayer` (`attention`, `intermediate`, `output`): a post-LayerNorm transformer block.
final class BertLayer: Module {
  let attention: BertAttention
  let intermediate: BertIntermediate
  let output: BertResidualOutput

  init(_ c: BertConfig, generator: Generator?) throws {
    attention = try BertAttention(c, generator: generator)
    intermediate = try BertIntermediate(c, generator: generator)
    output = try BertResidualOutput(c.intermediateSize, c, generator: generator)
    super.init()
    register("attention", attention)
    register("intermediate", intermediate)
    register("output", output)
  }

  func forward(_ x: Tensor, additiveMask: Tensor) throws -> Tensor {
    let context = try attention.selfAttention.forward(x, additiveMask: additiveMask)
    let attended = try attention.output.forward(context, residual: x)
    return try output.forward(intermediate(attended), residual: attended)
  }
}

/// A BERT text encoder equal to Hugging Face's `BertModel` without its pooler: token, position and segment
/// embeddings, then `numHiddenLayers` post-LayerNorm transformer layers. Paper: Devlin et al., "BERT"
/// (2019); GreenRFM uses the last hidden state at `[CLS]` as the report representation.
///
/// Parameter names equal `BertModel.state_dict()` keys without `pooler.*`
/// (`embeddings.word_embeddings.weight`, `encoder.layer.0.attention.self.query.weight`, …), so HF
/// checkpoints load one-to-one (`TextModelFolder.loadEncoder`). Dropout is active only in training mode;
/// the encoder is differentiable and runs under `withAutocast` (LayerNorm outputs, and so the returned
/// hidden states, stay float32).
public final class BertEncoder: Module {
  public let config: BertConfig
  let embeddings: BertEmbeddings
  let layers: [BertLayer]

  /// Width H of the hidden states.
  public var hiddenSize: Int { config.hiddenSize }

  /// A randomly initialised encoder, as `BertModel(config)`: Linear and embedding weights N(0, 0.02),
  /// biases 0, LayerNorm 1 and 0, the padding row of the word embeddings 0.
  /// - Parameter generator: source of the initial weights (libtorch's default generator when nil).
  /// - Throws: `GreenRFMError.invalidConfig` when `config` fails `validate()`.
  public init(config: BertConfig, generator: Generator? = nil) throws {
    try config.validate()
    self.config = config
    embeddings = try BertEmbeddings(config, generator: generator)
    layers = try (0..<config.numHiddenLayers).map { _ in try BertLayer(config, generator: generator) }
    super.init()
    register("embeddings", embeddings)
    let encoder = Module()
    encoder.register("layer", ModuleList(layers))
    register("encoder", encoder)
  }

  /// The last hidden state, as `BertModel(...).last_hidden_state`.
  ///
  /// - Parameters:
  ///   - inputIDs: `[N, L]` int64 token ids in `0..<vocabSize`, L ≤ `maxPositionEmbeddings`.
  ///   - attentionMask: `[N, L]` integer or bool, 1 for tokens and 0 for padding. Padding keys get the
  ///     additive mask `finfo(float32).min`, as HF does, so that padding never receives attention.
  ///   - tokenTypeIDs: `[N, L]` int64 segment ids (zeros when nil).
  /// - Returns: `[N, L, H]` float32 (also under autocast). Rows at padding positions are computed (they
  ///   attend to the real tokens) but carry no meaning.
  /// - Throws: `GreenRFMError.invalidArgument` for wrong ranks, dtypes, shapes or an L beyond
  ///   `maxPositionEmbeddings`; `TorchError` from libtorch (e.g. a token id outside the vocabulary).
  public func hiddenStates(inputIDs: Tensor, attentionMask: Tensor, tokenTypeIDs: Tensor? = nil) throws -> Tensor {
    let shape = inputIDs.shape
    guard shape.count == 2, shape[0] > 0, shape[1] > 0 else {
      throw GreenRFMError.invalidArgument(name: "inputIDs", reason: "expected a non-empty [N, L] tensor, got \(shape)")
    }
    guard inputIDs.dtype == .int64 else {
      throw GreenRFMError.invalidArgument(name: "inputIDs", reason: "expected int64 token ids, got \(inputIDs.dtype)")
    }
    guard attentionMask.shape == shape else {
      throw GreenRFMError.invalidArgument(
        name: "attentionMask", reason: "shape \(attentionMask.shape) differs from inputIDs \(shape)")
    }
    guard shape[1] <= config.maxPositionEmbeddings else {
      throw GreenRFMError.invalidArgument(
        name: "inputIDs", reason: "\(shape[1]) tokens exceed max_position_embeddings \(config.maxPositionEmbeddings)")
    }
    if let t = tokenTypeIDs, t.shape != shape || t.dtype != .int64 {
      throw GreenRFMError.invalidArgument(
        name: "tokenTypeIDs", reason: "expected int64 \(shape), got \(t.dtype) \(t.shape)")
    }
    let types = try tokenTypeIDs ?? Tensor.zeros(shape, dtype: .int64, device: inputIDs.device)
    // [N, L] → [N, 1, 1, L]: 0 where attended, finfo(float32).min at padding (HF's extended attention mask).
    let additiveMask = try (attentionMask.eq(0.0).to(.float32) * Double(-Float.greatestFiniteMagnitude))
      .view([shape[0], 1, 1, shape[1]])
    var h = try embeddings.forward(inputIDs: inputIDs, tokenTypeIDs: types)
    for layer in layers { h = try layer.forward(h, additiveMask: additiveMask) }
    return h
  }

  /// `[CLS]` pooling: `hiddenStates(...)[:, 0, :]`.
  /// - Parameters: as `hiddenStates` (token types zero).
  /// - Returns: `[N, H]` float32.
  public func pooledCLS(inputIDs: Tensor, attentionMask: Tensor) throws -> Tensor {
    try hiddenStates(inputIDs: inputIDs, attentionMask: attentionMask).select(dim: 1, index: 0)
  }
}

// MARK: - Model folders

/// A Hugging Face BERT folder (`config.json`, `vocab.txt`, optional `tokenizer_config.json`,
/// `model.safetensors`), such as all-MiniLM-L6-v2 as `scripts/setup.sh` places it in `.models/`.
public enum TextModelFolder {
  /// The default folder name, relative to the repository root.
  public static let defaultRelativePath = ".models/all-MiniLM-L6-v2"
  /// The environment variable that names a text-model folder.
  public static let environmentVariable = "GREENRFM_TEXT_MODEL"

  /// The folder: `path` if given, else `$GREENRFM_TEXT_MODEL`, else `.models/all-MiniLM-L6-v2` found in the
  /// current directory or walking up from the running executable's directory (the binary lives in
  /// `<repo>/.build/release/`).
  /// - Throws: `GreenRFMError.missingFile` naming the folder (or the places searched), with a hint to run
  ///   `scripts/setup.sh`.
  public static func resolve(_ path: String?) throws -> URL {
    let hint = "text model folder (run scripts/setup.sh to fetch all-MiniLM-L6-v2, or pass a BERT folder)"
    let fm = FileManager.default
    func isFolder(_ url: URL) -> Bool {
      var isDirectory: ObjCBool = false
      return fm.fileExists(atPath: url.path, isDirectory: &isDirectory) && isDirectory.boolValue
    }
    if let given = path ?? ProcessInfo.processInfo.environment[environmentVariable].flatMap({ $0.isEmpty ? nil : $0 }) {
      let url = URL(fileURLWithPath: (given as NSString).expandingTildeInPath).standardizedFileURL
      guard isFolder(url) else {
        let source = path == nil ? " ($\(environmentVariable))" : ""
        throw GreenRFMError.missingFile(path: url.path + source, what: hint)
      }
      return url
    }
    var candidates = [URL(fileURLWithPath: fm.currentDirectoryPath).appendingPathComponent(defaultRelativePath)]
    if let exe = Bundle.main.executableURL?.resolvingSymlinksInPath() {
      var dir = exe.deletingLastPathComponent()
      while dir.path != "/" && !dir.path.isEmpty {
        candidates.append(dir.appendingPathComponent(defaultRelativePath))
        dir = dir.deletingLastPathComponent()
      }
    }
    if let found = candidates.first(where: isFolder) { return found.standardizedFileURL }
    throw GreenRFMError.missingFile(path: candidates[0].path, what: hint + "; also searched above the executable")
  }

  /// Reads `folder/config.json`. - Throws: as `BertConfig.load(contentsOf:)`.
  public static func loadConfig(folder: URL) throws -> BertConfig {
    try BertConfig.load(contentsOf: folder.appendingPathComponent("config.json"))
  }

  /// The WordPiece tokenizer of `folder/vocab.txt`, lower-casing as `tokenizer_config.json`'s
  /// `do_lower_case` says (true when the file or the key is absent, as for uncased BERT).
  /// - Throws: `GreenRFMError.missingFile` for a missing `vocab.txt`; `GreenRFMError.invalidData` naming the
  ///   file for an unreadable vocabulary or a `tokenizer_config.json` that is not a JSON object.
  public static func loadTokenizer(folder: URL) throws -> WordPieceTokenizer {
    let vocab = folder.appendingPathComponent("vocab.txt")
    guard FileManager.default.fileExists(atPath: vocab.path) else {
      throw GreenRFMError.missingFile(path: vocab.path, what: "WordPiece vocabulary")
    }
    var lowercase = true
    let configURL = folder.appendingPathComponent("tokenizer_config.json")
    if FileManager.default.fileExists(atPath: configURL.path) {
      guard let data = try? Data(contentsOf: configURL),
            let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else {
        throw GreenRFMError.invalidData(path: configURL.path, reason: "not a JSON object")
      }
      if let flag = object["do_lower_case"] as? Bool { lowercase = flag }
    }
    do { return try WordPieceTokenizer(vocabularyURL: vocab, lowercase: lowercase) } catch {
      throw GreenRFMError.invalidData(path: vocab.path, reason: "\(error)")
    }
  }

  /// Maps a checkpoint key to the encoder's key: drops a `bert.` prefix and renames the LayerNorm
  /// `gamma`/`beta` of old TensorFlow-converted checkpoints; nil for keys that are not encoder weights
  /// (`pooler.*`, `cls.*`, heads, the `embeddings.position_ids` buffer).
  static func encoderKey(_ key: String) -> String? {
    var k = key.hasPrefix("bert.") ? String(key.dropFirst(5)) : key
    guard k.hasPrefix("embeddings.") || k.hasPrefix("encoder.") else { return nil }
    guard k != "embeddings.position_ids", k != "embeddings.token_type_ids" else { return nil }
    if k.contains("LayerNorm.") {
      if k.hasSuffix(".gamma") { k = String(k.dropLast(6)) + ".weight" }
      if k.hasSuffix(".beta") { k = String(k.dropLast(5)) + ".bias" }
    }
    return k
  }

  /// The encoder of `folder` in evaluation mode: its `config.json` and the weights of `model.safetensors`
  /// (keys with or without a `bert.` prefix; `pooler.*`, `cls.*` and other non-encoder keys ignored). The
  /// weights keep float32 whatever the file's float type.
  /// - Throws: `GreenRFMError.missingFile` for a missing file; `GreenRFMError.checkpoint` naming
  ///   `model.safetensors` and listing the missing or mis-shaped encoder weights; config errors as
  ///   `loadConfig`.
  public static func loadEncoder(folder: URL) throws -> BertEncoder {
    let config = try loadConfig(folder: folder)
    let weightsURL = folder.appendingPathComponent("model.safetensors")
    guard FileManager.default.fileExists(atPath: weightsURL.path) else {
      throw GreenRFMError.missingFile(path: weightsURL.path, what: "BERT weights (safetensors)")
    }
    let file: [String: Tensor]
    do { file = try SafeTensors.load(weightsURL).tensors } catch {
      throw GreenRFMError.checkpoint(path: weightsURL.path, reason: "\(error)")
    }
    var state: [String: Tensor] = [:]
    for (key, tensor) in file {
      if let k = encoderKey(key) { state[k] = tensor }
    }
    // Random initial values are overwritten; a fixed generator keeps this cheap and deterministic.
    let encoder = try BertEncoder(config: config, generator: Generator(seed: 0))
    let own = Set(encoder.stateDict().keys)
    state = state.filter { own.contains($0.key) }
    let report: StateDictReport
    do { report = try encoder.loadStateDict(state, strict: false) } catch {
      throw GreenRFMError.checkpoint(path: weightsURL.path, reason: "\(error)")
    }
    if !report.isClean {
      var reason = report.description
      if report.missing.count == own.count {
        let sample = file.keys.sorted().prefix(3).joined(separator: ", ")
        reason = "no encoder weights found (keys look like: \(sample)); expected e.g. embeddings.word_embeddings.weight"
      }
      throw GreenRFMError.checkpoint(path: weightsURL.path, reason: reason)
    }
    encoder.eval()
    return encoder
  }
}

/// Tokenises `texts` as `tokenizer(texts, padding=True, truncation=True, max_length=maxLength)` does: each
/// text becomes `[CLS] … [SEP]` (truncation keeps the first `maxLength − 2` WordPieces), padded with
/// `[PAD]` to the longest encoding in the batch.
/// - Parameters:
///   - texts: at least one text (an empty text encodes as `[CLS] [SEP]`).
///   - maxLength: at least 2 tokens.
/// - Returns: `ids` and `mask` (1 token, 0 padding), both `[N, L]` int64 on the CPU, L = the longest
///   encoding (≤ `maxLength`).
/// - Throws: `GreenRFMError.invalidArgument` for an empty batch or `maxLength` < 2.
public func tokenizeBatch(_ texts: [String], tokenizer: WordPieceTokenizer, maxLength: Int) throws
  -> (ids: Tensor, mask: Tensor)
{
  guard !texts.isEmpty else { throw GreenRFMError.invalidArgument(name: "texts", reason: "empty batch") }
  guard maxLength >= 2 else {
    throw GreenRFMError.invalidArgument(name: "maxLength", reason: "must leave room for [CLS] and [SEP], got \(maxLength)")
  }
  let encodings = tokenizer.encodeBatch(texts, maxLength: maxLength)
  let shape = [texts.count, encodings[0].ids.count]
  let ids = try Tensor(encodings.flatMap { $0.ids.map(Int64.init) }, shape: shape)
  let mask = try Tensor(encodings.flatMap { $0.attentionMask.map(Int64.init) }, shape: shape)
  return (ids, mask)
}
