import Foundation
import Testing
@testable import Reports

/// Golden values from scripts/golden/make_tokenizer_golden.py (Hugging Face BertTokenizer and
/// BertTokenizerFast agree on every case there).
private struct TokenizerGolden: Decodable {
  struct Report: Decodable {
    let id: String
    let tokens: Int
    let hash_full: String
    let hash_128: String
  }
  struct EdgeCase: Decodable {
    let text: String
    let ids: [Int32]
    let ids_128: [Int32]
  }
  let reports: [Report]
  let edge_cases: [EdgeCase]

  static let shared: TokenizerGolden = {
    let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
      .appendingPathComponent("TokenizerGolden/wordpiece_golden.json")
    return try! JSONDecoder().decode(TokenizerGolden.self, from: Data(contentsOf: url))
  }()
}

/// FNV-1a 64 over the ids as int32 little-endian bytes, as the golden script computes it.
private func fnv1a64(_ ids: [Int32]) -> String {
  var h: UInt64 = 0xCBF2_9CE4_8422_2325
  for v in ids {
    withUnsafeBytes(of: v.littleEndian) { bytes in
      for b in bytes {
        h ^= UInt64(b)
        h = h &* 0x100_0000_01B3
      }
    }
  }
  let hex = String(h, radix: 16)
  return String(repeating: "0", count: 16 - hex.count) + hex
}

private let vocabularyURL = SharedData.root.appendingPathComponent("models/all-MiniLM-L6-v2/vocab.txt")

@Suite struct WordPieceTokenizerTests {
  @Test func edgeCasesGiveHuggingFaceIDs() throws {
    try #require(FileManager.default.fileExists(atPath: vocabularyURL.path), "\(SharedData.missingMessage)")
    let tokenizer = try WordPieceTokenizer(vocabularyURL: vocabularyURL)
    for c in TokenizerGolden.shared.edge_cases {
      #expect(tokenizer.tokenIDs(c.text) == c.ids, "ids differ for edge case \(c.text.debugDescription)")
      #expect(tokenizer.encode(c.text, maxLength: 128).ids == c.ids_128)
    }
  }

  @Test func all800ReportsGiveHuggingFaceIDs() throws {
    guard let csv = SharedData.manualReports,
      FileManager.default.fileExists(atPath: vocabularyURL.path)
    else {
      Issue.record("\(SharedData.missingMessage)")
      return
    }
    let tokenizer = try WordPieceTokenizer(vocabularyURL: vocabularyURL)
    let table = try CSVTable(contentsOf: csv)
    let idColumn = try #require(table.column("AccessionNo"))
    let textColumn = try #require(table.column("report_text"))
    let golden = Dictionary(uniqueKeysWithValues: TokenizerGolden.shared.reports.map { ($0.id, $0) })
    #expect(table.rows.count == 800 && golden.count == 800)
    var mismatches: [String] = []
    for row in table.rows {
      let expected = try #require(golden[row[idColumn]])
      let ids = tokenizer.tokenIDs(row[textColumn])
      let encoded = tokenizer.encode(row[textColumn], maxLength: 128)
      if ids.count != expected.tokens || fnv1a64(ids) != expected.hash_full || fnv1a64(encoded.ids) != expected.hash_128 {
        mismatches.append(row[idColumn])
      }
    }
    #expect(mismatches.isEmpty, "reports whose ids differ from Hugging Face's: \(mismatches.prefix(10))")
  }

  @Test func batchesArePaddedToTheLongestWithAMask() throws {
    let vocab: [String: Int32] = ["[PAD]": 0, "[UNK]": 1, "[CLS]": 2, "[SEP]": 3, "there": 4, "is": 5, "no": 6,
                                  "effusion": 7, ".": 8, "eff": 9, "##usion": 10]
    let tokenizer = try WordPieceTokenizer(vocabulary: vocab)
    let batch = tokenizer.encodeBatch(["There is no effusion.", "Effusion"], maxLength: 16)
    #expect(batch[0].ids == [2, 4, 5, 6, 7, 8, 3])
    #expect(batch[1].ids == [2, 7, 3, 0, 0, 0, 0])
    #expect(batch[1].attentionMask == [1, 1, 1, 0, 0, 0, 0])
    #expect(tokenizer.tokenize("EFFUSIONS") == ["[UNK]"])  // no piece covers the trailing "s"
    #expect(tokenizer.encode("there is no effusion .", maxLength: 4).ids == [2, 4, 5, 3])
  }

  @Test func missingVocabularyNamesTheFile() {
    #expect(throws: WordPieceTokenizer.VocabularyError.self) {
      try WordPieceTokenizer(vocabularyURL: URL(fileURLWithPath: "/nonexistent/vocab.txt"))
    }
  }
}
