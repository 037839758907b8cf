import ArgumentParser
import Foundation
import GreenRFM
import Logging
import Reports

/// `greenrfm distill`: free-text reports → 1/0/−1 labels per finding (GreenRFM MUST "More distilled").
struct DistillCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "distill",
    abstract: "Distil free-text reports into 1/0/-1 labels per finding (rules offline, or an LLM).",
    discussion: """
      Labels: 1 explicitly present, 0 explicitly absent, -1 uncertain or not mentioned. Schemas: \
      \(LabelSchema.builtInNames.joined(separator: ", ")), or a path to a schema JSON file (see docs/DISTILL.md).
      Reads CT-RATE's (VolumeName, Findings_EN, Impressions_EN) and Merlin's (study id, Findings, Impression) report \
      layouts without naming columns. Report text never appears in logs.
      """,
    subcommands: [DistillRun.self, DistillEvaluate.self, DistillBench.self],
    defaultSubcommand: DistillRun.self)
}

/// Runs an async body from a synchronous command (the root command is synchronous).
func runBlocking<T: Sendable>(_ body: @escaping @Sendable () async throws -> T) throws -> T {
  let semaphore = DispatchSemaphore(value: 0)
  nonisolated(unsafe) var result: Result<T, Error>!
  Task.detached {
    do { result = .success(try await body()) } catch { result = .failure(error) }
    semaphore.signal()
  }
  semaphore.wait()
  return try result.get()
}

enum LabelerKind: String, ExpressibleByArgument, CaseIterable { case rules, llm }

