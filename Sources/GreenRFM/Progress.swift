import Foundation

/// A progress line for long work: on a terminal an updating bar with rate and ETA; otherwise a plain line
/// at most every `plainInterval` seconds (and at the end), so logs stay readable.
public final class ProgressReporter: @unchecked Sendable {
  public let label: String
  public let total: Int
  private let start = Date()
  private var lastPrint = Date.distantPast
  private let isTerminal: Bool
  private let plainInterval: TimeInterval
  private let lock = NSLock()
  private var done = 0

  public init(label: String, total: Int, plainInterval: TimeInterval = 10) {
    self.label = label
    self.total = max(total, 1)
    self.plainInterval = plainInterval
    isTerminal = isatty(STDERR_FILENO) != 0
  }

  /// Marks `completed` items done and prints if due; `detail` is appended (e.g. `loss 0.412`).
  public func update(completed: Int, detail: String = "") {
    lock.lock()
    defer { lock.unlock() }
    done = completed
    let now = Date()
    let finished = completed >= total
    let interval = isTerminal ? 0.1 : plainInterval
    guard finished || now.timeIntervalSince(lastPrint) >= interval else { return }
    lastPrint = now
    let elapsed = now.timeIntervalSince(start)
    let rate = elapsed > 0 ? Double(completed) / elapsed : 0
    let eta = rate > 0 ? Double(total - completed) / rate : 0
    let fraction = Double(completed) / Double(total)
    let rateText = rate >= 1 ? String(format: "%.1f/s", rate) : String(format: "%.2f s/it", rate > 0 ? 1 / rate : 0)
    let tail = "\(completed)/\(total) \(rateText) ETA \(Self.duration(eta))\(detail.isEmpty ? "" : " " + detail)"
    if isTerminal {
      let width = 24
      let filled = Int(fraction * Double(width))
      let bar = String(repeating: "█", count: filled) + String(repeating: "·", count: width - filled)
      FileHandle.standardError.write(Data("\r\u{1B}[K\(label) \(bar) \(tail)\(finished ? "\n" : "")".utf8))
    } else {
      FileHandle.standardError.write(Data("\(label): \(tail)\n".utf8))
    }
  }

  static func duration(_ seconds: Double) -> String {
    let s = Int(seconds.rounded())
    return s >= 3600 ? String(format: "%d:%02d:%02d", s / 3600, s / 60 % 60, s % 60) : String(format: "%d:%02d", s / 60, s % 60)
  }
}

/// Resident-memory figures of this process, read from `/proc/self/status` (Linux).
public enum ProcessMemory {
  /// Current resident set size in bytes (VmRSS), or nil where unavailable.
  public static var residentBytes: Int? { field("VmRSS") }
  /// Peak resident set size in bytes (VmHWM), or nil where unavailable.
  public static var peakResidentBytes: Int? { field("VmHWM") }

  static func field(_ name: String) -> Int? {
    guard let text = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return nil }
    for line in text.split(separator: "\n") where line.hasPrefix(name + ":") {
      let parts = line.split(separator: " ", omittingEmptySubsequences: true)
      if parts.count >= 2, let kb = Int(parts[1]) { return kb * 1024 }
    }
    return nil
  }
}
