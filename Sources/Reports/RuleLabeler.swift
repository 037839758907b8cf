import Foundation

/// The offline rule-based labeler: free-text report → one `FindingLabel` per schema finding.
///
/// Steps, per report: split into sentences (at `.` not between digits, `!`, `;`, quotes, bullets, line breaks,
/// and after `?`); split sentences into lowercase tokens; find every lexicon match (finding synonyms, explicit
/// negatives, exclusions, and negation/uncertainty cues) with one pass over a byte trie; then give each finding
/// mention a status:
/// - cancelled when an exclusion of the finding overlaps the mention (`thyroid nodule` for lung nodule);
/// - negated when a "before" negation cue ("no", "without", "absence of") ends at most `windowBefore` tokens
///   before it, or an "after" cue ("was not observed", "not detected", "is not present") starts at most
///   `windowAfter` tokens after it, with no scope break between (words such as "but", "however", "apart from";
///   for "before" cues also a verb such as "was" or "observed", which closes a "no …" phrase; for "after" cues
///   also a comma);
/// - uncertain likewise for uncertainty cues ("possible", "suspicious for", "may represent", "cannot be
///   excluded", "?"); a negation cue inside an uncertainty cue ("not be excluded") or inside a pseudo-cue
///   ("no significant change") does not count;
/// - present otherwise.
/// A finding is 1 if any mention is present, else −1 if any is uncertain, else 0 if any is negated (or an explicit
/// negative phrase matched), else −1 (not mentioned).
///
/// Deterministic, allocation-light, and safe to share across threads (all state is immutable after `init`).
/// Behaviour follows the NegEx family of negation detectors (Chapman et al., 2001) and the CheXpert labeler's
/// mention → uncertainty → negation stages, adapted to CT report phrasing.
public final class RuleLabeler: Sendable {
  public let schema: LabelSchema
  /// Most tokens between a "before" cue and the mention it scopes.
  public let windowBefore: Int
  /// Most tokens between a mention and an "after" cue that scopes it.
  public let windowAfter: Int

  enum Kind: UInt8 {
    case mention = 0, negative, exclusion, negationBefore, negationAfter, uncertaintyBefore, uncertaintyAfter, pseudo,
      scopeBreak, breakBefore, breakAfter, presence, presenceVerb, listConjunction
  }

  struct Compiled: Sendable {
    var elements: [Int32]  // >= 0: token id; -1…-9: gap of -value tokens; -101…-109: strict gap of -value-100
    var kind: Kind
    var finding: Int32
  }

  // Byte trie over token characters: 26 letters, 10 digits, one slot for all non-ASCII bytes.
  static let slots = 37
  private let children: [Int32]
  private let exactID: [Int32]
  private let prefixID: [Int32]
  private let punctuationID: [Int32]  // by byte, -1 where unused
  private let patterns: [Compiled]
  private let byFirstToken: [[Int32]]
  private let conjunctionIDs: [Int32]
  private let noID: Int32

