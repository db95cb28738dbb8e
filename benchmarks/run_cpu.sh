#!/usr/bin/env bash
# Issue 7's CPU comparison: the PyTorch eager reference loop and our real training path,
# side by side and interleaved (torch, ours, torch, ours...), then the medians and ratios.
#
#   bash benchmarks/run_cpu.sh                 # ResNet-18, batch 128, float32, 3 rounds
#   THREADS=1 ROUNDS=2 STEPS=3 bash benchmarks/run_cpu.sh   # both limited to one thread
#   PRECISION=mixed_bfloat16 TORCH_PRECISION=bf16_autocast bash benchmarks/run_cpu.sh
#
# Environment: TORCH_PYTHON (a python with torch, default /work/bench-venv/bin/python),
# PYTHON (the project's, default .venv/bin/python), ROUNDS, STEPS, WARMUP, REPEATS, BATCH,
# ARCH, PRECISION (ours: float32, mixed_bfloat16 or mixed_float16), TORCH_PRECISION
# (float32 or bf16_autocast), THREADS (0: each framework's default, 2 threads on 2 cores;
# N: torch.set_num_threads(N) and TensorFlow's inter- and intra-op pools of N), NICE (e.g. -10 to run both at a higher
# priority than other work on a shared machine), OUT (where the JSON lines go, default
# runs/bench/cpu-<date>.jsonl). Extra arguments go to tools.benchmark.
set -euo pipefail
cd "$(dirname "$0")/.."
TORCH_PYTHON=${TORCH_PYTHON:-/work/bench-venv/bin/python}
PYTHON=${PYTHON:-.venv/bin/python}
ROUNDS=${ROUNDS:-3}
STEPS=${STEPS:-5}
WARMUP=${WARMUP:-2}
REPEATS=${REPEATS:-3}
BATCH=${BATCH:-128}
ARCH=${ARCH:-resnet18}
THREADS=${THREADS:-0}
PRECISION=${PRECISION:-float32}
TORCH_PRECISION=${TORCH_PRECISION:-float32}
NICE=${NICE:-0}
OUT=${OUT:-runs/bench/cpu-$(date -u +%Y%m%dT%H%M%S).jsonl}
mkdir -p "$(dirname "$OUT")"
COMMON=(--arch="$ARCH" --batch_size="$BATCH" --mode=nasty,normal --steps="$STEPS"
        --warmup_steps="$WARMUP" --repeats="$REPEATS")
TORCH_THREADS=(); OUR_THREADS=()
if [ "$THREADS" != 0 ]; then
  TORCH_THREADS=(--threads="$THREADS")
  OUR_THREADS=(--inter_op_threads="$THREADS" --intra_op_threads="$THREADS")
fi
echo "# $(date -u) $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2) x$(nproc); load: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
for round in $(seq "$ROUNDS"); do
  echo "# round $round/$ROUNDS: pytorch (load $(cut -d' ' -f1-3 /proc/loadavg))" >&2
  nice -n "$NICE" "$TORCH_PYTHON" benchmarks/pytorch_reference.py "${COMMON[@]}" --precision="$TORCH_PRECISION" "${TORCH_THREADS[@]}" | tee -a "$OUT"
  echo "# round $round/$ROUNDS: ours (load $(cut -d' ' -f1-3 /proc/loadavg))" >&2
  TF_CPP_MIN_LOG_LEVEL=3 nice -n "$NICE" "$PYTHON" -m tools.benchmark "${COMMON[@]}" --precision="$PRECISION" \
    "${OUR_THREADS[@]}" "$@" 2>/dev/null | tee -a "$OUT"
done
"$PYTHON" - "$OUT" <<'PY'
import json, statistics, sys
rows = [json.loads(line) for line in open(sys.argv[1]) if line.startswith("{")]
medians = {}  # metric -> {(framework, mode): median over rounds}
for metric in ("cpu_seconds_per_step", "images_per_second"):
    values = {}
    for row in rows:
        if metric in row:
            values.setdefault((row["framework"], row["mode"]), []).append(row[metric])
    medians[metric] = {key: statistics.median(v) for key, v in values.items()}
    for (framework, mode), value in sorted(medians[metric].items()):
        print(f"{framework:8s} {mode:7s} {value:8.3f} {metric}  (rounds: {values[framework, mode]})")
cpu, ips = medians["cpu_seconds_per_step"], medians["images_per_second"]
if ("keras", "nasty") in cpu and ("pytorch", "nasty") in cpu:
    print(f"CPU time, pytorch/ours nasty step: {cpu['pytorch', 'nasty'] / cpu['keras', 'nasty']:.3f}")
if ("keras", "nasty") in cpu and ("keras", "normal") in cpu:
    print(f"CPU time, ours nasty/normal step: {cpu['keras', 'nasty'] / cpu['keras', 'normal']:.3f}")
if ("keras", "nasty") in ips and ("pytorch", "nasty") in ips:
    print(f"ours/pytorch, nasty throughput: {ips['keras', 'nasty'] / ips['pytorch', 'nasty']:.3f}  (target >= 1.5)")
if ("keras", "nasty") in ips and ("keras", "normal") in ips:
    print(f"ours, nasty/normal step time:  {ips['keras', 'normal'] / ips['keras', 'nasty']:.3f}  (target <= 1.45)")
if ("pytorch", "nasty") in ips and ("pytorch", "normal") in ips:
    print(f"pytorch, nasty/normal step time: {ips['pytorch', 'normal'] / ips['pytorch', 'nasty']:.3f}")
print(f"load average at the end: {open('/proc/loadavg').read().split()[:3]}; lines in {sys.argv[1]}")
PY
