import Foundation
import MedicalImaging
import Reports

/// Readers for the cohort layouts GreenRFM trains and evaluates on (see `docs/DATA.md` for each layout, with
/// examples on `../shared/data`).
///
/// Common rules: label columns are matched to the schema by display name or key, compared case-, space-, `_`- and
/// `-`-insensitively; label cells are `1`, `0`, `-1` (also `1.0`, `0.0`, `-1.0`), an empty cell is −1; ids are
/// trimmed; an empty or repeated id, and a row whose volume file is missing, go to `Cohort.skipped` (not fatal).
/// Every error names the file.
public enum CohortLayout {
  /// A reports CSV (no volumes), labels in the same file or in `labelsCSV`.
  ///
  /// - Parameters:
  ///   - csv: the reports CSV.
  ///   - idColumn: the id column; nil = from a known layout (`VolumeName`, `study id`, `AccessionNo`, see
  ///     `ReportTable.layout`).
  ///   - textColumns: the report text columns, joined by a line break; nil = from a known layout, or none.
  ///   - labelsCSV: a separate labels CSV joined by id; nil = label columns are in `csv`.
  ///   - labelsIDColumn: the id column of `labelsCSV` (default: `idColumn`).
  ///   - allowMissingFindings: a finding with no column is filled with −1 (and listed in `warnings`) instead of
  ///     being an error.
  /// - Returns: one item per row of `csv` (with `volumePath` nil). Rows whose id is not in `labelsCSV` get −1
  ///   labels (counted in `warnings`).
  /// - Throws: `GreenRFMError.missingFile` / `.invalidData` naming the file: unreadable CSV, unknown id or text
  ///   column, missing label column (listing the expected titles and the columns found), a bad label cell.
  public static func reports(csv: URL, idColumn: String?, textColumns: [String]?, labelsCSV: URL?,
                             labelsIDColumn: String?, schema: LabelSchema, allowMissingFindings: Bool = false) throws -> Cohort {
    let table = try CohortCSV.read(csv, what: "reports CSV")
    let detected = try? ReportTable.layout(header: table.header, idColumn: nil, textColumns: nil, path: csv.path)
    guard let idName = idColumn ?? detected?.idColumn else {
      throw GreenRFMError.invalidData(
        path: csv.path,
        reason: "no id column given and the header matches no known layout (columns: \(table.header.joined(separator: ", ")))")
    }
    let idIndex = try CohortCSV.column(table, path: csv.path, named: [idName], role: "id")
    let textNames = textColumns ?? detected?.textColumns ?? []
    let textIndices = try textNames.map { try CohortCSV.column(table, path: csv.path, named: [$0], role: "text") }

    var assembler = CohortAssembler(name: csv.lastPathComponent, schema: schema)
    let width = schema.findings.count
    if let labelsCSV {
      let l = try CohortCSV.labelsByID(labelsCSV, idColumns: [labelsIDColumn ?? idName], schema: schema,
                                       allowMissing: allowMissingFindings)
      if !l.missingFindings.isEmpty {
        assembler.warnings.append("\(labelsCSV.lastPathComponent): no column for \(l.missingFindings.joined(separator: ", ")); filled with -1")
      }
      var unlabelled = 0
      for row in table.rows {
        let id = row[idIndex].trimmingCharacters(in: .whitespacesAndNewlines)
        let labels = l.labels[id]
        if labels == nil && !id.isEmpty { unlabelled += 1 }
        assembler.add(id: row[idIndex], text: text(row, textIndices), labels: labels ?? Array(repeating: -1, count: width), volume: nil)
      }
      if unlabelled > 0 {
        assembler.warnings.append("\(unlabelled) report(s) have no row in \(labelsCSV.lastPathComponent); their labels are -1")
      }
      let reportIDs = Set(assembler.items.map(\.id))
      let orphans = l.order.filter { !reportIDs.contains($0) }.count
      if orphans > 0 {
        assembler.warnings.append("\(orphans) id(s) of \(labelsCSV.lastPathComponent) have no report in \(csv.lastPathComponent); left out")
      }
    } else {
      let columns = try CohortCSV.labelColumns(table, path: csv.path, schema: schema, excluding: Set([idIndex] + textIndices),
                                               allowMissing: allowMissingFindings)
      let missing = zip(schema.findings, columns).filter { $0.1 == nil }.map(\.0.displayName)
      if !missing.isEmpty {
        assembler.warnings.append("\(csv.lastPathComponent): no column for \(missing.joined(separator: ", ")); filled with -1")
      }
      for (r, row) in table.rows.enumerated() {
        let labels = try CohortCSV.labels(row, columns: columns, header: table.header, path: csv.path, record: r + 2)
        assembler.add(id: row[idIndex], text: text(row, textIndices), labels: labels, volume: nil)
      }
    }
    return assembler.cohort()
  }

