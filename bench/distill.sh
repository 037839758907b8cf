#!/usr/bin/env bash
# Rule-based report labeller throughput: reports per second on one core over the 800 real CT-RATE reports
# (../shared/data/reports/ctrate_manual_train.csv). Target (issue 4): >= 2,000 reports/s.
#
#   bench/distill.sh [--rounds N] [--reports CSV] [--schema NAME]
#
# Builds greenrfm in release mode (SCRATCH=.build by default), pins the process to one core with taskset when it
# is available, and prints the JSON of `greenrfm distill bench` (median_seconds, reports_per_second, ...).
set -euo pipefail
cd "$(dirname "$0")/.."
SCRATCH="${SCRATCH:-.build}"
swift build -c release --scratch-path "$SCRATCH" --product greenrfm >&2
BIN="$SCRATCH/release/greenrfm"
PIN=()
if command -v taskset >/dev/null 2>&1; then PIN=(taskset -c 0); fi
ARGS=("$@")
if [[ ! " ${ARGS[*]-} " =~ " --rounds " ]]; then ARGS+=(--rounds 10); fi
"${PIN[@]}" "$BIN" distill bench --threads 1 --json "${ARGS[@]}"
