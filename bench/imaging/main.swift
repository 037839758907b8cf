// Benchmark driver for the MedicalImaging pipeline (built by bench/build_imaging_bench.sh, run by
// bench/imaging_pipeline.py): decode + reorient (RAS) + resample (1.5×1.5×3 mm, trilinear) + HU window
// (chest) + centre crop 192×192×96 of one NIfTI file. Prints one JSON line with per-stage seconds.
import Foundation
import MedicalImaging

let arguments = CommandLine.arguments
guard arguments.count >= 2 else {
  FileHandle.standardError.write(Data("usage: imaging-bench FILE.nii.gz [REPEATS]\n".utf8))
  exit(2)
}
let path = arguments[1]
let repeats = arguments.count > 2 ? Int(arguments[2]) ?? 3 : 3
var best: [String: Double] = [:]
var checksum = 0.0
for _ in 0..<repeats {
  var generator = SeededGenerator(seed: 0)
  var times: [String: Double] = [:]
  func timed<T>(_ name: String, _ body: () throws -> T) rethrows -> T {
    let start = DispatchTime.now().uptimeNanoseconds
    let value = try body()
    times[name] = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
    return value
  }
  // Decode and reorient in one pass (NIfTI.read(path:orientation:), what `greenrfm preprocess` does); the
  // reorient stage is then the (no-op) transform on an already-RAS volume.
  let volume = try timed("decode") { try NIfTI.read(path: path, orientation: .ras) }
  let ras = try timed("reorient") { try Reorient(to: .ras).apply(volume, generator: &generator) }
  let resampled = try timed("resample") { try Resample(spacingMM: [1.5, 1.5, 3]).apply(ras, generator: &generator) }
  let windowed = try timed("window") { try HUWindow.chest.apply(resampled, generator: &generator) }
  let cropped = try timed("crop") { try CenterCropOrPad(size: [192, 192, 96], padValue: -1).apply(windowed, generator: &generator) }
  times["total"] = times.values.reduce(0, +)
  if best["total"] == nil || times["total"]! < best["total"]! { best = times }
  checksum = cropped.voxels.reduce(0.0) { $0 + Double($1) }
  _ = cropped.shape
}
var output = best
output["checksum"] = checksum
let data = try JSONSerialization.data(withJSONObject: output, options: [.sortedKeys])
print(String(decoding: data, as: UTF8.self))
