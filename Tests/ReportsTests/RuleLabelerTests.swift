import Foundation
import Testing
@testable import Reports

@Suite struct RuleLabelerTests {
  static let chest = try! LabelSchema.load("chest-ct-18")
  static let labeler = try! RuleLabeler(schema: chest)

  static func label(_ text: String, _ displayName: String) -> FindingLabel {
    let j = chest.displayNames.firstIndex(of: displayName)!
    return labeler.label(text)[j]
  }

  struct Case: CustomStringConvertible, Sendable {
    var text: String
    var finding: String
    var expected: FindingLabel
    var description: String { "\(finding): \(text) → \(expected.text)" }
  }

  static let cases: [Case] = [
    // Present, with lexicon variants.
    Case(text: "Bilateral pleural effusion is present.", finding: "Pleural effusion", expected: .present),
    Case(text: "Effusion measuring 2 cm in the right hemithorax.", finding: "Pleural effusion", expected: .present),
    Case(text: "Emphysematous changes in both upper lobes.", finding: "Emphysema", expected: .present),
    Case(text: "Heart size increased.", finding: "Cardiomegaly", expected: .present),
    Case(text: "The cardiothoracic index increased in favor of the heart.", finding: "Cardiomegaly", expected: .present),
    Case(text: "Calcific atheroma plaques in the coronary arteries.", finding: "Coronary artery wall calcification", expected: .present),
    Case(text: "Calcific atheroma plaques in the coronary arteries.", finding: "Arterial wall calcification", expected: .uncertain),
    Case(text: "Atheroma plaques in the aorta and coronary arteries.", finding: "Arterial wall calcification", expected: .present),
    Case(text: "A 4 mm nodule in the right upper lobe.", finding: "Lung nodule", expected: .present),
    Case(text: "Ground-glass opacities in both lungs.", finding: "Lung opacity", expected: .present),
    Case(text: "Tubular bronchiectasis in the lower lobes.", finding: "Bronchiectasis", expected: .present),
    Case(text: "Pacemaker leads in the right ventricle.", finding: "Medical material", expected: .present),
    Case(text: "Sliding type hiatal hernia.", finding: "Hiatal hernia", expected: .present),
    // Negation before the finding.
    Case(text: "No pleural effusion.", finding: "Pleural effusion", expected: .absent),
    Case(text: "There is no evidence of pleural or pericardial effusion.", finding: "Pericardial effusion", expected: .absent),
    Case(text: "Without bronchiectasis.", finding: "Bronchiectasis", expected: .absent),
    Case(text: "No enlarged lymph nodes in pathological dimensions were detected.", finding: "Lymphadenopathy", expected: .absent),
    // Negation after the finding.
    Case(text: "Pericardial effusion-thickening was not observed.", finding: "Pericardial effusion", expected: .absent),
    Case(text: "Pleural effusion is not present.", finding: "Pleural effusion", expected: .absent),
    Case(text: "Consolidation not detected.", finding: "Consolidation", expected: .absent),
    Case(text: "Atelectasis was not seen in either lung.", finding: "Atelectasis", expected: .absent),
    // Scope: a negation stops at "but", a verb, or a comma (after).
    Case(text: "No pleural effusion but consolidation in the left lower lobe.", finding: "Consolidation", expected: .present),
    Case(text: "No mass was detected, and emphysema is seen in both lungs.", finding: "Emphysema", expected: .present),
    Case(text: "Atelectasis in the left lower lobe, pleural effusion was not observed.", finding: "Atelectasis", expected: .present),
    // Pseudo-negation.
    Case(text: "No significant change in the nodule in the right lung.", finding: "Lung nodule", expected: .present),
    // Uncertainty.
    Case(text: "Possible atelectasis in the left base.", finding: "Atelectasis", expected: .uncertain),
    Case(text: "Findings suspicious for consolidation.", finding: "Consolidation", expected: .uncertain),
    Case(text: "Bronchiectasis cannot be excluded.", finding: "Bronchiectasis", expected: .uncertain),
    Case(text: "This may represent atelectasis.", finding: "Atelectasis", expected: .uncertain),
    Case(text: "Hiatal hernia?", finding: "Hiatal hernia", expected: .uncertain),
    // Exclusions.
    Case(text: "A hypodense nodule in the thyroid gland.", finding: "Lung nodule", expected: .uncertain),
    Case(text: "Subcutaneous emphysema in the chest wall.", finding: "Emphysema", expected: .uncertain),
    // Unmentioned.
    Case(text: "Trachea and both main bronchi are open.", finding: "Emphysema", expected: .uncertain),
    Case(text: "", finding: "Cardiomegaly", expected: .uncertain),
    // Explicit normal statements.
    Case(text: "Heart size is normal.", finding: "Cardiomegaly", expected: .absent),
    // A present mention wins over a negated one elsewhere in the report.
    Case(text: "No pleural effusion on the left. Minimal pleural effusion on the right.", finding: "Pleural effusion", expected: .present),
    // Phrasing from other institutions: coordinated negation, a new clause after "and the".
    Case(text: "No focal consolidation, pleural effusion, or pneumothorax.", finding: "Pleural effusion", expected: .absent),
    Case(text: "No focal consolidation, pleural effusion, or pneumothorax.", finding: "Consolidation", expected: .absent),
    Case(text: "No pleural effusion and the heart is enlarged.", finding: "Cardiomegaly", expected: .present),
    Case(text: "Mild centrilobular emphysema.", finding: "Emphysema", expected: .present),
    Case(text: "Interval resolution of the pleural effusion.", finding: "Pleural effusion", expected: .absent),
    Case(text: "Pleural effusions are absent.", finding: "Pleural effusion", expected: .absent),
    Case(text: "Negative for pericardial effusion.", finding: "Pericardial effusion", expected: .absent),
    // A comma ends a "before" negation unless the clause after it continues a list of findings.
    Case(text: "No pneumothorax, small right pleural effusion.", finding: "Pleural effusion", expected: .present),
    Case(text: "No pleural effusion, atelectasis in the left lower lobe.", finding: "Atelectasis", expected: .present),
    Case(text: "No pleural effusion, atelectasis in the left lower lobe.", finding: "Pleural effusion", expected: .absent),
    Case(text: "No mass, consolidation in the right lower lobe.", finding: "Consolidation", expected: .present),
    Case(text: "Without contrast, consolidation is seen.", finding: "Consolidation", expected: .present),
    Case(text: "There are no signs of consolidation or atelectasis, pleural effusion is present.", finding: "Pleural effusion", expected: .present),
    Case(text: "There are no signs of consolidation or atelectasis, pleural effusion is present.", finding: "Consolidation", expected: .absent),
    Case(text: "There are no signs of consolidation or atelectasis, pleural effusion is present.", finding: "Atelectasis", expected: .absent),
    Case(text: "Free of pleural effusion and consolidation, with emphysema.", finding: "Emphysema", expected: .present),
    Case(text: "No pleural effusion, pericardial effusion or pneumothorax.", finding: "Pleural effusion", expected: .absent),
    Case(text: "No pleural effusion, pericardial effusion or pneumothorax.", finding: "Pericardial effusion", expected: .absent),
    Case(text: "No consolidation, atelectasis, or pleural effusion.", finding: "Consolidation", expected: .absent),
    Case(text: "No consolidation, atelectasis, or pleural effusion.", finding: "Atelectasis", expected: .absent),
    Case(text: "No consolidation, atelectasis, or pleural effusion.", finding: "Pleural effusion", expected: .absent),
    Case(text: "No pleural or pericardial effusion.", finding: "Pleural effusion", expected: .absent),
    Case(text: "No pleural or pericardial effusion.", finding: "Pericardial effusion", expected: .absent),
    // A verb after the comma is the predicate of the whole list when "no" opens the subject.
    Case(text: "No mass, nodule or infiltration was detected in both lungs.", finding: "Lung nodule", expected: .absent),
    Case(text: "No mass, nodule-infiltration was detected in both lungs.", finding: "Lung nodule", expected: .absent),
    Case(text: "There was no significant pneumonia, pleural effusion or pneumothorax in both lungs.", finding: "Pleural effusion", expected: .absent),
    Case(text: "No pneumothorax, mild atelectasis and consolidation.", finding: "Atelectasis", expected: .present),
    // "Unlikely", a differential ("vs", "versus") and "not excluded" before the finding are uncertain.
    Case(text: "Pleural effusion is unlikely.", finding: "Pleural effusion", expected: .uncertain),
    Case(text: "Atelectasis vs consolidation.", finding: "Atelectasis", expected: .uncertain),
    Case(text: "Atelectasis vs consolidation.", finding: "Consolidation", expected: .uncertain),
    Case(text: "Atelectasis versus consolidation.", finding: "Atelectasis", expected: .uncertain),
    Case(text: "Atelectasis versus consolidation.", finding: "Consolidation", expected: .uncertain),
    Case(text: "Not excluded: pleural effusion.", finding: "Pleural effusion", expected: .uncertain),
    // Decimal points do not end sentences; quotes and bullets do.
    Case(text: "A 1.5 mm nodule. \"No atelectasis\" • Atelectasis in the lingula.", finding: "Atelectasis", expected: .present),
  ]

