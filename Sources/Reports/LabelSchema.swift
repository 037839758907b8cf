import Foundation

/// A label: 1 explicitly present, 0 explicitly absent or ruled out, −1 uncertain or not mentioned.
///
/// Paper: GreenRFM MUST "More distilled" (the authors' LLM answers one of {1, 0, −1} per finding).
public enum FindingLabel: Int8, Sendable, CaseIterable, Codable {
  case present = 1
  case absent = 0
  case uncertain = -1

  /// The CSV spelling: `1`, `0` or `-1`.
  public var text: String { String(rawValue) }

  /// Parses `1`, `0`, `-1` (also the minus sign `−1` and `1.0`/`0.0`/`-1.0`).
  public init?(text: String) {
    let t = text.trimmingCharacters(in: .whitespaces).replacingOccurrences(of: "\u{2212}", with: "-")
    switch t {
    case "1", "1.0", "+1": self = .present
    case "0", "0.0", "-0": self = .absent
    case "-1", "-1.0": self = .uncertain
    default: return nil
    }
  }
}

/// One finding of a schema.
public struct Finding: Codable, Sendable, Equatable {
  /// A stable identifier: lowercase letters, digits and `_` (e.g. `medical_material`).
  public var key: String
  /// The column title in label CSVs (CT-RATE's exact titles for `chest-ct-18`, e.g. `Medical material`).
  public var displayName: String
  /// The phrase used in zero-shot prompts and in the LLM prompt (e.g. `medical material`).
  public var prompt: String
  /// Lexicon patterns that mention the finding (see `docs/DISTILL.md` for the pattern syntax).
  public var synonyms: [String]
  /// Patterns that explicitly state the finding is absent (e.g. `heart size is normal`): label 0.
  public var negatives: [String]
  /// Patterns that, where they overlap a synonym match, cancel it (e.g. `thyroid nodule` for lung nodule).
  public var exclusions: [String]

  public init(key: String, displayName: String, prompt: String, synonyms: [String], negatives: [String] = [],
              exclusions: [String] = []) {
    self.key = key
    self.displayName = displayName
    self.prompt = prompt
    self.synonyms = synonyms
    self.negatives = negatives
    self.exclusions = exclusions
  }

  enum CodingKeys: String, CodingKey, CaseIterable { case key, displayName, prompt, synonyms, negatives, exclusions }

  public init(from decoder: Decoder) throws {
    let c = try decoder.container(keyedBy: CodingKeys.self)
    key = try c.decode(String.self, forKey: .key)
    displayName = try c.decode(String.self, forKey: .displayName)
    prompt = try c.decode(String.self, forKey: .prompt)
    synonyms = try c.decode([String].self, forKey: .synonyms)
    negatives = try c.decodeIfPresent([String].self, forKey: .negatives) ?? []
    exclusions = try c.decodeIfPresent([String].self, forKey: .exclusions) ?? []
  }
}

/// Extra cue patterns a schema may add to the built-in English cues of `RuleLabeler`.
public struct CueLexicon: Codable, Sendable, Equatable {
  public var negationBefore: [String] = []
  public var negationAfter: [String] = []
  public var uncertaintyBefore: [String] = []
  public var uncertaintyAfter: [String] = []
  public var pseudoCues: [String] = []
  public var scopeBreaks: [String] = []

  public init() {}

  enum CodingKeys: String, CodingKey, CaseIterable {
    case negationBefore, negationAfter, uncertaintyBefore, uncertaintyAfter, pseudoCues, scopeBreaks
  }

  public init(from decoder: Decoder) throws {
    let c = try decoder.container(keyedBy: CodingKeys.self)
    negationBefore = try c.decodeIfPresent([String].self, forKey: .negationBefore) ?? []
    negationAfter = try c.decodeIfPresent([String].self, forKey: .negationAfter) ?? []
    uncertaintyBefore = try c.decodeIfPresent([String].self, forKey: .uncertaintyBefore) ?? []
    uncertaintyAfter = try c.decodeIfPresent([String].self, forKey: .uncertaintyAfter) ?? []
    pseudoCues = try c.decodeIfPresent([String].self, forKey: .pseudoCues) ?? []
    scopeBreaks = try c.decodeIfPresent([String].self, forKey: .scopeBreaks) ?? []
  }
}

