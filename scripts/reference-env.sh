#!/usr/bin/env bash
# Makes .venv-ref: PyPI's full torch==2.15.0 (with its CUDA dependencies, about 3.5 GB) plus the reference
# libraries that golden-value scripts and benchmarks compare against. Not needed to build, test or use
# greenrfm: tests read committed golden files; only regenerating them or running bench/ needs this.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -f .venv-ref/.greenrfm-ref-v1 ]; then
  python3 -m venv .venv-ref
  .venv-ref/bin/python -m pip install -q --upgrade pip
  .venv-ref/bin/python -m pip install -q torch==2.15.0 numpy safetensors==0.8.0 scipy scikit-learn
  touch .venv-ref/.greenrfm-ref-v1
fi
echo .venv-ref/bin/python
