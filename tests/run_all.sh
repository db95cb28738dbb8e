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
# One JAX compilation cache per pytest-xdist worker, kept for both passes and the worker's
# subprocesses (tests/conftest.py picks the worker's folder under this root): on JAX every new
# model's `fit` compiles programs that many tests compile again (the same CNN on the same digits
# shapes), and XLA's compiles are most of the JAX pass's time. A hit loads the very executable
# a compile would produce. Small programs (eager ops) count too, hence no minimum compile time.
# One folder per worker, because JAX's only guard against reading an entry another process is
# still writing is its size limit's file lock, and with a limit every write lists and stats the
# whole cache (about 1,500 entries by the end): measured on the JAX pass, 362 s with one shared
# locked cache against 288 s unlocked (AMD EPYC, 2 cores, 2026-12-04). A worker's own
# subprocesses run while it waits for them, so no two processes write one folder at once.
# A cache (JAX_COMPILATION_CACHE_DIR) or cache root given by the caller is used as it is.
if [[ -z "${JAX_COMPILATION_CACHE_DIR:-}" && -z "${NASTY_TF_TEST_JAX_CACHE_ROOT:-}" ]]; then
  NASTY_TF_TEST_JAX_CACHE_ROOT=$(mktemp -d -t nasty-tf-jax-cache.XXXXXX)
  trap 'rm -rf "$NASTY_TF_TEST_JAX_CACHE_ROOT"' EXIT
  export NASTY_TF_TEST_JAX_CACHE_ROOT
fi
export JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS=${JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS:-0}
# XLA's CPU compiler without its expensive LLVM optimisations: the tiny jobs here compute far
# less than XLA spends compiling them (a JAX `tools.reproduce` of the suite's size spends 36 of
# its 50 CPU seconds compiling), and the same programs compiled less optimised give the same
# results to within rounding. Measured on the JAX pass: 250 s with XLA's defaults, 173 to 196 s
# with these (AMD EPYC, 2 cores, 2026-12-05). The caller's own XLA_FLAGS follow ours, so they win;
# tests/test_distribute_jax.py gives its two-device process XLA's defaults (it says why).
export XLA_FLAGS="--xla_backend_optimization_level=0 --xla_llvm_disable_expensive_passes=true${XLA_FLAGS:+ $XLA_FLAGS}"
# --no-loadscope-reorder: files go to the workers longest first, in the order tests/conftest.py
# gives them (xdist's default orders them by test count, which put the longest files last).
# --durations: the slowest tests are listed in every CI log, to keep the suite's time in view.
python -m pytest -q -n "$WORKERS" --dist loadfile --no-loadscope-reorder --durations=15 "$@"
KERAS_BACKEND=jax python -m pytest -q -n "$WORKERS" --dist loadfile --no-loadscope-reorder --durations=10 -m "not single_pass" "$@"
