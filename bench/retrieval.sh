#!/usr/bin/env bash
# Retrieval benchmark (issue 6): report→volume and volume→report ranks over a 50,000 × 768 float32 pool, computed
# in chunks of queries with libtorch; records wall time and the process's peak RSS (VmHWM). Target: peak < 1 GB.
#
#   bench/retrieval.sh [N] [D] [CHUNK]        (defaults 50000 768 512)
#
# Runs the test-only path RetrievalTests.benchmarkRetrieval50k (enabled by GREENRFM_BENCH_RETRIEVAL=1) from the
# debug test build in $SCRATCH (the Swift code only loops over chunks; the matmuls are libtorch's optimised
# kernels either way). Prints one JSON line and writes it to $SCRATCH/retrieval-last.json.
set -euo pipefail
cd "$(dirname "$0")/.."
SCRATCH="${SCRATCH:-.build}"
swift build --scratch-path "$SCRATCH" -j "${JOBS:-1}" --build-tests >&2
OUT="$PWD/$SCRATCH/retrieval-last.json"
rm -f "$OUT"
GREENRFM_BENCH_RETRIEVAL=1 GREENRFM_BENCH_N="${1:-50000}" GREENRFM_BENCH_D="${2:-768}" \
GREENRFM_BENCH_CHUNK="${3:-512}" GREENRFM_BENCH_OUTPUT="$OUT" \
  swift test --scratch-path "$SCRATCH" --skip-build --disable-xctest --no-parallel \
  --filter 'RetrievalTests/benchmarkRetrieval50k' >&2
cat "$OUT"; echo
