import AsyncHTTPClient
import Foundation
import Logging

/// Options of the LLM labeler (an OpenAI-compatible `POST /v1/chat/completions` endpoint).
public struct LLMOptions: Sendable, Equatable {
  /// The server root (`http://127.0.0.1:8000`) or its `/v1` (`https://api.example.com/v1`).
  public var baseURL: String
  public var model: String
  /// The environment variable that holds the API key (never a command-line value). Unset: no Authorization header.
  public var apiKeyVariable: String = "OPENAI_API_KEY"
  /// Requests in flight at once (the authors' client used 24).
  public var concurrency: Int = 16
  /// Attempts per request, the first included (429, 5xx, time-outs and connection errors are retried).
  public var maxAttempts: Int = 6
  /// Seconds one request may take, head and body.
  public var timeoutSeconds: Double = 60
  /// The first back-off in seconds; attempt n waits `initialBackoffSeconds * 2^(n-1)` times a jitter in [0.5, 1].
  public var initialBackoffSeconds: Double = 1
  /// The longest back-off, in seconds (a server's `Retry-After` may ask for more, up to `maxRetryAfterSeconds`).
  public var maxBackoffSeconds: Double = 30
  /// The longest `Retry-After` honoured, in seconds.
  public var maxRetryAfterSeconds: Double = 120
  public var temperature: Double = 0
  /// Answer token limit.
  public var maxTokens: Int = 256
  /// The JSONL cache file; nil: no cache.
  public var cacheURL: URL?
  /// Transport failures (refused or reset connections, time-outs) in a row, across all reports, after which the
  /// whole run stops with `ReportsError.llmAborted` instead of grinding through every report.
  public var maxConsecutiveTransportFailures: Int = 20

  public init(baseURL: String, model: String) {
    self.baseURL = baseURL
    self.model = model
  }

  /// Checks ranges. - Throws: `ReportsError.invalidOption`.
  public func validate() throws {
    guard let url = URL(string: baseURL), let scheme = url.scheme, ["http", "https"].contains(scheme), url.host != nil else {
      throw ReportsError.invalidOption("--base-url must be an http(s) URL, got '\(baseURL)'")
    }
    if model.isEmpty { throw ReportsError.invalidOption("--model is empty") }
    if concurrency < 1 { throw ReportsError.invalidOption("--concurrency must be at least 1") }
    if maxAttempts < 1 { throw ReportsError.invalidOption("--max-attempts must be at least 1") }
    if concurrency > 1024 { throw ReportsError.invalidOption("--concurrency must be at most 1024") }
    if maxAttempts > 100 { throw ReportsError.invalidOption("--max-attempts must be at most 100") }
    if !(timeoutSeconds > 0 && timeoutSeconds <= Self.maxTimeoutSeconds) {
      throw ReportsError.invalidOption("--timeout must be more than 0 and at most \(Int(Self.maxTimeoutSeconds)) seconds")
    }
    if !(initialBackoffSeconds >= 0 && initialBackoffSeconds <= 3600) {
      throw ReportsError.invalidOption("--initial-backoff must be between 0 and 3600 seconds")
    }
    if !(maxBackoffSeconds >= 0 && maxBackoffSeconds <= 3600) || !(maxRetryAfterSeconds >= 0 && maxRetryAfterSeconds <= 3600) {
      throw ReportsError.invalidOption("back-off limits must be between 0 and 3600 seconds")
    }
    if maxTokens < 1 { throw ReportsError.invalidOption("the answer token limit must be at least 1") }
    if maxConsecutiveTransportFailures < 1 {
      throw ReportsError.invalidOption("the consecutive transport failure limit must be at least 1")
    }
  }

  /// The longest `--timeout` accepted (one day): larger values would overflow the client's nanosecond time-outs.
  public static let maxTimeoutSeconds: Double = 86_400