  /// English cues shared by all schemas (a schema's `cues` adds to them).
  public static let defaultCues: CueLexicon = {
    var c = CueLexicon()
    c.negationBefore = [
      "no", "without", "absence of", "absent", "negative for", "free of", "neither", "nor", "none", "no longer",
      "not compatible with", "not consistent with", "not suggestive of", "not suggest*", "not have", "not show*",
      "resolution of", "disappearance of",
    ]
    c.negationAfter = [
      "not ...2 observed", "not ...2 detected", "not ...2 seen", "not ...2 present", "not ...2 identified",
      "not ...2 noted", "not ...2 found", "not ...2 evident", "not ...2 visuali*", "not ...2 monitored",
      "not ...2 demonstrated", "not ...2 shown", "not ...2 apparent", "not ...2 encountered", "not ...2 revealed",
      "not ...2 recogni*", "not ...2 determined", "not ...2 depicted", "not ...2 appreciated", "not ...2 followed",
      "not ...2 described", "not ...2 distinguished", "not ...2 differentiated", "not ...2 reported",
      "absent", "ruled out", "resolved", "disappeared", "has regressed", "have regressed", "regressed completely",
      "no longer", ": none", ": no", ": negative", "is negative", "are negative", "were negative", "was negative",
    ]
    c.uncertaintyBefore = [
      "possibl*", "probabl*", "suspicious for", "suspicious of", "suspicion of", "suspicion for", "suspected",
      "questionabl*", "may ...1 represent", "may ...1 be", "might ...1 be", "might ...1 represent", "could ...1 be",
      "could ...1 represent", "may ...1 belong", "may ...1 correspond", "can ...1 be compatible",
      "cannot exclude", "can not exclude", "could not exclude", "differential diagnosis", "doubtful", "equivocal",
      "presumed", "presumably", "query", "rule out", "r / o", "unlikely", "vs", "versus", "not ...1 excluded",
      "not ruled out",
    ]
    c.uncertaintyAfter = [
      "cannot be excluded", "can not be excluded", "could not be excluded", "cannot be ruled out",
      "can not be ruled out", "could not be ruled out", "not ...1 excluded", "not ruled out", "?", "is suspected",
      "are suspected", "was suspected", "were suspected", "is questionable", "is possible", "are possible",
      "cannot be distinguished", "could not be distinguished", "cannot be differentiated",
      "could not be differentiated", "to be excluded", "should be excluded",
      "in the differential diagnosis", "may be considered", "should be considered", "is considered",
      "were considered", "was considered", "are considered", "is likely", "are likely", "more likely",
      "unlikely", "vs", "versus",
    ]
    c.pseudoCues = [
      "no change", "no significant change", "no marked change", "no interval change", "no increase",
      "no significant increase", "no significant progression", "no progression", "no regression",
      "no significant regression", "no decrease", "no significant decrease", "without change",
      "without significant change", "not only", "no difference", "no significant difference",
      "not changed", "not ...2 changed", "not increased", "not decreased", "not ...2 progressed", "not regressed",
      "no other", "not ...2 observed before", "not ...2 seen before", "not present before",
      "not ...2 observed in the previous", "not ...2 present in the previous", "not ...2 seen in the previous",
      "not ...2 detected in the previous", "not ...2 present on the previous", "not ...2 observed on the previous",
    ]
    c.scopeBreaks = [
      "but", "however", "although", "though", "except", "apart from", "other than", "whereas", "while",
      "besides", "aside from", "exception", "nevertheless", "yet", "in addition", "also", "(", ")", "which",
    ]
    return c
  }()

  /// Words that close a "no …" phrase when they stand between the cue and the mention.
  static let breaksBefore = [
    "was", "were", "is", "are", "observed", "detected", "seen", "noted", "found", "identified", "revealed",
    "there", "has", "have", "showed", "shows", "appears", "appeared", "accompanied",
    "accompanying", "due", "secondary", "causing", "containing", "including", "and the", "and a", "and an",
    "and there", "and it",
  ]
  /// Marks that close an "… not observed" phrase when they stand between the mention and the cue.
  static let breaksAfter = [","]
  /// Words that describe something present (size, severity, place, "with"): a clause after a comma that reaches
  /// one of them before a list conjunction states a finding ("No pneumothorax, small right pleural effusion";
  /// "No mass, consolidation in the right lower lobe"; "Free of effusion, with emphysema"), so the comma ends the
  /// scope of a "before" cue.
  static let presenceWords = [
    "small", "mild", "mildly", "moderate", "minimal", "minimally", "slight", "slightly", "large", "severe",
    "marked", "prominent", "in", "with",
  ]
  /// Verbs of presence. After a comma they end a "before" cue's scope ("There are no signs of consolidation,
  /// pleural effusion is present"; "Without contrast, consolidation is seen") unless the cue is a "no" that opens
  /// the sentence's subject, whose predicate they then are ("No mass, nodule or infiltration was detected").
  static let presenceVerbs = [
    "is", "are", "was", "were", "present", "seen", "observed", "noted", "identified", "detected", "revealed",
    "evident", "visualized", "visualised", "there", "has", "have", "shows", "showed", "appears", "appear",
    "containing", "causing", "accompanied",
  ]
  /// Conjunctions that continue a list of findings ("No consolidation, atelectasis, or pleural effusion").
  static let listConjunctions = ["or", "and", "nor"]