  /// CT-RATE: a volumes folder, the reports CSV (`VolumeName`, `Findings_EN`, `Impressions_EN`) and the
  /// multi-abnormality labels CSV (`VolumeName` + the 18 findings).
  ///
  /// Volumes are found by file name anywhere under `volumes` (CT-RATE ships `train/train_1/train_1_a/train_1_a_1.nii.gz`;
  /// a flat folder works too); `VolumeName` with or without `.nii.gz`. CT-RATE's current release stores HU, so no
  /// rescaling is applied beyond the NIfTI header's own `scl_slope`/`scl_inter`.
  /// - Returns: items in the reports CSV's order, then ids only in the labels CSV (report nil); reports without a
  ///   labels row get −1 labels. Missing volume files are in `skipped`.
  /// - Throws: `GreenRFMError` naming the file (missing folder or CSV, missing column, bad label cell).
  public static func ctRate(volumes: URL, reportsCSV: URL, labelsCSV: URL, schema: LabelSchema) throws -> Cohort {
    let index = try VolumeIndex(folder: volumes)
    return try volumeCohort(
      name: "CT-RATE", schema: schema, reportsCSV: reportsCSV, reportIDColumns: ["VolumeName"],
      textColumnChoices: [["Findings_EN"], ["Impressions_EN"]], labelsCSV: labelsCSV, labelIDColumns: ["VolumeName"],
      allowMissingFindings: false, readOptions: VolumeReader.Options()
    ) { id in
      index.find(id.lowercased().hasSuffix(".nii.gz") || id.lowercased().hasSuffix(".nii") ? [id] : [id + ".nii.gz", id + ".nii", id],
                 in: volumes)
    }
  }

  /// The read options for RAD-ChestCT `.npz` files: array `ct`, 0.8 mm isotropic, C-order `[slice, row, column]`
  /// arrays read as LPS (RAD-ChestCT's published preprocessing; see docs/DATA.md).
  public static let radChestCTReadOptions = VolumeReader.Options(npzSpacingMM: [0.8, 0.8, 0.8], npzOrientation: .lps,
                                                                 npzArrayName: "ct")