  /// The chat-completions URL.
  public var endpoint: String {
    var base = baseURL
    while base.hasSuffix("/") { base.removeLast() }
    return base.hasSuffix("/v1") ? base + "/chat/completions" : base + "/v1/chat/completions"
  }
}

/// The prompt and the strict answer format of the LLM labeler.
///
/// Paper: GreenRFM MUST "More distilled": one line of N comma-separated values, one per finding in a fixed order,
/// 1 explicitly present, 0 explicitly absent or ruled out, −1 ambiguous, uncertain or not mentioned; an answer
/// without exactly N values from {1, 0, −1} is rejected.
public struct LLMPrompt: Sendable {
  /// Bumped whenever the wording changes (part of the cache key).
  public static let version = "greenrfm-distill-v1"
  public let schema: LabelSchema

  public init(schema: LabelSchema) { self.schema = schema }

  /// The system message: the task, the findings in order, the answer format.
  public var system: String {
    let n = schema.findings.count
    var s = """
      You label \(schema.modality) radiology reports. For each of the \(n) findings below, in this order, give one value:
      1 if the finding is explicitly present, 0 if it is explicitly absent or ruled out, -1 if it is uncertain, \
      ambiguous or not mentioned.

      Findings:

      """
    for (i, f) in schema.findings.enumerated() { s += "\(i + 1). \(f.prompt)\n" }
    s += "\nAnswer with exactly one line of \(n) comma-separated values from {1, 0, -1}, in the order above, and nothing else."
    return s
  }

  /// The message asking again after a malformed answer.
  public func reask(reason: String) -> String {
    "Your answer was not valid (\(reason)). Reply with exactly one line of \(schema.findings.count) comma-separated "
      + "values from {1, 0, -1}, in the order of the findings, and nothing else."
  }

  /// Parses an answer strictly: after trimming white space (and one pair of surrounding backticks), exactly N
  /// comma-separated values, each `1`, `0` or `-1` (the minus sign `−` is accepted).
  /// - Returns: the labels, or the reason the answer is malformed.
  public func parse(_ answer: String) -> Result<[FindingLabel], MalformedAnswer> {
    var text = answer.trimmingCharacters(in: .whitespacesAndNewlines)
    if text.hasPrefix("```") && text.hasSuffix("```") && text.count >= 6 {
      text = String(text.dropFirst(3).dropLast(3)).trimmingCharacters(in: .whitespacesAndNewlines)
    } else if text.hasPrefix("`") && text.hasSuffix("`") && text.count >= 2 {
      text = String(text.dropFirst().dropLast()).trimmingCharacters(in: .whitespacesAndNewlines)
    }
    if text.contains("\n") { return .failure(MalformedAnswer(reason: "more than one line")) }
    let parts = text.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
    guard parts.count == schema.findings.count else {
      return .failure(MalformedAnswer(reason: "\(parts.count) values where \(schema.findings.count) were asked for"))
    }
    var labels: [FindingLabel] = []
    for (i, p) in parts.enumerated() {
      let normalized = p.replacingOccurrences(of: "\u{2212}", with: "-")
      guard ["1", "0", "-1"].contains(normalized), let l = FindingLabel(text: normalized) else {
        return .failure(MalformedAnswer(reason: "value \(i + 1) is not 1, 0 or -1"))
      }
      labels.append(l)
    }
    return .success(labels)
  }

  /// The cache key: SHA-256 of the schema (name, version, findings' keys and prompts), the model, the prompt version
  /// and the report text.
  public func cacheKey(model: String, text: String) -> String {
    var material = "greenrfm-distill-cache\n\(schema.name)@\(schema.version)\n"
    for f in schema.findings { material += "\(f.key)=\(f.prompt)\n" }
    material += "\(model)\n\(Self.version)\n\(text)"
    return SHA256.hex(material.utf8)
  }

