import Foundation

/// How a volume is preprocessed: orientation, spacing, intensity normalisation and size. Codable; presets per
/// protocol (numbers from docs METHOD.md: the authors' chest/abdomen/MRI settings).
public struct PreprocessConfig: Codable, Equatable, Sendable {
  /// "chest-ct", "abdomen-ct", "mri" or "custom".
  public var protocolName: String
  /// Axis codes of the output (default "RAS").
  public var orientation: String
  /// Target spacing in mm along i, j, k (after reorientation).
  public var spacingMM: [Double]
  /// "huWindow" (CT) or "percentileZScore" (MRI).
  public var normalization: String
  /// HU window [lower, upper] for "huWindow".
  public var windowHU: [Double]
  /// Percentiles [lower, upper] for "percentileZScore".
  public var percentiles: [Double]
  /// Output size in voxels along i, j, k (centre crop/pad).
  public var size: [Int]
  /// Padding value in HU for CT (air).
  public var padHU: Double
  /// How voxel values are stored in the cache file.
  public var storage: NIfTI.StorageType

  /// Protocol names with presets.
  public static let protocolNames = ["chest-ct", "abdomen-ct", "mri"]

  /// The preset for a protocol.
  /// - Throws: `.invalidArgument` for an unknown name.
  public static func preset(_ name: String) throws -> PreprocessConfig {
    switch name {
    case "chest-ct":
      return PreprocessConfig(protocolName: name, orientation: "RAS", spacingMM: [1.5, 1.5, 3], normalization: "huWindow",
                              windowHU: [-1000, 200], percentiles: [1, 99], size: [192, 192, 96], padHU: -1000, storage: .scaledInt16)
    case "abdomen-ct":
      return PreprocessConfig(protocolName: name, orientation: "RAS", spacingMM: [1.5, 1.5, 3], normalization: "huWindow",
                              windowHU: [-1000, 1000], percentiles: [1, 99], size: [224, 224, 144], padHU: -1000, storage: .scaledInt16)
    case "mri":
      return PreprocessConfig(protocolName: name, orientation: "RAS", spacingMM: [1, 1, 1], normalization: "percentileZScore",
                              windowHU: [-1000, 1000], percentiles: [1, 99], size: [240, 240, 24], padHU: 0, storage: .scaledInt16)
    default:
      throw MedicalImagingError.invalidArgument(name: "protocol", reason: "'\(name)' is not one of \(protocolNames.joined(separator: ", "))")
    }
  }

  /// Checks ranges.
  /// - Throws: `.invalidArgument` naming the field.
  public func validate() throws {
    _ = try Orientation(codes: orientation)
    guard spacingMM.count == 3, spacingMM.allSatisfy({ $0.isFinite && $0 > 0 }) else {
      throw MedicalImagingError.invalidArgument(name: "spacing", reason: "\(spacingMM) must be three finite numbers > 0 (mm)")
    }
    guard size.count == 3, size.allSatisfy({ $0 > 0 && $0 <= 4096 }) else {
      throw MedicalImagingError.invalidArgument(name: "size", reason: "\(size) must be three voxel counts in 1...4096")
    }
    guard ["huWindow", "percentileZScore"].contains(normalization) else {
      throw MedicalImagingError.invalidArgument(name: "normalization", reason: "'\(normalization)' is not huWindow or percentileZScore")
    }
    guard windowHU.count == 2, windowHU.allSatisfy({ $0.isFinite }), windowHU[0] < windowHU[1] else {
      throw MedicalImagingError.invalidArgument(name: "window", reason: "\(windowHU) must be [lower, upper] HU with lower < upper")
    }
    guard percentiles.count == 2, percentiles[0] >= 0, percentiles[1] <= 100, percentiles[0] < percentiles[1] else {
      throw MedicalImagingError.invalidArgument(name: "percentiles", reason: "\(percentiles) must be [lower, upper] in 0...100")
    }
  }

