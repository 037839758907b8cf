import Foundation
import Testing
#if canImport(Glibc)
  import Glibc
#endif

/// A minimal chat-completions stand-in on 127.0.0.1 for the CLI: answers every request after `delaySeconds` with
/// `answer(report text)`. (The scripted server with errors, resets and time-outs is in ReportsTests.)
final class ChatStandIn: @unchecked Sendable {
  private let lock = NSLock()
  private var listener: Int32 = -1
  private(set) var port: UInt16 = 0
  private var asked: [String] = []
  private var answeredCount = 0
  let delaySeconds: Double
  let answer: @Sendable (String) -> String

  init(delaySeconds: Double, answer: @escaping @Sendable (String) -> String) throws {
    self.delaySeconds = delaySeconds
    self.answer = answer
    signal(SIGPIPE, SIG_IGN)
    listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    var yes: Int32 = 1
    setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &yes, socklen_t(MemoryLayout<Int32>.size))
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    let ok = withUnsafePointer(to: &address) {
      $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listener, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    guard ok == 0, listen(listener, 64) == 0 else { throw POSIXError(.EADDRINUSE) }
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    _ = withUnsafeMutablePointer(to: &address) {
      $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(listener, $0, &length) }
    }
    port = UInt16(bigEndian: address.sin_port)
    let fd = listener
    Thread.detachNewThread { [weak self] in
      while true {
        let c = accept(fd, nil, nil)
        if c < 0 { return }
        guard let self else { close(c); return }
        Thread.detachNewThread { self.serve(c) }
      }
    }
  }

  deinit { stop() }
  var baseURL: String { "http://127.0.0.1:\(port)" }
  var requests: [String] { lock.withLock { asked } }
  var answered: Int { lock.withLock { answeredCount } }

  func stop() {
    lock.withLock {
      if listener >= 0 { shutdown(listener, Int32(SHUT_RDWR)); close(listener); listener = -1 }
    }
  }

  private func serve(_ c: Int32) {
    defer { close(c) }
    var buffer = [UInt8]()
    var chunk = [UInt8](repeating: 0, count: 65536)
    while true {
      var headEnd = -1
      while headEnd < 0 {
        if buffer.count >= 4 {
          for i in 0...(buffer.count - 4) where buffer[i] == 13 && buffer[i + 1] == 10 && buffer[i + 2] == 13 && buffer[i + 3] == 10 {
            headEnd = i
            break
          }
        }
        if headEnd >= 0 { break }
        let n = recv(c, &chunk, chunk.count, 0)
        if n <= 0 { return }
        buffer.append(contentsOf: chunk[0..<n])
      }
      let head = String(decoding: buffer[0..<headEnd], as: UTF8.self).lowercased()
      var length = 0
      for line in head.split(separator: "\r\n") where line.hasPrefix("content-length:") {
        length = Int(line.dropFirst("content-length:".count).trimmingCharacters(in: .whitespaces)) ?? 0
      }
      while buffer.count < headEnd + 4 + length {
        let n = recv(c, &chunk, chunk.count, 0)
        if n <= 0 { return }
        buffer.append(contentsOf: chunk[0..<n])
      }
      let body = Data(buffer[(headEnd + 4)..<(headEnd + 4 + length)])
      buffer.removeFirst(headEnd + 4 + length)
      let object = (try? JSONSerialization.jsonObject(with: body)) as? [String: Any]
      let messages = object?["messages"] as? [[String: Any]] ?? []
      let report = messages.first { $0["role"] as? String == "user" }?["content"] as? String ?? ""
      lock.withLock { asked.append(report) }
      Thread.sleep(forTimeInterval: delaySeconds)
      let payload: [String: Any] = ["choices": [["index": 0, "message": ["role": "assistant", "content": answer(report)]]]]
      let data = try! JSONSerialization.data(withJSONObject: payload)
      let bytes = Array("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: \(data.count)\r\n\r\n".utf8) + Array(data)
      let sent = bytes.withUnsafeBytes { send(c, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
      if sent != bytes.count { return }
      lock.withLock { answeredCount += 1 }
    }
  }
}

/// `greenrfm distill --labeler llm` end to end: the binary is killed (SIGKILL) half-way and started again.
@Suite(.serialized) struct DistillLLMCommandLineTests {
  static func answer(_ text: String) -> String {
    let n = Int(text.split(separator: " ").last ?? "0") ?? 0
    return (0..<18).map { ["1", "0", "-1"][($0 + n) % 3] }.joined(separator: ",")
  }

  @Test func aKilledRunRestartedLosesNoFinishedReportAndAsksNothingTwice() throws {
    let dir = try CLI.temporaryDirectory()
    defer { try? FileManager.default.removeItem(at: dir) }
    let server = try ChatStandIn(delaySeconds: 0.1, answer: Self.answer)
    defer { server.stop() }
    let count = 40
    var csv = "VolumeName,Findings_EN,Impressions_EN\n"
    for i in 0..<count { csv += "v\(i).nii.gz,Synthetic report,number \(i)\n" }
    let reports = dir.appendingPathComponent("reports.csv")
    try csv.write(to: reports, atomically: true, encoding: .utf8)
    let output = dir.appendingPathComponent("labels.csv")
    let arguments = ["distill", "--reports", reports.path, "--output", output.path, "--labeler", "llm",
                     "--base-url", server.baseURL, "--model", "stand-in", "--concurrency", "2"]

    let process = Process()
    process.executableURL = CLI.binary
    process.arguments = arguments
    process.standardOutput = FileHandle.nullDevice
    process.standardError = FileHandle.nullDevice
    try process.run()
    let deadline = Date().addingTimeInterval(30)
    while server.answered < 10 && Date() < deadline { Thread.sleep(forTimeInterval: 0.01) }
    kill(process.processIdentifier, SIGKILL)
    process.waitUntilExit()
    let answeredBeforeKill = server.answered
    #expect(answeredBeforeKill >= 10)
    #expect(!FileManager.default.fileExists(atPath: output.path), "the killed run wrote labels")
    let cache = output.path + ".llm-cache.jsonl"
    let cachedLines = (try String(contentsOfFile: cache, encoding: .utf8)).split(separator: "\n").count
    // At most the two requests in flight at the kill are lost.
    #expect(cachedLines >= answeredBeforeKill - 2 && cachedLines < count, "cached \(cachedLines)")

    let firstRequests = server.requests.count
    let r = try CLI.run(arguments)
    #expect(r.status == 0, "stderr: \(r.stderr)")
    let secondRequests = server.requests.count - firstRequests
    #expect(secondRequests == count - cachedLines, "asked \(secondRequests) with \(cachedLines) cached")
    let lines = try String(contentsOf: output, encoding: .utf8).split(separator: "\n")
    #expect(lines.count == count + 1)
    for line in lines.dropFirst() {
      let fields = line.split(separator: ",", maxSplits: 1)
      let n = Int(fields[0].dropFirst().prefix { $0.isNumber })!
      #expect(String(fields[1]) == Self.answer("number \(n)"), "\(line)")
    }
    // A third run asks nothing.
    let before = server.requests.count
    let again = try CLI.run(arguments)
    #expect(again.status == 0)
    #expect(server.requests.count == before)
  }
}
