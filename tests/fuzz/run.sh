#!/usr/bin/env bash
# Builds the libFuzzer harnesses of the enclave boundary (clang, AddressSanitizer,
# UndefinedBehaviorSanitizer) and runs them for SECONDS in all, split evenly. Any
# crash, leak, sanitizer report, timeout or enclave abort fails the run;
# docs/fuzzing.md says how to reproduce one and how to run longer.
#
#   bash tests/fuzz/run.sh [SECONDS]        (default 90: 30 per harness)
#
# Environment: VEIL_FUZZ_BUILD, the build tree (default build/fuzz); the corpus
# grows under $VEIL_FUZZ_BUILD/corpus and findings land in $VEIL_FUZZ_BUILD/artifacts.
set -uo pipefail
cd "$(dirname "$0")/../.."

total=${1:-90}
build=${VEIL_FUZZ_BUILD:-build/fuzz}
harnesses=(ecall_dispatch train_config checkpoint)
declare -A max_len=([ecall_dispatch]=16384 [train_config]=4096 [checkpoint]=128)
seconds=$(( total / ${#harnesses[@]} ))
(( seconds >= 1 )) || seconds=1

generator=()
command -v ninja >/dev/null && generator=(-G Ninja)
if ! cmake -S tests/fuzz -B "$build" "${generator[@]}" -DCMAKE_C_COMPILER=clang \
     -DCMAKE_CXX_COMPILER=clang++ >"$build.configure.log" 2>&1; then
  cat "$build.configure.log" >&2
  echo "fuzz: configuring the sanitizer build failed" >&2
  exit 1
fi
rm -f "$build.configure.log"
cmake --build "$build" --parallel 2 --target make_seeds \
  $(printf 'fuzz_%s ' "${harnesses[@]}") >"$build/build.log" 2>&1 || {
  tail -50 "$build/build.log" >&2
  echo "fuzz: building the harnesses failed" >&2
  exit 1
}

# Symbolized stacks in reports, when Debian's llvm-symbolizer is there.
for s in llvm-symbolizer llvm-symbolizer-14; do
  if command -v "$s" >/dev/null; then
    export ASAN_SYMBOLIZER_PATH=$(command -v "$s") UBSAN_SYMBOLIZER_PATH=$(command -v "$s")
    break
  fi
done
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
unset VEIL_ENCLAVE_PATH  # the harnesses must load the sanitized image beside them

corpus=$build/corpus
mkdir -p "$build/artifacts"
for h in "${harnesses[@]}"; do mkdir -p "$corpus/$h" "$corpus/seeds/$h"; done
"$build/make_seeds" "$corpus/seeds/ecall_dispatch" "$corpus/seeds/train_config" \
  "$corpus/seeds/checkpoint" || exit 1

status=0
for h in "${harnesses[@]}"; do
  log=$build/fuzz_$h.log
  "$build/fuzz_$h" -max_total_time="$seconds" -timeout=60 -rss_limit_mb=6144 \
    -malloc_limit_mb=4096 -max_len="${max_len[$h]}" -print_final_stats=1 \
    -artifact_prefix="$build/artifacts/$h-" "$corpus/$h" "$corpus/seeds/$h" >"$log" 2>&1
  rc=$?
  runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$')
  cov=$(grep -oE '(DONE|INITED) +cov: [0-9]+' "$log" | tail -1 | grep -oE '[0-9]+$')
  if [ $rc -ne 0 ]; then
    grep -v '^\[veil enclave' "$log" | tail -60 >&2
    echo "fuzz: fuzz_$h FAILED (exit $rc); the input is in $build/artifacts/, the log in $log" >&2
    status=1
  else
    echo "fuzz: fuzz_$h: ${runs:-?} inputs in ${seconds}s, coverage ${cov:-?}: no crash, leak or UB report"
  fi
done
exit $status
