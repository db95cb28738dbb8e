#!/usr/bin/env bash
# The whole suite: every test under the default (TensorFlow) backend, then the
# backend-neutral tests again under JAX. Two pytest-xdist workers, a test file each at a time
# (module fixtures stay in one process): most of the time goes to starting binaries and
# importing TensorFlow, which one process cannot overlap.
set -euo pipefail
cd "$(dirname "$0")/.."
WORKERS=${TEST_WORKERS:-2}
# --durations: the slowest tests are listed in every CI log, to keep the suite's time in view.
python -m pytest -q -n "$WORKERS" --dist loadfile --durations=15 "$@"
KERAS_BACKEND=jax python -m pytest -q -n "$WORKERS" --dist loadfile --durations=10 -m "not single_pass" "$@"
