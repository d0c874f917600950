#!/usr/bin/env bash
# One command for a GPU machine that already has CuPy and numpy: build veil,
# run the GPU tests, run the GPU benchmark, and leave a JSON and a PNG (named
# after the GPU) in the folder given as the first argument. Budget: 8 minutes.
#
#   bash benchmarks/gpu_check.sh OUT_DIR
#
# Offline machines: put wheels for cython, scikit-build-core, pytest, tqdm,
# scikit-learn and matplotlib in .whl/ and the Debian packages libssl-dev,
# libgtest-dev and libopenblas-dev (with their -0 runtime packages) in .deb/
# at the repository root; the script installs from there and never downloads.
set -uo pipefail
out=${1:?usage: gpu_check.sh OUT_DIR}
cd "$(dirname "$0")/.."
mkdir -p "$out"
log="$out/gpu_check.log"
exec > >(tee "$log") 2>&1
start=$(date +%s)
step() { echo "== [$(( $(date +%s) - start ))s] $*"; }

PY=${PYTHON:-python3}
step "python: $($PY --version), cupy: $($PY -c 'import cupy; print(cupy.__version__)' 2>&1)"
has_gpu=1
$PY - <<'PYEOF' || { has_gpu=0; echo "gpu_check: CuPy sees no GPU: building and running the CPU part only"; }
import cupy
n = cupy.cuda.runtime.getDeviceCount()
props = cupy.cuda.runtime.getDeviceProperties(0)
print("gpu:", props["name"].decode() if isinstance(props["name"], bytes) else props["name"], "count:", n)
assert n > 0
PYEOF

# System packages: from .deb/ when carried, else from Debian when reachable.
prefix=""
if compgen -G ".deb/*.deb" > /dev/null; then
  prefix=/tmp/veil-debs
  step "unpacking carried Debian packages into $prefix"
  for f in .deb/*.deb; do dpkg -x "$f" "$prefix"; done
  export CMAKE_PREFIX_PATH="$prefix/usr${CMAKE_PREFIX_PATH:+:$CMAKE_PREFIX_PATH}"
  export CPATH="$prefix/usr/include:$prefix/usr/include/x86_64-linux-gnu${CPATH:+:$CPATH}"
  export LIBRARY_PATH="$prefix/usr/lib/x86_64-linux-gnu${LIBRARY_PATH:+:$LIBRARY_PATH}"
  export LD_LIBRARY_PATH="$prefix/usr/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
elif ! { [ -e /usr/include/openssl/evp.h ] && [ -e /usr/include/x86_64-linux-gnu/cblas.h ]; }; then
  step "installing build packages from Debian"
  apt-get update -qq && apt-get install -y -qq libssl-dev libgtest-dev libopenblas-dev || exit 3
fi

# Python build and test requirements: from .whl/ when carried.
site=/tmp/veil-site
if compgen -G ".whl/*.whl" > /dev/null; then
  step "installing carried wheels"
  $PY -m pip install -q --no-index --no-deps --no-compile --target "$site" .whl/*.whl || exit 4
  export PYTHONPATH="$site${PYTHONPATH:+:$PYTHONPATH}" PATH="$site/bin:$PATH"
else
  $PY -m pip install -q cython scikit-build-core pytest tqdm scikit-learn matplotlib || true
fi

step "building and installing veil"
$PY -m pip install -q --no-build-isolation --no-deps --target "$site" \
  -Cbuild-dir=/tmp/veil-build -Ccmake.define.VEIL_BUILD_TESTS=OFF . || exit 5
export PYTHONPATH="$site${PYTHONPATH:+:$PYTHONPATH}"

step "GPU tests"
(cd tests/python && timeout 240 $PY -m pytest -q -p no:cacheprovider -m gpu -rs \
   --junitxml="$out/gpu_tests.xml" .)
tests_rc=$?

if [ $has_gpu -eq 0 ]; then
  step "no GPU: the gpu tests above were skipped with their reason; no benchmark"
  exit 2
fi
step "GPU benchmark"
widths=${VEIL_GPU_WIDTHS:-1024,2048,4096,8192}
timeout 240 $PY benchmarks/gpu_bench.py "$out" --widths "$widths" --batches 256,1024 --repeats 3
bench_rc=$?
step "done: tests rc=$tests_rc, benchmark rc=$bench_rc"
[ $tests_rc -eq 0 ] && [ $bench_rc -eq 0 ]
