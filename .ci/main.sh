#!/usr/bin/env bash
# The main job: set up, then train an MLP on scikit-learn's digits in verify
# mode, with float64 training of the same network alongside for comparison.
set -euo pipefail
cd "$(dirname "$0")/.."
bash .ci/setup.sh
.venv/bin/veil info
.venv/bin/veil train --dataset digits --compare-float --out runs/digits "$@"
