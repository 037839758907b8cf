import Foundation
import Testing
@testable import Reports

/// The LLM labeler against a stand-in chat-completions server on 127.0.0.1 with scripted answers.
@Suite(.serialized) struct LLMLabelerTests {
  /// A three-finding schema keeps the scripted answers short.
  static let schema = LabelSchema(
    name: "test-3", modality: "chest CT",
    findings: [
      Finding(key: "a", displayName: "Alpha", prompt: "alpha", synonyms: ["alpha"]),
      Finding(key: "b", displayName: "Beta", prompt: "beta", synonyms: ["beta"]),
      Finding(key: "c", displayName: "Gamma", prompt: "gamma", synonyms: ["gamma"]),
    ])

  /// The correct answer for a report: a fixed function of its text.
  static func truth(_ text: String) -> [FindingLabel] {
    let h = text.utf8.reduce(0) { ($0 &* 31 &+ Int($1)) & 0xFFFF }
    return (0..<3).map { [FindingLabel.present, .absent, .uncertain][(h >> ($0 * 2)) % 3] }
  }
  static func answer(_ text: String) -> String { truth(text).map(\.text).joined(separator: ",") }

  static func options(_ server: StandInServer, cache: URL?) -> LLMOptions {
    var o = LLMOptions(baseURL: server.baseURL, model: "stand-in-model")
    o.apiKeyVariable = "GREENRFM_TEST_API_KEY_UNSET"
    o.concurrency = 4
    o.maxAttempts = 4
    o.timeoutSeconds = 0.5
    o.initialBackoffSeconds = 0.01
    o.maxBackoffSeconds = 0.05
    o.cacheURL = cache
    return o
  }

  @Test func promptAsksForExactlyNValuesAndParsingIsStrict() throws {
    let prompt = LLMPrompt(schema: Self.schema)
    #expect(prompt.system.contains("exactly one line of 3 comma-separated values from {1, 0, -1}"))
    #expect(prompt.system.contains("1. alpha\n2. beta\n3. gamma"))
    #expect(try prompt.parse("1,0,-1").get() == [.present, .absent, .uncertain])
    #expect(try prompt.parse(" 1, 0, \u{2212}1 \n").get() == [.present, .absent, .uncertain])
    #expect(try prompt.parse("`0,0,0`").get() == [.absent, .absent, .absent])
    for bad in ["1,0", "1,0,-1,1", "1,0,2", "yes,no,maybe", "", "1,0,-1\n1,0,-1", "1;0;-1", "1,0,"] {
      #expect((try? prompt.parse(bad).get()) == nil, "accepted '\(bad)'")
    }
  }

  @Test func cacheKeyDependsOnSchemaModelPromptVersionAndText() {
    let prompt = LLMPrompt(schema: Self.schema)
    let key = prompt.cacheKey(model: "m", text: "report")
    #expect(key.count == 64)
    #expect(key == prompt.cacheKey(model: "m", text: "report"))
    #expect(key != prompt.cacheKey(model: "m2", text: "report"))
    #expect(key != prompt.cacheKey(model: "m", text: "report "))
    var other = Self.schema
    other.version = 2
    #expect(key != LLMPrompt(schema: other).cacheKey(model: "m", text: "report"))
  }

  @Test func sha256MatchesTheStandardVectors() {
    #expect(SHA256.hex("".utf8) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
    #expect(SHA256.hex("abc".utf8) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
    #expect(SHA256.hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8)
      == "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
  }