  /// A rough token estimate (4 characters a token) of one request and its answer.
  public func estimatedTokens(text: String) -> (prompt: Int, completion: Int) {
    ((system.utf8.count + text.utf8.count) / 4 + 16, 2 * schema.findings.count + 4)
  }
}

public struct MalformedAnswer: Error, Equatable, Sendable {
  public var reason: String
}

/// The per-report LLM cache: a JSONL file, one `{"key": …, "labels": [...]}` line per finished report.
///
/// Each line is appended with one `write(2)` on a file opened with `O_APPEND` and then `fsync`ed, so a crash or a
/// kill loses at most the line being written; a torn last line is ignored on the next load (and a new line starts
/// on a fresh line). No report text is stored, only its hash.
public actor LabelCache {
  public let url: URL
  private var entries: [String: [FindingLabel]] = [:]
  private var fd: Int32 = -1
  private var needsNewline = false
  private let findingCount: Int

  /// Opens (creating if needed, unless `readOnly`) and loads the cache.
  /// - Throws: `ReportsError.unreadableFile` / `.unwritableFile`.
  public init(url: URL, findingCount: Int, readOnly: Bool = false) throws {
    self.url = url
    self.findingCount = findingCount
    if !readOnly {
      try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
    }
    if FileManager.default.fileExists(atPath: url.path) {
      let data: Data
      do { data = try Data(contentsOf: url) } catch {
        throw ReportsError.unreadableFile(path: url.path, reason: error.localizedDescription)
      }
      needsNewline = !(data.isEmpty || data.last == 0x0A)
      for line in data.split(separator: 0x0A) {
        guard let object = try? JSONSerialization.jsonObject(with: Data(line)) as? [String: Any],
          let key = object["key"] as? String, let values = object["labels"] as? [Int], values.count == findingCount
        else { continue }  // a torn or foreign line
        let labels = values.compactMap { FindingLabel(rawValue: Int8(clamping: $0)) }
        if labels.count == findingCount { entries[key] = labels }
      }
    }
    if readOnly { return }
    fd = open(url.path, O_WRONLY | O_APPEND | O_CREAT, 0o644)
    if fd < 0 { throw ReportsError.unwritableFile(path: url.path, reason: String(cString: strerror(errno))) }
  }

  deinit { if fd >= 0 { close(fd) } }

  public var count: Int { entries.count }
  public func labels(forKey key: String) -> [FindingLabel]? { entries[key] }

  /// Appends one finished report (durable when this returns).
  /// - Throws: `ReportsError.unwritableFile`.
  public func store(key: String, labels: [FindingLabel]) throws {
    guard fd >= 0 else { throw ReportsError.unwritableFile(path: url.path, reason: "the cache was opened read-only") }
    entries[key] = labels
    var line = needsNewline ? "\n" : ""
    needsNewline = false
    line += "{\"key\":\"\(key)\",\"labels\":[\(labels.map(\.text).joined(separator: ","))]}\n"
    let bytes = Array(line.utf8)
    let written = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
    if written != bytes.count { throw ReportsError.unwritableFile(path: url.path, reason: String(cString: strerror(errno))) }
    _ = fsync(fd)
  }
}

/// Transport failures in a row across one run (reset by any HTTP response).
final class TransportFailureStreak: @unchecked Sendable {
  private let lock = NSLock()
  private var count = 0
  /// Records a failure; returns the streak length.
  func fail() -> Int { lock.withLock { count += 1; return count } }
  func reset() { lock.withLock { count = 0 } }
}

/// Labels reports with an LLM over an OpenAI-compatible chat-completions endpoint.
///
/// Per report: the cache is consulted first; otherwise one request (retried with exponential back-off and jitter on
/// 429 — honouring `Retry-After` —, 5xx, time-outs and connection errors), the answer is parsed strictly, and a
/// malformed answer is asked again once. Finished reports are appended to the cache at once. Reports that still
/// fail are returned as failures (the batch goes on), except that a 401/403 (a bad key fails every report) or
/// `maxConsecutiveTransportFailures` transport failures in a row abort the whole run with `ReportsError.llmAborted`.
/// No report text is logged; info-level logs carry counts only (report ids go to debug level and the failures).
public final class LLMLabeler: Sendable {
  public let schema: LabelSchema
  public let options: LLMOptions
  public let prompt: LLMPrompt
  private let logger: Logger

