// libFuzzer harness for the MedicalImaging parsers (build and run: fuzz/run_imaging_fuzzer.sh).
//
// The first input byte picks the path, the rest is the file's bytes:
//   0: NIfTI bytes (NIfTI.decode: header parse, size checks, voxel conversion; then again decoded straight into
//      RAS, the fused decode + reorient path)
//   1: gzip bytes inflated, then decoded as NIfTI (the .nii.gz path)
//   2: NPZ / NPY bytes (NPZ.decode: zip archive, NPY header parse, size checks, conversion)
// Any thrown MedicalImagingError is an expected outcome; a trap, crash or sanitizer report is a finding.
import Foundation

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ start: UnsafeRawPointer?, _ count: Int) -> CInt {
  guard let start, count >= 1 else { return 0 }
  let mode = start.load(as: UInt8.self) % 3
  let data = Data(bytes: start + 1, count: count - 1)
  switch mode {
  case 0:
    if (try? NIfTI.decode(data, path: "fuzz.nii")) != nil {
      _ = try? NIfTI.decode(data, path: "fuzz.nii", orientation: .ras)
    }
  case 1:
    if let inflated = try? FileIO.gunzip(data, path: "fuzz.nii.gz", maxBytes: 1 << 24) {
      _ = try? NIfTI.decode(inflated, path: "fuzz.nii.gz", compressed: true)
    }
  default:
    _ = try? NPZ.decode(data, path: "fuzz.npz", spacingMM: [1, 1, 1])
  }
  return 0
}
