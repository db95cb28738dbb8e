#!/usr/bin/env bash
# Issue 7's GPU checks in one call of the device machine (JAX with CUDA and PyTorch there, no
# TensorFlow, nothing downloadable): the fast_cifar10 protocol end to end, timed, then our step
# (KERAS_BACKEND=jax, mixed_bfloat16, real augmentation) against the PyTorch reference loop in
# float32 and bf16 autocast at batch 512 and 128. The protocol goes first: it is the longest and
# its accuracy matters most; whatever the call's time limit cuts off of the benchmarks, the lines
# already printed come back. Prepare once, here:
#
#   mkdir -p device_data/whl && cp ../shared/data/cifar10-jpeg.tar.gz device_data/
#   .venv/bin/python -m pip download --no-deps --only-binary=:all: --python-version 3.12 \
#       --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
#       -d device_data/whl keras==3.15.1 namex==0.1.0 optree==0.20.0
#
# then run `bash benchmarks/run_gpu.sh` on the device with carry ["device_data"] and a
# timeout_s of about 590 (device_data/ is ignored by git: 22 MB). The protocol's runs go under
# runs/ on that machine: a second call on the same warm machine resumes them.
#
# Environment: STAGES (default "fast_cifar10 bench", in that order), BATCHES ("512 128"),
# STEPS (50), WARMUP (10), REPEATS (3), OURS_PRECISIONS (our step's precisions, default
# "mixed_bfloat16"; "mixed_bfloat16 float32" adds the float32 against float32 comparison),
# PYTHON / TORCH_PYTHON (default python3: the device's, with torch and jax), RESULTS (where
# logs and JSON lines go: $OUT on the device, else runs/gpu),
# FAST_FLAGS (extra tools.reproduce flags), FAST_TIMEOUT (seconds the protocol may run before it is
# stopped, so that the stages after it still run: default none; a later call resumes it),
# GPU_DRY_RUN=1 (tiny settings, TensorFlow, TFDS and keras-tuner unimportable as on the device
# (tests/without_tensorflow.py), to check this script on a CPU host: PYTHON=.venv/bin/python
# TORCH_PYTHON=/work/bench-venv/bin/python).
set -uo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
TORCH_PYTHON=${TORCH_PYTHON:-python3}
STAGES=${STAGES:-fast_cifar10 bench}
BATCHES=${BATCHES:-512 128}
STEPS=${STEPS:-50}
WARMUP=${WARMUP:-10}
REPEATS=${REPEATS:-3}
OURS_PRECISIONS=${OURS_PRECISIONS:-mixed_bfloat16}
RESULTS=${RESULTS:-${OUT:-runs/gpu}}
FAST_FLAGS=${FAST_FLAGS:-}
FAST_TIMEOUT=${FAST_TIMEOUT:-0}
RUN_MODULE=-m

if [ "${GPU_DRY_RUN:-0}" = 1 ]; then
  BATCHES="16"; STEPS=2; WARMUP=1; REPEATS=1
  # Modules run through tests/without_tensorflow.py: TensorFlow, TFDS and keras-tuner
  # unimportable, as on the device machine.
  RUN_MODULE=tests/without_tensorflow.py
  FAST_FLAGS="--train_fraction=0.02 --epochs=1 --student_epochs=1 --arch=cnn --student_archs=cnn --batch_size=64 --precision=float32 $FAST_FLAGS"