struct DistillRun: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "run",
    abstract: "Label a reports CSV and write LABELS.csv (the default subcommand of distill).",
    discussion: """
      The output holds the id column, then one column per finding titled with the schema's display name \
      (CT-RATE's titles for chest-ct-18), values 1/0/-1; it is written atomically. Beside it go \
      LABELS.csv.distill.json (the resolved settings and counts) and, if any report failed, \
      LABELS.csv.failures.csv (id, reason); the command then exits 1 after writing the labels of the others.
      The LLM labeler posts to BASE_URL/v1/chat/completions; the API key comes only from the environment \
      variable named by --api-key-env. Its JSONL cache (default LABELS.csv.llm-cache.jsonl) makes a rerun, or a \
      run restarted after a crash, ask nothing twice.
      """)

  @OptionGroup var global: GlobalOptions

  @Option(help: "Reports CSV.")
  var reports: String

  @Option(help: "The id column (default: from a known layout).")
  var idColumn: String?

  @Option(help: "Text column(s), comma-separated, joined in order (default: from a known layout).")
  var textColumns: String?

  @Option(help: "Schema name or schema JSON path.")
  var schema: String = "chest-ct-18"

  @Option(help: "rules (offline, default) or llm.")
  var labeler: LabelerKind = .rules

  @Option(help: "Output labels CSV.")
  var output: String

  @Option(help: "LLM: server root or its /v1 (e.g. http://127.0.0.1:8000).")
  var baseURL: String?

  @Option(help: "LLM: model name.")
  var model: String?

  @Option(help: "LLM: the environment variable that holds the API key.")
  var apiKeyEnv: String = "OPENAI_API_KEY"

  @Option(help: "LLM: requests in flight at once.")
  var concurrency: Int = 16

  @Option(help: "LLM: attempts per request (429, 5xx, time-outs and connection errors are retried).")
  var maxAttempts: Int = 6

  @Option(help: "LLM: seconds per request.")
  var timeout: Double = 60

  @Option(help: "LLM: first back-off in seconds (doubles per retry, with jitter).")
  var initialBackoff: Double = 1

  @Option(help: "LLM: cache JSONL path (default: OUTPUT.llm-cache.jsonl).")
  var cache: String?

  @Flag(help: "LLM: count reports and estimate tokens; send nothing.")
  var dryRun = false

  func validate() throws {
    if let t = textColumns, t.split(separator: ",").isEmpty { throw ValidationError("--text-columns is empty") }
    if (idColumn == nil) != (textColumns == nil) { throw ValidationError("--id-column and --text-columns go together") }
    if labeler == .llm {
      guard baseURL != nil, model != nil else { throw ValidationError("--labeler llm needs --base-url and --model") }
      guard (1...1024).contains(concurrency) else { throw ValidationError("--concurrency must be between 1 and 1024") }
      guard (1...100).contains(maxAttempts) else { throw ValidationError("--max-attempts must be between 1 and 100") }
      guard timeout > 0, timeout <= LLMOptions.maxTimeoutSeconds else {
        throw ValidationError("--timeout must be more than 0 and at most \(Int(LLMOptions.maxTimeoutSeconds)) seconds")
      }
      guard initialBackoff >= 0, initialBackoff <= 3600 else {
        throw ValidationError("--initial-backoff must be between 0 and 3600 seconds")
      }
    } else if dryRun {
      throw ValidationError("--dry-run applies to --labeler llm")
    }
  }

  func run() throws {
    _ = try global.apply()
    let logger = Logger(label: "greenrfm.distill")
    let outputURL = URL(fileURLWithPath: output)
    let schema = try LabelSchema.load(self.schema)
    let columns = textColumns.map { $0.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) } }
    let (inputRows, layout) = try ReportTable.read(URL(fileURLWithPath: self.reports), idColumn: idColumn, textColumns: columns)
    let screening = ReportTable.screen(inputRows)
    let reports = screening.reports
    if screening.duplicateRows > 0 {
      logger.warning("\(screening.duplicateRows) row(s) repeat an earlier id (\(screening.duplicateIDs.count) id(s), e.g. \(ReportTable.sample(screening.duplicateIDs))): only the first row of each id is labelled")
    }
    if screening.emptyIDRows > 0 { logger.warning("\(screening.emptyIDRows) row(s) with an empty id skipped") }
    if !screening.emptyTextIDs.isEmpty {
      logger.warning("\(screening.emptyTextIDs.count) report(s) with an empty text (e.g. \(ReportTable.sample(screening.emptyTextIDs))): labelled -1 throughout")
    }
    logger.info("\(reports.count) reports (layout \(layout.name): id \(layout.idColumn), text \(layout.textColumns.joined(separator: "+"))), schema \(schema.name) (\(schema.findings.count) findings), labeler \(labeler.rawValue)")

    var labels: [[FindingLabel]?]
    var failures: [(id: String, reason: String)] = []
    var counts: [String: Int] = [
      "reports": reports.count, "rows": inputRows.count, "duplicate_rows": screening.duplicateRows,
      "empty_ids": screening.emptyIDRows, "empty_texts": screening.emptyTextIDs.count,
    ]
    let start = Date()
    switch labeler {
    case .rules:
      let ruleLabeler = try RuleLabeler(schema: schema)
      let progress = ProgressReporter(label: "distill", total: reports.count)
      labels = []
      labels.reserveCapacity(reports.count)
      for (i, r) in reports.enumerated() {
        labels.append(ruleLabeler.label(r.text))
        if (i + 1) % 500 == 0 || i + 1 == reports.count { progress.update(completed: i + 1) }
      }
    case .llm:
      var options = LLMOptions(baseURL: baseURL!, model: model!)
      options.apiKeyVariable = apiKeyEnv
      options.concurrency = concurrency
      options.maxAttempts = maxAttempts
      options.timeoutSeconds = timeout
      options.initialBackoffSeconds = initialBackoff
      options.cacheURL = URL(fileURLWithPath: cache ?? output + ".llm-cache.jsonl")
      let llm = try LLMLabeler(schema: schema, options: options)
      if dryRun {
        let estimate = try runBlocking { try await llm.dryRun(reports) }
        print("reports \(estimate.reports), cached \(estimate.cached), to ask \(estimate.reports - estimate.cached), "
          + "estimated tokens: prompt \(estimate.promptTokens), completion \(estimate.completionTokens)")
        return
      }
      let progress = ProgressReporter(label: "distill (llm)", total: reports.count)
      let outcome = try runBlocking { try await llm.label(reports) { progress.update(completed: $0) } }
      labels = outcome.labels
      failures = outcome.failures
      counts["cached"] = outcome.statistics.cached
      counts["requests"] = outcome.statistics.requests
      counts["retries"] = outcome.statistics.retries
      counts["reasks"] = outcome.statistics.reasks
    }
    counts["failed"] = failures.count
    let seconds = Date().timeIntervalSince(start)

    var ids: [String] = [], rows: [[FindingLabel]] = []
    for (r, l) in zip(reports, labels) {
      if let l {
        ids.append(r.id)
        rows.append(l)
      }
    }
    try AtomicFile.write(LabelFile.serialize(idColumn: layout.idColumn, schema: schema, ids: ids, labels: rows), to: outputURL)
    let failuresURL = URL(fileURLWithPath: output + ".failures.csv")
    if !failures.isEmpty {
      let table = CSVTable(header: ["id", "reason"], rows: failures.map { [$0.id, $0.reason] })
      try AtomicFile.write(table.serialized(), to: failuresURL)
    } else {
      try? FileManager.default.removeItem(at: failuresURL)
    }
    var positives: [String: Int] = [:]
    for (j, f) in schema.findings.enumerated() { positives[f.displayName] = rows.filter { $0[j] == .present }.count }
    var config: [String: Any] = [
      "reports": self.reports, "schema": schema.name, "schema_version": schema.version, "labeler": labeler.rawValue,
      "layout": ["name": layout.name, "id_column": layout.idColumn, "text_columns": layout.textColumns],
      "output": output, "counts": counts, "positives": positives, "seconds": seconds,
    ]
    if labeler == .llm {
      config["llm"] = ["base_url": baseURL!, "model": model!, "api_key_env": apiKeyEnv, "concurrency": concurrency,
                       "max_attempts": maxAttempts, "timeout_seconds": timeout, "prompt_version": LLMPrompt.version,
                       "cache": cache ?? output + ".llm-cache.jsonl"]
    }
    let json = try JSONSerialization.data(withJSONObject: config, options: [.prettyPrinted, .sortedKeys])
    try AtomicFile.write(json, to: URL(fileURLWithPath: output + ".distill.json"))
    logger.info("wrote \(rows.count) rows to \(output) in \(String(format: "%.2f", seconds)) s")
    if !failures.isEmpty {
      logger.error("\(failures.count) report(s) failed; see \(failuresURL.path)")
      throw ExitCode(1)
    }
  }
}