/// A label schema: an ordered list of findings, as data (JSON).
///
/// Built-in schemas: `chest-ct-18` (CT-RATE's 18 findings in CT-RATE's order and titles), `abdomen-ct-30`
/// (Merlin's 30), `knee-mri-14`, `spine-mri-9`. A user schema is a JSON file of the same shape; unknown keys,
/// duplicate keys or titles, empty lexicons and malformed patterns are errors that name the file and item.
public struct LabelSchema: Codable, Sendable, Equatable {
  /// The schema's name (e.g. `chest-ct-18`); part of the LLM cache key.
  public var name: String
  /// Bumped when the findings or lexicons change meaning.
  public var version: Int
  /// What the reports describe (e.g. `chest CT`), used in the LLM prompt.
  public var modality: String
  /// Where the finding list comes from.
  public var source: String
  public var findings: [Finding]
  public var cues: CueLexicon

  public init(name: String, version: Int = 1, modality: String, source: String = "", findings: [Finding],
              cues: CueLexicon = CueLexicon()) {
    self.name = name
    self.version = version
    self.modality = modality
    self.source = source
    self.findings = findings
    self.cues = cues
  }

  enum CodingKeys: String, CodingKey, CaseIterable { case name, version, modality, source, findings, cues }

  public init(from decoder: Decoder) throws {
    let c = try decoder.container(keyedBy: CodingKeys.self)
    name = try c.decode(String.self, forKey: .name)
    version = try c.decodeIfPresent(Int.self, forKey: .version) ?? 1
    modality = try c.decode(String.self, forKey: .modality)
    source = try c.decodeIfPresent(String.self, forKey: .source) ?? ""
    findings = try c.decode([Finding].self, forKey: .findings)
    cues = try c.decodeIfPresent(CueLexicon.self, forKey: .cues) ?? CueLexicon()
  }

  /// The display names in order (the label CSV column titles).
  public var displayNames: [String] { findings.map(\.displayName) }

  /// The built-in schema names.
  public static let builtInNames = ["chest-ct-18", "abdomen-ct-30", "knee-mri-14", "spine-mri-9"]

  /// Loads a built-in schema by name, or a user schema from a JSON file path.
  /// - Throws: `ReportsError.unknownSchema`, `.unreadableFile`, `.invalidSchema` or `.invalidPattern`.
  public static func load(_ nameOrPath: String) throws -> LabelSchema {
    if builtInNames.contains(nameOrPath) {
      guard let url = Bundle.module.url(forResource: nameOrPath, withExtension: "json", subdirectory: "Schemas")
        ?? Bundle.module.url(forResource: nameOrPath, withExtension: "json")
      else { throw ReportsError.unreadableFile(path: "Schemas/\(nameOrPath).json", reason: "missing from the bundle") }
      return try load(contentsOf: url, source: nameOrPath)
    }
    let looksLikePath = nameOrPath.contains("/") || nameOrPath.hasSuffix(".json")
    guard looksLikePath else { throw ReportsError.unknownSchema(name: nameOrPath, available: builtInNames) }
    return try load(contentsOf: URL(fileURLWithPath: nameOrPath), source: nameOrPath)
  }

  /// Loads and validates a schema JSON file.
  public static func load(contentsOf url: URL, source: String? = nil) throws -> LabelSchema {
    let source = source ?? url.path
    let data: Data
    do { data = try Data(contentsOf: url) } catch {
      throw ReportsError.unreadableFile(path: url.path, reason: error.localizedDescription)
    }
    return try decode(data, source: source)
  }

