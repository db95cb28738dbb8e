#!/usr/bin/env bash
# The whole suite: every test under the default (TensorFlow) backend, then the
# backend-neutral tests again under JAX. Two pytest-xdist workers, a test file each at a time
# (module fixtures stay in one process): most of the time goes to starting binaries and
# importing TensorFlow, which one process cannot overlap.
# In the TensorFlow pass, in-process Keras functions run eagerly except in tests marked `graph`
# (tests/conftest.py): tracing cost more than the tiny jobs compute.
set -euo pipefail
cd "$(dirname "$0")/.."
WORKERS=${TEST_WORKERS:-2}
# One JAX compilation cache for the whole run, shared by both passes, both workers and every
# subprocess: on JAX every new model's `fit` compiles programs that many tests compile again
# (the same CNN on the same digits shapes), and XLA's compiles are most of the JAX pass's time.
# A hit loads the very executable a compile would produce. Small programs (eager ops) count
# too, hence no minimum compile time. A cache given by the caller is used as it is.
if [[ -z "${JAX_COMPILATION_CACHE_DIR:-}" ]]; then
  JAX_COMPILATION_CACHE_DIR=$(mktemp -d -t nasty-tf-jax-cache.XXXXXX)
  trap 'rm -rf "$JAX_COMPILATION_CACHE_DIR"' EXIT
fi
export JAX_COMPILATION_CACHE_DIR
export JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS=${JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS:-0}
# A size limit turns on JAX's file lock around every read and write of the cache (filelock,
# requirements-test.txt): without it a worker may read an entry another is still writing,
# warn on stderr and compile again. 4 GiB is far above what the suite writes.
export JAX_COMPILATION_CACHE_MAX_SIZE=${JAX_COMPILATION_CACHE_MAX_SIZE:-4294967296}
# --no-loadscope-reorder: files go to the workers longest first, in the order tests/conftest.py
# gives them (xdist's default orders them by test count, which put the longest files last).
# --durations: the slowest tests are listed in every CI log, to keep the suite's time in view.
python -m pytest -q -n "$WORKERS" --dist loadfile --no-loadscope-reorder --durations=15 "$@"
KERAS_BACKEND=jax python -m pytest -q -n "$WORKERS" --dist loadfile --no-loadscope-reorder --durations=10 -m "not single_pass" "$@"
