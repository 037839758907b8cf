import ArgumentParser
import Foundation
import MedicalImaging

/// `greenrfm inspect PATH [--json]`: geometry and value statistics of a NIfTI file, a DICOM file or folder,
/// or an NPZ/NPY array (after the modality rescale: HU for CT).
struct InspectCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "inspect",
    abstract: "Print a volume's shape, spacing, orientation, dtype, HU statistics and affine.",
    discussion: """
      PATH is a .nii/.nii.gz file, a DICOM file, a folder of DICOM files, or a .npz/.npy array (give
      --spacing-mm). shape counts voxels along i, j, k (DICOM: i = columns, j = rows, k = slices); the affine
      maps (i, j, k, 1) to RAS+ millimetres; orientation gives the axis codes of i, j, k (e.g. LPS).
      Exit code 1 with a message naming the file and the problem when the input cannot be read.
      """)

  @OptionGroup var global: GlobalOptions

  @Argument(help: "A NIfTI file, a DICOM file or folder, or an NPZ/NPY file.")
  var path: String

  @Flag(help: "Print one JSON object.")
  var json = false

  @Option(help: "NPZ/NPY only: voxel spacing in mm along i, j, k (e.g. 0.8,0.8,0.8).")
  var spacingMm: String?

  @Option(help: "NPZ/NPY only: axis codes of the array's i, j, k (i = the fastest axis).")
  var npzOrientation: String = "LPS"

  @Option(help: "NPZ only: the array to read.")
  var npzArray: String = "ct"

  @Option(help: "DICOM folder: the SeriesInstanceUID to read (default: the CT series with most slices).")
  var series: String?

  @Flag(help: "DICOM: stack unevenly spaced slices (with a warning) instead of failing.")
  var allowIrregularSpacing = false

  @Flag(help: "DICOM: drop duplicated slices (with a warning) instead of failing.")
  var dropDuplicateSlices = false

  func validate() throws {
    if let s = spacingMm { _ = try parseNumbers(s, count: 3, name: "--spacing-mm", positive: true) }
    do { _ = try Orientation(codes: npzOrientation) } catch { throw ValidationError("--npz-orientation: \(error)") }
  }

  func run() throws {
    _ = try global.apply()
    let options = VolumeReader.Options(
      npzSpacingMM: try spacingMm.map { try parseNumbers($0, count: 3, name: "--spacing-mm", positive: true) },
      npzOrientation: try Orientation(codes: npzOrientation), npzArrayName: npzArray,
      dicom: DICOM.ReadOptions(seriesInstanceUID: series, allowIrregularSpacing: allowIrregularSpacing,
                               dropDuplicateSlices: dropDuplicateSlices))
    let volume = try VolumeReader.read(path: path, options: options)
    let summary = VolumeSummary(path: path, format: VolumeReader.format(of: path), volume: volume)
    for warning in summary.warnings { FileHandle.standardError.write(Data("warning: \(warning)\n".utf8)) }
    if json {
      print(try summary.json())
    } else {
      let f = { (x: Double) in String(format: "%.4g", x) }
      print("""
        \(summary.path) (\(summary.format))
          shape       \(summary.shape.map(String.init).joined(separator: " × ")) (i, j, k)
          spacing     \(summary.spacing_mm.map(f).joined(separator: " × ")) mm
          orientation \(summary.orientation)
          dtype       \(summary.dtype)
          values      min \(f(summary.hu_min)), max \(f(summary.hu_max)), mean \(f(summary.hu_mean))\(summary.non_finite_voxels > 0 ? " (finite voxels; \(summary.non_finite_voxels) NaN/inf)" : "")
          affine      \(summary.affine.map { "[" + $0.map(f).joined(separator: ", ") + "]" }.joined(separator: "\n              "))
        """)
    }
  }
}

/// Parses "a,b,c" into `count` numbers.
func parseNumbers(_ text: String, count: Int, name: String, positive: Bool = false) throws -> [Double] {
  let values = text.split(separator: ",").map { Double($0.trimmingCharacters(in: .whitespaces)) }
  guard values.count == count, values.allSatisfy({ $0 != nil && $0!.isFinite && (!positive || $0! > 0) }) else {
    throw ValidationError("\(name) must be \(count) comma-separated \(positive ? "positive " : "")numbers, got '\(text)'")
  }
  return values.map { $0! }
}
