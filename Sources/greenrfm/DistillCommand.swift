import ArgumentParser

// Placeholder: replaced by the issue that builds `greenrfm distill`.
struct DistillCommand: ParsableCommand {
  static let configuration = CommandConfiguration(commandName: "distill", abstract: "(not yet available)", shouldDisplay: false)
  func run() throws { throw ValidationError("greenrfm distill is not available yet") }
}