  /// The deterministic pipeline: reorient → resample (trilinear) → normalise → centre crop/pad.
  public func pipeline() throws -> Compose {
    try validate()
    let target = try Orientation(codes: orientation)
    var steps: [any VolumeTransform] = [Reorient(to: target), Resample(spacingMM: spacingMM, interpolation: .trilinear)]
    let pad: Float
    if normalization == "huWindow" {
      let window = HUWindow(lowerHU: windowHU[0], upperHU: windowHU[1])
      steps.append(window)
      pad = window.map(Float(padHU))
    } else {
      steps.append(PercentileZScore(lowerPercentile: percentiles[0], upperPercentile: percentiles[1]))
      pad = .nan  // replaced by the normalised minimum below
    }
    steps.append(CenterCropOrPad(size: size, padValue: pad))
    return Compose(steps)
  }
}

/// The preprocessing cache: each input preprocessed once into `<folder>/<name>-<hash>.nii.gz` (int16 with
/// `scl_slope`, or float32) plus a JSON sidecar `<same>.json` holding the geometry, the source's CRC-32 and
/// byte count, and the config. Both files are written atomically, the sidecar last, so a sidecar means a complete
/// entry. An entry is reused when the source content and the config are unchanged.
public struct PreprocessCache: Sendable {
  public let folder: String
  public let config: PreprocessConfig

  public init(folder: String, config: PreprocessConfig) {
    self.folder = folder
    self.config = config
  }

  /// What happened to one input.
  public enum Outcome: Equatable, Sendable {
    case written(path: String)
    case reused(path: String)
  }

  /// The sidecar contents.
  public struct Sidecar: Codable, Equatable, Sendable {
    public var source: String
    public var sourceCRC32: UInt32
    public var sourceBytes: Int
    public var config: PreprocessConfig
    public var output: String
    public var shape: [Int]
    public var spacingMM: [Double]
    public var orientation: String
    public var affine: [[Double]]
    public var sourceShape: [Int]
    public var sourceSpacingMM: [Double]
    public var sourceOrientation: String
    public var warnings: [String]
    public var madeBy: String
    /// The reader options that shape the volume (NPZ spacing/orientation/array, DICOM series choices); part of
    /// the reuse check. Absent in sidecars written before it existed (such entries are redone).
    public var readOptions: String?
  }

  /// The reader options that matter for `input`, as a stable string (empty for NIfTI, which takes none).
  public static func readOptionsKey(input: String, options: VolumeReader.Options) -> String {
    switch VolumeReader.format(of: input) {
    case .nifti: return ""
    case .npz:
      let spacing = options.npzSpacingMM.map { $0.map { String($0) }.joined(separator: ",") } ?? "none"
      return "npzSpacingMM=\(spacing);npzOrientation=\(options.npzOrientation.codes);npzArrayName=\(options.npzArrayName)"
    case .dicom:
      let d = options.dicom
      return "seriesInstanceUID=\(d.seriesInstanceUID ?? "auto");allowIrregularSpacing=\(d.allowIrregularSpacing);dropDuplicateSlices=\(d.dropDuplicateSlices);spacingTolerance=\(d.spacingTolerance)"
    }
  }

