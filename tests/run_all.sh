#!/usr/bin/env bash
# The whole suite: every test under the default (TensorFlow) backend, then the
# backend-neutral tests again under JAX.
set -euo pipefail
cd "$(dirname "$0")/.."
python -m pytest -q "$@"
KERAS_BACKEND=jax python -m pytest -q -m "not single_pass" "$@"
