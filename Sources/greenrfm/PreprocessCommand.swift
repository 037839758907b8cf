import ArgumentParser

// Placeholder: replaced by the issue that builds `greenrfm preprocess`.
struct PreprocessCommand: ParsableCommand {
  static let configuration = CommandConfiguration(commandName: "preprocess", abstract: "(not yet available)", shouldDisplay: false)
  func run() throws { throw ValidationError("greenrfm preprocess is not available yet") }
}
