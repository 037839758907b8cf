import Foundation
import Logging
import Testing
@testable import Reports

/// The LLM labeler stops a run that cannot succeed (a rejected key, an unreachable server), fails fast on a
/// refused connection, validates its ranges, and keeps report ids out of info-level logs.
@Suite(.serialized) struct LLMAbortAndLoggingTests {
  static let schema = LLMLabelerTests.schema
  static let unsetKey = "GREENRFM_TEST_API_KEY_UNSET"

  /// Collects log messages at `.debug` and above.
  final class Capture: @unchecked Sendable {
    private let lock = NSLock()
    private var entries: [(level: Logger.Level, message: String)] = []
    func append(_ level: Logger.Level, _ message: String) { lock.withLock { entries.append((level, message)) } }
    var all: [(level: Logger.Level, message: String)] { lock.withLock { entries } }
    var logger: Logger { Logger(label: "test") { _ in Handler(capture: self) } }

    struct Handler: LogHandler {
      let capture: Capture
      var logLevel: Logger.Level = .debug
      var metadata: Logger.Metadata = [:]
      subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
      }
      func log(level: Logger.Level, message: Logger.Message, metadata: Logger.Metadata?, source: String, file: String,
               function: String, line: UInt) {
        capture.append(level, message.description)
      }
    }
  }

  static func refusedBaseURL() throws -> String {
    // A port that was bound and is closed again: connections to it are refused.
    let server = try StandInServer { _ in .answer("") }
    let url = server.baseURL
    server.stop()
    return url
  }

  @Test(arguments: [401, 403]) func aRejectedKeyAbortsTheWholeRun(_ code: Int) async throws {
    let server = try StandInServer { _ in .status(code, headers: [:], body: "{\"error\":\"invalid key\"}") }
    defer { server.stop() }
    setenv("GREENRFM_TEST_API_KEY_ABORT", "sk-secret-abc", 1)
    defer { unsetenv("GREENRFM_TEST_API_KEY_ABORT") }
    var options = LLMLabelerTests.options(server, cache: nil)
    options.apiKeyVariable = "GREENRFM_TEST_API_KEY_ABORT"
    let reports = (0..<40).map { Report(id: "k\($0)", text: "report \($0)") }
    let capture = Capture()
    let labeler = try LLMLabeler(schema: Self.schema, options: options, logger: capture.logger)
    do {
      _ = try await labeler.label(reports)
      Issue.record("expected the run to abort")
    } catch ReportsError.llmAborted(let reason) {
      #expect(reason.contains("HTTP \(code)"))
      #expect(reason.contains("GREENRFM_TEST_API_KEY_ABORT"))
      #expect(!reason.contains("sk-secret-abc"))
      #expect(ReportsError.llmAborted(reason: reason).description.hasPrefix("LLM labelling stopped"))
    }
    // Stopped at once: no more than the requests already in flight, not one per report.
    #expect(server.requests.count <= options.concurrency)
    #expect(!capture.all.contains { $0.message.contains("sk-secret-abc") })
  }

  @Test func aRefusedConnectionFailsAtOnceInsteadOfWaitingForTheTimeout() async throws {
    var options = LLMOptions(baseURL: try Self.refusedBaseURL(), model: "m")
    options.apiKeyVariable = Self.unsetKey
    options.concurrency = 2
    options.maxAttempts = 3
    options.timeoutSeconds = 20
    options.initialBackoffSeconds = 0.01
    options.maxBackoffSeconds = 0.05
    let start = Date()
    let outcome = try await LLMLabeler(schema: Self.schema, options: options)
      .label([Report(id: "a", text: "one"), Report(id: "b", text: "two")])
    let elapsed = Date().timeIntervalSince(start)
    #expect(outcome.labels == [nil, nil])
    #expect(outcome.failures.count == 2)
    #expect(outcome.failures.allSatisfy { $0.reason.contains("gave up after 3 attempts") })
    // 6 refused attempts; waiting for the 20 s time-out on each would take minutes.
    #expect(elapsed < 10, "elapsed \(elapsed) s")
  }

  @Test func consecutiveTransportFailuresAbortTheRun() async throws {
    var options = LLMOptions(baseURL: try Self.refusedBaseURL(), model: "m")
    options.apiKeyVariable = Self.unsetKey
    options.concurrency = 4
    options.maxAttempts = 3
    options.timeoutSeconds = 20
    options.initialBackoffSeconds = 0.01
    options.maxBackoffSeconds = 0.05
    options.maxConsecutiveTransportFailures = 10
    let reports = (0..<200).map { Report(id: "r\($0)", text: "report \($0)") }
    let start = Date()
    do {
      _ = try await LLMLabeler(schema: Self.schema, options: options).label(reports)
      Issue.record("expected the run to abort")
    } catch ReportsError.llmAborted(let reason) {
      #expect(reason.contains("10 transport failures in a row"))
    }
    #expect(Date().timeIntervalSince(start) < 10)
  }

  @Test func outOfRangeOptionsAreRejected() {
    for timeout in [1e20, Double.infinity, Double.nan, 0, -1, LLMOptions.maxTimeoutSeconds + 1] {
      var o = LLMOptions(baseURL: "http://127.0.0.1:1", model: "m")
      o.timeoutSeconds = timeout
      #expect(throws: ReportsError.self, "timeout \(timeout)") { try o.validate() }
    }
    var o = LLMOptions(baseURL: "http://127.0.0.1:1", model: "m")
    o.initialBackoffSeconds = 1e20
    #expect(throws: ReportsError.self) { try o.validate() }
    o = LLMOptions(baseURL: "http://127.0.0.1:1", model: "m")
    o.maxAttempts = 1_000_000
    #expect(throws: ReportsError.self) { try o.validate() }
    o = LLMOptions(baseURL: "http://127.0.0.1:1", model: "m")
    o.maxConsecutiveTransportFailures = 0
    #expect(throws: ReportsError.self) { try o.validate() }
    o = LLMOptions(baseURL: "http://127.0.0.1:1", model: "m")
    o.timeoutSeconds = LLMOptions.maxTimeoutSeconds
    #expect(throws: Never.self) { try o.validate() }
  }

  @Test func infoLogsCarryNoReportIdsAndAnUnsetKeyIsWarnedOnce() async throws {
    let server = try StandInServer { request in
      switch (request.report, request.attempt) {
      case ("retry me", 1): return .status(500, headers: [:], body: "")
      case ("malformed", _): return .answer("nonsense")
      default: return .answer(LLMLabelerTests.answer(request.report))
      }
    }
    defer { server.stop() }
    let reports = [Report(id: "ACC-0001", text: "retry me"), Report(id: "ACC-0002", text: "malformed"),
                   Report(id: "ACC-0003", text: "fine")]
    let capture = Capture()
    let outcome = try await LLMLabeler(schema: Self.schema, options: LLMLabelerTests.options(server, cache: nil),
                                       logger: capture.logger).label(reports)
    #expect(outcome.failures.map(\.id) == ["ACC-0002"])
    let entries = capture.all
    for e in entries where e.level >= .info {
      #expect(!e.message.contains("ACC-"), "\(e.level): \(e.message)")
      #expect(!e.message.contains("retry me") && !e.message.contains("malformed report"))
    }
    // Ids may appear at debug level.
    #expect(entries.contains { $0.level == .debug && $0.message.contains("ACC-0002") })
    let warnings = entries.filter { $0.level == .warning && $0.message.contains(Self.unsetKey) }
    #expect(warnings.count == 1)
  }
}