  @Test(arguments: cases) func labels(_ c: Case) {
    #expect(Self.label(c.text, c.finding) == c.expected, "\(c)")
  }

  @Test func isDeterministicAndOneLabelPerFinding() {
    let text = "Pleural effusion on the right. No consolidation. Possible atelectasis. Heart size increased."
    let a = Self.labeler.label(text), b = Self.labeler.label(text)
    #expect(a == b)
    #expect(a.count == 18)
    #expect(a[Self.chest.displayNames.firstIndex(of: "Pleural effusion")!] == .present)
  }

  @Test func everyBuiltInSchemaLoadsAndCompiles() throws {
    let expected = ["chest-ct-18": 18, "abdomen-ct-30": 30, "knee-mri-14": 14, "spine-mri-9": 9]
    for name in LabelSchema.builtInNames {
      let schema = try LabelSchema.load(name)
      #expect(schema.findings.count == expected[name], "\(name)")
      #expect(schema.name == name)
      _ = try RuleLabeler(schema: schema)
    }
    let abdomen = try RuleLabeler(schema: try LabelSchema.load("abdomen-ct-30"))
    let labels = abdomen.label("Cholelithiasis. No ascites. Mild splenomegaly is possible.")
    let names = abdomen.schema.displayNames
    #expect(labels[names.firstIndex(of: "Gallstones")!] == .present)
    #expect(labels[names.firstIndex(of: "Ascites")!] == .absent)
    #expect(labels[names.firstIndex(of: "Splenomegaly")!] == .uncertain)
  }

