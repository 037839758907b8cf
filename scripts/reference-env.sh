#!/usr/bin/env bash
# Makes .venv-ref: PyPI's full torch==2.15.0 (with its CUDA dependencies, about 3.5 GB) plus the reference
# libraries that golden-value scripts and benchmarks compare against. Not needed to build, test or use
# greenrfm: tests read committed golden files; only regenerating them or running bench/ needs this.
#
# --debian also installs Debian's python3-torch 1.13 (the second reference of bench/compare.py, under
# /usr/bin/python3) with OpenBLAS: without libopenblas0-openmp, Debian's torch links the reference BLAS and
# its im2col convolutions run about 7x slower (measured: 11.5 s against 1.5 s for the lite training step).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" = "--debian" ]; then
  if [ "$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends python3-torch libopenblas0-openmp >/dev/null
fi
if [ ! -f .venv-ref/.greenrfm-ref-v1 ]; then
  python3 -m venv .venv-ref
  .venv-ref/bin/python -m pip install -q --upgrade pip
  .venv-ref/bin/python -m pip install -q torch==2.15.0 numpy safetensors==0.8.0 scipy scikit-learn
  touch .venv-ref/.greenrfm-ref-v1
fi
# v2: the BERT golden (scripts/golden/make_bert_golden.py) needs transformers + tokenizers; the ResNet golden
# (make_resnet_golden.py) needs torchvision's pure-Python r3d_18. torchvision 0.29.0 pins torch==2.14.0, so it
# is installed with --no-deps (its models import and run with torch 2.15; only its C++ ops may warn); pillow is
# the one dependency its package import needs.
if [ ! -f .venv-ref/.greenrfm-ref-v2 ]; then
  .venv-ref/bin/python -m pip install -q transformers==5.24.0 tokenizers==0.23.3 pillow==13.0.0
  .venv-ref/bin/python -m pip install -q --no-deps torchvision==0.29.0
  touch .venv-ref/.greenrfm-ref-v2
fi
echo .venv-ref/bin/python
