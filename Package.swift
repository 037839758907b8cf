// swift-tools-version:6.1
// GreenRFM for Swift: resource-efficient 3D radiology foundation models over libtorch.
//
// LIBTORCH=/path/to/libtorch builds against another libtorch (default: .libtorch, the link that
// scripts/setup.sh makes to the libtorch inside PyPI's torch==2.15.0 wheel). GREENRFM_CUDA=1 also links
// libtorch_cuda so that `--device cuda` works with a CUDA build; GREENRFM_NCCL=1 (with GREENRFM_CUDA=1) also compiles
// the NCCL backend of data-parallel training (Sources/CTorch/dist.cpp), which needs nccl.h: NCCL_INCLUDE=/path, default
// the nvidia-nccl wheel's include folder beside the torch package (untested: no GPU here). The Gloo backend needs the
// gloo headers that PyPI's wheel lacks; scripts/setup.sh installs Debian's libgloo-dev (in /usr/include), and a
// libtorch that ships include/gloo uses its own (its include folder comes first).
import PackageDescription

let root = Context.packageDirectory
let libtorch = Context.environment["LIBTORCH"] ?? "\(root)/.libtorch"
let cuda = Context.environment["GREENRFM_CUDA"] == "1"
let nccl = cuda && Context.environment["GREENRFM_NCCL"] == "1"
let ncclInclude = Context.environment["NCCL_INCLUDE"] ?? "\(libtorch)/../nvidia/nccl/include"
var torchCxxFlags = [
  "-isystem", "\(libtorch)/include",
  "-isystem", "\(libtorch)/include/torch/csrc/api/include",
  "-O2", "-fno-math-errno",
]
if nccl { torchCxxFlags += ["-isystem", ncclInclude, "-DCT_WITH_NCCL=1"] }

var torchLinkFlags = [
  "-L\(libtorch)/lib", "-Xlinker", "-rpath", "-Xlinker", "\(libtorch)/lib",
  "-Xlinker", "--no-as-needed", "-ltorch_cpu", "-lc10",
]
if cuda { torchLinkFlags += ["-ltorch_cuda", "-lc10_cuda"] }
torchLinkFlags += ["-Xlinker", "--as-needed"]

let package = Package(
  name: "GreenRFM",
  platforms: [.macOS(.v14)],
  products: [
    .executable(name: "greenrfm", targets: ["greenrfm"]),
    .library(name: "Torch", targets: ["Torch"]),
    .library(name: "TorchNN", targets: ["TorchNN"]),
    .library(name: "GreenRFM", targets: ["GreenRFM"]),
  ],
  dependencies: [
    .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
    .package(url: "https://github.com/weichsel/ZIPFoundation", from: "0.9.19"),
    .package(url: "https://github.com/swift-server/async-http-client", from: "1.21.0"),
  ],
  targets: [
    // C++ shim over libtorch with a C header; the only code that sees C++.
    .target(
      name: "CTorch",
      cxxSettings: [.unsafeFlags(torchCxxFlags)],
      linkerSettings: [.unsafeFlags(torchLinkFlags)]
    ),
    // Tensor, dtypes, devices, errors, autograd scopes, optimizers, schedules, safetensors.
    // Atomic file replacement shared by checkpoints, labels and preprocessed volumes.
    .target(name: "AtomicWrite"),
    .target(name: "Torch", dependencies: ["CTorch", "AtomicWrite"]),
    // Module, layers, losses.
    .target(name: "TorchNN", dependencies: ["Torch"]),
    // C shim over zlib (gzip inflate/deflate, CRC-32) for MedicalImaging; `mi_` prefix.
    .target(name: "CImagingZlib", cSettings: [.unsafeFlags(["-O2"])], linkerSettings: [.linkedLibrary("z")]),
    // C++ shim over GDCM (libgdcm-dev) with a C header; `mi_dicom_` prefix; status codes, no exceptions out.
    .target(
      name: "CGDCM",
      cxxSettings: [.unsafeFlags(["-isystem", "/usr/include/gdcm-3.0", "-O2"])],
      linkerSettings: [.linkedLibrary("gdcmMSFF"), .linkedLibrary("gdcmDSED"), .linkedLibrary("gdcmCommon"),
                       .linkedLibrary("gdcmDICT"), .linkedLibrary("gdcmIOD")]
    ),
    // Medical volumes: NIfTI / DICOM / NPZ readers, geometry, transforms, preprocessing cache.
    // Builds and tests without libtorch.
    .target(
      name: "MedicalImaging",
      dependencies: ["CImagingZlib", "CGDCM", "AtomicWrite",
                     .product(name: "ZIPFoundation", package: "ZIPFoundation"),
                     .product(name: "Logging", package: "swift-log")]
    ),
    // Reports: label schemas, rule-based and LLM label distillation, WordPiece tokenizer.
    // Builds and tests without libtorch.
    .target(
      name: "Reports",
      dependencies: ["AtomicWrite", .product(name: "AsyncHTTPClient", package: "async-http-client"),
                     .product(name: "Logging", package: "swift-log")],
      resources: [.copy("Schemas")]
    ),
    // GreenRFM models, training and evaluation.
    .target(
      name: "GreenRFM",
      dependencies: ["Torch", "TorchNN", "MedicalImaging", "Reports", "AtomicWrite",
                     .product(name: "Logging", package: "swift-log")],
      resources: [.copy("Presets")]
    ),
    .executableTarget(
      name: "greenrfm",
      dependencies: [
        "GreenRFM", "Torch", "TorchNN", "MedicalImaging", "Reports",
        .product(name: "ArgumentParser", package: "swift-argument-parser"),
        .product(name: "Logging", package: "swift-log"),
      ]
    ),
    .testTarget(name: "TorchTests", dependencies: ["Torch"], resources: [.copy("Golden")]),
    .testTarget(name: "TorchNNTests", dependencies: ["TorchNN", "Torch"], resources: [.copy("Golden")]),
    .testTarget(name: "MedicalImagingTests", dependencies: ["MedicalImaging"], resources: [.copy("Golden")]),
    // The tokenizer golden file is read in place (#filePath), not bundled.
    .testTarget(name: "ReportsTests", dependencies: ["Reports"], exclude: ["TokenizerGolden"]),
    // Golden files are read in place (#filePath), not bundled.
    .testTarget(name: "GreenRFMTests", dependencies: ["GreenRFM", "Torch", "TorchNN", "MedicalImaging", "Reports"],
                exclude: ["Golden"]),
  ],
  cxxLanguageStandard: .cxx20
)
