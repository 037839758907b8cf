import Foundation

/// A BERT WordPiece tokenizer identical to Hugging Face's `BertTokenizer` / `BertTokenizerFast`
/// (`tokenizers`' `BertNormalizer` + `BertPreTokenizer` + `WordPiece`, with `[CLS] … [SEP]` post-processing).
///
/// Steps, as the reference: (1) clean the text — drop NUL, U+FFFD and other control/format characters,
/// turn whitespace into spaces; (2) put spaces around CJK ideographs; (3) if lower-casing, strip accents
/// (NFD, then drop non-spacing marks) and lower-case; (4) split on whitespace and around every punctuation
/// character (ASCII punctuation or Unicode category P*); (5) split each word greedily into the longest
/// vocabulary pieces, continuation pieces prefixed `##`; a word longer than 100 characters, or one that
/// cannot be split, becomes `[UNK]`.
public struct WordPieceTokenizer: Sendable {
  public let vocabulary: [String: Int32]
  public let lowercase: Bool
  public let maxInputCharactersPerWord: Int
  public let unknownToken: String
  public let clsID: Int32
  public let sepID: Int32
  public let padID: Int32
  public let unknownID: Int32

  /// An encoded text: token ids and the attention mask (1 for tokens, 0 for padding), both of the same length.
  public struct Encoding: Equatable, Sendable {
    public var ids: [Int32]
    public var attentionMask: [Int32]
  }

  /// Errors reading a vocabulary.
  public enum VocabularyError: Error, CustomStringConvertible {
    case unreadable(path: String, reason: String)
    case missingToken(path: String, token: String)
    public var description: String {
      switch self {
      case let .unreadable(path, reason): return "\(path): cannot read the vocabulary: \(reason)"
      case let .missingToken(path, token): return "\(path): the vocabulary has no \(token) token"
      }
    }
  }

  /// Loads `vocab.txt` (one token per line; the line number is the id).
  /// - Throws: `VocabularyError` naming the file when it cannot be read or lacks a special token.
  public init(vocabularyURL url: URL, lowercase: Bool = true, maxInputCharactersPerWord: Int = 100) throws {
    let text: String
    do { text = try String(contentsOf: url, encoding: .utf8) } catch {
      throw VocabularyError.unreadable(path: url.path, reason: error.localizedDescription)
    }
    var vocab: [String: Int32] = [:]
    var lines = text.components(separatedBy: "\n")
    if lines.last == "" { lines.removeLast() }
    for (i, line) in lines.enumerated() {
      let token = line.hasSuffix("\r") ? String(line.dropLast()) : line
      if vocab[token] == nil { vocab[token] = Int32(i) }
    }
    try self.init(vocabulary: vocab, lowercase: lowercase, maxInputCharactersPerWord: maxInputCharactersPerWord,
                  source: url.path)
  }

  public init(vocabulary: [String: Int32], lowercase: Bool = true, maxInputCharactersPerWord: Int = 100,
              source: String = "<vocabulary>") throws {
    self.vocabulary = vocabulary
    self.lowercase = lowercase
    self.maxInputCharactersPerWord = maxInputCharactersPerWord
    unknownToken = "[UNK]"
    func id(_ t: String) throws -> Int32 {
      guard let v = vocabulary[t] else { throw VocabularyError.missingToken(path: source, token: t) }
      return v
    }
    clsID = try id("[CLS]")
    sepID = try id("[SEP]")
    padID = try id("[PAD]")
    unknownID = try id("[UNK]")
  }

  // MARK: Normalisation and pre-tokenisation

  static func isControl(_ s: Unicode.Scalar) -> Bool {
    if s == "\t" || s == "\n" || s == "\r" { return false }
    switch s.properties.generalCategory {
    case .control, .format, .surrogate, .privateUse, .unassigned: return true
    default: return false
    }
  }

  static func isWhitespace(_ s: Unicode.Scalar) -> Bool {
    s == " " || s == "\t" || s == "\n" || s == "\r" || s.properties.isWhitespace
  }

  static func isPunctuation(_ s: Unicode.Scalar) -> Bool {
    let v = s.value
    if (33...47).contains(v) || (58...64).contains(v) || (91...96).contains(v) || (123...126).contains(v) { return true }
    switch s.properties.generalCategory {
    case .connectorPunctuation, .dashPunctuation, .openPunctuation, .closePunctuation, .initialPunctuation,
      .finalPunctuation, .otherPunctuation:
      return true
    default: return false
    }
  }

