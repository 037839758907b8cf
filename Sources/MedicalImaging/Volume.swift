import Foundation

/// Medical volumes for GreenRFM: readers (NIfTI, DICOM, NPZ), geometry, transforms and the preprocessing cache.
///
/// Conventions, stated once for the whole module:
/// - Voxels are stored with i fastest, then j, then k (NIfTI / Fortran order): voxel (i, j, k) is
///   `voxels[i + nI * (j + nJ * k)]`. For DICOM, i runs along a row (i.e. over columns), j over rows, k over slices.
/// - `affine` maps voxel indices (i, j, k, 1) to world coordinates in mm in the RAS+ convention of NIfTI and
///   nibabel: +x towards the patient's right, +y anterior, +z superior. DICOM's LPS+ patient coordinates are
///   converted by negating x and y.
/// - Axis codes name, for each voxel axis, the direction in which its index grows, as nibabel's `aff2axcodes`
///   does: "RAS" means i grows towards Right, j towards Anterior, k towards Superior.
/// - A volume becomes a `[1, D, H, W]` tensor with D = k, H = j, W = i (see `VolumeTensor`), which is the same
///   memory order, so no copy is needed.
public enum MedicalImaging {}

/// A 4×4 affine matrix (row-major), mapping voxel (i, j, k, 1) to world (x, y, z, 1) in mm (RAS+).
public struct Affine: Equatable, Sendable, Codable {
  /// The 16 entries, row-major.
  public var m: [Double]

  public init(_ rows: [[Double]]) {
    precondition(rows.count == 4 && rows.allSatisfy { $0.count == 4 }, "Affine: expected 4 rows of 4, got \(rows)")
    m = rows.flatMap { $0 }
  }

  public init(entries: [Double]) {
    precondition(entries.count == 16, "Affine: expected 16 entries, got \(entries.count)")
    m = entries
  }

  public static let identity = Affine([[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]])

  public subscript(row: Int, column: Int) -> Double {
    get { m[row * 4 + column] }
    set { m[row * 4 + column] = newValue }
  }

  /// The 4 rows of 4.
  public var rows: [[Double]] { (0..<4).map { r in (0..<4).map { self[r, $0] } } }

  /// Column `c` (0, 1, 2: the world step of one voxel along i, j, k; 3: the world position of voxel 0).
  public func column(_ c: Int) -> [Double] { (0..<3).map { self[$0, c] } }

  /// Euclidean length in mm of the world step of one voxel along each voxel axis.
  public var columnNormsMM: [Double] {
    (0..<3).map { c in (0..<3).reduce(0.0) { $0 + self[$1, c] * self[$1, c] }.squareRoot() }
  }

  public static func * (a: Affine, b: Affine) -> Affine {
    var out = [Double](repeating: 0, count: 16)
    for r in 0..<4 { for c in 0..<4 { var s = 0.0; for k in 0..<4 { s += a.m[r * 4 + k] * b.m[k * 4 + c] }; out[r * 4 + c] = s } }
    return Affine(entries: out)
  }

  /// The world position in mm of the voxel at (i, j, k) (fractional indices allowed).
  public func world(_ i: Double, _ j: Double, _ k: Double) -> [Double] {
    (0..<3).map { self[$0, 0] * i + self[$0, 1] * j + self[$0, 2] * k + self[$0, 3] }
  }
}

/// Axis codes: for each voxel axis (i, j, k), the anatomical direction in which its index grows.
public struct Orientation: Equatable, Hashable, Sendable, CustomStringConvertible {
  /// For each voxel axis: the world axis (0 = x, 1 = y, 2 = z) it follows.
  public var worldAxes: [Int]
  /// For each voxel axis: +1 if the index grows along +world (R, A, S), −1 if against it (L, P, I).
  public var signs: [Int]

  public static let ras = Orientation(worldAxes: [0, 1, 2], signs: [1, 1, 1])
  public static let lps = Orientation(worldAxes: [0, 1, 2], signs: [-1, -1, 1])

  public init(worldAxes: [Int], signs: [Int]) {
    self.worldAxes = worldAxes
    self.signs = signs
  }

  /// Parses three axis codes such as "RAS", "LPS" or "PSR".
  /// - Throws: `MedicalImagingError.invalidArgument` unless the codes name each of x, y, z exactly once.
  public init(codes: String) throws {
    let table: [Character: (Int, Int)] = ["R": (0, 1), "L": (0, -1), "A": (1, 1), "P": (1, -1), "S": (2, 1), "I": (2, -1)]
    let letters = Array(codes.uppercased())
    var axes: [Int] = [], signs: [Int] = []
    for letter in letters {
      guard let (axis, sign) = table[letter] else { break }
      axes.append(axis)
      signs.append(sign)
    }
    guard letters.count == 3, axes.count == 3, Set(axes).count == 3 else {
      throw MedicalImagingError.invalidArgument(name: "orientation", reason: "'\(codes)' is not three axis codes naming each of R/L, A/P, S/I once")
    }
    self.init(worldAxes: axes, signs: signs)
  }

