import Foundation
import Reports
import Torch

/// A pair of zero-shot prompts: `{finding}` is replaced by the finding's prompt phrase (`Finding.prompt`, e.g.
/// `pleural effusion`), `{Finding}` by the same phrase with its first letter capitalised.
public struct PromptTemplate: Codable, Sendable, Equatable, Hashable {
  /// The prompt that states the finding is present, e.g. `There is {finding}.`
  public var positive: String
  /// The prompt that states it is absent, e.g. `There is no {finding}.`; may be empty (the authors' second pair).
  public var negative: String

  public init(positive: String, negative: String) {
    self.positive = positive
    self.negative = negative
  }

  /// The two prompts for one finding phrase.
  public func prompts(for phrase: String) -> (positive: String, negative: String) {
    (Self.fill(positive, phrase), Self.fill(negative, phrase))
  }

  static func fill(_ template: String, _ phrase: String) -> String {
    let capitalised = phrase.prefix(1).uppercased() + phrase.dropFirst()
    return template.replacingOccurrences(of: "{finding}", with: phrase)
      .replacingOccurrences(of: "{Finding}", with: capitalised)
  }
}

/// Zero-shot diagnosis: prompt templates as data and the classifier as a pure function of latents.
///
/// Paper: GreenRFM evaluation — for each finding, a positive and a negative prompt are encoded; the probability
/// is the softmax over the image latent's similarities with the two prompt latents.
public enum ZeroShot {
  /// The authors' five template pairs, by name.
  public static let authorsTemplates: [(name: String, template: PromptTemplate)] = [
    ("not", PromptTemplate(positive: "{finding}.", negative: "not {finding}.")),
    ("empty", PromptTemplate(positive: "{finding}.", negative: "")),
    ("there-is", PromptTemplate(positive: "There is {finding}.", negative: "There is no {finding}.")),
    ("is-present", PromptTemplate(positive: "{finding} is present.", negative: "{finding} is not present.")),
    ("compatible", PromptTemplate(positive: "Findings are compatible with {finding}.",
                                  negative: "Findings are not compatible with {finding}.")),
  ]

  /// The authors' default: "There is X." / "There is no X.".
  public static let defaultTemplate = PromptTemplate(positive: "There is {finding}.", negative: "There is no {finding}.")

  /// The template names accepted by `template(named:)`: the five above and `all` (their ensemble).
  public static var templateNames: [String] { authorsTemplates.map(\.name) + ["all"] }

  /// The templates of a name (`there-is`, …, or `all` for the ensemble of the five).
  /// - Throws: `GreenRFMError.invalidArgument` for an unknown name.
  public static func templates(named name: String) throws -> [PromptTemplate] {
    if name == "all" { return authorsTemplates.map(\.template) }
    guard let t = authorsTemplates.first(where: { $0.name == name }) else {
      throw GreenRFMError.invalidArgument(
        name: "template", reason: "unknown template '\(name)' (known: \(templateNames.joined(separator: ", ")), or a JSON file)")
    }
    return [t.template]
  }

