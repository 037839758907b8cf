#!/usr/bin/env bash
# Builds the MedicalImaging fuzzer with Swift's libFuzzer + AddressSanitizer and runs it.
# Usage: fuzz/run_imaging_fuzzer.sh [SECONDS]   (default 660; work files under /tmp/greenrfm-fuzz)
# Seeds: the committed test fixtures (NIfTI-1, NIfTI-2 big-endian, qform-only .nii.gz) and a generated NPZ,
# each prefixed with its mode byte (see fuzz/ImagingFuzzer.swift).
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_TO_RUN=${1:-660}
SCRATCH=${SCRATCH:-.build-imaging}
WORK=${WORK:-/tmp/greenrfm-fuzz}
mkdir -p "$WORK/corpus" "$WORK/artifacts"
swift build -c release --scratch-path "$SCRATCH" --target MedicalImaging >/dev/null 2>&1
R="$SCRATCH/release"
clang -O1 -g -fsanitize=fuzzer-no-link,address -I Sources/CImagingZlib/include -c Sources/CImagingZlib/zlib_shim.c -o "$WORK/zlib_shim.o"
swiftc -O -g -parse-as-library -sanitize=fuzzer,address -module-name MedicalImaging -I "$R/Modules" \
  -Xcc -fmodule-map-file="$R/CImagingZlib.build/module.modulemap" -Xcc -I -Xcc Sources/CImagingZlib/include \
  -Xcc -fmodule-map-file="$R/CGDCM.build/module.modulemap" -Xcc -I -Xcc Sources/CGDCM/include \
  -Xcc -fmodule-map-file="$SCRATCH/checkouts/ZIPFoundation/Sources/CZLib/module.modulemap" \
  Sources/MedicalImaging/*.swift fuzz/ImagingFuzzer.swift \
  "$WORK/zlib_shim.o" "$R"/ZIPFoundation.build/*.o "$R"/CGDCM.build/*.o \
  -lz -lgdcmMSFF -lgdcmDSED -lgdcmCommon -lgdcmDICT -lgdcmIOD -lstdc++ \
  -o "$WORK/imaging-fuzzer" 2>&1 | grep -v "ld.gold: warning" || true
G=Tests/MedicalImagingTests/Golden
seed() { { printf "\\x$(printf %02x "$1")"; cat "$2"; } > "$WORK/corpus/$3"; }
seed 0 "$G/tiny_nifti2_be.nii" nifti2
gunzip -c "$G/tiny_qform_scaled.nii.gz" > "$WORK/qform.nii"
seed 0 "$WORK/qform.nii" nifti1
seed 1 "$G/tiny_qform_scaled.nii.gz" nifti1gz
python3 - "$WORK/seed.npz" <<'PY'
import struct, sys, zipfile
header = "{'descr': '<i2', 'fortran_order': False, 'shape': (2, 3, 4), }"
header += " " * ((64 - (10 + len(header) + 1) % 64) % 64) + "\n"
npy = b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode() + struct.pack("<24h", *range(24))
with zipfile.ZipFile(sys.argv[1], "w", zipfile.ZIP_DEFLATED) as z:
    z.writestr("ct.npy", npy)
open(sys.argv[1] + ".npy", "wb").write(npy)
PY
seed 2 "$WORK/seed.npz" npz
seed 2 "$WORK/seed.npz.npy" npy
cd "$WORK"
./imaging-fuzzer -max_total_time="$SECONDS_TO_RUN" -rss_limit_mb=2048 -max_len=4096 -print_final_stats=1 -detect_leaks=${DETECT_LEAKS:-0} \
  -artifact_prefix="$WORK/artifacts/" corpus 2>&1 | tee "$WORK/fuzz.log" | grep -E "^#[0-9]+ +(pulse|DONE|NEW)" | tail -5
grep -E "stat::|ERROR|SUMMARY" "$WORK/fuzz.log" || true
ls "$WORK/artifacts"