  @Test func chestSchemaUsesCTRATEOrderAndTitles() throws {
    #expect(Self.chest.displayNames == [
      "Medical material", "Arterial wall calcification", "Cardiomegaly", "Pericardial effusion",
      "Coronary artery wall calcification", "Hiatal hernia", "Lymphadenopathy", "Emphysema", "Atelectasis", "Lung nodule",
      "Lung opacity", "Pulmonary fibrotic sequela", "Pleural effusion", "Mosaic attenuation pattern",
      "Peribronchial thickening", "Consolidation", "Bronchiectasis", "Interlobular septal thickening",
    ])
    if let url = SharedData.manualReports {
      let header = try CSVTable(contentsOf: url).header
      #expect(Array(header.dropFirst(2)) == Self.chest.displayNames)
    }
  }
}

@Suite struct SchemaFileTests {
  static func decode(_ json: String) throws -> LabelSchema { try LabelSchema.decode(Data(json.utf8), source: "user.json") }

  static let valid = """
    {"name": "mine", "modality": "chest CT", "findings": [
      {"key": "pneumothorax", "displayName": "Pneumothorax", "prompt": "pneumothorax", "synonyms": ["pneumothora*"]}]}
    """

  @Test func aUserSchemaFileLoadsAndLabels() throws {
    let dir = try temporaryDirectory()
    defer { try? FileManager.default.removeItem(at: dir) }
    let url = dir.appendingPathComponent("mine.json")
    try Self.valid.write(to: url, atomically: true, encoding: .utf8)
    let schema = try LabelSchema.load(url.path)
    #expect(schema.name == "mine" && schema.version == 1)
    let labeler = try RuleLabeler(schema: schema)
    #expect(labeler.label("Small right pneumothorax.") == [.present])
    #expect(labeler.label("No pneumothorax.") == [.absent])
  }