  /// Reads a user template file: a JSON list of `{"positive": …, "negative": …}` objects (no other keys); every
  /// positive prompt must contain `{finding}` or `{Finding}`.
  /// - Throws: `GreenRFMError.invalidConfig` naming the file and the entry.
  public static func loadTemplates(from url: URL) throws -> [PromptTemplate] {
    let data: Data
    do { data = try Data(contentsOf: url) } catch {
      throw GreenRFMError.missingFile(path: url.path, what: "prompt template file")
    }
    guard let list = try? JSONSerialization.jsonObject(with: data) as? [Any] else {
      throw GreenRFMError.invalidConfig(source: url.path, reason: "expected a JSON list of {\"positive\", \"negative\"} objects")
    }
    guard !list.isEmpty else { throw GreenRFMError.invalidConfig(source: url.path, reason: "the template list is empty") }
    var out: [PromptTemplate] = []
    for (i, item) in list.enumerated() {
      guard let o = item as? [String: Any] else {
        throw GreenRFMError.invalidConfig(source: url.path, reason: "entry [\(i)] is not an object")
      }
      let unknown = o.keys.filter { $0 != "positive" && $0 != "negative" }.sorted()
      guard unknown.isEmpty else {
        throw GreenRFMError.invalidConfig(
          source: url.path, reason: "entry [\(i)]: unknown key(s) \(unknown.joined(separator: ", ")) (allowed: positive, negative)")
      }
      guard let p = o["positive"] as? String, let n = o["negative"] as? String else {
        throw GreenRFMError.invalidConfig(source: url.path, reason: "entry [\(i)]: 'positive' and 'negative' must both be strings")
      }
      guard p.contains("{finding}") || p.contains("{Finding}") else {
        throw GreenRFMError.invalidConfig(source: url.path, reason: "entry [\(i)]: the positive prompt has no {finding} placeholder")
      }
      out.append(PromptTemplate(positive: p, negative: n))
    }
    return out
  }

  /// The prompts of every finding for one template, in schema order.
  public static func prompts(for findings: [Finding], template: PromptTemplate) -> (positive: [String], negative: [String]) {
    let pairs = findings.map { template.prompts(for: $0.prompt) }
    return (pairs.map(\.positive), pairs.map(\.negative))
  }

  /// Zero-shot probabilities: `softmax([s(img, pos), s(img, neg)])[0]` = `sigmoid(scale · (s_pos − s_neg))`.
  /// - Parameters:
  ///   - imageLatents: `[N, D]`.
  ///   - positiveLatents: `[C, D]`, the encoded positive prompt of each finding.
  ///   - negativeLatents: `[C, D]`, the encoded negative prompts.
  ///   - similarity: `.dot` (default, as in training) or `.cosine`.
  ///   - scale: multiplies the similarities before the softmax (the model's logit scale, if any; 1 by default).
  ///     It changes the probabilities but not their order, so not AUROC.
  /// - Returns: probabilities `[N, C]` in the dtype of the latents.
  /// - Traps: on mismatched shapes.
  public static func probabilities(imageLatents: Tensor, positiveLatents: Tensor, negativeLatents: Tensor,
                                   similarity: Similarity = .dot, scale: Double = 1) throws -> Tensor {
    precondition(imageLatents.rank == 2 && positiveLatents.rank == 2 && positiveLatents.shape == negativeLatents.shape
                 && imageLatents.shape[1] == positiveLatents.shape[1],
                 "ZeroShot.probabilities: image \(imageLatents.shape), positive \(positiveLatents.shape), negative \(negativeLatents.shape)")
    return try withNoGrad {
      let img = try Retrieval.prepared(imageLatents, similarity)
      let pos = try Retrieval.prepared(positiveLatents, similarity)
      let neg = try Retrieval.prepared(negativeLatents, similarity)
      let sPos = try img.matmul(pos.t())  // [N, C]
      let sNeg = try img.matmul(neg.t())
      let logits = try Tensor.stack([sPos * scale, sNeg * scale], dim: 2)  // [N, C, 2]
      return try logits.softmax(dim: 2).select(dim: 2, index: 0)
    }
  }

  /// The ensemble of several templates: the mean of their probabilities.
  /// - Parameter prompts: per template, the `[C, D]` positive and negative prompt latents.
  /// - Returns: `[N, C]`.
  public static func ensembleProbabilities(imageLatents: Tensor, prompts: [(positive: Tensor, negative: Tensor)],
                                           similarity: Similarity = .dot, scale: Double = 1) throws -> Tensor {
    precondition(!prompts.isEmpty, "ZeroShot.ensembleProbabilities: no templates")
    var sum: Tensor? = nil
    for p in prompts {
      let q = try probabilities(imageLatents: imageLatents, positiveLatents: p.positive, negativeLatents: p.negative,
                                similarity: similarity, scale: scale)
      sum = try sum.map { try $0 + q } ?? q
    }
    return try sum! / Double(prompts.count)
  }
}

