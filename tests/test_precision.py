"""`--precision`: mixed-precision runs, the frozen partner at the run's policy, run identity.

Backend-neutral: runs under TensorFlow and JAX.
"""

import json
import os

import keras
import numpy as np
import pytest

from nasty_tf import models
from nasty_tf.training import (
    DistillConfig,
    NastyConfig,
    TrainConfig,
    distill,
    load_data,
    load_network,
    train,
    train_nasty,
)
from nasty_tf.training.precision import dtype_policy, match_precision
from tests.test_training import digits, tiny  # noqa: F401  (`digits` is a fixture)

# Loss scaling and the policies' casts, traced as real runs trace them (tests/conftest.py).
pytestmark = pytest.mark.graph


def _compute_dtypes(network):
    return {
        layer.name: layer.dtype_policy.compute_dtype
        for layer in network.layers
        if not isinstance(layer, keras.layers.InputLayer)
    }


def test_match_precision_changes_compute_not_weights_and_keeps_float32_logits():
    network = models.get_model("preresnet20", 10, (32, 32, 3))
    images = np.random.default_rng(0).integers(0, 256, (4, 32, 32, 3)).astype("float32")
    exact = keras.ops.convert_to_numpy(network(images, training=False))
    match_precision(network, "mixed_bfloat16")
    dtypes = _compute_dtypes(network)
    assert dtypes.pop("logits") == "float32"
    assert set(dtypes.values()) == {"bfloat16"}
    assert {w.dtype for w in network.weights} == {"float32"}
    fast = network(images, training=False)
    assert keras.backend.standardize_dtype(fast.dtype) == "float32"
    # bfloat16 keeps ~3 significant digits: close to, not equal to, the float32 logits.
    np.testing.assert_allclose(keras.ops.convert_to_numpy(fast), exact, rtol=0.1, atol=0.1)
    match_precision(network, "float32")
    assert set(_compute_dtypes(network).values()) == {"float32"}
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(network(images, training=False)), exact, rtol=1e-5, atol=1e-5
    )


def test_dtype_policy_restores_the_global_policy_even_on_error():
    before = keras.config.dtype_policy().name
    with pytest.raises(RuntimeError):
        with dtype_policy("mixed_bfloat16"):
            assert keras.config.dtype_policy().name == "mixed_bfloat16"
            raise RuntimeError("stop")
    assert keras.config.dtype_policy().name == before


def test_identity_leaves_out_float32_only():
    assert "precision" not in TrainConfig().identity()
    assert TrainConfig(precision="mixed_bfloat16").identity()["precision"] == "mixed_bfloat16"
    assert "data_cache_dir" not in TrainConfig(data_cache_dir="/tmp/x").identity()


def test_bfloat16_runs_train_nasty_and_distill_against_float32_partners(tmp_path, digits):
    normal = train(tiny(tmp_path, "normal", epochs=2), digits)
    assert normal["precision"] == "float32" and "precision" not in normal["config"]
    adversary = os.path.join(tmp_path, "normal", "model.keras")
    config = tiny(tmp_path, "nasty", precision="mixed_bfloat16")
    nasty = train_nasty(config, NastyConfig(adversary, 0.05, 4.0), digits)
    assert keras.config.dtype_policy().name == "float32"  # restored after the run
    assert (
        nasty["precision"] == "mixed_bfloat16" and nasty["config"]["precision"] == "mixed_bfloat16"
    )
    assert np.isfinite(nasty["adversarial_kl"]) and nasty["adversarial_kl"] > 0
    # The adversary ran at the run's precision: within bfloat16 error of its float32 accuracy.
    assert abs(nasty["adversary_accuracy"] - normal["accuracy"]) < 5
    saved = load_network(os.path.join(tmp_path, "nasty", "model.keras"), "--teacher")
    dtypes = _compute_dtypes(saved)
    assert dtypes.pop("logits") == "float32" and "bfloat16" in set(dtypes.values())
    # A float32 student of the bfloat16 teacher: the teacher is run in float32.
    student = distill(
        tiny(tmp_path, "student"),
        DistillConfig(os.path.join(tmp_path, "nasty", "model.keras")),
        digits,
    )
    assert student["precision"] == "float32"
    assert abs(student["teacher_accuracy"] - nasty["accuracy"]) < 5
    with open(os.path.join(tmp_path, "nasty", "metrics.json")) as f:
        assert json.load(f)["precision"] == "mixed_bfloat16"


def test_float16_runs_scale_the_loss(tmp_path, monkeypatch):
    from nasty_tf.training import jobs

    built = []
    original = jobs._fit

    def recording_fit(trainer, *args, **kwargs):
        seconds = original(trainer, *args, **kwargs)
        built.append(trainer.optimizer)
        return seconds

    monkeypatch.setattr(jobs, "_fit", recording_fit)
    # Few images: float16 has no fast CPU kernels (a step on 64 images costs seconds), and two
    # steps (64 images, then 6) already go through the loss-scaled update.
    config = tiny(tmp_path, "fp16", precision="mixed_float16", train_fraction=0.05)
    metrics = train(config, load_data(config))
    assert isinstance(built[0], keras.optimizers.LossScaleOptimizer)
    assert metrics["precision"] == "mixed_float16" and 0 <= metrics["accuracy"] <= 100
