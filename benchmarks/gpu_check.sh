#!/usr/bin/env bash
# One command for a GPU machine that already has CuPy and numpy: build veil,
# run the GPU tests, run the GPU benchmark, and leave a JSON and a PNG (named
# after the GPU) in the folder given as the first argument. Budget: 10 minutes.
#
#   bash benchmarks/gpu_check.sh OUT_DIR
#
# Offline machines: put the Debian packages libssl-dev, libssl3, libopenblas-dev,
# libopenblas-pthread-dev, libopenblas0, libopenblas0-pthread, libgfortran5,
# libquadmath0 and libgtest-dev in .deb/ (`apt-get download ...`), and wheels for any missing
# Python package (cython, scikit-build-core, pytest, tqdm, scikit-learn,
# matplotlib) in .whl/, at the repository root: the script unpacks and
# installs from there and never downloads anything itself.
set -uo pipefail
out=${1:?usage: gpu_check.sh OUT_DIR}
cd "$(dirname "$0")/.."
mkdir -p "$out"
out=$(cd "$out" && pwd)
exec > >(tee "$out/gpu_check.log") 2>&1
start=$(date +%s)
step() { echo "== [$(( $(date +%s) - start ))s] $*"; }
export PYTHONUNBUFFERED=1

PY=${PYTHON:-python3}
step "python: $($PY --version 2>&1), cupy: $($PY -c 'import cupy; print(cupy.__version__)' 2>&1 | tail -1)"
command -v nvidia-smi > /dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
has_gpu=1
$PY - <<'PYEOF' || { has_gpu=0; echo "gpu_check: CuPy sees no GPU: building and running the CPU part only"; }
import cupy
n = cupy.cuda.runtime.getDeviceCount()
props = cupy.cuda.runtime.getDeviceProperties(0)
name = props["name"]
print("gpu:", name.decode() if isinstance(name, bytes) else name, "count:", n,
      "cuda runtime:", cupy.cuda.runtime.runtimeGetVersion())
assert n > 0
PYEOF

# System packages: unpacked from .deb/ when carried, else from Debian when reachable.
if compgen -G ".deb/*.deb" > /dev/null; then
  prefix=/tmp/veil-debs
  step "unpacking carried Debian packages into $prefix"
  for f in .deb/*.deb; do dpkg -x "$f" "$prefix" || exit 3; done
  lib="$prefix/usr/lib/x86_64-linux-gnu"
  # Debian reaches OpenBLAS through update-alternatives links, which dpkg -x
  # does not make: link it where the build and the loader look.
  ln -sf openblas-pthread/libopenblas.so.0 "$lib/libopenblas.so.0"
  ln -sf libopenblas.so.0 "$lib/libopenblas.so"
  export CMAKE_PREFIX_PATH="$prefix/usr${CMAKE_PREFIX_PATH:+:$CMAKE_PREFIX_PATH}"
  export CPATH="$prefix/usr/include:$prefix/usr/include/x86_64-linux-gnu${CPATH:+:$CPATH}"
  export LIBRARY_PATH="$lib${LIBRARY_PATH:+:$LIBRARY_PATH}"
  export LD_LIBRARY_PATH="$lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
elif ! { [ -e /usr/include/openssl/evp.h ] && [ -e /usr/include/x86_64-linux-gnu/cblas.h ]; }; then
  step "installing build packages from Debian"
  apt-get update -qq && apt-get install -y -qq libssl-dev libopenblas-dev || exit 3
fi

# Python build and test requirements: the machine's own, then carried wheels.
site=/tmp/veil-site
if compgen -G ".whl/*.whl" > /dev/null; then
  step "installing carried wheels"
  $PY -m pip install -q --no-index --no-deps --no-compile --target "$site" .whl/*.whl || exit 4
  export PATH="$site/bin:$PATH"
fi
export PYTHONPATH="$site${PYTHONPATH:+:$PYTHONPATH}"
$PY -c "import Cython, scikit_build_core, pytest, tqdm, sklearn, matplotlib, numpy" || {
  echo "gpu_check: a Python requirement is missing: carry its wheel in .whl/"; exit 4; }

step "building and installing veil ($(nproc) jobs)"
export CMAKE_BUILD_PARALLEL_LEVEL=$(nproc)
$PY -m pip install -q --no-build-isolation --no-deps --no-index --target "$site" \
  -Cbuild-dir=/tmp/veil-build -Ccmake.define.VEIL_BUILD_TESTS=OFF \
  -Ccmake.define.VEIL_BUILD_BENCHMARKS=ON . || exit 5
$PY -c "import veil; print('veil', veil.__version__, veil.enclave_backend())" || exit 5

# GPU machines' host CPUs often have AVX-512, which CI's do not: run the math
# kernels' AVX-512 cases (bit-identical to the portable path) while here.
if grep -qw avx512f /proc/cpuinfo; then
  step "C++ math tests on this host's AVX-512 kernel path"
  gen=(); command -v ninja > /dev/null && gen=(-G Ninja)
  { cmake -S . -B /tmp/veil-ctest "${gen[@]}" -DVEIL_BUILD_TESTS=ON &&
    cmake --build /tmp/veil-ctest; } > "$out/ctest_build.log" 2>&1 ||
    echo "gpu_check: the C++ test build failed (see ctest_build.log)"
  (cd /tmp/veil-ctest && timeout 120 ctest -j"$(nproc)" --output-on-failure -R Math \
     > "$out/ctest_math.log" 2>&1)
  echo "avx512 cases passed: $(grep -c 'avx512 .*Passed' "$out/ctest_math.log")," \
       "skipped: $(grep -c 'avx512 .*Skipped' "$out/ctest_math.log")"
  grep -E "tests passed|\(Failed\)" "$out/ctest_math.log"
fi

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
batches=${VEIL_GPU_BATCHES:-256,1024}
# (a) and (c), (c)'s enclave part on 1 thread and on the cores, and (b) entirely in the
# enclave on the host CPU (1 thread and the cores) up to width 2048; threads stay off
# OpenBLAS's spin so that the CPU parts do not fight over the cores.
timeout 330 env OPENBLAS_THREAD_TIMEOUT=4 $PY benchmarks/gpu_bench.py "$out" --widths "$widths" \
  --batches "$batches" --repeats 15 --enclave-only-max-width 2048
bench_rc=$?
step "the conv row (issue 17): 64 -> 64 channels, 3x3, 32x32, batch 64"
timeout 120 $PY -m veil bench --conv --device cuda --repeats 5 --out "$out"
step "the enclave's passes alone by thread count (bench_math)"
bm=$(find /tmp/veil-build -name bench_math -type f | head -1)
[ -n "$bm" ] && timeout 60 "$bm" --rows 256 --cols 4096 --reps 15 --threads "$(nproc)" | tail -8
step "where a CUDA device call's time goes"
timeout 60 $PY benchmarks/gpu_device_ops.py --widths 1024,4096 --batch 256
step "done: tests rc=$tests_rc, benchmark rc=$bench_rc"
[ $tests_rc -eq 0 ] && [ $bench_rc -eq 0 ]
