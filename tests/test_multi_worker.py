"""`--strategy=multi_worker`: two localhost workers (TF_CONFIG per process) train as one.

MultiWorkerMirroredStrategy must be created before TensorFlow runs an op and each worker is a
process of its own, so the workers are fresh processes: this file run as a script (the
library's loop on BatchNorm-free nets) and the `tools.train_nasty` binary.
"""

import json
import os
import socket
import subprocess
import sys

import numpy as np
import pytest

from binaries import ROOT, assert_one_line_error, run_tool_cases

pytestmark = pytest.mark.single_pass  # tf.distribute is TensorFlow-only
TINY = ["--dataset=digits", "--train_fraction=0.15", "--epochs=2", "--batch_size=64", "--verbose=2"]


def _free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("localhost", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def _tf_config(ports, index):
    cluster = {"worker": [f"localhost:{port}" for port in ports]}
    return json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})


def _start_workers(command, ports, **kwargs):
    """One process per worker, each with its own TF_CONFIG; returns their (rc, stdout, stderr)."""
    processes = []
    for index in range(len(ports)):
        env = {
            **os.environ,
            "PYTHONPATH": ROOT,
            "TF_CONFIG": _tf_config(ports, index),
            "TF_CPP_MIN_LOG_LEVEL": "2",
        }
        env.pop("KERAS_BACKEND", None)
        processes.append(
            subprocess.Popen(
                command,
                cwd=ROOT,
                env=env,
                text=True,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                **kwargs,
            )
        )
    results = []
    for process in processes:
        try:
            stdout, stderr = process.communicate(timeout=300)
        except subprocess.TimeoutExpired:  # a worker waiting for a dead peer: end them all
            for other in processes:
                other.kill()
            raise
        results.append((process.returncode, stdout, stderr))
    return results


# ---------------------------------------------------------------------------------------------
# Shared by the worker processes and the single-process reference.


def _data():
    rng = np.random.default_rng(0)
    return rng.normal(size=(96, 6)).astype("float32"), rng.integers(0, 3, size=96)


def _dense_net(seed, l2=0.0):
    import keras

    keras.utils.set_random_seed(seed)
    inputs = keras.Input((6,))
    hidden = keras.layers.Dense(
        16, activation="relu", kernel_regularizer=keras.regularizers.L2(l2) if l2 else None
    )(inputs)
    return keras.Model(inputs, keras.layers.Dense(3)(hidden))


def _nasty_trainer(strategy):
    import keras

    from nasty_tf import NastyTeacher

    with strategy.scope():
        network, adversary = _dense_net(1, l2=1e-3), _dense_net(2)
        trainer = NastyTeacher(network, adversary, omega=0.5, temperature=4.0)
        trainer.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.9))
        trainer(_data()[0][:1])
    return trainer, network


def _train_with_loop(strategy, callbacks=(), epochs=2, validation_epochs=None):
    """A NastyTeacher on BatchNorm-free nets, epochs of the multi-worker loop (global batch 32)."""
    import keras

    from nasty_tf.training import multi_worker

    x, y = _data()
    trainer, network = _nasty_trainer(strategy)
    history = keras.callbacks.History()
    multi_worker.fit(
        trainer,
        x,
        y,
        strategy=strategy,
        batch_size=32,
        epochs=epochs,
        validation_data=(x, y),
        callbacks=[history, *callbacks],
        verbose=0,
        seed=0,
        validation_epochs=validation_epochs,
    )
    return {
        "history": history.history,
        "weights": [np.asarray(w).tolist() for w in network.get_weights()],
        "replicas": strategy.num_replicas_in_sync,
    }


# ---------------------------------------------------------------------------------------------
# The tests.


@pytest.fixture(scope="module")
def two_worker_loop(tmp_path_factory):
    out_dir = tmp_path_factory.mktemp("loop")
    results = _start_workers(
        [sys.executable, os.path.abspath(__file__), str(out_dir)], _free_ports(2)
    )
    for returncode, _, stderr in results:
        assert returncode == 0, stderr[-3000:]
    return [json.load(open(out_dir / f"worker{index}.json")) for index in range(2)]


def test_two_workers_train_as_one_device_on_the_global_batch(two_worker_loop):
    import tensorflow as tf

    single = _train_with_loop(tf.distribute.get_strategy())
    first, second = two_worker_loop
    assert first["replicas"] == second["replicas"] == 2 and single["replicas"] == 1
    assert first == second  # the workers agree exactly
    for ours, theirs in zip(first["weights"], single["weights"]):
        np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-6)
    for key in ("loss", "ce", "kl", "val_loss"):  # per-worker means, then averaged
        np.testing.assert_allclose(
            first["history"][key], single["history"][key], rtol=1e-4, err_msg=key
        )
    assert single["history"]["loss"][1] != single["history"]["loss"][0]  # it did train