  /// Compiles the schema's lexicons and the cues.
  /// - Throws: `ReportsError.invalidPattern` or `.invalidSchema`.
  public init(schema: LabelSchema, windowBefore: Int = 9, windowAfter: Int = 6) throws {
    try schema.validate()
    self.schema = schema
    self.windowBefore = windowBefore
    self.windowAfter = windowAfter

    var tokenIDs: [String: Int32] = [:]  // "word" or "word*"
    var children: [Int32] = Array(repeating: -1, count: Self.slots)
    var exactID: [Int32] = [-1]
    var prefixID: [Int32] = [-1]
    var punctuationID = [Int32](repeating: -1, count: 256)
    func tokenID(_ word: String, prefix: Bool) -> Int32 {
      let key = prefix ? word + "*" : word
      if let id = tokenIDs[key] { return id }
      let id = Int32(tokenIDs.count)
      tokenIDs[key] = id
      if LexiconPattern.punctuation.contains(word) {
        punctuationID[Int(word.utf8.first!)] = id
        return id
      }
      var node = 0
      for byte in word.utf8 {
        let slot = Self.slot(byte)
        if slot < 0 { continue }
        let childIndex = node * Self.slots + slot
        if children[childIndex] < 0 {
          children[childIndex] = Int32(exactID.count)
          children.append(contentsOf: repeatElement(-1, count: Self.slots))
          exactID.append(-1)
          prefixID.append(-1)
        }
        node = Int(children[childIndex])
      }
      if prefix { prefixID[node] = id } else { exactID[node] = id }
      return id
    }

    var patterns: [Compiled] = []
    func add(_ texts: [String], _ kind: Kind, finding: Int, source: String) throws {
      for text in texts {
        let pattern = try LexiconPattern.parse(text, source: source)
        let elements: [Int32] = pattern.elements.map {
          switch $0 {
          case .word(let w, let p): return tokenID(w, prefix: p)
          case .gap(let n, let strict): return Int32(strict ? -(100 + n) : -n)
          }
        }
        patterns.append(Compiled(elements: elements, kind: kind, finding: Int32(finding)))
      }
    }
    for (i, f) in schema.findings.enumerated() {
      let source = "\(schema.name) (\(f.key))"
      try add(f.synonyms, .mention, finding: i, source: source)
      try add(f.negatives, .negative, finding: i, source: source)
      try add(f.exclusions, .exclusion, finding: i, source: source)
    }
    let d = Self.defaultCues, s = schema.cues
    try add(d.negationBefore + s.negationBefore, .negationBefore, finding: -1, source: "cues")
    try add(d.negationAfter + s.negationAfter, .negationAfter, finding: -1, source: "cues")
    try add(d.uncertaintyBefore + s.uncertaintyBefore, .uncertaintyBefore, finding: -1, source: "cues")
    try add(d.uncertaintyAfter + s.uncertaintyAfter, .uncertaintyAfter, finding: -1, source: "cues")
    try add(d.pseudoCues + s.pseudoCues, .pseudo, finding: -1, source: "cues")
    try add(d.scopeBreaks + s.scopeBreaks, .scopeBreak, finding: -1, source: "cues")
    try add(Self.breaksBefore, .breakBefore, finding: -1, source: "cues")
    try add(Self.breaksAfter, .breakAfter, finding: -1, source: "cues")
    try add(Self.presenceWords, .presence, finding: -1, source: "cues")
    try add(Self.presenceVerbs, .presenceVerb, finding: -1, source: "cues")
    try add(Self.listConjunctions, .listConjunction, finding: -1, source: "cues")

    let conjunctions = ["and", "or", "with"].map { tokenID($0, prefix: false) }
    let noID = tokenID("no", prefix: false)
    var byFirst = [[Int32]](repeating: [], count: tokenIDs.count)
    for (i, p) in patterns.enumerated() { byFirst[Int(p.elements[0])].append(Int32(i)) }
    self.children = children
    self.exactID = exactID
    self.prefixID = prefixID
    self.punctuationID = punctuationID
    self.patterns = patterns
    self.byFirstToken = byFirst
    self.conjunctionIDs = conjunctions
    self.noID = noID
  }

  @inline(__always) static func slot(_ byte: UInt8) -> Int {
    switch byte {
    case 0x61...0x7A: return Int(byte - 0x61)
    case 0x41...0x5A: return Int(byte - 0x41)
    case 0x30...0x39: return 26 + Int(byte - 0x30)
    case 0x80...0xFF: return 36
    default: return -1
    }
  }

  /// A match inside one sentence, in token positions [start, end).
  struct Match {
    var start: Int32
    var end: Int32
    var kind: Kind
    var finding: Int32
  }

  /// Per-report scratch buffers (one per call; nothing is shared between threads).
  struct Scratch {
    var tokenIDStart: [Int32] = []  // offsets into ids, count = tokens + 1
    var ids: [Int32] = []
    var isWord: [Bool] = []
    var matches: [Match] = []
    init() {
      tokenIDStart.reserveCapacity(256)
      ids.reserveCapacity(512)
      isWord.reserveCapacity(256)
      matches.reserveCapacity(64)
    }
    mutating func reset() {
      tokenIDStart.removeAll(keepingCapacity: true)
      tokenIDStart.append(0)
      ids.removeAll(keepingCapacity: true)
      isWord.removeAll(keepingCapacity: true)
      matches.removeAll(keepingCapacity: true)
    }
  }

