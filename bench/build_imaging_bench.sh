#!/usr/bin/env bash
# Builds bench/imaging/main.swift against a release build of the MedicalImaging target (no libtorch needed).
# Usage: bench/build_imaging_bench.sh  → .build-imaging/imaging-bench
set -euo pipefail
cd "$(dirname "$0")/.."
SCRATCH=${SCRATCH:-.build-imaging}
swift build -c release --scratch-path "$SCRATCH" --target MedicalImaging >/dev/null
R="$SCRATCH/release"
swiftc -O -I "$R/Modules" \
  -Xcc -fmodule-map-file="$R/CImagingZlib.build/module.modulemap" -Xcc -I -Xcc Sources/CImagingZlib/include \
  -Xcc -fmodule-map-file="$R/CGDCM.build/module.modulemap" -Xcc -I -Xcc Sources/CGDCM/include \
  -Xcc -fmodule-map-file="$SCRATCH/checkouts/ZIPFoundation/Sources/CZLib/module.modulemap" \
  bench/imaging/main.swift \
  "$R"/MedicalImaging.build/*.o "$R"/ZIPFoundation.build/*.o "$R"/CImagingZlib.build/*.o "$R"/CGDCM.build/*.o \
  -lz -lgdcmMSFF -lgdcmDSED -lgdcmCommon -lgdcmDICT -lgdcmIOD -lstdc++ \
  -o "$SCRATCH/imaging-bench"
echo "$SCRATCH/imaging-bench"