  /// The axis codes of an affine, as nibabel `aff2axcodes` gives them for (near-)orthogonal affines: each voxel
  /// axis takes the world axis its direction is most aligned with, strongest alignment first.
  public init(affine: Affine) {
    var columns = (0..<3).map { affine.column($0) }
    for c in 0..<3 {
      let n = columns[c].reduce(0) { $0 + $1 * $1 }.squareRoot()
      if n > 0 { columns[c] = columns[c].map { $0 / n } }
    }
    var axes = [-1, -1, -1], signs = [1, 1, 1]
    var usedWorld = Set<Int>(), usedVoxel = Set<Int>()
    for _ in 0..<3 {
      var best = (value: -1.0, voxel: 0, world: 0)
      for v in 0..<3 where !usedVoxel.contains(v) {
        for w in 0..<3 where !usedWorld.contains(w) && abs(columns[v][w]) > best.value {
          best = (abs(columns[v][w]), v, w)
        }
      }
      axes[best.voxel] = best.world
      signs[best.voxel] = columns[best.voxel][best.world] < 0 ? -1 : 1
      usedWorld.insert(best.world)
      usedVoxel.insert(best.voxel)
    }
    self.init(worldAxes: axes, signs: signs)
  }

  /// The three letters, e.g. "LPS".
  public var codes: String {
    let positive: [Character] = ["R", "A", "S"], negative: [Character] = ["L", "P", "I"]
    return String((0..<3).map { signs[$0] > 0 ? positive[worldAxes[$0]] : negative[worldAxes[$0]] })
  }

  public var description: String { codes }
}

/// The element type a volume had in its source file ("int16", "uint16", "int32", "float32", ...).
public typealias SourceDType = String

/// A 3D medical volume: voxel values plus geometry.
///
/// Values are `Float` (CT in HU after the modality rescale, MRI in scanner units); int16/uint16/int32 data up to
/// 2²⁴ in magnitude is held exactly. Layout and coordinate conventions: see `MedicalImaging`.
public struct Volume: Sendable {
  /// Voxel counts along i, j, k.
  public var shape: [Int]
  /// Voxel values, i fastest (`shape[0] * shape[1] * shape[2]` of them).
  public var voxels: [Float]
  /// Voxel (i, j, k) → world (RAS+, mm).
  public var affine: Affine
  /// Voxel size in mm along i, j, k (for NIfTI the header's pixdim[1...3], as nibabel's `get_zooms`).
  public var spacingMM: [Double]
  /// The element type in the source file.
  public var sourceDType: SourceDType
  /// Problems found while reading that did not stop it (a header quirk, an assumed geometry).
  public var warnings: [String]

  /// Makes a volume; traps unless `voxels.count` equals the product of `shape` and `spacingMM` has 3 entries.
  public init(shape: [Int], voxels: [Float], affine: Affine, spacingMM: [Double]? = nil, sourceDType: SourceDType = "float32",
              warnings: [String] = []) {
    precondition(shape.count == 3 && shape.allSatisfy { $0 >= 0 }, "Volume: shape must be 3 non-negative counts, got \(shape)")
    precondition(voxels.count == shape[0] * shape[1] * shape[2], "Volume: \(voxels.count) voxels for shape \(shape)")
    let spacing = spacingMM ?? affine.columnNormsMM
    precondition(spacing.count == 3, "Volume: spacingMM must have 3 entries, got \(spacing)")
    self.shape = shape
    self.voxels = voxels
    self.affine = affine
    self.spacingMM = spacing
    self.sourceDType = sourceDType
    self.warnings = warnings
  }

  /// Axis codes of the voxel axes (e.g. "LPS"), from the affine.
  public var orientation: Orientation { Orientation(affine: affine) }

  /// Number of voxels.
  public var count: Int { shape[0] * shape[1] * shape[2] }

  /// The value at voxel (i, j, k).
  public subscript(i: Int, j: Int, k: Int) -> Float {
    get { voxels[i + shape[0] * (j + shape[1] * k)] }
    set { voxels[i + shape[0] * (j + shape[1] * k)] = newValue }
  }

  /// Minimum, maximum and mean of the values (mean accumulated in Double); NaN when empty.
  /// Minimum, maximum and mean over the finite voxels (NaN when there are none; see `nonFiniteCount`).
  public var statistics: (min: Double, max: Double, mean: Double) {
    voxels.withUnsafeBufferPointer { buffer in
      var lo = Float.infinity, hi = -Float.infinity
      var total = 0.0, count = 0
      for v in buffer where v.isFinite {
        lo = min(lo, v)
        hi = max(hi, v)
        total += Double(v)
        count += 1
      }
      if count == 0 { return (.nan, .nan, .nan) }
      return (Double(lo), Double(hi), total / Double(count))
    }
  }

