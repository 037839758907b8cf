import ArgumentParser

// Placeholder: replaced by the issue that builds `greenrfm inspect`.
struct InspectCommand: ParsableCommand {
  static let configuration = CommandConfiguration(commandName: "inspect", abstract: "(not yet available)", shouldDisplay: false)
  func run() throws { throw ValidationError("greenrfm inspect is not available yet") }
}
