import Foundation

/// The one atomic-replacement mechanism of the package, shared by checkpoints (Torch), labels (Reports)
/// and preprocessed volumes (MedicalImaging): the bytes go to a hidden temporary file in the target's
/// folder (created if missing), are flushed to disk, the file is renamed over the target, and the folder is
/// flushed so the rename is durable. Readers see the old file or the complete new one, never a partial one.
/// Each module wraps it in its own `AtomicFile` to report failures with its own error type.
public enum AtomicWrite {
  /// Why an atomic write failed: the path and a human-readable reason.
  public struct Failure: Error {
    public let path: String
    public let reason: String
  }

  /// Writes through `body` into a temporary file, then renames it over `url`.
  /// - Parameter createFolder: create a missing parent folder (otherwise a missing folder is a failure).
  /// - Throws: `Failure` naming `url` (or the error `body` threw, if that is a `Failure`).
  public static func write(to url: URL, createFolder: Bool = true, _ body: (FileHandle) throws -> Void) throws {
    let dir = url.deletingLastPathComponent()
    let tmp = dir.appendingPathComponent(".\(url.lastPathComponent).tmp-\(getpid())-\(UUID().uuidString.prefix(8))")
    if createFolder {
      do {
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
      } catch {
        throw Failure(path: url.path, reason: "cannot create the folder \(dir.path): \(error.localizedDescription)")
      }
    }
    guard FileManager.default.createFile(atPath: tmp.path, contents: nil) else {
      throw Failure(path: url.path, reason: "cannot create a file in \(dir.path)")
    }
    do {
      let handle = try FileHandle(forWritingTo: tmp)
      do {
        try body(handle)
        try handle.synchronize()
        try handle.close()
      } catch {
        try? handle.close()
        throw error
      }
      guard rename(tmp.path, url.path) == 0 else {
        throw Failure(path: url.path, reason: "cannot rename into place: \(String(cString: strerror(errno)))")
      }
      let dirFD = open(dir.path, O_RDONLY)
      if dirFD >= 0 {
        _ = fsync(dirFD)
        close(dirFD)
      }
    } catch let failure as Failure {
      try? FileManager.default.removeItem(at: tmp)
      throw failure
    } catch {
      try? FileManager.default.removeItem(at: tmp)
      throw Failure(path: url.path, reason: "write failed: \(error.localizedDescription)")
    }
  }

  /// Writes `data` to `url` atomically.
  public static func write(_ data: Data, to url: URL, createFolder: Bool = true) throws {
    try write(to: url, createFolder: createFolder) { try $0.write(contentsOf: data) }
  }
}