struct DistillEvaluate: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "evaluate",
    abstract: "Per-finding precision, recall and F1, and the macro F1, of labels against reference labels.",
    discussion: """
      Value 1 is positive; 0 and -1 are not. Give --predicted LABELS.csv, or --reports CSV to label it with the \
      rule-based labeler first. Rows are joined on the id (a .nii.gz suffix is ignored). Example, on the 800 \
      manually labelled CT-RATE reports:
        greenrfm distill evaluate --reports ../shared/data/reports/ctrate_manual_train.csv \\
          --reference ../shared/data/reports/ctrate_manual_train.csv
      """)

  @OptionGroup var global: GlobalOptions

  @Option(help: "Reference labels CSV (id column first, one column per finding display name).")
  var reference: String

  @Option(help: "Predicted labels CSV.")
  var predicted: String?

  @Option(help: "Reports CSV to label with the rule-based labeler instead of --predicted.")
  var reports: String?

  @Option(help: "The id column of --reports (default: from a known layout).")
  var idColumn: String?

  @Option(help: "Text column(s) of --reports, comma-separated.")
  var textColumns: String?

  @Option(help: "Schema name or schema JSON path.")
  var schema: String = "chest-ct-18"

  @Flag(help: "Print one JSON object instead of the table.")
  var json = false

  func validate() throws {
    if (predicted == nil) == (reports == nil) { throw ValidationError("give exactly one of --predicted and --reports") }
  }

  func run() throws {
    _ = try global.apply()
    let logger = Logger(label: "greenrfm.distill")
    let schema = try LabelSchema.load(self.schema)
    var evaluation: LabelEvaluation
    if let predicted {
      evaluation = try LabelEvaluation.compare(predictedCSV: URL(fileURLWithPath: predicted),
                                               referenceCSV: URL(fileURLWithPath: reference), schema: schema)
    } else {
      let columns = textColumns.map { $0.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) } }
      let (reports, _) = try ReportTable.read(URL(fileURLWithPath: self.reports!), idColumn: idColumn, textColumns: columns)
      let labeler = try RuleLabeler(schema: schema)
      let reference = try LabelFile.read(URL(fileURLWithPath: self.reference), schema: schema)
      let (p, r, match) = LabelEvaluation.join(predictedIDs: reports.map(\.id), predicted: reports.map { labeler.label($0.text) },
                                               referenceIDs: reference.ids, reference: reference.labels)
      guard !p.isEmpty else { throw ValidationError("no report id of --reports is in --reference") }
      evaluation = LabelEvaluation(findings: schema.displayNames, predicted: p, reference: r)
      evaluation.idMatch = match
    }
    if let match = evaluation.idMatch {
      logger.info("\(match.summary)")
      if let warning = match.warning { logger.warning("\(warning)") }
    }
    if json {
      let data = try JSONSerialization.data(withJSONObject: evaluation.jsonObject(), options: [.prettyPrinted, .sortedKeys])
      print(String(decoding: data, as: UTF8.self))
    } else {
      print(evaluation.table(), terminator: "")
    }
  }
}

