"""Summarises one GPU benchmark call (`benchmarks/run_gpu.sh`) into a committed report.json.

Reads the JSON lines of `tools.benchmark` and `benchmarks/pytorch_reference.py` (bench.jsonl)
and the machine lines the script prints first (machine.txt), and writes, per batch and mode
(nasty, normal): our images/s in mixed bfloat16, the faster PyTorch precision's, the ratio, and
the fraction of the card's bf16 peak each reaches; where ours also ran in float32
(`OURS_PRECISIONS`), the float32 against float32 ratio.

From the fast_cifar10 logs of the same session (fast_cifar10_call*.log, one per device call; a
later call resumes the runs of an earlier one) it adds each call's wall-clock seconds and, per
stage, the first epoch's seconds (compilation included) and the median ms/step of the other
epochs, as Keras' progress line prints them (the whole epoch, evaluation and backup included,
over its steps).

FLOPs are counted from the network, convolutions and dense layers only (BatchNorm, ReLU and
additions are a few percent): a training step costs three forward passes of the trained
network (forward, and gradients for activations and weights), and the nasty step one more
forward of the frozen normal teacher.

    python benchmarks/gpu_report.py BENCH_DIR PEAK_TFLOPS "COMMAND" OUTPUT.json
"""

import glob
import json
import os
import re
import statistics
import sys

import keras

from nasty_tf.atomic_io import atomic_write_json
from nasty_tf.models import get_model

# Forward passes per trained image in each benchmarked step (see the module docstring).
FORWARD_PASSES = {"normal": 3, "nasty": 4}


def forward_flops(model):
    """Multiply-add FLOPs (2 per MAC) of one image through `model`'s Conv2D and Dense layers."""
    flops = 0
    # `_flatten_layers` also reaches the sublayers of custom layers, which `model.layers` hides.
    for layer in model._flatten_layers(include_self=False, recursive=True):
        if isinstance(layer, keras.layers.Conv2D):
            height, width, cin, cout = layer.kernel.shape
            out_height, out_width = layer.output.shape[1:3]
            flops += 2 * height * width * cin * cout * out_height * out_width
        elif isinstance(layer, keras.layers.Dense):
            flops += 2 * layer.kernel.shape[0] * layer.kernel.shape[1]
    return flops


def summarise(rows, peak_tflops, forward_flops_per_image):
    """`{"b<batch>": {mode: {...}}}` from benchmark rows: ours against the faster PyTorch."""

    def tflops(images_per_second, mode):
        return images_per_second * FORWARD_PASSES[mode] * forward_flops_per_image / 1e12

    summary = {}
    for row in rows:
        entry = summary.setdefault(f"b{row['batch_size']}", {}).setdefault(row["mode"], {})
        if row["framework"] == "keras" and row["precision"] == "float32":
            entry["ours_float32"] = row["images_per_second"]
        elif row["framework"] == "keras":
            entry["ours"] = row["images_per_second"]
            entry["ours_ms_per_step"] = round(1000 * row["seconds_per_step"], 1)
            entry["ours_precision"] = row["precision"]
        else:
            if row["precision"] == "float32":
                entry["pytorch_float32"] = row["images_per_second"]
            if row["images_per_second"] > entry.get("pytorch", 0):
                entry["pytorch"] = row["images_per_second"]
                entry["pytorch_precision"] = row["precision"]
    for modes in summary.values():
        for mode, entry in modes.items():
            if "ours" not in entry or "pytorch" not in entry:
                raise ValueError(f"both frameworks must be measured. Received: {entry}")
            entry["ratio"] = round(entry["ours"] / entry["pytorch"], 2)
            if "ours_float32" in entry and "pytorch_float32" in entry:
                entry["ratio_float32"] = round(entry["ours_float32"] / entry["pytorch_float32"], 2)
            for side in ("ours", "pytorch"):
                entry[f"{side}_tflops"] = round(tflops(entry[side], mode), 1)
                entry[f"{side}_peak_percent"] = round(
                    100 * entry[f"{side}_tflops"] / peak_tflops, 1
                )
    return summary


