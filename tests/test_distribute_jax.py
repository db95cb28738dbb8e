"""`--strategy=mirrored` on JAX (Keras' `DataParallel`): equals a single-device run, BatchNorm
included, and the jobs run with a training split that the devices do not divide.

JAX fixes its device count when it starts, so the runs happen in a fresh process with
KERAS_BACKEND=jax and two CPU devices (XLA_FLAGS): this file, run as a script.
"""

import json
import os
import sys

import numpy as np
import pytest

from binaries import run_python
from mirrored_job import run_train_nasty_mirrored

pytestmark = pytest.mark.single_pass  # the fresh process picks its own backend
# XLA's default optimisations, in place of the suite's cheaper ones (tests/run_all.sh): the
# equivalence tolerance below was measured with them (without, the nasty run's second-epoch loss
# differed by 1.4e-4 between one and two devices).
JAX_TWO_DEVICES = {"KERAS_BACKEND": "jax", "XLA_FLAGS": "--xla_force_host_platform_device_count=2"}


# ---------------------------------------------------------------------------------------------
# The fresh process (python tests/test_distribute_jax.py OUT_DIR).


def _fit_once(scope, make_wrapper, initial, x, y):
    """Trains the plain CNN (BatchNorm included) from fixed weights, in a fixed batch order."""
    import keras

    from nasty_tf import models

    with scope:
        network, frozen = (models.get_model("cnn", 10, (32, 32, 3)) for _ in range(2))
        network.set_weights(initial["network"])
        frozen.set_weights(initial["frozen"])
        model = make_wrapper(network, frozen)
        # A small step and a moderate omega: maximising the KL amplifies float-order
        # differences step after step, and the check is about the statistics, not chaos (at
        # omega 0.5 the first kernel drifted 3e-4 once the input normalisation became Keras'
        # Normalization layer, while every logged loss still agreed to 1e-4).
        model.compile(optimizer=keras.optimizers.SGD(0.01, momentum=0.9))
        history = model.fit(x, y, batch_size=32, epochs=2, shuffle=False, verbose=0).history
    weights = [np.asarray(w).tolist() for w in network.get_weights()]
    return {"history": history, "weights": weights}


def _equivalence_runs():
    import contextlib

    import keras

    from nasty_tf import KnowledgeDistiller, NastyTeacher, models
    from nasty_tf.distribute import make_strategy

    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, size=(64, 32, 32, 3), dtype=np.uint8)
    y = rng.integers(0, 10, size=64)
    keras.utils.set_random_seed(0)
    initial = {
        role: models.get_model("cnn", 10, (32, 32, 3)).get_weights()
        for role in ("network", "frozen")
    }
    wrappers = {
        "nasty": lambda net, frozen: NastyTeacher(net, frozen, omega=0.1, temperature=4.0),
        "kd": lambda net, frozen: KnowledgeDistiller(net, frozen, alpha=0.9, temperature=4.0),
    }
    mirrored = make_strategy("mirrored")
    return {
        "replicas": mirrored.num_replicas_in_sync,
        **{
            name: {
                "single": _fit_once(contextlib.nullcontext(), make, initial, x, y),
                "mirrored": _fit_once(mirrored.scope(), make, initial, x, y),
            }
            for name, make in wrappers.items()
        },
    }


def _main(out_dir):
    result = {"equivalence": _equivalence_runs(), "job": run_train_nasty_mirrored(out_dir)}
    with open(os.path.join(out_dir, "result.json"), "w") as f:
        json.dump(result, f)


# ---------------------------------------------------------------------------------------------
# The tests.


@pytest.fixture(scope="module")
def two_devices(tmp_path_factory):
    out_dir = tmp_path_factory.mktemp("data_parallel")
    result = run_python([os.path.abspath(__file__), str(out_dir)], env=JAX_TWO_DEVICES)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.load(open(out_dir / "result.json")), out_dir


@pytest.mark.parametrize("wrapper", ["nasty", "kd"])
def test_data_parallel_run_equals_single_device_run_with_batch_norm(two_devices, wrapper):
    equivalence = two_devices[0]["equivalence"]
    assert equivalence["replicas"] == 2
    single, mirrored = equivalence[wrapper]["single"], equivalence[wrapper]["mirrored"]
    for key in ("loss", "ce", "kl", "accuracy"):
        np.testing.assert_allclose(
            mirrored["history"][key], single["history"][key], rtol=1e-4, err_msg=key
        )
    assert single["history"]["loss"][-1] != single["history"]["loss"][0]  # it did train
    # BatchNorm's moving statistics are among the weights: global-batch statistics on both.
    for ours, theirs in zip(mirrored["weights"], single["weights"]):
        np.testing.assert_allclose(ours, theirs, rtol=1e-3, atol=2e-5)


def test_training_job_runs_data_parallel_on_an_odd_training_split(two_devices):
    job, out_dir = two_devices[0]["job"], two_devices[1]
    assert job["train_images"] % 2 == 1  # the devices do not divide it: the jobs trim one image
    metrics = job["metrics"]
    assert metrics["strategy"] == "mirrored" and metrics["replicas"] == 2
    assert 0 <= metrics["accuracy"] <= 100 and np.isfinite(metrics["adversarial_kl"])
    assert (out_dir / "nasty" / "model.keras").is_file()
    assert job["refusal"].startswith("batch_size must be a multiple of the 2 replicas")


if __name__ == "__main__":
    _main(sys.argv[1])