  /// Labels one report.
  /// - Returns: one label per schema finding, in schema order.
  public func label(_ text: String) -> [FindingLabel] {
    var state = [UInt8](repeating: 0, count: schema.findings.count)  // 0 none, 1 negated, 2 uncertain, 3 present
    var scratch = Scratch()
    scratch.reset()
    var text = text
    text.withUTF8 { bytes in
      let n = bytes.count
      var i = 0
      func flush() {
        if !scratch.isWord.isEmpty { self.labelSentence(&scratch, into: &state) }
        scratch.reset()
      }
      while i < n {
        let b = bytes[i]
        let s = Self.slot(b)
        if s >= 0 {
          // A token: walk the trie over its bytes.
          var node = 0
          var alive = true
          var j = i
          while j < n {
            let slot = Self.slot(bytes[j])
            if slot < 0 { break }
            if alive {
              let next = children[node * Self.slots + slot]
              if next < 0 {
                alive = false
              } else {
                node = Int(next)
                let p = prefixID[node]
                if p >= 0 { scratch.ids.append(p) }
              }
            }
            j += 1
          }
          if alive, exactID[node] >= 0 { scratch.ids.append(exactID[node]) }
          scratch.isWord.append(true)
          scratch.tokenIDStart.append(Int32(scratch.ids.count))
          i = j
          continue
        }
        switch b {
        case 0x2E:  // '.': a sentence end unless between digits (1.5 mm)
          let between = i > 0 && i + 1 < n && Self.slot(bytes[i - 1]) >= 26 && Self.slot(bytes[i - 1]) < 36
            && Self.slot(bytes[i + 1]) >= 26 && Self.slot(bytes[i + 1]) < 36
          if !between { flush() }
        case 0x21, 0x3B, 0x22, 0x0A, 0x0D:
          flush()
        case 0xE2 where i + 2 < n && bytes[i + 1] == 0x80 && [0xA2, 0x9C, 0x9D].contains(bytes[i + 2]):
          flush()  // • “ ”
          i += 2
        case 0x3F:  // '?': a token (uncertainty cue), then a sentence end
          let id = punctuationID[Int(b)]
          if id >= 0 { scratch.ids.append(id) }
          scratch.isWord.append(false)
          scratch.tokenIDStart.append(Int32(scratch.ids.count))
          flush()
        case 0x2C, 0x28, 0x29, 0x3A:
          let id = punctuationID[Int(b)]
          if id >= 0 { scratch.ids.append(id) }
          scratch.isWord.append(false)
          scratch.tokenIDStart.append(Int32(scratch.ids.count))
        default:
          break
        }
        i += 1
      }
      flush()
    }
    return state.map {
      switch $0 {
      case 3: return .present
      case 1: return .absent
      default: return .uncertain
      }
    }
  }

  @inline(__always) private func tokenMatches(_ scratch: Scratch, _ position: Int, _ id: Int32) -> Bool {
    var k = Int(scratch.tokenIDStart[position])
    let end = Int(scratch.tokenIDStart[position + 1])
    while k < end {
      if scratch.ids[k] == id { return true }
      k += 1
    }
    return false
  }

  /// The end (exclusive) of the shortest match of `pattern` from element `e` at token `position`, or -1.
  private func matchEnd(_ pattern: [Int32], _ e: Int, _ position: Int, _ scratch: Scratch) -> Int {
    if e == pattern.count { return position }
    let count = scratch.isWord.count
    let element = pattern[e]
    if element < 0 {
      let strict = element <= -100
      let limit = strict ? Int(-element) - 100 : Int(-element)
      var skip = 0
      var p = position
      while true {
        let end = matchEnd(pattern, e + 1, p, scratch)
        if end >= 0 { return end }
        if skip == limit || p >= count || !scratch.isWord[p] { return -1 }
        if strict && conjunctionIDs.contains(where: { tokenMatches(scratch, p, $0) }) { return -1 }
        skip += 1
        p += 1
      }
    }
    guard position < count, tokenMatches(scratch, position, element) else { return -1 }
    return matchEnd(pattern, e + 1, position + 1, scratch)
  }