def test_a_non_chief_resumes_from_the_chiefs_backup_and_never_writes_it(tmp_path):
    import keras
    import tensorflow as tf

    from nasty_tf.training import multi_worker
    from nasty_tf.training.callbacks import TrainingBackup

    class StopAfterFirstEpoch(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            raise KeyboardInterrupt  # after TrainingBackup (listed first) saved epoch 1

    strategy = tf.distribute.get_strategy()
    backup = str(tmp_path / "backup")
    with pytest.raises(KeyboardInterrupt):  # the chief, interrupted after its first epoch
        _train_with_loop(strategy, [TrainingBackup(backup), StopAfterFirstEpoch()])
    saved = {name: os.path.getmtime(os.path.join(backup, name)) for name in os.listdir(backup)}
    assert saved  # the chief wrote its backup

    resumed = _train_with_loop(strategy, [multi_worker.RestoreOnly(backup)], epochs=3)
    assert len(resumed["history"]["loss"]) == 2  # epochs 2 and 3 only: it resumed
    assert {
        name: os.path.getmtime(os.path.join(backup, name)) for name in os.listdir(backup)
    } == saved
    uninterrupted = _train_with_loop(strategy, epochs=3)
    # Exactly its last two epochs: each epoch's order is a pure function of (seed, epoch).
    assert resumed["history"]["loss"] == uninterrupted["history"]["loss"][1:]
    assert resumed["weights"] == uninterrupted["weights"]


def test_the_loop_evaluates_only_after_the_epochs_it_is_given():
    import tensorflow as tf

    strategy = tf.distribute.get_strategy()
    every = _train_with_loop(strategy, epochs=3)
    sparse = _train_with_loop(strategy, epochs=3, validation_epochs=[2])
    assert len(every["history"]["val_loss"]) == 3 and len(sparse["history"]["loss"]) == 3
    assert sparse["history"]["val_loss"] == every["history"]["val_loss"][1:2]
    assert sparse["weights"] == every["weights"]


def test_train_nasty_binary_on_two_workers(tmp_path):
    from nasty_tf import models
    from nasty_tf.training import TrainConfig, load_data

    dataset = load_data(TrainConfig(dataset="digits", train_fraction=0.15))
    adversary = tmp_path / "adversary.keras"  # untrained: the workers' agreement is the point
    models.get_model("cnn", 10, dataset.input_shape, mean=dataset.mean, std=dataset.std).save(
        adversary
    )
    out = tmp_path / "nasty"
    command = [
        sys.executable,
        "-m",
        "tools.train_nasty",
        *TINY,
        "--strategy=multi_worker",
        f"--adversary={adversary}",
        "--omega=0.05",
        f"--output_dir={out}",
    ]
    results = _start_workers(command, _free_ports(2))
    for returncode, _, stderr in results:
        assert returncode == 0, stderr[-3000:]
    metrics = json.load(open(out / "metrics.json"))
    assert metrics["strategy"] == "multi_worker" and metrics["replicas"] == 2
    # Both workers report the same finished network; only the chief wrote.
    assert (
        f"{metrics['accuracy']:.2f}%" in results[0][1]
        and f"{metrics['accuracy']:.2f}%" in results[1][1]
    )
    assert len(metrics["history"]["loss"]) == 2 and np.isfinite(metrics["adversarial_kl"])
    assert "Epoch 2/2" in results[0][1] + results[0][2]  # the chief's progress lines
    assert sorted(os.listdir(out)) == [
        "config.json",
        "history.csv",
        "metrics.json",
        "model.keras",
        "tensorboard",
    ]


BAD_TF_CONFIGS = {
    "missing": (None, ["--strategy=multi_worker needs TF_CONFIG"]),
    "not_json": ("{not json", ["TF_CONFIG is not a cluster"]),
    "task_outside_cluster": (
        '{"cluster": {"worker": ["localhost:1"]}, "task": {"type": "worker", "index": 3}}',
        ["TF_CONFIG is not a cluster", "IndexError"],
    ),
}


@pytest.fixture(scope="module")
def refusals(tmp_path_factory):
    """The binaries' answers to bad TF_CONFIGs and to multi_worker where it does not apply,
    each binary's cases run in one process (`run_tool_cases`)."""
    root = tmp_path_factory.mktemp("refusals")
    train_cases = []
    for name, (tf_config, _) in BAD_TF_CONFIGS.items():
        args = [*TINY, "--strategy=multi_worker", f"--output_dir={root / name}"]
        train_cases.append((args, {"TF_CONFIG": tf_config} if tf_config else {}))
    # The driver's environment has no TF_CONFIG, so "missing" is really missing.
    results = dict(zip(BAD_TF_CONFIGS, run_tool_cases("train", train_cases)))
    env = {"TF_CONFIG": _tf_config(_free_ports(1), 0)}
    for tool in ("reproduce", "tune"):
        args = ["--strategy=multi_worker", f"--output_dir={root / tool}"]
        results[tool] = run_tool_cases(tool, [(args, env)])[0]
    return root, results


@pytest.mark.parametrize("name", BAD_TF_CONFIGS)
def test_bad_tf_config_ends_in_one_clear_line(refusals, name):
    root, results = refusals
    assert_one_line_error(results[name], *BAD_TF_CONFIGS[name][1])
    assert not (root / name).exists()


@pytest.mark.parametrize("tool", ["reproduce", "tune"])
def test_protocols_and_searches_refuse_multi_worker(refusals, tool):
    root, results = refusals
    assert_one_line_error(results[tool], "--strategy=multi_worker trains single runs", "mirrored")
    assert not (root / tool).exists()


if __name__ == "__main__":
    from nasty_tf.distribute import make_strategy

    strategy = make_strategy("multi_worker")  # first: before TensorFlow runs any op
    index = json.loads(os.environ["TF_CONFIG"])["task"]["index"]
    with open(os.path.join(sys.argv[1], f"worker{index}.json"), "w") as f:
        json.dump(_train_with_loop(strategy), f)
