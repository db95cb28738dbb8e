#!/usr/bin/env bash
# The whole suite: every test under the default (TensorFlow) backend, then the
# backend-neutral tests again under JAX.
set -euo pipefail
cd "$(dirname "$0")/.."
# --durations: the slowest tests are listed in every CI log, to keep the suite's time in view.
python -m pytest -q --durations=15 "$@"
KERAS_BACKEND=jax python -m pytest -q --durations=10 -m "not single_pass" "$@"