  /// Decodes and validates schema JSON. Unknown keys are errors (a misspelt key must not be ignored silently).
  public static func decode(_ data: Data, source: String) throws -> LabelSchema {
    let object: Any
    do { object = try JSONSerialization.jsonObject(with: data) } catch {
      throw ReportsError.invalidSchema(source: source, reason: "not valid JSON (\(error.localizedDescription))")
    }
    guard let top = object as? [String: Any] else {
      throw ReportsError.invalidSchema(source: source, reason: "the top level must be a JSON object")
    }
    try rejectUnknownKeys(top, allowed: CodingKeys.allCases.map(\.rawValue), at: "the top level", source: source)
    if let cues = top["cues"] as? [String: Any] {
      try rejectUnknownKeys(cues, allowed: CueLexicon.CodingKeys.allCases.map(\.rawValue), at: "cues", source: source)
    }
    if let findings = top["findings"] as? [Any] {
      for (i, f) in findings.enumerated() {
        guard let f = f as? [String: Any] else {
          throw ReportsError.invalidSchema(source: source, reason: "findings[\(i)] must be an object")
        }
        try rejectUnknownKeys(f, allowed: Finding.CodingKeys.allCases.map(\.rawValue), at: "findings[\(i)]", source: source)
      }
    }
    let schema: LabelSchema
    do { schema = try JSONDecoder().decode(LabelSchema.self, from: data) } catch let DecodingError.keyNotFound(key, ctx) {
      throw ReportsError.invalidSchema(source: source, reason: "missing key '\(key.stringValue)' at \(path(ctx.codingPath))")
    } catch let DecodingError.typeMismatch(_, ctx) {
      throw ReportsError.invalidSchema(source: source, reason: "wrong type at \(path(ctx.codingPath)): \(ctx.debugDescription)")
    } catch {
      throw ReportsError.invalidSchema(source: source, reason: "\(error)")
    }
    try schema.validate(source: source)
    return schema
  }

  private static func path(_ keys: [CodingKey]) -> String {
    keys.isEmpty ? "the top level" : keys.map { $0.intValue.map { "[\($0)]" } ?? ".\($0.stringValue)" }.joined()
  }

  private static func rejectUnknownKeys(_ object: [String: Any], allowed: [String], at place: String, source: String) throws {
    let unknown = object.keys.filter { !allowed.contains($0) }.sorted()
    if !unknown.isEmpty {
      throw ReportsError.invalidSchema(
        source: source, reason: "unknown key(s) \(unknown.joined(separator: ", ")) at \(place) (allowed: \(allowed.joined(separator: ", ")))")
    }
  }

  /// Checks names, uniqueness, non-empty lexicons and every pattern's syntax.
  public func validate(source: String? = nil) throws {
    let source = source ?? name
    func fail(_ reason: String) -> ReportsError { .invalidSchema(source: source, reason: reason) }
    if name.trimmingCharacters(in: .whitespaces).isEmpty { throw fail("'name' is empty") }
    if version < 1 { throw fail("'version' must be at least 1") }
    if findings.isEmpty { throw fail("'findings' is empty") }
    var keys = Set<String>(), titles = Set<String>()
    for (i, f) in findings.enumerated() {
      let allowed = Set("abcdefghijklmnopqrstuvwxyz0123456789_")
      if f.key.isEmpty || !f.key.allSatisfy({ allowed.contains($0) }) {
        throw fail("findings[\(i)].key '\(f.key)' must be lowercase letters, digits and '_'")
      }
      if f.displayName.trimmingCharacters(in: .whitespaces).isEmpty { throw fail("findings[\(i)] (\(f.key)): empty displayName") }
      if f.displayName.contains(where: { $0 == "\n" || $0 == "\r" }) { throw fail("findings[\(i)] (\(f.key)): displayName has a line break") }
      if f.prompt.trimmingCharacters(in: .whitespaces).isEmpty { throw fail("findings[\(i)] (\(f.key)): empty prompt") }
      if f.synonyms.isEmpty { throw fail("findings[\(i)] (\(f.key)): 'synonyms' is empty") }
      if !keys.insert(f.key).inserted { throw fail("duplicate key '\(f.key)'") }
      if !titles.insert(f.displayName).inserted { throw fail("duplicate displayName '\(f.displayName)'") }
      for p in f.synonyms + f.negatives + f.exclusions { _ = try LexiconPattern.parse(p, source: "\(source) (\(f.key))") }
    }
    for p in cues.negationBefore + cues.negationAfter + cues.uncertaintyBefore + cues.uncertaintyAfter + cues.pseudoCues
      + cues.scopeBreaks
    { _ = try LexiconPattern.parse(p, source: "\(source) (cues)") }
  }
}
