import Foundation
@testable import Reports

/// Paths to the shared real data (`../shared/data` beside the checkout); nil where absent.
enum SharedData {
  static let root: URL = {
    // Tests/ReportsTests/Support.swift → repository root → ../shared/data
    let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
      .deletingLastPathComponent()
    return repo.deletingLastPathComponent().appendingPathComponent("shared/data")
  }()
  static var manualReports: URL? {
    let url = root.appendingPathComponent("reports/ctrate_manual_train.csv")
    return FileManager.default.fileExists(atPath: url.path) ? url : nil
  }
  static var ctrateStyleReports: URL? {
    let url = root.appendingPathComponent("reports/ctrate_style/train_reports.csv")
    return FileManager.default.fileExists(atPath: url.path) ? url : nil
  }
  static var ctrateStyleLabels: URL? {
    let url = root.appendingPathComponent("reports/ctrate_style/train_multi_abnormality_labels.csv")
    return FileManager.default.fileExists(atPath: url.path) ? url : nil
  }
  static let missingMessage = "skipped: ../shared/data/reports is absent (the real reports live beside the checkout)"
}

func temporaryDirectory() throws -> URL {
  let dir = FileManager.default.temporaryDirectory.appendingPathComponent("greenrfm-reports-\(UUID().uuidString)")
  try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
  return dir
}
