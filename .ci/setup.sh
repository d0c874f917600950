#!/usr/bin/env bash
# Sets up everything veil needs on a fresh Debian machine (run as root or with
# sudo for the system packages), then builds and installs veil into .venv with
# the GoogleTest suites and benchmarks in the same CMake build tree (build/veil),
# so CTest and the Python extension share one build.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(g++ make pkg-config libssl-dev libgtest-dev libopenblas-dev
          clang libclang-rt-14-dev llvm-14)  # the last three: tests/fuzz (docs/fuzzing.md)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "veil setup: installing ${missing[*]} from Debian"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q \
  "numpy>=1.24" "cython>=3.0" "scikit-build-core>=0.10" "cmake>=3.20" ninja \
  "pytest>=7" "tqdm>=4.60" "scikit-learn>=1.2" "matplotlib>=3.6" \
  "pandas>=1.5" "onnx>=1.14" "onnxruntime>=1.16" \
  "ray>=2.9"  # so the DataFrame, ONNX and data-parallel (Ray) tests run

.venv/bin/python -m pip install -q --no-build-isolation \
  -Cbuild-dir=build/veil \
  -Ccmake.define.VEIL_BUILD_TESTS=ON \
  -Ccmake.define.VEIL_BUILD_BENCHMARKS=ON \
  .
