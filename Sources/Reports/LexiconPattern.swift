/// A lexicon pattern: words matched against a sentence's tokens.
///
/// Syntax (one pattern per string, case-insensitive): words separated by spaces or hyphens; a word ending in
/// `*` matches any token that starts with it (`calcif*` matches `calcific`, `calcification`); `...` skips up
/// to 4 words, `...N` up to N (1–15) words (a skip never crosses punctuation); `,` `?` `(` `)` `:` match those
/// punctuation marks. The text is split the same way: letters and digits form tokens, and everything else
/// separates them. Example: `heart ... enlarged` matches "heart is slightly enlarged".
struct LexiconPattern: Equatable {
  enum Element: Equatable {
    case word(String, prefix: Bool)
    case gap(Int, strict: Bool)
  }
  var elements: [Element]

  static let punctuation: Set<String> = [",", "?", "(", ")", ":"]

  static func parse(_ text: String, source: String) throws -> LexiconPattern {
    func fail(_ reason: String) -> ReportsError { .invalidPattern(source: source, pattern: text, reason: reason) }
    var elements: [Element] = []
    for raw in text.lowercased().split(whereSeparator: { $0 == " " || $0 == "\t" }) {
      let piece = String(raw)
      if piece.hasPrefix("..") {
        let strict = !piece.hasPrefix("...")
        let rest = piece.dropFirst(strict ? 2 : 3)
        let n = rest.isEmpty && !strict ? 4 : Int(rest) ?? -1
        guard (1...15).contains(n) else { throw fail("a gap is '...', '...N' or '..N' with N in 1–15") }
        guard !elements.isEmpty else { throw fail("a pattern cannot start with a gap") }
        if case .gap = elements.last! { throw fail("two gaps in a row") }
        elements.append(.gap(n, strict: strict))
        continue
      }
      if punctuation.contains(piece) {
        elements.append(.word(piece, prefix: false))
        continue
      }
      // Split on anything that is not a token character, as the text is split; keep a trailing '*'.
      var current = ""
      var words: [(String, Bool)] = []
      for ch in piece {
        if ch == "*" {
          guard !current.isEmpty else { throw fail("'*' must end a word") }
          words.append((current, true))
          current = ""
        } else if ch.isASCII ? (ch.isLetter || ch.isNumber) : ch.isLetter {
          current.append(ch)
        } else if punctuation.contains(String(ch)) {
          if !current.isEmpty { words.append((current, false)); current = "" }
          words.append((String(ch), false))
        } else {
          if !current.isEmpty { words.append((current, false)); current = "" }
        }
      }
      if !current.isEmpty { words.append((current, false)) }
      for (w, p) in words { elements.append(.word(w, prefix: p)) }
    }
    guard !elements.isEmpty else { throw fail("the pattern is empty") }
    if case .gap = elements.last! { throw fail("a pattern cannot end with a gap") }
    return LexiconPattern(elements: elements)
  }
}