  @Test func retriesReasksAndFailuresFollowTheScript() async throws {
    let server = try StandInServer { request in
      let text = request.report
      switch (text, request.attempt) {
      case ("429 report", 1): return .status(429, headers: ["Retry-After": "1"], body: "{\"error\":\"rate\"}")
      case ("500 report", 1), ("500 report", 2): return .status(500, headers: [:], body: "{}")
      case ("503 report", 1): return .status(503, headers: [:], body: "")
      case ("slow report", 1): return .delay(2.0, .answer(Self.answer(text)))
      case ("reset report", 1): return .reset
      case ("malformed report", 1): return .answer("1, 0")
      case ("always malformed report", _): return .answer("present, absent, unknown")
      default: return .answer(Self.answer(text))
      }
    }
    defer { server.stop() }
    let texts = ["ok report", "429 report", "500 report", "503 report", "slow report", "reset report", "malformed report",
                 "always malformed report"]
    let reports = texts.enumerated().map { Report(id: "r\($0.offset)", text: $0.element) }
    let labeler = try LLMLabeler(schema: Self.schema, options: Self.options(server, cache: nil))
    let start = Date()
    let outcome = try await labeler.label(reports)
    let elapsed = Date().timeIntervalSince(start)

    for (i, text) in texts.enumerated() where text != "always malformed report" {
      #expect(outcome.labels[i] == Self.truth(text), "\(text)")
    }
    #expect(outcome.labels[7] == nil)
    #expect(outcome.failures.map(\.id) == ["r7"])
    #expect(outcome.failures.first?.reason.contains("malformed answer after a re-ask") == true)
    // Retries: 429 ×1, 500 ×2, 503 ×1, slow (time-out) ×1, reset ×1.
    #expect(outcome.statistics.retries == 6)
    #expect(outcome.statistics.reasks == 1)  // counted for labelled reports; the failed one re-asked too (2 requests)
    #expect(outcome.statistics.failed == 1)
    let requests = server.requests
    func count(_ t: String) -> Int { requests.filter { $0.report == t }.count }
    #expect(count("ok report") == 1)
    #expect(count("429 report") == 2)
    #expect(count("500 report") == 3)
    #expect(count("503 report") == 2)
    #expect(count("slow report") == 2)
    #expect(count("reset report") == 2)
    #expect(count("malformed report") == 2)
    #expect(count("always malformed report") == 2)
    // Retry-After: 1 s was honoured although the back-off alone would be about 10 ms.
    #expect(elapsed >= 1.0)
    // The re-ask carries the malformed answer and the correction.
    let reask = try #require(requests.last { $0.report == "malformed report" })
    #expect(reask.messages.count == 4)
    #expect(reask.messages[2].role == "assistant" && reask.messages[2].content == "1, 0")
    #expect(reask.messages[3].content.contains("exactly one line of 3 comma-separated values"))
    // No key variable set: no Authorization header.
    #expect(requests.allSatisfy { $0.authorization == nil })
  }

  @Test func givesUpAfterMaxAttemptsAndReportsTheFailure() async throws {
    let server = try StandInServer { _ in .status(500, headers: [:], body: "") }
    defer { server.stop() }
    var options = Self.options(server, cache: nil)
    options.maxAttempts = 3
    let labeler = try LLMLabeler(schema: Self.schema, options: options)
    let outcome = try await labeler.label([Report(id: "x1", text: "anything")])
    #expect(outcome.labels == [nil])
    #expect(outcome.failures.count == 1)
    #expect(outcome.failures[0].reason.contains("gave up after 3 attempts"))
    #expect(server.requests.count == 3)
  }

  @Test func secondRunMakesNoRequestBecauseOfTheCache() async throws {
    let dir = try temporaryDirectory()
    defer { try? FileManager.default.removeItem(at: dir) }
    let cache = dir.appendingPathComponent("cache.jsonl")
    let server = try StandInServer { .answer(Self.answer($0.report)) }
    defer { server.stop() }
    let reports = (0..<25).map { Report(id: "id\($0)", text: "report number \($0)") }
    let first = try await LLMLabeler(schema: Self.schema, options: Self.options(server, cache: cache)).label(reports)
    #expect(first.statistics.cached == 0)
    #expect(server.requests.count == 25)
    let second = try await LLMLabeler(schema: Self.schema, options: Self.options(server, cache: cache)).label(reports)
    #expect(server.requests.count == 25, "the second run sent requests")
    #expect(second.statistics.cached == 25)
    #expect(second.statistics.requests == 0)
    #expect(second.labels.map { $0! } == reports.map { Self.truth($0.text) })
    // The cache holds hashes and labels only, never report text.
    let contents = try String(contentsOf: cache, encoding: .utf8)
    #expect(!contents.contains("report number"))
    #expect(contents.split(separator: "\n").count == 25)
    // A different model is a different cache key.
    var other = Self.options(server, cache: cache)
    other.model = "another-model"
    let dry = try await LLMLabeler(schema: Self.schema, options: other).dryRun(reports)
    #expect(dry.cached == 0 && dry.reports == 25 && dry.promptTokens > 0)
    let drySame = try await LLMLabeler(schema: Self.schema, options: Self.options(server, cache: cache)).dryRun(reports)
    #expect(drySame.cached == 25 && drySame.promptTokens == 0)
    #expect(server.requests.count == 25, "a dry run sent requests")
  }