fi
mkdir -p "$RESULTS"
export KERAS_BACKEND=jax PYTHONUNBUFFERED=1
# Runs with the same graph (e.g. KD from the normal and from the nasty teacher) compile once.
export JAX_COMPILATION_CACHE_DIR=${JAX_COMPILATION_CACHE_DIR:-/tmp/jax-cache}
if ! "$PYTHON" -c "import keras" 2>/dev/null; then
  "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
      --target /tmp/site device_data/whl/*.whl || { echo "error: cannot install device_data/whl" >&2; exit 1; }
  export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi
{
  date -u
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>&1 || echo "no nvidia-smi"
  "$PYTHON" -c "import jax, keras; print('jax', jax.__version__, jax.devices(), 'keras', keras.__version__)"
  "$TORCH_PYTHON" -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())"
} 2>&1 | tee "$RESULTS/machine.txt"

bench() {
  for batch in $BATCHES; do
    COMMON=(--arch=resnet18 --batch_size="$batch" --mode=nasty,normal --steps="$STEPS"
            --warmup_steps="$WARMUP" --repeats="$REPEATS")
    for precision in $OURS_PRECISIONS; do
      echo "# $(date -u +%T) ours $precision, batch $batch" >&2
      "$PYTHON" $RUN_MODULE tools.benchmark "${COMMON[@]}" --precision="$precision" \
          2>>"$RESULTS/bench.err" | tee -a "$RESULTS/bench.jsonl"
    done
    for precision in float32 bf16_autocast; do
      echo "# $(date -u +%T) pytorch $precision, batch $batch" >&2
      "$TORCH_PYTHON" benchmarks/pytorch_reference.py "${COMMON[@]}" --precision="$precision" \
          2>>"$RESULTS/bench.err" | tee -a "$RESULTS/bench.jsonl"
    done
  done
  "$PYTHON" - "$RESULTS/bench.jsonl" <<'PY'
import json, sys
rows = [json.loads(line) for line in open(sys.argv[1]) if line.startswith("{")]
def ips(framework, mode, batch, precision=None):
    found = [r["images_per_second"] for r in rows
             if r["framework"] == framework and r["mode"] == mode and r["batch_size"] == batch
             and precision in (None, r["precision"])]
    return max(found) if found else None
for batch in sorted({r["batch_size"] for r in rows}):
    for mode in ("nasty", "normal"):
        ours, theirs = ips("keras", mode, batch, "mixed_bfloat16"), ips("pytorch", mode, batch)
        if ours and theirs:
            print(f"batch {batch} {mode}: ours {ours:.0f} img/s, faster PyTorch {theirs:.0f}: {ours / theirs:.2f}x")
        ours, theirs = ips("keras", mode, batch, "float32"), ips("pytorch", mode, batch, "float32")
        if ours and theirs:
            print(f"batch {batch} {mode} float32: ours {ours:.0f} img/s, PyTorch {theirs:.0f}: {ours / theirs:.2f}x")
PY
}

fast_cifar10() {
  echo "# $(date -u +%T) fast_cifar10" >&2
  started=$(date +%s)
  # shellcheck disable=SC2086  # FAST_FLAGS is a list of flags
  timeout --signal=INT "$FAST_TIMEOUT" "$PYTHON" $RUN_MODULE tools.reproduce --protocol=fast_cifar10 \
      --data_dir=device_data/cifar10-jpeg.tar.gz --data_cache_dir=runs/data_cache \
      --output_dir=runs/fast_cifar10 $FAST_FLAGS 2>&1 \
      | grep --line-buffered -v "^I0000\|^W0000" | tee -a "$RESULTS/fast_cifar10.log"
  echo "fast_cifar10: $(( $(date +%s) - started )) s this call" | tee -a "$RESULTS/fast_cifar10.log"
  cp runs/fast_cifar10/report.md runs/fast_cifar10/report.json "$RESULTS/" 2>/dev/null || true
  # Every finished run's metrics and history, also when the protocol was stopped part-way.
  (cd runs && find fast_cifar10 -name "*.json" -o -name "*.csv" -o -name "*.md" \
      | tar -czf "$RESULTS/fast_cifar10_runs.tar.gz" -T -)
}

for stage in $STAGES; do
  case "$stage" in
    bench | fast_cifar10) "$stage" ;;
    *) echo "error: unknown stage '$stage' in STAGES (bench, fast_cifar10)" >&2; exit 1 ;;
  esac
done