  /// Statistics of one run.
  public struct Statistics: Sendable, Equatable {
    public var cached = 0
    public var requests = 0
    public var retries = 0
    public var reasks = 0
    public var failed = 0
  }

  /// The outcome per report.
  public struct Outcome: Sendable {
    /// Labels per report index; nil where the report failed.
    public var labels: [[FindingLabel]?]
    /// (report id, reason) for every failure.
    public var failures: [(id: String, reason: String)]
    public var statistics: Statistics
  }

  public init(schema: LabelSchema, options: LLMOptions, logger: Logger = Logger(label: "greenrfm.distill.llm")) throws {
    try options.validate()
    self.schema = schema
    self.options = options
    self.prompt = LLMPrompt(schema: schema)
    self.logger = logger
  }

  /// Counts reports, those already cached, and estimates tokens for the rest, without any request.
  public func dryRun(_ reports: [Report]) async throws -> (reports: Int, cached: Int, promptTokens: Int, completionTokens: Int) {
    let cache = try options.cacheURL.map { try LabelCache(url: $0, findingCount: schema.findings.count, readOnly: true) }
    var cached = 0, promptTokens = 0, completionTokens = 0
    for r in reports {
      if let cache, await cache.labels(forKey: prompt.cacheKey(model: options.model, text: r.text)) != nil {
        cached += 1
        continue
      }
      let t = prompt.estimatedTokens(text: r.text)
      promptTokens += t.prompt
      completionTokens += t.completion
    }
    return (reports.count, cached, promptTokens, completionTokens)
  }

  /// Labels every report.
  /// - Parameter progress: called with the number of reports finished (cached, labelled or failed).
  public func label(_ reports: [Report], progress: (@Sendable (Int) -> Void)? = nil) async throws -> Outcome {
    let cache = try options.cacheURL.map { try LabelCache(url: $0, findingCount: schema.findings.count) }
    var labels = [[FindingLabel]?](repeating: nil, count: reports.count)
    var failures: [(String, String)] = []
    var stats = Statistics()
    var pending: [Int] = []
    for (i, r) in reports.enumerated() {
      if let cache, let hit = await cache.labels(forKey: prompt.cacheKey(model: options.model, text: r.text)) {
        labels[i] = hit
        stats.cached += 1
      } else {
        pending.append(i)
      }
    }
    var finished = stats.cached
    progress?(finished)
    if pending.isEmpty { return Outcome(labels: labels, failures: [], statistics: stats) }

    let apiKey = ProcessInfo.processInfo.environment[options.apiKeyVariable].flatMap { $0.isEmpty ? nil : $0 }
    if apiKey == nil {
      logger.warning("environment variable \(options.apiKeyVariable) is unset or empty: requests carry no Authorization header")
    }
    try options.validate()
    var configuration = HTTPClient.Configuration()
    configuration.timeout = .init(connect: .seconds(Int64(max(1, options.timeoutSeconds.rounded(.up)))),
                                  read: .milliseconds(Int64(options.timeoutSeconds * 1000)))
    configuration.connectionPool = .init(idleTimeout: .seconds(60), concurrentHTTP1ConnectionsPerHostSoftLimit: options.concurrency)
    // A refused connection fails at once and is retried by our own back-off (the client's default would retry
    // connecting until the whole time-out has passed).
    configuration.connectionPool.retryConnectionEstablishment = false
    let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    let streak = TransportFailureStreak()
    do {
      try await withThrowingTaskGroup(of: (Int, Result<([FindingLabel], Statistics), ReportsError>).self) { group in
        var next = 0
        func launch() {
          let index = pending[next]
          next += 1
          let report = reports[index]
          group.addTask {
            do {
              let (result, s) = try await self.labelOne(report, client: client, apiKey: apiKey, streak: streak)
              if let cache { try await cache.store(key: self.prompt.cacheKey(model: self.options.model, text: report.text), labels: result) }
              return (index, .success((result, s)))
            } catch let error as ReportsError {
              if case .llmAborted = error { throw error }
              return (index, .failure(error))
            } catch is CancellationError {
              throw CancellationError()
            } catch {
              return (index, .failure(.llmFailure(reportID: report.id, reason: "\(error)")))
            }
          }
        }
        while next < pending.count && next < options.concurrency { launch() }
        while let (index, result) = try await group.next() {
          switch result {
          case .success(let (l, s)):
            labels[index] = l
            stats.requests += s.requests
            stats.retries += s.retries
            stats.reasks += s.reasks
          case .failure(let error):
            stats.failed += 1
            let reason: String
            if case .llmFailure(_, let r) = error { reason = r } else { reason = error.description }
            failures.append((reports[index].id, reason))
            logger.debug("report \(reports[index].id): \(reason)")
          }
          finished += 1
          progress?(finished)
          if next < pending.count { launch() }
        }
      }
    } catch {
      try? await client.shutdown()
      throw error
    }
    try await client.shutdown()
    return Outcome(labels: labels, failures: failures, statistics: stats)
  }

