#!/usr/bin/env bash
# Every test: the CTest suites (C++) and the pytest suites (through the
# installed package). Sets up whatever is missing first.
set -uo pipefail
cd "$(dirname "$0")/.."
bash .ci/setup.sh || exit 1

status=0
PATH="$PWD/.venv/bin:$PATH" ctest --test-dir build/veil --output-on-failure -j2 || status=1

# Run from outside the source tree so `import veil` is the installed package.
(cd tests/python && ../../.venv/bin/python -m pytest -q -p no:cacheprovider "$@" .)
rc=$?
if [ $rc -eq 5 ]; then
  echo "pytest collected no tests: failing" >&2
  status=1
elif [ $rc -ne 0 ]; then
  status=1
fi

# A short fuzz run of the enclave boundary with ASan/UBSan (docs/fuzzing.md): 90 s
# split among the harnesses after their sanitizer build.
PATH="$PWD/.venv/bin:$PATH" bash tests/fuzz/run.sh 90 || status=1
exit $status