/// Zero-shot probabilities of a cohort's volumes: what `greenrfm eval zero-shot` scores and `greenrfm predict
/// --zero-shot` writes.
public struct ZeroShotScores {
  /// Ids of the rows of `probabilities`: the items whose volume was read, in cohort order.
  public var ids: [String] = []
  /// `[N][C]` probabilities in [0, 1], columns in schema order; empty when no volume could be read.
  public var probabilities: [[Double]] = []
  /// The similarity used (the trained one unless overridden).
  public var similarity: Similarity = .dot
  /// Items that could not be read or preprocessed: (id, path, reason).
  public var failures: [(id: String, path: String, reason: String)] = []

  public init() {}
}

extension LoadedModel {
  /// Zero-shot probabilities of image latents: per template, the prompt pair of every schema finding is encoded by
  /// the text tower, and `ZeroShot.ensembleProbabilities` gives `softmax(s(image, positive), s(image, negative))[0]`
  /// averaged over the templates.
  /// - Parameters:
  ///   - imageLatents: `[N, D]` float32 image latents of this model (`embed` / `imageEmbeddings`).
  ///   - templates: at least one prompt template (`ZeroShot.templates(named:)`).
  ///   - similarity: nil = as the model was trained (`trainedSimilarity`); the trained logit scale applies only to
  ///     the trained similarity.
  /// - Returns: `[N][C]` probabilities, C = the schema's findings, and the similarity used.
  /// - Throws: `GreenRFMError.invalidArgument` for a checkpoint without both towers (stage 1).
  /// - Traps: on an empty `templates` or latents whose width is not the model's latent size.
  public func zeroShotProbabilities(imageLatents: Tensor, templates: [PromptTemplate],
                                    similarity: Similarity? = nil) throws -> (probabilities: [[Double]], similarity: Similarity) {
    let prompts = try templates.map { try promptLatents(findings: schema.findings, template: $0) }
    let kind = similarity ?? trainedSimilarity
    let scale = kind == trainedSimilarity ? try trainedScale() : 1
    let p = try ZeroShot.ensembleProbabilities(imageLatents: imageLatents, prompts: prompts, similarity: kind, scale: scale)
    return (try Predictor.matrixRows(p), kind)
  }

  /// Reads, preprocesses (this checkpoint's evaluation settings: RAS, spacing, window, centre crop) and embeds the
  /// volumes of `cohort`, then scores them zero-shot. Labels and reports are not used, so unlabelled volumes work.
  /// - Parameters:
  ///   - cacheFolder: the preprocessing cache.
  ///   - batchSize: volumes per forward pass.
  ///   - workers: background reader threads (nil = the checkpoint's preset).
  /// - Returns: ids, probabilities and the similarity; unreadable volumes and items without a volume path are in
  ///   `failures`, never thrown (when every volume fails, `ids` and `probabilities` are empty).
  /// - Throws: `GreenRFMError.invalidArgument` for a stage-1 checkpoint; libtorch errors of the forward passes.
  public func zeroShotScores(_ cohort: Cohort, templates: [PromptTemplate], similarity: Similarity? = nil,
                             cacheFolder: URL, batchSize: Int = 4, workers: Int? = nil) throws -> ZeroShotScores {
    var out = ZeroShotScores()
    out.similarity = similarity ?? trainedSimilarity
    out.failures = cohort.items.filter { $0.volumePath == nil }.map { ($0.id, "", "no volume") }
    let embeddings = try embed(cohort, images: true, texts: false, cacheFolder: cacheFolder, batchSize: batchSize,
                               workers: workers)
    out.failures += embeddings.failures
    guard let image = embeddings.image else { return out }
    (out.probabilities, out.similarity) = try zeroShotProbabilities(imageLatents: image, templates: templates,
                                                                    similarity: similarity)
    out.ids = embeddings.imageIDs
    return out
  }
}
