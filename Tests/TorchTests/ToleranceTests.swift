import Foundation
import Testing
import Torch

/// The comparison helper itself: a golden test is only as good as its ability to fail.
@Suite("Golden comparison helper")
struct ToleranceTests {
  @Test("a relative difference of 1e-4 is reported at float32 tolerance")
  func reportsDifferences() throws {
    let golden = try GoldenFile.load()
    let y = try golden.tensor("conv3d.a.y")
    try expectClose(y * (1 + 1e-6), y, .float32, "within tolerance")
    withKnownIssue("a 1e-4 relative change must fail") {
      try expectClose(y * (1 + 1e-4), y, .float32, "outside tolerance")
    }
    withKnownIssue("a shape difference must fail") {
      try expectClose(y.flatten(), y, .float32, "shape")
    }
  }

  @Test func nanAndInfinity() {
    #expect(Tolerance.exact.accepts(.nan, .nan))
    #expect(!Tolerance.float32.accepts(.nan, 1))
    #expect(Tolerance.float32.accepts(.infinity, .infinity))
    #expect(!Tolerance.float32.accepts(.infinity, -.infinity))
    #expect(!Tolerance.float32.accepts(1e30, .infinity))
  }
}