  struct Bad: CustomStringConvertible, Sendable {
    var json: String
    var message: String
    var description: String { message }
  }

  static let bad: [Bad] = [
    Bad(json: "{", message: "not valid JSON"),
    Bad(json: #"{"name": "x", "modality": "m", "findings": [], "extra": 1}"#, message: "unknown key(s) extra at the top level"),
    Bad(json: #"{"name": "x", "modality": "m", "findings": []}"#, message: "'findings' is empty"),
    Bad(json: #"{"name": "x", "findings": []}"#, message: "missing key 'modality'"),
    Bad(json: #"{"name": "x", "modality": "m", "findings": [{"key": "a", "displayName": "A", "prompt": "a", "synonym": ["a"]}]}"#,
        message: "unknown key(s) synonym at findings[0]"),
    Bad(json: #"{"name": "x", "modality": "m", "findings": [{"key": "A b", "displayName": "A", "prompt": "a", "synonyms": ["a"]}]}"#,
        message: "findings[0].key 'A b' must be lowercase letters"),
    Bad(json: #"{"name": "x", "modality": "m", "findings": [{"key": "a", "displayName": "A", "prompt": "a", "synonyms": []}]}"#,
        message: "findings[0] (a): 'synonyms' is empty"),
    Bad(json: #"{"name": "x", "modality": "m", "findings": [{"key": "a", "displayName": "A", "prompt": "a", "synonyms": ["a"]}, {"key": "a", "displayName": "B", "prompt": "b", "synonyms": ["b"]}]}"#,
        message: "duplicate key 'a'"),
    Bad(json: #"{"name": "x", "modality": "m", "findings": [{"key": "a", "displayName": "A", "prompt": "a", "synonyms": ["... a"]}]}"#,
        message: "a pattern cannot start with a gap"),
    Bad(json: #"{"name": "x", "modality": "m", "findings": [{"key": "a", "displayName": "A", "prompt": "a", "synonyms": ["a ...99 b"]}]}"#,
        message: "with N in 1–15"),
    Bad(json: #"{"name": "x", "modality": "m", "findings": [{"key": "a", "displayName": "A", "prompt": "a", "synonyms": ["*a"]}]}"#,
        message: "'*' must end a word"),
  ]

  @Test(arguments: bad) func invalidSchemasAreRejectedWithAClearMessage(_ c: Bad) {
    do {
      _ = try Self.decode(c.json)
      Issue.record("accepted: \(c.message)")
    } catch {
      let text = "\(error)"
      #expect(text.contains(c.message), "\(text)")
      #expect(text.contains("user.json"), "\(text)")
    }
  }

  @Test func unknownSchemaNamesListTheBuiltIns() {
    do {
      _ = try LabelSchema.load("chest-ct-19")
      Issue.record("accepted an unknown name")
    } catch {
      #expect("\(error)".contains("chest-ct-18, abdomen-ct-30, knee-mri-14, spine-mri-9"))
    }
  }
}

@Suite struct CSVAndLayoutTests {
  @Test func quotedFieldsWithCommasQuotesAndNewlines() throws {
    let text = "id,text\r\n1,\"a, b\"\r\n2,\"say \"\"hi\"\"\nnext line\"\n3,plain\n"
    let table = try CSVTable(data: Data(text.utf8))
    #expect(table.header == ["id", "text"])
    #expect(table.rows == [["1", "a, b"], ["2", "say \"hi\"\nnext line"], ["3", "plain"]])
    let again = try CSVTable(data: Data(table.serialized().utf8))
    #expect(again.rows == table.rows)
  }

  @Test func malformedCSVIsReported() {
    #expect(throws: ReportsError.self) { try CSVTable(data: Data("a,b\n1,\"open\n".utf8)) }
    #expect(throws: ReportsError.self) { try CSVTable(data: Data("a,b\n1,2,3\n".utf8)) }
    #expect(throws: ReportsError.self) { try CSVTable(data: Data()) }
  }

  @Test func knownLayoutsAreRecognised() throws {
    let ctrate = try ReportTable.layout(header: ["VolumeName", "Findings_EN", "Impressions_EN", "x"], idColumn: nil, textColumns: nil, path: "p")
    #expect(ctrate == .init(name: "CT-RATE", idColumn: "VolumeName", textColumns: ["Findings_EN", "Impressions_EN"]))
    let merlin = try ReportTable.layout(header: ["study id", "Findings", "Impression"], idColumn: nil, textColumns: nil, path: "p")
    #expect(merlin.idColumn == "study id" && merlin.textColumns == ["Findings", "Impression"])
    #expect(throws: ReportsError.self) { try ReportTable.layout(header: ["a", "b"], idColumn: nil, textColumns: nil, path: "p") }
    #expect(throws: ReportsError.self) { try ReportTable.layout(header: ["a", "b"], idColumn: "a", textColumns: ["c"], path: "p") }
    let named = try ReportTable.layout(header: ["a", "b", "c"], idColumn: "a", textColumns: ["c", "b"], path: "p")
    #expect(named.textColumns == ["c", "b"])
  }

  @Test func ctrateStyleFileReadsAllReports() throws {
    guard let url = SharedData.ctrateStyleReports else {
      print(SharedData.missingMessage)
      return
    }
    let (reports, layout) = try ReportTable.read(url)
    #expect(layout.name == "CT-RATE")
    #expect(reports.count == 800)
    #expect(reports[0].id == "train_1.nii.gz")
  }

  @Test func atomicWriteReplacesTheFileWhole() throws {
    let dir = try temporaryDirectory()
    defer { try? FileManager.default.removeItem(at: dir) }
    let url = dir.appendingPathComponent("sub/labels.csv")
    try AtomicFile.write("one\n", to: url)
    try AtomicFile.write("two\n", to: url)
    #expect(try String(contentsOf: url, encoding: .utf8) == "two\n")
    let leftovers = try FileManager.default.contentsOfDirectory(atPath: url.deletingLastPathComponent().path)
    #expect(leftovers == ["labels.csv"])
  }

  @Test func evaluationCountsOnlyOneAsPositive() {
    let e = LabelEvaluation(findings: ["A", "B"],
                            predicted: [[.present, .uncertain], [.absent, .present], [.present, .present]],
                            reference: [[.present, .present], [.present, .absent], [.uncertain, .present]])
    #expect(e.rows[0].truePositives == 1 && e.rows[0].falsePositives == 1 && e.rows[0].falseNegatives == 1)
    #expect(abs(e.rows[0].f1 - 0.5) < 1e-12)
    #expect(e.rows[1].truePositives == 1 && e.rows[1].falsePositives == 1 && e.rows[1].falseNegatives == 1)
    #expect(abs(e.macroF1 - 0.5) < 1e-12)
  }
}