  @Test func aRunStoppedHalfWayAndRestartedLosesNoFinishedReport() async throws {
    let dir = try temporaryDirectory()
    defer { try? FileManager.default.removeItem(at: dir) }
    let cache = dir.appendingPathComponent("cache.jsonl")
    let server = try StandInServer { .delay(0.03, .answer(Self.answer($0.report))) }
    defer { server.stop() }
    let reports = (0..<60).map { Report(id: "id\($0)", text: "finding list \($0)") }
    let options = Self.options(server, cache: cache)
    let run = Task { try await LLMLabeler(schema: Self.schema, options: options).label(reports) }
    // Wait until 20 answers are stored in the cache (an answer sent by the server is not yet a stored one).
    func storedLines() -> Int {
      ((try? String(contentsOf: cache, encoding: .utf8)) ?? "").split(separator: "\n").count
    }
    while storedLines() < 20 { try await Task.sleep(nanoseconds: 5_000_000) }
    run.cancel()
    _ = try? await run.value
    // A kill in the middle of an append leaves a torn last line.
    let handle = try FileHandle(forWritingTo: cache)
    try handle.seekToEnd()
    try handle.write(contentsOf: Data("{\"key\":\"deadbeef\",\"lab".utf8))
    try handle.close()

    let prompt = LLMPrompt(schema: Self.schema)
    let stored = try LabelCache(url: cache, findingCount: 3)
    let storedCount = await stored.count
    #expect(storedCount >= 20 && storedCount < 60, "stored \(storedCount)")
    var cachedTexts = Set<String>()
    for r in reports where await stored.labels(forKey: prompt.cacheKey(model: options.model, text: r.text)) != nil {
      cachedTexts.insert(r.text)
    }
    let before = server.requests.count
    let restarted = try await LLMLabeler(schema: Self.schema, options: options).label(reports)
    let asked = server.requests.dropFirst(before).map(\.report)
    #expect(restarted.statistics.cached == storedCount)
    #expect(asked.count == 60 - storedCount)
    #expect(Set(asked).isDisjoint(with: cachedTexts), "a finished report was asked again")
    #expect(restarted.failures.isEmpty)
    #expect(restarted.labels.map { $0! } == reports.map { Self.truth($0.text) })
    // The torn line did not corrupt the lines appended after it.
    let reloaded = try LabelCache(url: cache, findingCount: 3)
    #expect(await reloaded.count == 60)
  }

  @Test func theAPIKeyComesFromTheNamedEnvironmentVariable() async throws {
    let server = try StandInServer { .answer(Self.answer($0.report)) }
    defer { server.stop() }
    setenv("GREENRFM_TEST_API_KEY", "sk-test-123", 1)
    defer { unsetenv("GREENRFM_TEST_API_KEY") }
    var options = Self.options(server, cache: nil)
    options.apiKeyVariable = "GREENRFM_TEST_API_KEY"
    let outcome = try await LLMLabeler(schema: Self.schema, options: options).label([Report(id: "k", text: "key test")])
    #expect(outcome.labels == [Self.truth("key test")])
    #expect(server.requests.map(\.authorization) == ["Bearer sk-test-123"])
  }

  @Test func optionsAreValidated() {
    #expect(throws: ReportsError.self) { try LLMOptions(baseURL: "ftp://x", model: "m").validate() }
    #expect(throws: ReportsError.self) { try LLMOptions(baseURL: "http://127.0.0.1:1", model: "").validate() }
    var o = LLMOptions(baseURL: "http://127.0.0.1:1", model: "m")
    o.concurrency = 0
    #expect(throws: ReportsError.self) { try o.validate() }
    #expect(LLMOptions(baseURL: "http://h:1/v1/", model: "m").endpoint == "http://h:1/v1/chat/completions")
    #expect(LLMOptions(baseURL: "http://h:1", model: "m").endpoint == "http://h:1/v1/chat/completions")
  }
}
