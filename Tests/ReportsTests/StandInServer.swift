import Foundation
#if canImport(Glibc)
  import Glibc
#endif

/// A stand-in for an OpenAI-compatible chat-completions server on 127.0.0.1, for tests: POSIX sockets, one thread
/// per connection, HTTP/1.1 keep-alive, and a script that decides each answer from the request.
final class StandInServer: @unchecked Sendable {
  /// What the server does with one request.
  enum Action {
    /// 200 with a chat completion whose `choices[0].message.content` is the string.
    case answer(String)
    /// Any status with extra headers and a body.
    case status(Int, headers: [String: String], body: String)
    /// Waits, then does the inner action (the client may have given up by then).
    indirect case delay(Double, Action)
    /// Closes the connection with a TCP reset before answering.
    case reset
  }

  struct Request {
    /// The content of the first user message (the report text).
    var report: String
    /// All messages (role, content), the system prompt included.
    var messages: [(role: String, content: String)]
    /// The Authorization header, if any.
    var authorization: String?
    /// 1 for the first request about this report, 2 for the next, …
    var attempt: Int
  }

  private let lock = NSLock()
  private var listener: Int32 = -1
  private(set) var port: UInt16 = 0
  private var attempts: [String: Int] = [:]
  private var log: [Request] = []
  private var answered: [String] = []
  private let script: @Sendable (Request) -> Action

  init(script: @escaping @Sendable (Request) -> Action) throws {
    self.script = script
    signal(SIGPIPE, SIG_IGN)
    listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard listener >= 0 else { throw POSIXError(.EIO) }
    var yes: Int32 = 1
    setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &yes, socklen_t(MemoryLayout<Int32>.size))
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = 0
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    let bound = withUnsafePointer(to: &address) {
      $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listener, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    guard bound == 0, listen(listener, 64) == 0 else { throw POSIXError(.EADDRINUSE) }
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    _ = withUnsafeMutablePointer(to: &address) {
      $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(listener, $0, &length) }
    }
    port = UInt16(bigEndian: address.sin_port)
    let fd = listener
    Thread.detachNewThread { [weak self] in
      while true {
        let connection = accept(fd, nil, nil)
        if connection < 0 { return }
        guard let self else {
          close(connection)
          return
        }
        Thread.detachNewThread { self.serve(connection) }
      }
    }
  }

  deinit { stop() }

  var baseURL: String { "http://127.0.0.1:\(port)" }

  /// Every request received, in arrival order.
  var requests: [Request] { lock.withLock { log } }
  /// Reports answered with a 200 chat completion.
  var answeredReports: [String] { lock.withLock { answered } }

  func stop() {
    lock.withLock {
      if listener >= 0 {
        shutdown(listener, Int32(SHUT_RDWR))
        close(listener)
        listener = -1
      }
    }
  }

  private func serve(_ connection: Int32) {
    defer { close(connection) }
    var buffer = [UInt8]()
    var chunk = [UInt8](repeating: 0, count: 65536)
    while true {
      // Read the head.
      var headEnd: Int?
      while headEnd == nil {
        if let range = find(buffer, [13, 10, 13, 10]) { headEnd = range; break }
        let n = recv(connection, &chunk, chunk.count, 0)
        if n <= 0 { return }
        buffer.append(contentsOf: chunk[0..<n])
      }
      let head = String(decoding: buffer[0..<headEnd!], as: UTF8.self)
      var contentLength = 0
      var authorization: String?
      for line in head.split(separator: "\r\n").dropFirst() {
        let parts = line.split(separator: ":", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
        guard parts.count == 2 else { continue }
        if parts[0].lowercased() == "content-length" { contentLength = Int(parts[1]) ?? 0 }
        if parts[0].lowercased() == "authorization" { authorization = parts[1] }
      }
      let bodyStart = headEnd! + 4
      while buffer.count < bodyStart + contentLength {
        let n = recv(connection, &chunk, chunk.count, 0)
        if n <= 0 { return }
        buffer.append(contentsOf: chunk[0..<n])
      }
      let body = Data(buffer[bodyStart..<bodyStart + contentLength])
      buffer.removeFirst(bodyStart + contentLength)

      var messages: [(String, String)] = []
      if let object = try? JSONSerialization.jsonObject(with: body) as? [String: Any],
        let list = object["messages"] as? [[String: Any]]
      {
        messages = list.map { (($0["role"] as? String) ?? "", ($0["content"] as? String) ?? "") }
      }
      let report = messages.first(where: { $0.0 == "user" })?.1 ?? ""
      let request: Request = lock.withLock {
        attempts[report, default: 0] += 1
        let r = Request(report: report, messages: messages.map { (role: $0.0, content: $0.1) }, authorization: authorization,
                        attempt: attempts[report]!)
        log.append(r)
        return r
      }
      var action = script(request)
      while case .delay(let seconds, let inner) = action {
        Thread.sleep(forTimeInterval: seconds)
        action = inner
      }
      switch action {
      case .answer(let content):
        let payload: [String: Any] = [
          "id": "chatcmpl-test", "object": "chat.completion",
          "choices": [["index": 0, "message": ["role": "assistant", "content": content], "finish_reason": "stop"]],
        ]
        let data = try! JSONSerialization.data(withJSONObject: payload)
        if !respond(connection, 200, [:], data) { return }
        lock.withLock { answered.append(report) }
      case .status(let code, let headers, let text):
        if !respond(connection, code, headers, Data(text.utf8)) { return }
      case .reset:
        var linger = Glibc.linger(l_onoff: 1, l_linger: 0)
        setsockopt(connection, SOL_SOCKET, SO_LINGER, &linger, socklen_t(MemoryLayout<Glibc.linger>.size))
        return
      case .delay:
        return
      }
    }
  }

  private func respond(_ connection: Int32, _ code: Int, _ headers: [String: String], _ body: Data) -> Bool {
    var head = "HTTP/1.1 \(code) \(code == 200 ? "OK" : "Status")\r\nContent-Type: application/json\r\n"
    head += "Content-Length: \(body.count)\r\nConnection: keep-alive\r\n"
    for (k, v) in headers { head += "\(k): \(v)\r\n" }
    head += "\r\n"
    let bytes = Array(head.utf8) + Array(body)
    var sent = 0
    while sent < bytes.count {
      let n = bytes[sent...].withUnsafeBytes { send(connection, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
      if n <= 0 { return false }
      sent += n
    }
    return true
  }

  private func find(_ haystack: [UInt8], _ needle: [UInt8]) -> Int? {
    guard haystack.count >= needle.count else { return nil }
    for i in 0...(haystack.count - needle.count) where haystack[i] == needle[0] {
      if Array(haystack[i..<i + needle.count]) == needle { return i }
    }
    return nil
  }
}