  enum AttemptError: Error {
    case retryable(String, retryAfterSeconds: Double?)
    case fatal(String)
    /// Fails every report: stop the run.
    case abort(String)
  }

  /// One report: a request, its retries, and at most one re-ask.
  func labelOne(_ report: Report, client: HTTPClient, apiKey: String?,
                streak: TransportFailureStreak = TransportFailureStreak()) async throws -> ([FindingLabel], Statistics) {
    var stats = Statistics()
    var messages: [[String: String]] = [["role": "system", "content": prompt.system], ["role": "user", "content": report.text]]
    for round in 0..<2 {
      let answer = try await complete(messages, reportID: report.id, client: client, apiKey: apiKey, streak: streak,
                                      stats: &stats)
      switch prompt.parse(answer) {
      case .success(let labels):
        return (labels, stats)
      case .failure(let malformed):
        if round == 1 {
          throw ReportsError.llmFailure(reportID: report.id, reason: "malformed answer after a re-ask (\(malformed.reason))")
        }
        logger.debug("report \(report.id): malformed answer (\(malformed.reason)); asking again")
        stats.reasks += 1
        messages.append(["role": "assistant", "content": answer])
        messages.append(["role": "user", "content": prompt.reask(reason: malformed.reason)])
      }
    }
    throw ReportsError.llmFailure(reportID: report.id, reason: "unreachable")
  }

  /// Sends one chat completion with retries; returns the assistant's content.
  func complete(_ messages: [[String: String]], reportID: String, client: HTTPClient, apiKey: String?,
                streak: TransportFailureStreak = TransportFailureStreak(), stats: inout Statistics) async throws -> String {
    let body: [String: Any] = [
      "model": options.model, "messages": messages, "temperature": options.temperature, "max_tokens": options.maxTokens,
    ]
    let bodyData = try JSONSerialization.data(withJSONObject: body, options: [.sortedKeys])
    var lastReason = ""
    for attempt in 1...options.maxAttempts {
      try Task.checkCancellation()
      stats.requests += 1
      do {
        return try await attemptOnce(bodyData, client: client, apiKey: apiKey, streak: streak)
      } catch AttemptError.abort(let reason) {
        throw ReportsError.llmAborted(reason: reason)
      } catch AttemptError.fatal(let reason) {
        throw ReportsError.llmFailure(reportID: reportID, reason: reason)
      } catch AttemptError.retryable(let reason, let retryAfter) {
        lastReason = reason
        guard attempt < options.maxAttempts else { break }
        stats.retries += 1
        let delay = backoff(attempt: attempt, retryAfter: retryAfter)
        logger.debug("report \(reportID): \(reason); retry \(attempt) in \(String(format: "%.2f", delay)) s")
        try await Task.sleep(nanoseconds: UInt64(delay * 1e9))
      }
    }
    throw ReportsError.llmFailure(reportID: reportID, reason: "gave up after \(options.maxAttempts) attempts (last: \(lastReason))")
  }

