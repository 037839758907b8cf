#!/usr/bin/env bash
# Data-parallel scaling on this machine: image stage 1 (lite preset, chest canvas) with 1 rank and with 2 ranks
# (`greenrfm launch --nproc 2`), one libtorch thread per rank, on a synthetic cohort. Prints each run's median
# optimizer-step time (from metrics.jsonl, steps after the first) and its throughput in volumes per second.
#
#   bench/dp_scaling.sh [BINARY] [WORKDIR]     (defaults: .build/release/greenrfm, /tmp/greenrfm-dp-bench)
#
# STEPS optimizer steps per run (default 6), BATCH volumes per rank per step (default 2).
set -euo pipefail
BIN=${1:-.build/release/greenrfm}
WORK=${2:-/tmp/greenrfm-dp-bench}
STEPS=${STEPS:-6}
BATCH=${BATCH:-2}
mkdir -p "$WORK"
if [ ! -f "$WORK/synth/train_labels.csv" ]; then
  "$BIN" synth --output "$WORK/synth" --train 32 --valid 1 --threads 2 >/dev/null 2>&1
fi
# The lite preset with a metrics line after every step.
python3 - "$(dirname "$0")/../Sources/GreenRFM/Presets/greenrfm-lite.json" "$WORK/lite-log1.json" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
c["stage1Image"]["logEvery"] = 1
json.dump(c, open(sys.argv[2], "w"))
PY
cohort=(--layout ct-rate --volumes "$WORK/synth/train" --reports "$WORK/synth/train_reports.csv"
        --labels "$WORK/synth/train_labels.csv" --schema chest-ct-18)
common=(train stage1 --modality image --preset "$WORK/lite-log1.json" --cache "$WORK/cache" --threads 1 --workers 1
        --batch-size "$BATCH" --max-steps "$STEPS" --checkpoint-every 1000 "${cohort[@]}")
median() {  # median time/stepSeconds of steps 2.. in a metrics.jsonl
  python3 - "$1" <<'PY'
import json, statistics, sys
t = [json.loads(l)["time/stepSeconds"] for l in open(sys.argv[1]) if "time/stepSeconds" in l][1:]
print(f"{statistics.median(t):.3f}")
PY
}
# Fill the preprocessing cache once (all 32 volumes), outside the timing.
rm -rf "$WORK/one" "$WORK/two" "$WORK/warm"
if [ ! -d "$WORK/cache" ]; then
  "$BIN" train stage1 --modality image --preset "$WORK/lite-log1.json" --cache "$WORK/cache" --threads 2 --batch-size 4 --max-steps 8 \
    --checkpoint-every 1000 "${cohort[@]}" --output "$WORK/warm" >/dev/null 2>&1
  rm -rf "$WORK/warm"
fi
"$BIN" "${common[@]}" --output "$WORK/one" >/dev/null 2>&1
"$BIN" launch --nproc 2 -- "${common[@]}" --output "$WORK/two" >/dev/null 2>&1
m1=$(median "$WORK/one/metrics.jsonl"); m2=$(median "$WORK/two/metrics.jsonl")
python3 - "$m1" "$m2" "$BATCH" <<'PY'
import sys
m1, m2, b = float(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3])
r1, r2 = b / m1, 2 * b / m2
print(f"1 rank : {m1:.3f} s/step, {b} volumes/step, {r1:.3f} volumes/s")
print(f"2 ranks: {m2:.3f} s/step, {2*b} volumes/step, {r2:.3f} volumes/s")
print(f"speed-up {r2 / r1:.2f}x, parallel efficiency {r2 / r1 / 2 * 100:.0f} %")
PY
