import Foundation

/// Reads any supported input into a `Volume`, choosing the reader from the path and content.
public enum VolumeReader {
  /// The formats `read` recognises.
  public enum Format: String, Sendable {
    case nifti, dicom, npz
  }

  /// Options for formats that need them.
  public struct Options: Sendable {
    /// Spacing in mm along i, j, k for NPZ/NPY inputs (they carry none).
    public var npzSpacingMM: [Double]?
    /// Axis codes of NPZ/NPY arrays.
    public var npzOrientation: Orientation
    /// The NPZ array to read.
    public var npzArrayName: String
    public var dicom: DICOM.ReadOptions

    public init(npzSpacingMM: [Double]? = nil, npzOrientation: Orientation = .lps, npzArrayName: String = "ct",
                dicom: DICOM.ReadOptions = DICOM.ReadOptions()) {
      self.npzSpacingMM = npzSpacingMM
      self.npzOrientation = npzOrientation
      self.npzArrayName = npzArrayName
      self.dicom = dicom
    }
  }

  /// The format of `path`: a folder is DICOM; `.nii`/`.nii.gz` NIfTI; `.npz`/`.npy` NPZ; anything else DICOM.
  public static func format(of path: String) -> Format {
    var isFolder: ObjCBool = false
    if FileManager.default.fileExists(atPath: path, isDirectory: &isFolder), isFolder.boolValue { return .dicom }
    let lower = path.lowercased()
    if lower.hasSuffix(".nii") || lower.hasSuffix(".nii.gz") { return .nifti }
    if lower.hasSuffix(".npz") || lower.hasSuffix(".npy") { return .npz }
    return .dicom
  }

  /// Reads `path` (a NIfTI file, a DICOM file or folder, an NPZ/NPY file).
  /// - Throws: `MedicalImagingError` naming the file and the problem; `.invalidArgument` for NPZ without spacing.
  public static func read(path: String, options: Options = Options()) throws -> Volume {
    switch format(of: path) {
    case .nifti: return try NIfTI.read(path: path)
    case .dicom: return try DICOM.read(path: path, options: options.dicom)
    case .npz:
      guard let spacing = options.npzSpacingMM else {
        throw MedicalImagingError.invalidArgument(name: "spacing", reason: "\(path): NPZ/NPY files carry no spacing; give it explicitly (e.g. --spacing-mm 0.8,0.8,0.8)")
      }
      return try NPZ.read(path: path, spacingMM: spacing, orientation: options.npzOrientation, arrayName: options.npzArrayName)
    }
  }
}

/// What `greenrfm inspect` prints about a volume.
public struct VolumeSummary: Codable, Sendable, Equatable {
  public var path: String
  public var format: String
  /// Voxel counts along i, j, k.
  public var shape: [Int]
  public var spacing_mm: [Double]
  public var orientation: String
  public var dtype: String
  public var hu_min: Double
  public var hu_max: Double
  public var hu_mean: Double
  public var affine: [[Double]]
  public var warnings: [String]
  /// Voxels that are NaN or ±infinity (left out of min, max and mean).
  public var non_finite_voxels: Int

  public init(path: String, format: VolumeReader.Format, volume: Volume) {
    let stats = volume.statistics
    self.path = path
    self.format = format.rawValue
    shape = volume.shape
    spacing_mm = volume.spacingMM
    orientation = volume.orientation.codes
    dtype = volume.sourceDType
    non_finite_voxels = volume.nonFiniteCount
    warnings = volume.warnings
    if non_finite_voxels > 0 {
      warnings.append("\(path): \(non_finite_voxels) non-finite (NaN/inf) voxels, left out of min/max/mean")
    }
    // JSON has no NaN: with no finite voxel at all, the statistics are reported as 0 (and the count says why).
    hu_min = stats.min.isFinite ? stats.min : 0
    hu_max = stats.max.isFinite ? stats.max : 0
    hu_mean = stats.mean.isFinite ? stats.mean : 0
    affine = volume.affine.rows.map { $0.map { $0 == 0 ? 0 : ($0.isFinite ? $0 : 0) } }  // no -0 (or NaN) in the JSON
  }

  /// Pretty, key-sorted JSON.
  public func json() throws -> String {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
    return String(decoding: try encoder.encode(self), as: UTF8.self)
  }
}
