"""The benchmark binary (issue 7) on a tiny case, its one-line errors, and BatchNorm folding."""

import json
import os

import keras
import numpy as np
import pytest
from binaries import assert_one_line_error, run_tool

from nasty_tf import models
from nasty_tf.benchmark import BenchmarkConfig, benchmark
from nasty_tf.models.batch_norm_folding import folded_inference

FIELDS = {
    "images_per_second", "seconds_per_step", "mode", "arch", "batch_size", "backend",
    "precision", "jit_compile", "machine", "load_average", "repeat_images_per_second",
    "cpu_seconds_per_step",
}
# Digits-shaped: 32x32 RGB, augmented by the digits recipe (crop, no flip).
TINY = ["--arch=cnn", "--batch_size=8", "--steps=2", "--warmup_steps=1", "--repeats=1", "--augmentation=crop"]


def test_prints_one_json_line_per_mode():
    result = run_tool("benchmark", *TINY, "--mode=normal,nasty,kd")
    assert result.returncode == 0, result.stderr[-3000:]
    lines = [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
    assert [line["mode"] for line in lines] == ["normal", "nasty", "kd"]
    for line in lines:
        assert FIELDS <= set(line), set(line) ^ FIELDS
        assert line["images_per_second"] > 0
        assert line["images_per_second"] == pytest.approx(8 / line["seconds_per_step"], rel=1e-3)
        assert line["cpu_seconds_per_step"] > 0  # the training threads' time, not zero
        assert (line["arch"], line["batch_size"], line["precision"]) == ("cnn", 8, "float32")
        assert line["backend"] == os.environ.get("KERAS_BACKEND", "tensorflow")
        assert line["machine"]["cpu_count"] >= 1


def test_times_each_batch_norm_layer_with_each_mode():
    result = run_tool("benchmark", *TINY, "--mode=normal,nasty", "--batch_norm=keras,fused")
    assert result.returncode == 0, result.stderr[-3000:]
    lines = [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
    cases = [(line["batch_norm"], line["mode"]) for line in lines]
    assert cases == [("keras", "normal"), ("keras", "nasty"), ("fused", "normal"), ("fused", "nasty")]
    assert all(line["images_per_second"] > 0 for line in lines)


@pytest.mark.single_pass
@pytest.mark.parametrize(
    "flag, fragment",
    [
        ("--mode=bogus", "--mode"),
        ("--batch_size=0", "--batch_size"),
        ("--precision=fp8", "--precision"),
        ("--batch_norm=sync", "--batch_norm"),
    ],
)
def test_a_bad_flag_is_one_clear_line(flag, fragment):
    assert_one_line_error(run_tool("benchmark", *TINY, flag), fragment)


def test_mixed_precision_case_restores_the_global_policy():
    before = keras.config.dtype_policy().name
    config = BenchmarkConfig(
        arch="cnn", batch_size=4, modes=("nasty",), steps=1, warmup_steps=1, repeats=1,
        precision="mixed_bfloat16", augmentation="none",
    )
    (result,) = benchmark(config)
    assert result["precision"] == "mixed_bfloat16" and result["images_per_second"] > 0
    assert keras.config.dtype_policy().name == before


def _with_trained_statistics(network, seed):
    """Gives every BatchNorm non-trivial statistics and affine weights, as training would."""
    rng = np.random.default_rng(seed)
    for layer in network.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            n = layer.moving_mean.shape[0]
            layer.moving_mean.assign(rng.normal(0, 0.5, n).astype("float32"))
            layer.moving_variance.assign(rng.uniform(0.5, 2.0, n).astype("float32"))
            layer.gamma.assign(rng.uniform(0.5, 1.5, n).astype("float32"))
            layer.beta.assign(rng.normal(0, 0.3, n).astype("float32"))
    return network


# resnet18: conv-BN everywhere; cnn: a BN after a Dense (left alone) and dropout;
# mobilenetv2: depthwise convolutions; preresnet20: pre-activation BNs (left alone).
@pytest.mark.parametrize("arch", ["resnet18", "cnn", "mobilenetv2", "preresnet20"])
def test_folded_inference_gives_the_same_logits(arch):
    keras.utils.set_random_seed(0)
    network = _with_trained_statistics(models.get_model(arch, 10), seed=1)
    images = np.random.default_rng(2).integers(0, 256, (4, 32, 32, 3)).astype("float32")
    expected = keras.ops.convert_to_numpy(network(images, training=False))
    folded = keras.ops.convert_to_numpy(folded_inference(network, images))
    np.testing.assert_allclose(folded, expected, atol=1e-4, rtol=1e-4)