  static func isCJK(_ s: Unicode.Scalar) -> Bool {
    switch s.value {
    case 0x4E00...0x9FFF, 0x3400...0x4DBF, 0x20000...0x2A6DF, 0x2A700...0x2B73F, 0x2B740...0x2B81F,
      0x2B820...0x2CEAF, 0xF900...0xFAFF, 0x2F800...0x2FA1F:
      return true
    default: return false
    }
  }

  /// The normalised text (steps 1–3).
  public func normalize(_ text: String) -> String {
    var cleaned = String.UnicodeScalarView()
    for s in text.unicodeScalars {
      if s.value == 0 || s.value == 0xFFFD || Self.isControl(s) { continue }
      if Self.isWhitespace(s) {
        cleaned.append(" ")
      } else if Self.isCJK(s) {
        cleaned.append(" ")
        cleaned.append(s)
        cleaned.append(" ")
      } else {
        cleaned.append(s)
      }
    }
    guard lowercase else { return String(cleaned) }
    var out = String.UnicodeScalarView()
    let isASCII = cleaned.allSatisfy { $0.isASCII }
    if isASCII {
      for s in cleaned { out.append((65...90).contains(s.value) ? Unicode.Scalar(s.value + 32)! : s) }
      return String(out)
    }
    for s in String(cleaned).decomposedStringWithCanonicalMapping.unicodeScalars
    where s.properties.generalCategory != .nonspacingMark {
      out.append(contentsOf: s.properties.lowercaseMapping.unicodeScalars)
    }
    return String(out)
  }

  /// Words after splitting on whitespace and around punctuation (step 4).
  public func preTokenize(_ normalized: String) -> [String] {
    var words: [String] = []
    var current = String.UnicodeScalarView()
    for s in normalized.unicodeScalars {
      if Self.isWhitespace(s) {
        if !current.isEmpty { words.append(String(current)); current = .init() }
      } else if Self.isPunctuation(s) {
        if !current.isEmpty { words.append(String(current)); current = .init() }
        words.append(String(s))
      } else {
        current.append(s)
      }
    }
    if !current.isEmpty { words.append(String(current)) }
    return words
  }

  /// Greedy longest-match-first WordPiece split of one word (step 5).
  public func wordPieces(_ word: String) -> [String] {
    let scalars = Array(word.unicodeScalars)
    if scalars.count > maxInputCharactersPerWord { return [unknownToken] }
    var pieces: [String] = []
    var start = 0
    while start < scalars.count {
      var end = scalars.count
      var found: String? = nil
      while start < end {
        var piece = String(String.UnicodeScalarView(scalars[start..<end]))
        if start > 0 { piece = "##" + piece }
        if vocabulary[piece] != nil {
          found = piece
          break
        }
        end -= 1
      }
      guard let f = found else { return [unknownToken] }
      pieces.append(f)
      start = end
    }
    return pieces
  }

  /// The WordPiece tokens of `text`, without special tokens.
  public func tokenize(_ text: String) -> [String] {
    preTokenize(normalize(text)).flatMap(wordPieces)
  }

  /// Token ids of `text`, without special tokens or truncation.
  public func tokenIDs(_ text: String) -> [Int32] {
    tokenize(text).map { vocabulary[$0] ?? unknownID }
  }

  /// `[CLS] tokens [SEP]` truncated to `maxLength` (keeping the first `maxLength − 2` tokens, as
  /// `truncation=True`), then padded with `[PAD]` to `padTo` when given.
  public func encode(_ text: String, maxLength: Int = 128, padTo: Int? = nil) -> Encoding {
    precondition(maxLength >= 2, "maxLength must leave room for [CLS] and [SEP]")
    var ids = [clsID] + tokenIDs(text).prefix(maxLength - 2) + [sepID]
    var mask = [Int32](repeating: 1, count: ids.count)
    if let p = padTo, p > ids.count {
      ids += [Int32](repeating: padID, count: p - ids.count)
      mask += [Int32](repeating: 0, count: p - mask.count)
    }
    return Encoding(ids: ids, attentionMask: mask)
  }

  /// Encodes a batch, padded to the longest encoding (`padding=True`, `truncation=True`).
  public func encodeBatch(_ texts: [String], maxLength: Int = 128) -> [Encoding] {
    let raw = texts.map { encode($0, maxLength: maxLength) }
    let longest = raw.map(\.ids.count).max() ?? 0
    return texts.indices.map { i in
      var e = raw[i]
      let pad = longest - e.ids.count
      e.ids += [Int32](repeating: padID, count: pad)
      e.attentionMask += [Int32](repeating: 0, count: pad)
      return e
    }
  }
}