struct DistillBench: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "bench",
    abstract: "Rule-based labeler throughput in reports per second on one thread (see bench/distill.sh).",
    discussion: "Labels every report of --reports, --rounds times after one warm-up round, on the calling thread only.")

  @OptionGroup var global: GlobalOptions

  @Option(help: "Reports CSV (default: the 800 CT-RATE reports in ../shared/data).")
  var reports: String = "../shared/data/reports/ctrate_manual_train.csv"

  @Option(help: "Schema name or schema JSON path.")
  var schema: String = "chest-ct-18"

  @Option(help: "Timed rounds over all reports.")
  var rounds: Int = 5

  @Flag(help: "Print one JSON object.")
  var json = false

  func validate() throws { if rounds < 1 { throw ValidationError("--rounds must be at least 1") } }

  func run() throws {
    _ = try global.apply()
    let schema = try LabelSchema.load(self.schema)
    let (reports, _) = try ReportTable.read(URL(fileURLWithPath: self.reports))
    let labeler = try RuleLabeler(schema: schema)
    var sink = 0
    for r in reports { sink &+= Int(labeler.label(r.text)[0].rawValue) }
    var seconds: [Double] = []
    for _ in 0..<rounds {
      let start = DispatchTime.now().uptimeNanoseconds
      for r in reports { sink &+= Int(labeler.label(r.text)[0].rawValue) }
      seconds.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
    }
    seconds.sort()
    let median = seconds[seconds.count / 2]
    let result: [String: Any] = [
      "reports": reports.count, "rounds": rounds, "median_seconds": median, "min_seconds": seconds.first!,
      "max_seconds": seconds.last!, "reports_per_second": Double(reports.count) / median, "threads": 1,
      "schema": schema.name, "checksum": sink,
    ]
    if json {
      let data = try JSONSerialization.data(withJSONObject: result, options: [.prettyPrinted, .sortedKeys])
      print(String(decoding: data, as: UTF8.self))
    } else {
      print(String(format: "%d reports × %d rounds: median %.4f s, %.0f reports/s on one thread", reports.count, rounds, median,
                   Double(reports.count) / median))
    }
  }
}
