"""benchmarks/gpu_report.py: FLOP counts, the ours-against-PyTorch summary, the log timings, and
the committed GPU report regenerated from its committed inputs."""

import importlib.util
import json
import pathlib

import keras
import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
COMMITTED = ROOT / "benchmarks" / "gpu_2026-12-04"

spec = importlib.util.spec_from_file_location("gpu_report", ROOT / "benchmarks" / "gpu_report.py")
gpu_report = importlib.util.module_from_spec(spec)
spec.loader.exec_module(gpu_report)


def test_forward_flops_counts_convolutions_and_dense_layers_of_nested_models():
    inner = keras.Sequential([keras.Input((8, 8, 4)), keras.layers.Conv2D(2, 1)])
    model = keras.Sequential(
        [
            keras.Input((8, 8, 3)),
            keras.layers.Conv2D(4, 3, padding="same"),
            keras.layers.BatchNormalization(),
            inner,
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(10),
        ]
    )
    conv = 2 * 3 * 3 * 3 * 4 * 8 * 8
    inner_conv = 2 * 1 * 1 * 4 * 2 * 8 * 8
    dense = 2 * 2 * 10
    assert gpu_report.forward_flops(model) == conv + inner_conv + dense


def _row(framework, mode, precision, images_per_second, batch_size=512):
    return {
        "framework": framework,
        "mode": mode,
        "precision": precision,
        "images_per_second": images_per_second,
        "seconds_per_step": batch_size / images_per_second,
        "batch_size": batch_size,
    }


def test_summary_compares_ours_with_the_faster_pytorch_precision():
    rows = [
        _row("keras", "nasty", "mixed_bfloat16", 3000.0),
        _row("pytorch", "nasty", "float32", 500.0),
        _row("pytorch", "nasty", "bf16_autocast", 1000.0),
    ]
    # 1e9 FLOPs forward, 4 passes a nasty step: 3000 img/s = 12 TFLOP/s = 1.2% of 1000.
    entry = gpu_report.summarise(rows, 1000.0, 1e9)["b512"]["nasty"]
    assert entry["pytorch"] == 1000.0 and entry["pytorch_precision"] == "bf16_autocast"
    assert entry["ratio"] == 3.0
    assert entry["ours_tflops"] == 12.0 and entry["ours_peak_percent"] == 1.2
    assert entry["pytorch_peak_percent"] == 0.4


def test_summary_adds_the_float32_ratio_when_ours_also_ran_in_float32():
    rows = [
        _row("keras", "normal", "mixed_bfloat16", 3000.0),
        _row("keras", "normal", "float32", 1200.0),
        _row("pytorch", "normal", "float32", 600.0),
        _row("pytorch", "normal", "bf16_autocast", 1000.0),
    ]
    entry = gpu_report.summarise(rows, 1000.0, 1e9)["b512"]["normal"]
    assert entry["ratio"] == 3.0 and entry["ratio_float32"] == 2.0


def test_summary_refuses_a_mode_that_only_one_framework_measured():
    with pytest.raises(ValueError, match="both frameworks must be measured"):
        gpu_report.summarise([_row("keras", "normal", "mixed_bfloat16", 10.0)], 1.0, 1.0)


def test_timing_keeps_only_stages_that_ran_all_their_epochs_in_one_call(tmp_path):
    (tmp_path / "call1.log").write_text(
        "== normal teacher resnet18\nEpoch 1/3\n"
        "10/10 - 20s - 2000ms/step - loss: 1\n10/10 - 1s - 30ms/step\n10/10 - 1s - 10ms/step\n"
        "== student cnn seed 0: KD from the nasty teacher\nEpoch 1/3\n10/10 - 9s - 900ms/step\n"
        "fast_cifar10: 40 s this call\n"
    )
    (tmp_path / "call2.log").write_text(
        "== normal teacher resnet18\n== student cnn seed 0: KD from the nasty teacher\n"
        "Epoch 2/3\n10/10 - 1s - 5ms/step\nEpoch 3/3\n10/10 - 1s - 5ms/step\n"
        "== student cnn seed 0: scratch\nEpoch 1/2\n10/10 - 4s - 400ms/step\n10/10 - 1s - 7ms/step\n"
        "fast_cifar10: 12 s this call\n"
    )
    timing = gpu_report.fast_cifar10_timing([tmp_path / "call1.log", tmp_path / "call2.log"])
    assert timing["call_seconds"] == [40, 12] and timing["total_seconds"] == 52
    assert timing["stages"] == {
        "teacher_normal": {"first_epoch_seconds": 20, "median_ms_per_step": 20},
        "cnn_seed0_scratch": {"first_epoch_seconds": 4, "median_ms_per_step": 7},
    }
    assert timing["median_ms_per_step_range"] == [7, 20]
    assert timing["first_epoch_seconds_range"] == [4, 20]


def test_committed_report_is_what_the_script_writes_from_the_committed_inputs(tmp_path):
    committed = json.loads((COMMITTED / "report.json").read_text())
    output = tmp_path / "report.json"
    gpu_report.main(str(COMMITTED), committed["peak_tflops"], committed["command"], str(output))
    assert json.loads(output.read_text()) == committed


def test_unreadable_arguments_get_one_line_naming_them(tmp_path):
    assert "BENCH_DIR must hold bench.jsonl and machine.txt" in gpu_report.check_arguments(
        str(tmp_path), "989.5"
    )
    assert gpu_report.check_arguments(str(COMMITTED), "989.5") is None
    for peak in ("fast", "0"):
        assert gpu_report.check_arguments(str(COMMITTED), peak) == (
            f"PEAK_TFLOPS must be a number > 0. Received: PEAK_TFLOPS={peak}"
        )