  /// RAD-ChestCT: `.npz` volumes named `<NoteAcc_DEID>.npz`, and the abnormality × location labels CSV
  /// (`NoteAcc_DEID`, then columns `abnormality*location`) mapped onto the chest findings by
  /// `RADChestCTMapping` (a finding is 1 if any of its columns is 1, 0 if it has columns and none is 1, −1 if the
  /// file has no column for it or the schema finding has no RAD-ChestCT counterpart; never guessed).
  ///
  /// - Parameter readOptions: how the `.npz` files are read (default `radChestCTReadOptions`).
  /// - Returns: items in the labels CSV's order (report nil). Findings without any column are listed in `warnings`.
  /// - Throws: `GreenRFMError` naming the file.
  public static func radChestCT(volumes: URL, labelsCSV: URL, schema: LabelSchema,
                                readOptions: VolumeReader.Options = radChestCTReadOptions) throws -> Cohort {
    let index = try VolumeIndex(folder: volumes)
    let table = try CohortCSV.read(labelsCSV, what: "RAD-ChestCT labels CSV")
    let idIndex = try CohortCSV.column(table, path: labelsCSV.path, named: ["NoteAcc_DEID"], role: "id")
    let columns = RADChestCTMapping.columns(header: table.header, schema: schema, excluding: idIndex)
    var assembler = CohortAssembler(name: "RAD-ChestCT", schema: schema)
    let unmapped = zip(schema.findings, columns).filter { $0.1.isEmpty }.map(\.0.displayName)
    if !unmapped.isEmpty {
      assembler.warnings.append("RAD-ChestCT has no counterpart for \(unmapped.joined(separator: ", ")) in \(labelsCSV.lastPathComponent); filled with -1")
    }
    if unmapped.count == schema.findings.count {
      throw GreenRFMError.invalidData(
        path: labelsCSV.path,
        reason: "no RAD-ChestCT label column maps to any finding of schema \(schema.name) (columns: \(table.header.prefix(12).joined(separator: ", "))…)")
    }
    for (r, row) in table.rows.enumerated() {
      var labels: [Int8] = []
      for cols in columns {
        if cols.isEmpty { labels.append(-1); continue }
        var value: Int8 = -1
        for c in cols {
          let v = try CohortCSV.label(row[c], path: labelsCSV.path, record: r + 2, column: table.header[c])
          if v == 1 { value = 1; break }
          if v == 0 { value = 0 }
        }
        labels.append(value)
      }
      let id = row[idIndex].trimmingCharacters(in: .whitespacesAndNewlines)
      let names = id.lowercased().hasSuffix(".npz") ? [id] : [id + ".npz", id + ".npy", id]
      assembler.add(id: id, text: nil, labels: labels, volume: id.isEmpty ? nil : index.find(names, in: volumes))
    }
    return assembler.cohort(readOptions: readOptions)
  }

  /// Merlin: NIfTI volumes named `<study id>.nii.gz` (anywhere under `volumes`), a reports CSV (`study id` or
  /// `study_id`, `Findings`, `Impression`/`Impressions`) and optionally a labels CSV with the 30 abdomen findings
  /// (id column `study id`/`study_id`/`StudyID`/`Study ID`, or the reports' id title).
  ///
  /// - Parameter labelsCSV: nil = every label −1 (a report-only cohort for stage 1).
  /// - Returns: items in the reports CSV's order, then ids only in the labels CSV. Missing volumes are in `skipped`.
  /// - Throws: `GreenRFMError` naming the file.
  public static func merlin(volumes: URL, reportsCSV: URL, labelsCSV: URL?, schema: LabelSchema) throws -> Cohort {
    let index = try VolumeIndex(folder: volumes)
    let ids = ["study id", "study_id", "StudyID", "Study ID", "study_id_deid", "id"]
    return try volumeCohort(
      name: "Merlin", schema: schema, reportsCSV: reportsCSV, reportIDColumns: ids,
      textColumnChoices: [["Findings", "findings"], ["Impression", "Impressions", "impression"]], labelsCSV: labelsCSV,
      labelIDColumns: ids, allowMissingFindings: false, readOptions: VolumeReader.Options()
    ) { id in
      let lower = id.lowercased()
      return index.find(lower.hasSuffix(".nii.gz") || lower.hasSuffix(".nii") ? [id] : [id + ".nii.gz", id + ".nii"], in: volumes)
    }
  }

