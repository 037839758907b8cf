import Foundation
import Testing
@testable import Reports

/// Duplicate and empty ids, empty texts, and id matching in `evaluate`.
@Suite struct ScreeningAndMatchingTests {
  @Test func duplicateIdsKeepTheFirstRowEmptyIdsAreSkippedEmptyTextsListed() {
    let rows = [
      Report(id: "A", text: "No effusion."), Report(id: "B", text: "Atelectasis."), Report(id: "A", text: "Effusion."),
      Report(id: "", text: "Emphysema."), Report(id: "  ", text: "Nodule."), Report(id: "C", text: "  "),
      Report(id: "B", text: "x"), Report(id: "A", text: "y"),
    ]
    let s = ReportTable.screen(rows)
    #expect(s.reports.map(\.id) == ["A", "B", "C"])
    #expect(s.reports[0].text == "No effusion.")
    #expect(s.duplicateIDs == ["A", "B"])
    #expect(s.duplicateRows == 3)
    #expect(s.emptyIDRows == 2)
    #expect(s.emptyTextIDs == ["C"])
    #expect(ReportTable.sample(["1", "2", "3"], limit: 2) == "1, 2, …")
    #expect(ReportTable.sample(["1"]) == "1")
  }

  @Test func evaluationJoinCountsMatchesAndIgnoresDuplicates() {
    let p: [[FindingLabel]] = [[.present], [.absent], [.absent], [.present]]
    let r: [[FindingLabel]] = [[.present], [.present], [.absent]]
    let (pp, rr, match) = LabelEvaluation.join(predictedIDs: ["a.nii.gz", "b", "a", "z"], predicted: p,
                                               referenceIDs: ["a", "b", "b"], reference: r)
    #expect(pp == [[.present], [.absent]])
    #expect(rr == [[.present], [.present]])
    #expect(match == LabelEvaluation.IDMatch(predicted: 3, reference: 2, matched: 2, duplicatePredicted: 1,
                                            duplicateReference: 1))
    #expect(match.summary == "matched 2 of 3 predicted and 2 reference ids")
    let warning = match.warning
    #expect(warning?.contains("1 predicted id(s) are not in the reference") == true)
    #expect(LabelEvaluation.IDMatch(predicted: 5, reference: 5, matched: 5).warning == nil)
  }

  @Test func compareOfFilesReportsTheMatch() throws {
    let dir = try temporaryDirectory()
    defer { try? FileManager.default.removeItem(at: dir) }
    let schema = LLMLabelerTests.schema
    let predicted = dir.appendingPathComponent("p.csv"), reference = dir.appendingPathComponent("r.csv")
    try "id,Alpha,Beta,Gamma\nx,1,0,-1\nx,0,0,0\ny,1,1,1\n".write(to: predicted, atomically: true, encoding: .utf8)
    try "id,Alpha,Beta,Gamma\nx,1,0,0\nw,1,1,1\n".write(to: reference, atomically: true, encoding: .utf8)
    let e = try LabelEvaluation.compare(predictedCSV: predicted, referenceCSV: reference, schema: schema)
    #expect(e.reportCount == 1)
    #expect(e.rows[0].truePositives == 1 && e.rows[0].falsePositives == 0)
    #expect(e.idMatch == LabelEvaluation.IDMatch(predicted: 2, reference: 2, matched: 1, duplicatePredicted: 1))
    let ids = e.jsonObject()["ids"] as? [String: Int]
    #expect(ids?["matched"] == 1)
  }
}