  /// Exponential back-off with jitter: `initial * 2^(attempt-1)`, capped, times a uniform factor in [0.5, 1];
  /// a server's `Retry-After` (seconds) is a lower bound.
  func backoff(attempt: Int, retryAfter: Double?) -> Double {
    let exponential = min(options.maxBackoffSeconds, options.initialBackoffSeconds * pow(2, Double(attempt - 1)))
    let jittered = exponential * Double.random(in: 0.5...1)
    if let retryAfter { return max(jittered, min(retryAfter, options.maxRetryAfterSeconds)) }
    return jittered
  }

  private func attemptOnce(_ body: Data, client: HTTPClient, apiKey: String?, streak: TransportFailureStreak) async throws -> String {
    var request = HTTPClientRequest(url: options.endpoint)
    request.method = .POST
    request.headers.add(name: "Content-Type", value: "application/json")
    if let apiKey { request.headers.add(name: "Authorization", value: "Bearer \(apiKey)") }
    request.body = .bytes(Array(body), length: .known(Int64(body.count)))
    let code: Int
    let retryAfterHeader: String?
    let data: Data
    do {
      let response = try await client.execute(request, timeout: .milliseconds(Int64(options.timeoutSeconds * 1000)))
      code = Int(response.status.code)
      retryAfterHeader = response.headers.first(name: "Retry-After")
      var buffer = try await response.body.collect(upTo: 16 << 20)
      data = Data(buffer.readBytes(length: buffer.readableBytes) ?? [])
    } catch is CancellationError {
      throw CancellationError()
    } catch let error as HTTPClientError where error == .invalidURL || error == .emptyHost || error == .emptyScheme {
      throw AttemptError.fatal("invalid URL \(options.endpoint)")
    } catch {
      if Task.isCancelled { throw CancellationError() }
      // Concurrent requests may push the streak past the limit before the first abort lands; the message names the
      // limit that was reached, so it does not depend on that race.
      if streak.fail() >= options.maxConsecutiveTransportFailures {
        throw AttemptError.abort("\(options.maxConsecutiveTransportFailures) transport failures in a row (last: \(error)); "
          + "is \(options.endpoint) reachable?")
      }
      throw AttemptError.retryable("transport error (\(error))", retryAfterSeconds: nil)
    }
    streak.reset()
    if code == 401 || code == 403 {
      throw AttemptError.abort("HTTP \(code) from \(options.endpoint): the API key (environment variable "
        + "\(options.apiKeyVariable)) is missing or not accepted")
    }
    if code == 429 || code == 408 || (500...599).contains(code) {
      let retryAfter = retryAfterHeader.flatMap { Double($0.trimmingCharacters(in: .whitespaces)) }
      throw AttemptError.retryable("HTTP \(code)", retryAfterSeconds: retryAfter)
    }
    guard (200...299).contains(code) else { throw AttemptError.fatal("HTTP \(code)") }
    guard let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
      let choices = object["choices"] as? [[String: Any]], let first = choices.first,
      let message = first["message"] as? [String: Any], let content = message["content"] as? String
    else {
      // A 200 without a chat-completion body: treat as a transient server fault.
      throw AttemptError.retryable("response without choices[0].message.content", retryAfterSeconds: nil)
    }
    return content
  }
}