  /// A generic manifest CSV: an id column, a volume column (a file or DICOM folder; relative paths are relative to
  /// the CSV's folder), an optional report column, then label columns by display name or key.
  ///
  /// Label columns: either every schema finding has one, or none does (an unlabelled manifest: all −1, noted in
  /// `warnings`); some but not all is an error (a misspelt title must not silently become −1).
  /// - Parameter reportColumn: the report column; when the file has no such column, reports are nil.
  /// - Returns: items in file order; rows whose volume does not exist are in `skipped`.
  /// - Throws: `GreenRFMError` naming the file (unknown id or volume column, partial label columns, bad cell).
  public static func manifest(csv: URL, schema: LabelSchema, idColumn: String = "id", volumeColumn: String = "volume",
                              reportColumn: String? = "report") throws -> Cohort {
    let table = try CohortCSV.read(csv, what: "manifest CSV")
    let idIndex = try CohortCSV.column(table, path: csv.path, named: [idColumn], role: "id")
    let volumeIndex = try CohortCSV.column(table, path: csv.path, named: [volumeColumn], role: "volume")
    let reportIndex = reportColumn.flatMap { table.column($0) }
    let excluded = Set([idIndex, volumeIndex] + (reportIndex.map { [$0] } ?? []))
    var columns = try CohortCSV.labelColumns(table, path: csv.path, schema: schema, excluding: excluded, allowMissing: true)
    var assembler = CohortAssembler(name: csv.lastPathComponent, schema: schema)
    if columns.allSatisfy({ $0 == nil }) {
      assembler.warnings.append("\(csv.lastPathComponent): no label columns; every label is -1")
    } else if columns.contains(where: { $0 == nil }) {
      columns = try CohortCSV.labelColumns(table, path: csv.path, schema: schema, excluding: excluded, allowMissing: false)
    }
    let base = csv.deletingLastPathComponent()
    for (r, row) in table.rows.enumerated() {
      let labels = try CohortCSV.labels(row, columns: columns, header: table.header, path: csv.path, record: r + 2)
      let raw = row[volumeIndex].trimmingCharacters(in: .whitespaces)
      let volume: Result<String, VolumeLookupFailure>
      if raw.isEmpty {
        volume = .failure(VolumeLookupFailure(reason: "empty volume path (record \(r + 2))"))
      } else {
        let url = raw.hasPrefix("/") ? URL(fileURLWithPath: raw) : base.appendingPathComponent(raw)
        let path = url.standardizedFileURL.path
        volume = FileManager.default.fileExists(atPath: path)
          ? .success(path) : .failure(VolumeLookupFailure(reason: "volume file not found: \(path)"))
      }
      assembler.add(id: row[idIndex], text: reportIndex.map { row[$0] }, labels: labels, volume: volume)
    }
    return assembler.cohort()
  }

  /// Volumes without labels or reports: a list of volume files (NIfTI, NPZ/NPY, a DICOM file) or DICOM series
  /// folders, for scoring only (`greenrfm predict --zero-shot FILE...`).
  ///
  /// Each item's id is the last path component as given (`ts_chest_cta_full_3mm.nii.gz`,
  /// `ts_abdomen_ct_series_j2k`), or, when two different paths end alike (`sub-01/ct.nii.gz`, `sub-02/ct.nii.gz`),
  /// the path below the deepest folder that holds them all; its labels are all −1 and its report is nil. Relative paths are resolved against
  /// the current directory. Whether a file is a readable volume is found out later, by the loader (an unreadable
  /// one becomes a loader failure, not an error here).
  /// - Parameters:
  ///   - paths: the files or folders, in output order.
  ///   - readOptions: how the volumes are read (NPZ geometry, DICOM series choices); default `VolumeReader.Options()`.
  /// - Returns: one item per path; a path that does not exist, and a second path with the same last component (the
  ///   first is kept), go to `skipped` with the reason.
  public static func volumeFiles(_ paths: [URL], schema: LabelSchema,
                                 readOptions: VolumeReader.Options = VolumeReader.Options()) -> Cohort {
    var assembler = CohortAssembler(name: "volume files", schema: schema)
    let unlabelled = [Int8](repeating: -1, count: schema.findings.count)
    let full = paths.map { $0.standardizedFileURL.path }
    // Ids: the last path component; where two different paths share one (`sub-01/ct.nii.gz`, `sub-02/ct.nii.gz`),
    // every id is the path relative to the deepest folder that holds them all (`sub-01/ct.nii.gz`).
    let names = paths.map(\.lastPathComponent)
    var firstPath: [String: String] = [:]
    var clash = false
    for (name, path) in zip(names, full) {
      if let seen = firstPath[name], seen != path { clash = true }
      firstPath[name] = firstPath[name] ?? path
    }
    var ids = names
    if clash {
      var common = full[0].split(separator: "/", omittingEmptySubsequences: false).dropLast().map(String.init)
      for path in full.dropFirst() {
        let parts = path.split(separator: "/", omittingEmptySubsequences: false).dropLast().map(String.init)
        var n = 0
        while n < min(common.count, parts.count), common[n] == parts[n] { n += 1 }
        common = Array(common.prefix(n))
      }
      ids = full.map { path in
        path.split(separator: "/", omittingEmptySubsequences: false).map(String.init).dropFirst(common.count).joined(separator: "/")
      }
    }
    for (id, path) in zip(ids, full) {
      let volume: Result<String, VolumeLookupFailure> = FileManager.default.fileExists(atPath: path)
        ? .success(path) : .failure(VolumeLookupFailure(reason: "volume file not found: \(path)"))
      assembler.add(id: id, text: nil, labels: unlabelled, volume: volume)
    }
    return assembler.cohort(readOptions: readOptions)
  }