  /// How many voxels are NaN or ±infinity.
  public var nonFiniteCount: Int { voxels.reduce(0) { $0 + ($1.isFinite ? 0 : 1) } }
}

/// Errors of reading, checking and preprocessing medical volumes. Each names the file and the problem.
public enum MedicalImagingError: Error, CustomStringConvertible, Equatable {
  case fileNotFound(path: String)
  case unreadable(path: String, reason: String)
  case unsupportedFormat(path: String, reason: String)
  case truncatedFile(path: String, expectedBytes: Int, actualBytes: Int)
  case corruptCompressedData(path: String, reason: String)
  case invalidHeader(path: String, field: String, reason: String)
  case dimensionMismatch(path: String, reason: String)
  case invalidSpacing(path: String, spacingMM: [Double])
  case notDICOM(path: String)
  case nonImageDICOM(path: String, sopClassUID: String)
  case noDICOMInFolder(path: String, filesSeen: Int)
  case seriesNotFound(path: String, seriesInstanceUID: String, available: [String])
  case inconsistentSeries(path: String, reason: String)
  case irregularSliceSpacing(path: String, gapsMM: [Double])
  case duplicateSlices(path: String, reason: String)
  case dicomDecodeFailed(path: String, reason: String)
  case missingArray(path: String, expected: String, available: [String])
  case invalidNPY(path: String, reason: String)
  case invalidArgument(name: String, reason: String)
  case writeFailed(path: String, reason: String)
  /// A DICOM element runs past the end of the file (found before GDCM opens it).
  case truncatedDICOM(path: String, offset: Int, reason: String)
  /// Native (uncompressed) pixel data shorter than rows × columns × frames × samples × bits allocated / 8.
  case truncatedPixelData(path: String, expectedBytes: Int, actualBytes: Int)

  public var description: String {
    switch self {
    case .fileNotFound(let path): return "\(path): no such file or folder"
    case .unreadable(let path, let reason): return "\(path): cannot read: \(reason)"
    case .unsupportedFormat(let path, let reason): return "\(path): unsupported format: \(reason)"
    case .truncatedFile(let path, let expected, let actual):
      return "\(path): truncated file: expected \(expected) bytes, found \(actual)"
    case .corruptCompressedData(let path, let reason): return "\(path): corrupt compressed data: \(reason)"
    case .invalidHeader(let path, let field, let reason): return "\(path): invalid header field \(field): \(reason)"
    case .dimensionMismatch(let path, let reason): return "\(path): header dimensions disagree with the data: \(reason)"
    case .invalidSpacing(let path, let spacing):
      return "\(path): invalid voxel spacing \(spacing) mm (each must be finite and > 0)"
    case .notDICOM(let path): return "\(path): not a DICOM file"
    case .nonImageDICOM(let path, let sop):
      return "\(path): DICOM object without pixel data (SOP class \(sop.isEmpty ? "unknown" : sop)); not an image"
    case .noDICOMInFolder(let path, let seen): return "\(path): no DICOM image files in this folder (\(seen) files looked at)"
    case .seriesNotFound(let path, let uid, let available):
      return "\(path): no series \(uid); series here: \(available.joined(separator: ", "))"
    case .inconsistentSeries(let path, let reason): return "\(path): inconsistent series: \(reason)"
    case .irregularSliceSpacing(let path, let gaps):
      let text = gaps.map { String(format: "%.3f", $0) }.joined(separator: ", ")
      return "\(path): irregular slice spacing: gaps between consecutive slices are [\(text)] mm; refusing to stack them as one evenly spaced volume"
    case .duplicateSlices(let path, let reason): return "\(path): duplicate slices: \(reason)"
    case .dicomDecodeFailed(let path, let reason): return "\(path): cannot decode pixel data: \(reason)"
    case .missingArray(let path, let expected, let available):
      return "\(path): no array '\(expected)' (arrays: \(available.isEmpty ? "none" : available.joined(separator: ", ")))"
    case .invalidNPY(let path, let reason): return "\(path): invalid NPY array: \(reason)"
    case .invalidArgument(let name, let reason): return "invalid \(name): \(reason)"
    case .writeFailed(let path, let reason): return "\(path): cannot write: \(reason)"
    case .truncatedDICOM(let path, let offset, let reason): return "\(path): truncated DICOM file (at byte offset \(offset)): \(reason)"
    case .truncatedPixelData(let path, let expected, let actual):
      return "\(path): truncated pixel data: the image needs \(expected) bytes, the Pixel Data element holds \(actual)"
    }
  }
}

extension MedicalImagingError: LocalizedError {
  public var errorDescription: String? { description }
}

/// Checks that each spacing is finite and > 0.
func validateSpacing(_ spacing: [Double], path: String) throws {
  guard spacing.count == 3, spacing.allSatisfy({ $0.isFinite && $0 > 0 }) else {
    throw MedicalImagingError.invalidSpacing(path: path, spacingMM: spacing)
  }
}