  /// The cache file for an input (the sidecar is the same path with `.json` in place of `.nii.gz`).
  public func outputPath(for input: String) -> String {
    let absolute = URL(fileURLWithPath: input).standardizedFileURL.path
    var name = (absolute as NSString).lastPathComponent
    for suffix in [".nii.gz", ".nii", ".npz", ".npy", ".dcm"] where name.lowercased().hasSuffix(suffix) {
      name = String(name.dropLast(suffix.count))
      break
    }
    name = String(name.map { $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" || $0 == "." ? $0 : "_" }.prefix(80))
    let hash = String(format: "%08x", FileIO.crc32(Data(absolute.utf8)))
    return (folder as NSString).appendingPathComponent("\(name)-\(hash).nii.gz")
  }

  static func sidecarPath(_ output: String) -> String { String(output.dropLast(".nii.gz".count)) + ".json" }

  /// CRC-32 and byte count of a file, or of a folder's files (names and contents, sorted by name).
  public static func fingerprint(_ path: String) throws -> (crc: UInt32, bytes: Int) {
    var isFolder: ObjCBool = false
    guard FileManager.default.fileExists(atPath: path, isDirectory: &isFolder) else { throw MedicalImagingError.fileNotFound(path: path) }
    if !isFolder.boolValue {
      let data = try FileIO.read(path)
      return (FileIO.crc32(data), data.count)
    }
    var crc: UInt32 = 0, bytes = 0
    let names = (FileManager.default.enumerator(atPath: path)?.allObjects as? [String] ?? []).sorted()
    for name in names {
      let full = (path as NSString).appendingPathComponent(name)
      var sub: ObjCBool = false
      guard FileManager.default.fileExists(atPath: full, isDirectory: &sub), !sub.boolValue else { continue }
      let data = try FileIO.read(full)
      crc = FileIO.crc32(Data(name.utf8), continuing: crc)
      crc = FileIO.crc32(data, continuing: crc)
      bytes += data.count
    }
    return (crc, bytes)
  }

  /// Preprocesses `input` into the cache unless an entry for the same source content and config exists.
  /// - Throws: the reader's `MedicalImagingError` or a `TransformError`, naming the input.
  @discardableResult
  public func process(input: String, readOptions: VolumeReader.Options = VolumeReader.Options()) throws -> Outcome {
    let output = outputPath(for: input)
    let sidecarPath = Self.sidecarPath(output)
    let (crc, bytes) = try Self.fingerprint(input)
    let optionsKey = Self.readOptionsKey(input: input, options: readOptions)
    if let data = try? Data(contentsOf: URL(fileURLWithPath: sidecarPath)),
       let old = try? JSONDecoder().decode(Sidecar.self, from: data),
       old.sourceCRC32 == crc, old.sourceBytes == bytes, old.config == config,
       (old.readOptions ?? "") == optionsKey,
       FileManager.default.fileExists(atPath: output) {
      return .reused(path: output)
    }
    let source: Volume
    let sourceShape: [Int], sourceSpacing: [Double], sourceOrientation: String
    if VolumeReader.format(of: input) == .nifti {
      // One pass: decode straight into the target orientation (identical to decode then Reorient).
      let header = try NIfTI.readHeader(path: input)
      (sourceShape, sourceSpacing, sourceOrientation) = (header.shape, Array(header.pixdim[1...3]), Orientation(affine: header.affine).codes)
      source = try NIfTI.read(path: input, orientation: try Orientation(codes: config.orientation))
    } else {
      source = try VolumeReader.read(path: input, options: readOptions)
      (sourceShape, sourceSpacing, sourceOrientation) = (source.shape, source.spacingMM, source.orientation.codes)
    }
    var generator = SeededGenerator(seed: 0)
    var result = try transform(source, generator: &generator)
    result.warnings = source.warnings
    try NIfTI.write(result, to: output, storage: config.storage)
    let sidecar = Sidecar(
      source: input, sourceCRC32: crc, sourceBytes: bytes, config: config, output: (output as NSString).lastPathComponent,
      shape: result.shape, spacingMM: result.spacingMM, orientation: result.orientation.codes, affine: result.affine.rows,
      sourceShape: sourceShape, sourceSpacingMM: sourceSpacing, sourceOrientation: sourceOrientation,
      warnings: source.warnings, madeBy: "GreenRFM MedicalImaging", readOptions: optionsKey)
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
    try AtomicFile.write(try encoder.encode(sidecar), to: sidecarPath)
    return .written(path: output)
  }

  /// Applies the config's pipeline (MRI padding takes the normalised minimum).
  public func transform(_ volume: Volume, generator: inout SeededGenerator) throws -> Volume {
    var pipeline = try config.pipeline()
    if config.normalization == "percentileZScore" {
      let head = Compose(Array(pipeline.transforms.dropLast()))
      let normalised = try head.apply(volume, generator: &generator)
      let floor = normalised.voxels.min() ?? 0
      pipeline = Compose([CenterCropOrPad(size: config.size, padValue: floor)])
      return try pipeline.apply(normalised, generator: &generator)
    }
    return try pipeline.apply(volume, generator: &generator)
  }
}
