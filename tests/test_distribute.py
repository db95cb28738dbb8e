"""`--strategy`: a mirrored run equals a single-device run; bad strategies end in one line.

TensorFlow fixes its devices when it first runs an op, so the runs that need two logical CPU
devices (two replicas on one CPU) happen in a fresh process: this file, run as a script.
"""

import json
import os
import sys

import numpy as np
import pytest

from binaries import assert_one_line_error, run_python, run_tool, run_tool_in_process
from mirrored_job import run_train_nasty_mirrored

# tf.distribute is TensorFlow-only; a strategy runs its replicas differently when traced.
pytestmark = [pytest.mark.single_pass, pytest.mark.graph]
TINY = ["--dataset=digits", "--train_fraction=0.15", "--epochs=1", "--batch_size=64", "--verbose=0"]


# ---------------------------------------------------------------------------------------------
# The fresh process (python tests/test_distribute.py OUT_DIR): two logical CPU devices.


def _dense_net(l2=0.0):
    import keras

    inputs = keras.Input((6,))
    hidden = keras.layers.Dense(
        16, activation="relu", kernel_regularizer=keras.regularizers.L2(l2) if l2 else None
    )(inputs)
    return keras.Model(inputs, keras.layers.Dense(3, dtype="float32")(hidden))


def _fit_once(strategy, make_wrapper, initial, x, y):
    """Trains a BatchNorm-free wrapper from fixed weights, in a fixed batch order."""
    import keras

    with strategy.scope():
        # The trained net carries an L2 penalty, so its replica scaling is checked too.
        network, frozen = _dense_net(l2=1e-3), _dense_net()
        network.set_weights(initial["network"])
        frozen.set_weights(initial["frozen"])
        model = make_wrapper(network, frozen)
        model.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.9))
    history = model.fit(x, y, batch_size=32, epochs=3, shuffle=False, verbose=0).history
    weights = [np.asarray(w).tolist() for w in network.get_weights()]
    return {"history": history, "weights": weights, "replicas": strategy.num_replicas_in_sync}


def _equivalence_runs():
    import keras
    import tensorflow as tf

    from nasty_tf import KnowledgeDistiller, NastyTeacher
    from nasty_tf.distribute import make_strategy

    rng = np.random.default_rng(0)
    x = rng.normal(size=(128, 6)).astype("float32")
    y = rng.integers(0, 3, size=128)
    keras.utils.set_random_seed(0)
    initial = {"network": _dense_net().get_weights(), "frozen": _dense_net().get_weights()}
    wrappers = {
        "nasty": lambda net, frozen: NastyTeacher(net, frozen, omega=0.5, temperature=4.0),
        "kd": lambda net, frozen: KnowledgeDistiller(net, frozen, alpha=0.9, temperature=4.0),
    }
    single = tf.distribute.OneDeviceStrategy("/cpu:0")
    mirrored = make_strategy("mirrored")  # the library's own choice of devices
    return {
        name: {
            "single": _fit_once(single, make, initial, x, y),
            "mirrored": _fit_once(mirrored, make, initial, x, y),
        }
        for name, make in wrappers.items()
    }


def _main(out_dir):
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    result = {"equivalence": _equivalence_runs(), "job": run_train_nasty_mirrored(out_dir)}
    with open(os.path.join(out_dir, "result.json"), "w") as f:
        json.dump(result, f)


# ---------------------------------------------------------------------------------------------
# The tests.


@pytest.fixture(scope="module")
def two_replicas(tmp_path_factory):
    out_dir = tmp_path_factory.mktemp("mirrored")
    result = run_python([os.path.abspath(__file__), str(out_dir)])
    assert result.returncode == 0, result.stderr[-3000:]
    return json.load(open(out_dir / "result.json")), out_dir


@pytest.mark.parametrize("wrapper", ["nasty", "kd"])
def test_mirrored_run_equals_single_device_run(two_replicas, wrapper):
    runs = two_replicas[0]["equivalence"][wrapper]
    single, mirrored = runs["single"], runs["mirrored"]
    assert single["replicas"] == 1 and mirrored["replicas"] == 2
    assert set(single["history"]) == {"loss", "ce", "kl", "accuracy"}
    for key in ("loss", "ce", "kl", "accuracy"):
        np.testing.assert_allclose(
            mirrored["history"][key], single["history"][key], rtol=1e-5, err_msg=key
        )
    assert single["history"]["loss"][-1] != single["history"]["loss"][0]  # it did train
    for ours, theirs in zip(mirrored["weights"], single["weights"]):
        np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-6)


def test_training_job_runs_mirrored_and_records_it(two_replicas):
    job, out_dir = two_replicas[0]["job"], two_replicas[1]
    metrics = job["metrics"]
    assert metrics["strategy"] == "mirrored" and metrics["replicas"] == 2
    assert "strategy" not in metrics["config"]  # where it ran is not what it computed
    assert 0 <= metrics["accuracy"] <= 100 and np.isfinite(metrics["adversarial_kl"])
    assert (out_dir / "nasty" / "model.keras").is_file()
    assert job["refusal"].startswith("batch_size must be a multiple of the 2 replicas")


def test_strategies_are_validated():
    from nasty_tf import InputError
    from nasty_tf.distribute import STRATEGIES, make_strategy
    from nasty_tf.training import TrainConfig

    assert STRATEGIES == ("auto", "one_device", "mirrored", "multi_worker")
    with pytest.raises(InputError, match="^strategy must be one of"):
        TrainConfig(strategy="tpu_pod")
    with pytest.raises(
        InputError, match="multi_worker needs TF_CONFIG"
    ):  # tests/test_multi_worker.py
        TrainConfig(strategy="multi_worker")
    assert make_strategy("one_device").num_replicas_in_sync == 1
    assert make_strategy("one_device") is make_strategy("one_device")  # made once per process


@pytest.mark.parametrize(
    "tool, args, env, fragments",
    [
        ("train", ["--strategy=tpu_pod"], {}, ["--strategy", "tpu_pod"]),
        (
            "train_nasty",
            ["--adversary=a.keras", "--strategy=one_device"],
            {"KERAS_BACKEND": "jax"},
            ["--strategy=one_device", "TensorFlow"],
        ),
        (
            "distill",
            ["--teacher=t.keras", "--strategy=multi_worker"],
            {"KERAS_BACKEND": "jax"},
            ["--strategy=multi_worker", "TensorFlow"],
        ),
    ],
    ids=["unknown", "jax", "multi_worker_on_jax"],
)
def test_bad_strategy_ends_in_one_clear_line(tmp_path, tool, args, env, fragments):
    args = [*TINY, *args, f"--output_dir={tmp_path}/out"]
    if env:  # KERAS_BACKEND is read at import: a case that sets it needs a fresh process
        result = run_tool(tool, *args, env=env)
    else:
        result = run_tool_in_process(tool, *args)
    assert_one_line_error(result, *fragments)
    assert not (tmp_path / "out").exists()


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    _main(sys.argv[1])