  private func labelSentence(_ scratch: inout Scratch, into state: inout [UInt8]) {
    let count = scratch.isWord.count
    var hasMention = false
    for position in 0..<count {
      var k = Int(scratch.tokenIDStart[position])
      let end = Int(scratch.tokenIDStart[position + 1])
      while k < end {
        for p in byFirstToken[Int(scratch.ids[k])] {
          let compiled = patterns[Int(p)]
          let e = matchEnd(compiled.elements, 1, position + 1, scratch)
          if e >= 0 {
            scratch.matches.append(Match(start: Int32(position), end: Int32(e), kind: compiled.kind, finding: compiled.finding))
            if compiled.kind == .mention || compiled.kind == .negative { hasMention = true }
          }
        }
        k += 1
      }
    }
    guard hasMention else { return }
    let matches = scratch.matches
    @inline(__always) func overlaps(_ a: Match, _ b: Match) -> Bool { a.start < b.end && b.start < a.end }
    // Cues cancelled by pseudo-cues, and negation cues inside uncertainty cues.
    var active = [Bool](repeating: true, count: matches.count)
    for (i, m) in matches.enumerated() {
      switch m.kind {
      case .negationBefore, .negationAfter, .uncertaintyBefore, .uncertaintyAfter:
        for q in matches where q.kind == .pseudo && overlaps(q, m) { active[i] = false }
        if m.kind == .negationBefore || m.kind == .negationAfter {
          for q in matches where (q.kind == .uncertaintyAfter || q.kind == .uncertaintyBefore) && overlaps(q, m)
            && (q.end - q.start) > (m.end - m.start) { active[i] = false }
        }
      default: break
      }
    }
    // A comma ends a "before" cue's scope unless the clause after it (to the next punctuation mark) continues a
    // list of findings. The first telling word of the clause decides: a list conjunction ("or", "and", "nor")
    // continues the list; a word of presence ("small", "in", "with") ends it; a verb of presence ("is seen") ends
    // it unless the cue is a "no" opening the sentence's subject (then the verb is the whole list's predicate);
    // a clause with none of them continues the list.
    let isWord = scratch.isWord
    func commaEndsScope(_ comma: Int32, cue: Match) -> Bool {
      var end = Int(comma) + 1
      while end < count && isWord[end] { end += 1 }
      let clause = (comma + 1)..<Int32(end)
      var first: Match?
      for m in matches where (m.kind == .listConjunction || m.kind == .presence || m.kind == .presenceVerb)
        && clause.contains(m.start) && (first == nil || m.start < first!.start) { first = m }
      guard let first else { return false }
      switch first.kind {
      case .listConjunction: return false
      case .presence: return true
      default:
        let opensSubject = cue.kind == .negationBefore && tokenMatches(scratch, Int(cue.start), noID)
          && !matches.contains { ($0.kind == .breakBefore || $0.kind == .presenceVerb) && $0.start < cue.start }
        return !opensSubject
      }
    }
    func blocked(from: Int32, to: Int32, before: Bool, cue: Match) -> Bool {
      for m in matches where m.start >= from && m.start < to {
        if m.kind == .scopeBreak { return true }
        if before && m.kind == .breakBefore { return true }
        if before && m.kind == .breakAfter && commaEndsScope(m.start, cue: cue) { return true }
        if !before && m.kind == .breakAfter { return true }
      }
      return false
    }
    func scoped(_ mention: Match, before: Kind, after: Kind) -> Bool {
      for (i, c) in matches.enumerated() where active[i] {
        if c.kind == before, c.end <= mention.start, mention.start - c.end <= Int32(windowBefore),
          !blocked(from: c.end, to: mention.start, before: true, cue: c)
        { return true }
        if c.kind == after, c.start >= mention.end, c.start - mention.end <= Int32(windowAfter),
          !blocked(from: mention.end, to: c.start, before: false, cue: c)
        { return true }
      }
      return false
    }
    for m in matches where m.kind == .mention || m.kind == .negative {
      let f = Int(m.finding)
      if state[f] == 3 { continue }
      if m.kind == .negative {
        state[f] = max(state[f], 1)
        continue
      }
      if matches.contains(where: { $0.kind == .exclusion && $0.finding == m.finding && overlaps($0, m) }) {
        continue
      }
      let status: UInt8
      if scoped(m, before: .negationBefore, after: .negationAfter) {
        status = 1
      } else if scoped(m, before: .uncertaintyBefore, after: .uncertaintyAfter) {
        status = 2
      } else {
        status = 3
      }
      state[f] = max(state[f], status)
    }
  }
}