  // MARK: - Helpers

  static func text(_ row: [String], _ indices: [Int]) -> String? {
    guard !indices.isEmpty else { return nil }
    return indices.map { row[$0] }.filter { !$0.isEmpty }.joined(separator: "\n")
  }

  /// Reports CSV + labels CSV + volume lookup (CT-RATE and Merlin).
  static func volumeCohort(name: String, schema: LabelSchema, reportsCSV: URL, reportIDColumns: [String],
                           textColumnChoices: [[String]], labelsCSV: URL?, labelIDColumns: [String],
                           allowMissingFindings: Bool, readOptions: VolumeReader.Options,
                           volume: (String) -> Result<String, VolumeLookupFailure>) throws -> Cohort {
    let table = try CohortCSV.read(reportsCSV, what: "\(name) reports CSV")
    let idIndex = try CohortCSV.column(table, path: reportsCSV.path, named: reportIDColumns, role: "id")
    let textIndices = textColumnChoices.compactMap { choice in choice.lazy.compactMap { table.column($0) }.first }
    guard !textIndices.isEmpty else {
      throw GreenRFMError.invalidData(
        path: reportsCSV.path,
        reason: "no report text column (looked for \(textColumnChoices.flatMap { $0 }.joined(separator: ", ")); columns: \(table.header.joined(separator: ", ")))")
    }
    var assembler = CohortAssembler(name: name, schema: schema)
    let width = schema.findings.count
    var labels: [String: [Int8]] = [:], labelOrder: [String] = []
    if let labelsCSV {
      let idTitles = labelIDColumns.contains(table.header[idIndex]) ? labelIDColumns : [table.header[idIndex]] + labelIDColumns
      let l = try CohortCSV.labelsByID(labelsCSV, idColumns: idTitles, schema: schema, allowMissing: allowMissingFindings)
      (labels, labelOrder) = (l.labels, l.order)
    } else {
      assembler.warnings.append("\(name): no labels CSV; every label is -1")
    }
    var unlabelled = 0
    for row in table.rows {
      let id = row[idIndex].trimmingCharacters(in: .whitespacesAndNewlines)
      let l = labels[id]
      if l == nil && labelsCSV != nil && !id.isEmpty { unlabelled += 1 }
      assembler.add(id: id, text: text(row, textIndices), labels: l ?? Array(repeating: -1, count: width),
                    volume: id.isEmpty ? nil : volume(id))
    }
    if unlabelled > 0 { assembler.warnings.append("\(unlabelled) report(s) have no labels row; their labels are -1") }
    let reportIDs = Set(table.rows.map { $0[idIndex].trimmingCharacters(in: .whitespacesAndNewlines) })
    let extra = labelOrder.filter { !reportIDs.contains($0) }
    for id in extra { assembler.add(id: id, text: nil, labels: labels[id]!, volume: volume(id)) }
    if !extra.isEmpty { assembler.warnings.append("\(extra.count) labelled id(s) have no report; their report is nil") }
    return assembler.cohort(readOptions: readOptions)
  }
}