def stage_key(header):
    """`teacher_normal`, `cnn_seed0_kd_nasty`, ...: the run directory's name for a `== ` header."""
    if match := re.match(r"(normal|nasty) teacher", header):
        return f"teacher_{match[1]}"
    match = re.match(r"student (\S+) seed (\d+): (?:KD from the (\w+) teacher|(\w+))", header)
    return f"{match[1]}_seed{match[2]}_" + (f"kd_{match[3]}" if match[3] else match[4])


def fast_cifar10_timing(log_paths):
    """Wall-clock seconds per call and, per stage that ran all its epochs in one call, its timings."""
    calls, stages = [], []
    for path in log_paths:
        with open(path) as f:
            for line in f:
                if line.startswith("== "):
                    stages.append(
                        {"key": stage_key(line[3:]), "epochs": 0, "seconds": [], "ms": []}
                    )
                elif match := re.match(r"Epoch 1/(\d+)$", line.strip()):
                    stages[-1]["epochs"] = int(match[1])
                elif match := re.match(r"\d+/\d+ - (\d+)s - (\d+)ms/step", line):
                    stages[-1]["seconds"].append(int(match[1]))
                    stages[-1]["ms"].append(int(match[2]))
                elif match := re.match(r"fast_cifar10: (\d+) s this call", line):
                    calls.append(int(match[1]))
    # A stage that a call's time limit stopped is resumed by the next call: neither part is whole.
    finished = {
        stage["key"]: {
            "first_epoch_seconds": stage["seconds"][0],
            "median_ms_per_step": statistics.median(stage["ms"][1:]),
        }
        for stage in stages
        if stage["epochs"] > 1 and len(stage["ms"]) == stage["epochs"]
    }
    steps = [stage["median_ms_per_step"] for stage in finished.values()]
    first_epochs = [stage["first_epoch_seconds"] for stage in finished.values()]
    return {
        "call_seconds": calls,
        "total_seconds": sum(calls),
        "stages": finished,
        "median_ms_per_step_range": [min(steps), max(steps)],
        "first_epoch_seconds_range": [min(first_epochs), max(first_epochs)],
    }


def main(bench_dir, peak_tflops, command, output):
    with open(os.path.join(bench_dir, "bench.jsonl")) as f:
        rows = [json.loads(line) for line in f if line.startswith("{")]
    with open(os.path.join(bench_dir, "machine.txt")) as f:
        _, card, *versions = f.read().splitlines()  # the first line: the call's start
    peak_tflops = float(peak_tflops)
    flops = forward_flops(get_model(rows[0]["arch"], num_classes=10))
    report = {
        "date": rows[0]["date"],
        "machine": f"{card}; {rows[0]['machine']['cpu']}, {rows[0]['machine']['cpu_count']} CPUs",
        "versions": versions,
        "backend": rows[0]["backend"],
        "command": command,
        "arch": rows[0]["arch"],
        "peak_tflops": peak_tflops,
        "forward_gflops_per_image": round(flops / 1e9, 3),
        "forward_passes_per_step": FORWARD_PASSES,
        "batches": summarise(rows, peak_tflops, flops),
        "fast_cifar10": fast_cifar10_timing(
            sorted(glob.glob(os.path.join(bench_dir, "fast_cifar10_call*.log")))
        ),
    }
    atomic_write_json(output, report)


def check_arguments(bench_dir, peak_tflops):
    """None when the arguments can be read, else the one-line reason."""
    missing = [
        name
        for name in ("bench.jsonl", "machine.txt")
        if not os.path.isfile(os.path.join(bench_dir, name))
    ]
    if missing:
        return f"BENCH_DIR must hold {' and '.join(missing)}. Received: BENCH_DIR={bench_dir}"
    try:
        if float(peak_tflops) > 0:
            return None
    except ValueError:
        pass
    return f"PEAK_TFLOPS must be a number > 0. Received: PEAK_TFLOPS={peak_tflops}"


if __name__ == "__main__":
    if len(sys.argv) != 5:
        sys.exit(__doc__.strip().splitlines()[-1].strip())
    if problem := check_arguments(*sys.argv[1:3]):
        sys.exit(f"gpu_report: {problem}")
    main(*sys.argv[1:])
