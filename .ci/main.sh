#!/usr/bin/env bash
# The main job: set up, then train an MLP and a small CNN (docs/design.md §4.4) on
# scikit-learn's digits in verify mode, each with float64 training of the same network
# from the same initial weights alongside for comparison.
set -euo pipefail
cd "$(dirname "$0")/.."
bash .ci/setup.sh
.venv/bin/veil info
.venv/bin/veil train --dataset digits --compare-float --out runs/digits "$@"
.venv/bin/veil train --dataset digits --model cnn --compare-float --out runs/digits-cnn "$@"
