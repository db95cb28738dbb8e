"""The benchmark binary (issue 7) on a tiny case and its one-line errors."""

import json
import os

import keras
import pytest

from binaries import assert_one_line_error, run_tool_cases
from nasty_tf.benchmark import BenchmarkConfig, benchmark
from nasty_tf.errors import InputError

FIELDS = {
    "images_per_second",
    "seconds_per_step",
    "mode",
    "arch",
    "batch_size",
    "backend",
    "precision",
    "jit_compile",
    "machine",
    "load_average",
    "repeat_images_per_second",
    "cpu_seconds_per_step",
}
# Digits-shaped: 32x32 RGB, augmented by the digits recipe (crop, no flip).
TINY = [
    "--arch=cnn",
    "--batch_size=8",
    "--steps=2",
    "--warmup_steps=1",
    "--repeats=1",
    "--augmentation=crop",
]


BAD_FLAGS = {
    "--mode=bogus": "--mode",
    "--batch_size=0": "--batch_size",
    "--precision=fp8": "--precision",
    "--batch_norm=sync": "--batch_norm",
}


# Every mode with each BatchNorm layer on TensorFlow. On JAX, where each case is seconds of XLA
# compiles, every mode with the zoo's own layer: the order of the cases is the binary's loop,
# the same on every backend (test_times_each_batch_norm_layer_with_each_mode, single pass), and
# the fused layer's JAX code is what the JAX pass runs for every network of the zoo.
BATCH_NORMS = ("keras", "fused") if keras.backend.backend() == "tensorflow" else ("fused",)


@pytest.fixture(scope="module")
def binary_results():
    """The binary's answers, all from one process (`run_tool_cases`): a run of every mode with
    each of BATCH_NORMS, then each of BAD_FLAGS."""
    cases = [
        [*TINY, "--mode=normal,nasty,kd", f"--batch_norm={','.join(BATCH_NORMS)}"],
        *([*TINY, flag] for flag in BAD_FLAGS),
    ]
    run, *bad = run_tool_cases("benchmark", cases)
    return {"run": run, **dict(zip(BAD_FLAGS, bad))}


@pytest.fixture(scope="module")
def benchmark_lines(binary_results):
    """The run's output: one JSON line per case."""
    result = binary_results["run"]
    assert result.returncode == 0, result.stderr[-3000:]
    return [json.loads(line) for line in result.stdout.splitlines() if line.strip()]


def test_prints_one_json_line_per_mode(benchmark_lines):
    modes = sorted(line["mode"] for line in benchmark_lines)
    assert modes == sorted(["normal", "nasty", "kd"] * len(BATCH_NORMS))
    for line in benchmark_lines:
        assert FIELDS <= set(line), set(line) ^ FIELDS
        assert line["images_per_second"] > 0
        assert line["images_per_second"] == pytest.approx(8 / line["seconds_per_step"], rel=1e-3)
        assert line["cpu_seconds_per_step"] > 0  # the training threads' time, not zero
        assert (line["arch"], line["batch_size"], line["precision"]) == ("cnn", 8, "float32")
        assert line["backend"] == os.environ.get("KERAS_BACKEND", "tensorflow")
        assert line["machine"]["cpu_count"] >= 1


@pytest.mark.single_pass
def test_times_each_batch_norm_layer_with_each_mode(benchmark_lines):
    cases = [(line["batch_norm"], line["mode"]) for line in benchmark_lines]
    assert cases == [
        ("keras", "normal"),
        ("keras", "nasty"),
        ("keras", "kd"),
        ("fused", "normal"),
        ("fused", "nasty"),
        ("fused", "kd"),
    ]


@pytest.mark.single_pass
@pytest.mark.parametrize("flag", BAD_FLAGS)
def test_a_bad_flag_is_one_clear_line(binary_results, flag):
    assert_one_line_error(binary_results[flag], BAD_FLAGS[flag])


@pytest.mark.parametrize(
    "fields, message",
    [
        (
            dict(modes=("bogus",)),
            "^modes must be a comma-separated list of .* Received: modes=bogus$",
        ),
        (dict(modes=("kd", "kd")), "^modes lists a mode twice. Received: modes=kd,kd$"),
        (dict(batch_norms=("sync",)), "^batch_norms must be .* Received: batch_norms=sync$"),
        (dict(steps=0), "^steps must be an integer >= 1. Received: steps=0$"),
        (
            dict(jit_compile="maybe"),
            "^jit_compile must be one of .* Received: jit_compile='maybe'$",
        ),
        (dict(augmentation="cutmix"), "^augmentation must be one of .* augmentation='cutmix'$"),
        (dict(image_size=4), "^image_size must be >= 8 and `num_classes` >= 2. Received: "),
    ],
)
def test_bad_settings_name_their_argument(fields, message):
    with pytest.raises(InputError, match=message):
        BenchmarkConfig(**fields)


def test_mixed_precision_case_restores_the_global_policy():
    before = keras.config.dtype_policy().name
    config = BenchmarkConfig(
        arch="cnn",
        batch_size=4,
        modes=("nasty",),
        steps=1,
        warmup_steps=1,
        repeats=1,
        precision="mixed_bfloat16",
        augmentation="none",
    )
    (result,) = benchmark(config)
    assert result["precision"] == "mixed_bfloat16" and result["images_per_second"] > 0
    assert keras.config.dtype_policy().name == before