/// How RAD-ChestCT's abnormality × location labels map onto the `chest-ct-18` findings (by finding key).
///
/// A pattern is `abnormality` (any location, and a plain `abnormality` column), `abnormality*lung` (any lung
/// location: a location containing `lung`, `lobe` or `lingula`, or `right_`/`left_` + `upper`/`mid`/`lower`), or
/// `abnormality*location` (that exact column). Abnormality names are RAD-ChestCT's (SARLE vocabulary,
/// Draelos et al. 2021). See docs/DATA.md for the table and the findings left at −1.
public enum RADChestCTMapping {
  /// Finding key → patterns. Findings absent here (hiatal hernia, mosaic attenuation pattern) have no RAD-ChestCT
  /// counterpart and stay −1.
  public static let patterns: [String: [String]] = [
    "medical_material": ["catheter_or_port", "chest_tube", "gi_tube", "tracheal_tube", "pacemaker_or_defib", "stent",
                         "heart_valve_replacement", "hardware", "clip", "staple", "suture", "breast_implant"],
    "arterial_wall_calcification": ["atherosclerosis", "calcification*aorta", "plaque*aorta"],
    "cardiomegaly": ["cardiomegaly"],
    "pericardial_effusion": ["pericardial_effusion"],
    "coronary_artery_wall_calcification": ["coronary_artery_disease"],
    "lymphadenopathy": ["lymphadenopathy"],
    "emphysema": ["emphysema"],
    "atelectasis": ["atelectasis"],
    "lung_nodule": ["nodule*lung", "nodulegr1cm*lung", "scattered_nod*lung"],
    "lung_opacity": ["opacity*lung", "groundglass*lung", "airspace_disease*lung", "infiltrate*lung"],
    "pulmonary_fibrotic_sequela": ["fibrosis*lung", "scarring*lung", "bandlike_or_linear*lung"],
    "pleural_effusion": ["pleural_effusion"],
    "peribronchial_thickening": ["bronchial_wall_thickening"],
    "consolidation": ["consolidation"],
    "bronchiectasis": ["bronchiectasis"],
    "interlobular_septal_thickening": ["septal_thickening"],
  ]

  /// Whether a RAD-ChestCT location name is in the lungs.
  public static func isLungLocation(_ location: String) -> Bool {
    let l = location.lowercased()
    if l.contains("lung") || l.contains("lobe") || l.contains("lingula") { return true }
    return ["right_upper", "right_mid", "right_lower", "left_upper", "left_mid", "left_lower"].contains(l)
  }

  /// Whether a label column (`abnormality` or `abnormality*location`) matches a pattern.
  public static func matches(column: String, pattern: String) -> Bool {
    let c = column.split(separator: "*", maxSplits: 1).map { String($0).trimmingCharacters(in: .whitespaces).lowercased() }
    let p = pattern.split(separator: "*", maxSplits: 1).map(String.init)
    guard let abnormality = c.first, abnormality == p[0] else { return false }
    if p.count == 1 { return true }
    guard c.count == 2 else { return false }
    return p[1] == "lung" ? isLungLocation(c[1]) : c[1] == p[1]
  }

  /// For each schema finding, the label columns that count for it (empty = none: the finding is −1).
  static func columns(header: [String], schema: LabelSchema, excluding: Int) -> [[Int]] {
    schema.findings.map { finding in
      let pats = patterns[finding.key] ?? []
      return header.indices.filter { i in i != excluding && pats.contains { matches(column: header[i], pattern: $0) } }
    }
  }
}
