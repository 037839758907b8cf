import AtomicWrite
import Foundation
import Reports
import Torch

/// Image and text latents of a cohort from a stage-2 model, with the ids of their rows.
public struct CohortEmbeddings {
  /// Ids of the rows of `image` (items whose volume was read), in cohort order.
  public var imageIDs: [String] = []
  /// `[N_image, D]` float32 image latents (not normalised), or nil when not computed.
  public var image: Tensor?
  /// Ids of the rows of `text` (items with a report), in cohort order.
  public var textIDs: [String] = []
  /// `[N_text, D]` float32 text latents.
  public var text: Tensor?
  /// Items that could not be embedded: (id, path, reason).
  public var failures: [(id: String, path: String, reason: String)] = []

  public init() {}

  /// The retrieval pool: the ids with both an image and a text latent, in image order, and their latents row by row.
  /// - Returns: `ids` (P), `images` and `texts` (`[P, D]` each, row i of both = `ids[i]`); nil when either tower's
  ///   latents are missing.
  public func paired() throws -> (ids: [String], images: Tensor, texts: Tensor)? {
    guard let image, let text else { return nil }
    let textRow = Dictionary(textIDs.enumerated().map { ($1, $0) }, uniquingKeysWith: { a, _ in a })
    let pairs = imageIDs.enumerated().compactMap { i, id in textRow[id].map { (id, i, $0) } }
    let images = try image.indexSelect(dim: 0, indices: Tensor(pairs.map { Int64($0.1) }))
    let texts = try text.indexSelect(dim: 0, indices: Tensor(pairs.map { Int64($0.2) }))
    return (pairs.map(\.0), images, texts)
  }

  /// Writes `embeddings.safetensors` (tensors `image` and `text`, metadata: checkpoint, kind) and `image_ids.csv`,
  /// `text_ids.csv` (one id per row, header `id`) into `folder`, atomically.
  public func write(to folder: URL, metadata: [String: String]) throws {
    try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    var tensors: [String: Tensor] = [:]
    if let image { tensors["image"] = image }
    if let text { tensors["text"] = text }
    try SafeTensors.save(tensors, metadata: metadata, to: folder.appendingPathComponent("embeddings.safetensors"))
    for (name, ids) in [("image_ids.csv", imageIDs), ("text_ids.csv", textIDs)] {
      let text = "id\n" + ids.map { CSVTable.escape($0) + "\n" }.joined()
      try AtomicWrite.write(Data(text.utf8), to: folder.appendingPathComponent(name))
    }
  }

  /// Reads what `write(to:metadata:)` wrote.
  /// - Throws: `GreenRFMError.invalidData` naming the file when a part is missing or the row counts differ.
  public static func read(from folder: URL) throws -> CohortEmbeddings {
    let url = folder.appendingPathComponent("embeddings.safetensors")
    guard FileManager.default.fileExists(atPath: url.path) else {
      throw GreenRFMError.missingFile(path: url.path, what: "embeddings (write them with greenrfm embed)")
    }
    let tensors = try SafeTensors.load(url).tensors
    var out = CohortEmbeddings()
    out.image = tensors["image"]
    out.text = tensors["text"]
    for (name, keyPath, tensor) in [("image_ids.csv", \CohortEmbeddings.imageIDs, out.image),
                                    ("text_ids.csv", \CohortEmbeddings.textIDs, out.text)] {
      let idsURL = folder.appendingPathComponent(name)
      let table = try CSVTable(contentsOf: idsURL)
      let ids = table.rows.map { $0.first ?? "" }
      if let tensor, tensor.shape[0] != ids.count {
        throw GreenRFMError.invalidData(path: idsURL.path, reason: "\(ids.count) ids for \(tensor.shape[0]) embedding rows")
      }
      out[keyPath: keyPath] = ids
    }
    return out
  }
}

extension LoadedModel {
  /// Embeds a cohort's volumes and/or reports with a stage-2 model.
  /// - Parameters:
  ///   - cacheFolder: the preprocessing cache for the volumes (centre crop of the checkpoint's preset).
  ///   - batchSize: items per forward pass.
  /// - Returns: the latents; volumes that cannot be read or preprocessed are left out and listed in `failures` (when
  ///   every volume fails, `image` is nil).
  /// - Throws: `GreenRFMError.invalidArgument` for a stage-1 checkpoint.
  public func embed(_ cohort: Cohort, images: Bool, texts: Bool, cacheFolder: URL, batchSize: Int = 4,
                    workers: Int? = nil) throws -> CohortEmbeddings {
    guard aligned != nil else {
      throw GreenRFMError.invalidArgument(name: "--checkpoint", reason: "\(folder.path) is a \(kind.rawValue) checkpoint; embeddings need a stage2 checkpoint")
    }
    var out = CohortEmbeddings()
    if images {
      var withVolumes = cohort
      withVolumes.items = cohort.items.filter { $0.volumePath != nil }
      if !withVolumes.items.isEmpty {
        let loader = try evaluationLoader(withVolumes, cacheFolder: cacheFolder, batchSize: batchSize, workers: workers)
        do {
          let (ids, rows) = try Predictor.imageOutputs(loader: loader, device: device) { try self.imageEmbeddings($0) }
          out.imageIDs = ids
          out.image = try Self.matrix(rows)
        } catch is GreenRFMError where loader.failures.count == withVolumes.items.count {
          // Every volume failed to load (the loader's one error for that case): the failures say why; image stays nil.
        }
        out.failures += loader.failures
      }
    }
    if texts {
      let items = cohort.items.filter { !($0.reportText ?? "").isEmpty }
      if !items.isEmpty {
        out.textIDs = items.map(\.id)
        out.text = try Self.matrix(try textEmbeddings(items.map { $0.reportText! }, batchSize: max(batchSize, 16)))
      }
    }
    return out
  }

  /// The latents `[C, D]` of the positive and of the negative prompt of every finding, for one template.
  public func promptLatents(findings: [Finding], template: PromptTemplate) throws -> (positive: Tensor, negative: Tensor) {
    let (positive, negative) = ZeroShot.prompts(for: findings, template: template)
    return (try Self.matrix(try textEmbeddings(positive)), try Self.matrix(try textEmbeddings(negative)))
  }

  static func matrix(_ rows: [[Double]]) throws -> Tensor {
    let d = rows.first?.count ?? 0
    return try Tensor(rows.flatMap { $0.map(Float.init) }, shape: [rows.count, d])
  }
}
