import ArgumentParser
import Foundation
import Logging
import Torch

/// `greenrfm launch`: starts the ranks of a data-parallel run on this machine, as `torchrun` does.
struct LaunchCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "launch",
    abstract: "Start N local processes of a data-parallel run (one per GPU, or a few CPU processes).",
    discussion: """
      greenrfm launch --nproc 2 -- train stage1 --modality image --manifest cohort.csv --output runs/image-s1
      Each process runs `greenrfm <arguments>` with PyTorch's environment contract: MASTER_ADDR, MASTER_PORT, \
      RANK, WORLD_SIZE, LOCAL_RANK (and OMP_NUM_THREADS=1 unless set, as torchrun). A cluster scheduler can set \
      these itself and start `greenrfm train ...` on every node instead. When one process fails, the others are \
      stopped (SIGTERM, then SIGKILL after 10 s) and launch exits with the failed one's status.
      """)

  @Option(help: "Processes on this machine.")
  var nproc: Int

  @Option(help: "Machines in the run (each runs launch with its --node-rank).")
  var nnodes: Int = 1

  @Option(help: "This machine's number in 0..<nnodes.")
  var nodeRank: Int = 0

  @Option(help: "The address of the machine with node rank 0.")
  var masterAddr: String = "127.0.0.1"

  @Option(help: "The rendezvous port (default: a free port when --nnodes is 1, else 29500).")
  var masterPort: Int?

  @Argument(parsing: .captureForPassthrough, help: "The greenrfm subcommand and its options (after --).")
  var command: [String] = []

  func validate() throws {
    guard (1...1024).contains(nproc) else { throw ValidationError("--nproc must lie in 1...1024") }
    guard nnodes >= 1, (0..<nnodes).contains(nodeRank) else { throw ValidationError("--node-rank must lie in 0..<--nnodes") }
    if let p = masterPort, !(1...65_535).contains(p) { throw ValidationError("--master-port must lie in 1...65535") }
    guard !arguments.isEmpty else { throw ValidationError("give the command to run after --, e.g. -- train stage1 ...") }
  }

  var arguments: [String] { command.first == "--" ? Array(command.dropFirst()) : command }

  func run() throws {
    let port = try masterPort ?? (nnodes == 1 ? DistributedEnvironment.freeLoopbackPort() : 29_500)
    let executable = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
    let world = nproc * nnodes
    let state = LaunchState()
    for local in 0..<nproc {
      let rank = nodeRank * nproc + local
      let p = Process()
      p.executableURL = Bundle.main.executableURL ?? executable
      p.arguments = arguments
      var env = ProcessInfo.processInfo.environment
      env["MASTER_ADDR"] = masterAddr
      env["MASTER_PORT"] = String(port)
      env["RANK"] = String(rank)
      env["WORLD_SIZE"] = String(world)
      env["LOCAL_RANK"] = String(local)
      env["LOCAL_WORLD_SIZE"] = String(nproc)
      if env["OMP_NUM_THREADS"] == nil, nproc > 1 { env["OMP_NUM_THREADS"] = "1" }
      p.environment = env
      p.terminationHandler = { proc in
        state.ended(rank: rank, status: proc.terminationReason == .uncaughtSignal ? 128 + proc.terminationStatus
                                                                                  : proc.terminationStatus)
      }
      do { try p.run() } catch {
        state.stopOthers()
        throw CommandError("could not start rank \(rank) (\(p.executableURL?.path ?? "?")): \(error)")
      }
      state.add(p)
    }
    FileHandle.standardError.write(Data("[launch] \(nproc) process(es), ranks \(nodeRank * nproc)..<\(nodeRank * nproc + nproc) of \(world), rendezvous \(masterAddr):\(port)\n".utf8))
    // Ctrl-C reaches the children through the process group; launch only waits for them. SIGTERM and SIGHUP (a job
    // wrapper or `kill` that signals only this process) are passed on, so that no rank is left running; a rank
    // treats SIGTERM as a stop request (checkpoint, then exit).
    signal(SIGINT, SIG_IGN)
    var forwarders: [DispatchSourceSignal] = []
    for sig in [SIGTERM, SIGHUP] {
      signal(sig, SIG_IGN)
      let source = DispatchSource.makeSignalSource(signal: sig, queue: .global())
      source.setEventHandler { state.signalChildren(SIGTERM) }
      source.resume()
      forwarders.append(source)
    }
    defer { forwarders.forEach { $0.cancel() } }
    var stopping = false
    for _ in 0..<nproc {
      state.done.wait()
      if let failure = state.failure, !stopping {
        stopping = true
        FileHandle.standardError.write(Data("[launch] rank \(failure.rank) exited with status \(failure.status); stopping the others\n".utf8))
        state.stopOthers()
      }
    }
    if let failure = state.failure { throw ExitCode(failure.status == 0 ? 1 : failure.status) }
  }
}

/// The launched processes and the first failure, shared with their termination handlers.
final class LaunchState: @unchecked Sendable {
  private let lock = NSLock()
  private var children: [Process] = []
  private var firstFailure: (rank: Int, status: Int32)?
  let done = DispatchSemaphore(value: 0)

  func add(_ p: Process) { lock.lock(); children.append(p); lock.unlock() }

  func ended(rank: Int, status: Int32) {
    lock.lock()
    if status != 0, firstFailure == nil { firstFailure = (rank, status) }
    lock.unlock()
    done.signal()
  }

  var failure: (rank: Int, status: Int32)? { lock.lock(); defer { lock.unlock() }; return firstFailure }

  /// Sends `sig` to every running child.
  func signalChildren(_ sig: Int32) {
    lock.lock()
    let running = children.filter(\.isRunning)
    lock.unlock()
    for c in running { kill(c.processIdentifier, sig) }
  }

  /// SIGTERM to the running children, then SIGKILL to those still running after 10 s.
  func stopOthers() {
    lock.lock()
    let running = children.filter(\.isRunning)
    lock.unlock()
    for c in running { c.terminate() }
    DispatchQueue.global().async {
      let deadline = Date().addingTimeInterval(10)
      while Date() < deadline, running.contains(where: { $0.isRunning }) { usleep(100_000) }
      for c in running where c.isRunning { kill(c.processIdentifier, SIGKILL) }
    }
  }
}
