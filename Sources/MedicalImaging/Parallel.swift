import Foundation

/// Runs `body(index)` for every index in `0..<count` on all cores and returns the results in order.
/// Each index's result (or thrown error) is kept separately; no shared mutable state crosses threads.
func parallelMap<T>(_ count: Int, _ body: (Int) throws -> T) -> [Result<T, Error>] {
  let storage = UnsafeMutablePointer<Result<T, Error>?>.allocate(capacity: max(count, 1))
  storage.initialize(repeating: nil, count: max(count, 1))
  defer { storage.deinitialize(count: max(count, 1)); storage.deallocate() }
  nonisolated(unsafe) let slots = storage
  withoutActuallyEscaping(body) { body in
    nonisolated(unsafe) let work = body
    DispatchQueue.concurrentPerform(iterations: count) { n in
      slots[n] = Result { try work(n) }
    }
  }
  return (0..<count).map { storage[$0]! }
}

/// Runs `body(chunkStart, chunkEnd)` over `0..<count` split into contiguous chunks, in parallel.
func parallelChunks(_ count: Int, minimumChunk: Int = 1 << 16, _ body: (Int, Int) -> Void) {
  let cores = ProcessInfo.processInfo.activeProcessorCount
  let chunks = max(1, min(cores * 4, count / max(minimumChunk, 1)))
  let per = (count + chunks - 1) / chunks
  withoutActuallyEscaping(body) { body in
    nonisolated(unsafe) let work = body
    DispatchQueue.concurrentPerform(iterations: chunks) { c in
      let start = c * per, end = min(count, start + per)
      if start < end { work(start, end) }
    }
  }
}
