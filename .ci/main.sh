#!/usr/bin/env bash
# The main job: set up, then train an MLP and a small CNN (docs/design.md §4.4) on
# scikit-learn's digits in verify mode, each with float64 training of the same network
# from the same initial weights alongside for comparison; then the MLP again on two Ray
# workers (docs/design.md §4.6), which must print the same last line.
set -euo pipefail
cd "$(dirname "$0")/.."
bash .ci/setup.sh
.venv/bin/veil info
mkdir -p runs
.venv/bin/veil train --dataset digits --compare-float --out runs/digits "$@" | tee runs/digits.log
.venv/bin/veil train --dataset digits --model cnn --compare-float --out runs/digits-cnn "$@"
.venv/bin/veil train --dataset digits --compare-float --out runs/digits-2workers --workers 2 \
  "$@" | tee runs/digits-2workers.log
one=$(tail -n 1 runs/digits.log)
two=$(tail -n 1 runs/digits-2workers.log)
if [ "$one" != "$two" ]; then
  echo "2 workers printed '$two', 1 worker '$one': they must be the same" >&2
  exit 1
fi
echo "2 Ray workers: the same last line as 1 worker"
