import Foundation
import Testing
import Torch

@testable import GreenRFM

/// The demo's two stage-1 encoders side by side: both outcomes come back, a failure stops the other stage.
@Suite struct DemoSideBySideTests {
  @Test func bothOutcomesComeBackWhenOneStageThrows() throws {
    struct Boom: Error {}
    let ran = Demo.FailureFlag()
    let results = Demo.runSideBySide({
      Thread.sleep(forTimeInterval: 0.05)
      ran.set()
      return (Demo.StageResult(metrics: ["x": 1], stopped: false), reused: false)
    }, {
      throw Boom()
    })
    let first = try results.0.get()
    #expect(first.result.metrics == ["x": 1] && !first.reused && first.seconds >= 0.05)
    #expect(ran.isSet)
    #expect(throws: Boom.self) { try results.1.get() }
  }

  @Test func theOtherStageSeesTheFailureThroughItsStopFlag() {
    let failed = Demo.FailureFlag()
    #expect(!failed.isSet)
    let results = Demo.runSideBySide({
      // Polls like a trainer's shouldStop until the other stage has failed (bounded, so a bug cannot hang CI).
      var polls = 0
      while !failed.isSet && polls < 2000 { Thread.sleep(forTimeInterval: 0.001); polls += 1 }
      return (Demo.StageResult(metrics: [:], stopped: failed.isSet), reused: false)
    }, {
      failed.set()
      throw CancellationError()
    })
    #expect((try? results.0.get())?.result.stopped == true)
  }
}
