"""Runs that cannot be corrupted (issue 17): a run killed with SIGKILL at any point and then
rerun equals the uninterrupted run (history.csv and weights, exactly); one writer per run
directory; `model.keras` and `metrics.json` of a finished run are both old or both new.

Real subprocesses are killed at deterministic points through the test hook
`NASTY_TF_KILL_AT` (`run_directory.kill_point`): before a given batch (mid-epoch), between an
epoch's weights and its backup commit (mid-save), between the two final writes. The job
subprocesses run this file as a script (`python tests/test_runs.py '<job as JSON>'`), so that
they and the in-process reference runs share one config. The exact resumes of distill and
DeepInversion (the same backup as every Keras `fit` job) run on both backends; DAFL on
TensorFlow only (its two-player step; `run_datafree` refuses it elsewhere); the binary, the
file and the lock handling in the default pass only.
"""

import dataclasses
import json
import os
import shutil
import subprocess
import sys

import keras
import numpy as np
import pytest

from binaries import ROOT, assert_one_line_error, run_tool, run_tool_in_process
from nasty_tf import InputError
from nasty_tf.datafree import DataFreeConfig, run_datafree
from nasty_tf.training import (
    DistillConfig,
    NastyConfig,
    TrainConfig,
    distill,
    load_data,
    train,
    train_nasty,
)
from nasty_tf.training.run_directory import FORMAT_VERSION, KILL_AT_ENV, LOCK_FILE, RunLock

# The in-process reference runs must equal the job subprocesses, which trace (tests/conftest.py).
pytestmark = pytest.mark.graph

KILLED = -9  # a subprocess's return code after SIGKILL
TINY_FLAGS = [
    "--dataset=digits",
    "--arch=cnn",
    "--train_fraction=0.1",
    "--batch_size=32",
    "--verbose=0",
]
_CONFIGS = {
    "train": TrainConfig,
    "nasty": NastyConfig,
    "distill": DistillConfig,
    "datafree": DataFreeConfig,
}


def tiny(out, **changes):
    """What `TINY_FLAGS` plus `--epochs=3 --output_dir=out` give the binary (see the test)."""
    fields = dict(
        dataset="digits", arch="cnn", train_fraction=0.1, batch_size=32, epochs=3, verbose=0
    )
    return TrainConfig(output_dir=str(out), **{**fields, **changes})


def tiny_datafree(out, teacher, **changes):
    fields = dict(
        method="deepinversion",
        teacher=teacher,
        arch="cnn",
        dataset="digits",
        epochs=3,
        batch_size=20,
        num_images=40,
        inversion_steps=4,
        grid_rows=1,
        verbose=0,
    )
    return DataFreeConfig(output_dir=str(out), **{**fields, **changes})


def run_job(kind, config, partner=None, on_finished="error"):
    if kind == "train":
        return train(config, on_finished=on_finished)
    if kind == "nasty":
        return train_nasty(config, partner, on_finished=on_finished)
    if kind == "distill":
        return distill(config, partner, on_finished=on_finished)
    return run_datafree(config, on_finished=on_finished)


def spawn_job(kill_at, kind, config, partner=None, on_finished="error"):
    """Runs the job in a subprocess that SIGKILLs itself at `kill_at`; returns its result."""
    job = {
        "kind": kind,
        "config": dataclasses.asdict(config),
        "partner": dataclasses.asdict(partner) if partner is not None else None,
        "on_finished": on_finished,
    }
    return subprocess.run(
        [sys.executable, os.path.abspath(__file__), json.dumps(job)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": ROOT, KILL_AT_ENV: kill_at},
        timeout=600,
    )


def _config_from_json(cls, fields):
    return cls(
        **{key: tuple(value) if isinstance(value, list) else value for key, value in fields.items()}
    )


def assert_killed(result):
    assert result.returncode == KILLED, result.stderr[-3000:]


def weights(run_dir):
    network = keras.saving.load_model(os.path.join(run_dir, "model.keras"))
    return [keras.ops.convert_to_numpy(w) for w in network.weights]


def read(path):
    with open(path) as f:
        return f.read()


def assert_same_run(expected_dir, actual_dir):
    """Same history.csv bytes, same final weights bit for bit, same recorded history."""
    expected_dir, actual_dir = str(expected_dir), str(actual_dir)
    assert read(os.path.join(actual_dir, "history.csv")) == read(
        os.path.join(expected_dir, "history.csv")
    )
    for expected, actual in zip(weights(expected_dir), weights(actual_dir), strict=True):
        np.testing.assert_array_equal(actual, expected)
    expected = json.loads(read(os.path.join(expected_dir, "metrics.json")))
    actual = json.loads(read(os.path.join(actual_dir, "metrics.json")))
    assert actual["history"] == expected["history"] and actual["accuracy"] == expected["accuracy"]
    assert not os.path.exists(os.path.join(actual_dir, "backup"))
    assert not os.path.exists(os.path.join(actual_dir, LOCK_FILE))


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """Uninterrupted runs, in this process: a normal network (also the adversary and teacher)
    and a KD student."""
    root = tmp_path_factory.mktemp("reference")
    normal = tiny(root / "normal", optimizer="sgd", learning_rate=0.05, lr_schedule="cosine")
    train(normal)
    adversary = os.path.join(normal.output_dir, "model.keras")
    distill_config, kd = tiny(root / "distill", seed=2), DistillConfig(adversary, 0.9, 4.0)
    distill(distill_config, kd)
    return {"normal": normal, "distill": (distill_config, kd), "teacher": adversary}


@pytest.fixture(scope="module")
def nasty_reference(reference, tmp_path_factory):
    """An uninterrupted nasty teacher against the reference's normal network; its own fixture,
    so that a pass without the nasty tests (JAX) does not train it."""
    config = tiny(tmp_path_factory.mktemp("reference") / "nasty", seed=1)
    nasty = NastyConfig(reference["teacher"], 0.05, 4.0)
    train_nasty(config, nasty)
    return config, nasty


@pytest.mark.single_pass  # the binary's path; distill and DeepInversion resume under JAX below
def test_train_binary_killed_mid_epoch_then_mid_save_equals_the_uninterrupted_run(
    reference, tmp_path
):
    # The reproduction (on tiny settings), through the binary, with a cosine schedule.
    out = tmp_path / "train"
    flags = [
        *TINY_FLAGS,
        "--epochs=3",
        "--optimizer=sgd",
        "--learning_rate=0.05",
        "--lr_schedule=cosine",
    ]
    flags.append(f"--output_dir={out}")
    assert_killed(run_tool("train", *flags, env={KILL_AT_ENV: "epoch:1:batch:2"}))
    # The killed holder's lock file is left behind; it blocks nothing.
    assert os.path.exists(out / LOCK_FILE)
    assert len(read(out / "history.csv").splitlines()) == 2  # header and epoch 0
    assert_killed(run_tool("train", *flags, env={KILL_AT_ENV: "backup:1"}))  # mid-save
    # Epoch 1 was logged, but its backup never committed: the backup still holds epoch 0 only.
    assert json.loads(read(out / "backup" / "training_metadata.json"))["epoch"] == 1
    result = run_tool("train", *flags)
    assert result.returncode == 0, result.stderr[-3000:]
    assert_same_run(reference["normal"].output_dir, out)


@pytest.mark.single_pass  # a kill mid-save: the backup's file handling, the same on every backend
def test_train_nasty_killed_mid_save_resumes_exactly_as_a_protocol_stage(nasty_reference, tmp_path):
    # A protocol stage is this job call with on_finished="reuse" (protocols/teacher_student.py).
    expected, nasty = nasty_reference
    config = expected.replace(output_dir=str(tmp_path / "nasty"))
    assert_killed(spawn_job("backup:0", "nasty", config, nasty, on_finished="reuse"))
    train_nasty(config, nasty, on_finished="reuse")
    assert_same_run(expected.output_dir, config.output_dir)


def test_distill_killed_mid_epoch_resumes_exactly(reference, tmp_path):
    config, kd = reference["distill"]
    config = config.replace(output_dir=str(tmp_path / "distill"))
    assert_killed(spawn_job("epoch:2:batch:1", "distill", config, kd))
    distill(config, kd)
    assert_same_run(reference["distill"][0].output_dir, config.output_dir)


def test_deepinversion_killed_mid_synthesis_resumes_exactly(reference, tmp_path):
    # Its KD phase resumes through the same backup as `distill` and DAFL (tested there).
    expected = tiny_datafree(tmp_path / "expected", reference["teacher"])
    run_datafree(expected)
    config = expected.replace(output_dir=str(tmp_path / "resumed"))
    assert_killed(spawn_job("synthesis:0", "datafree", config))  # one of two batches kept
    assert os.listdir(os.path.join(config.output_dir, "backup", "synthesis")) != []
    run_datafree(config)
    assert_same_run(expected.output_dir, config.output_dir)
    written = json.loads(read(os.path.join(config.output_dir, "metrics.json")))
    assert (
        written["inversion"]
        == json.loads(read(os.path.join(expected.output_dir, "metrics.json")))["inversion"]
    )


@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="DAFL runs on TensorFlow only")
def test_dafl_killed_mid_epoch_resumes_exactly_generator_included(reference, tmp_path):
    changes = dict(method="dafl", batch_size=16, steps_per_epoch=3, latent_dim=16)
    expected = tiny_datafree(tmp_path / "expected", reference["teacher"], **changes)
    run_datafree(expected)
    config = expected.replace(output_dir=str(tmp_path / "resumed"))
    assert_killed(spawn_job("epoch:1:batch:1", "datafree", config))
    run_datafree(config)
    assert_same_run(expected.output_dir, config.output_dir)


@pytest.mark.single_pass  # file and lock handling: the same on every backend
def test_a_kill_between_the_two_final_writes_leaves_a_consistent_run(reference, tmp_path):
    # A finished run (a copy of the reference), then overwritten by a longer one.
    config = reference["normal"].replace(output_dir=str(tmp_path / "run"))
    shutil.copytree(reference["normal"].output_dir, config.output_dir)
    old_metrics = json.loads(read(os.path.join(config.output_dir, "metrics.json")))
    old_weights = weights(config.output_dir)
    longer = config.replace(epochs=4)
    # Killed between the model and the metrics (before the commit): both stay the old ones.
    assert_killed(spawn_job("finish:between_writes", "train", longer, on_finished="overwrite"))
    assert os.path.exists(os.path.join(config.output_dir, ".staged-model.keras"))
    assert train(config, on_finished="reuse") == old_metrics
    for old, now in zip(old_weights, weights(config.output_dir), strict=True):
        np.testing.assert_array_equal(now, old)
    # Killed after the commit, with the new model in place and the old metrics not yet
    # replaced: the next opening completes the finish, and both are the new ones.
    assert_killed(spawn_job("finish:renaming", "train", longer, on_finished="overwrite"))
    metrics = train(longer, on_finished="reuse")
    assert metrics["epochs"] == 4 and len(metrics["history"]["loss"]) == 4
    network = keras.saving.load_model(os.path.join(config.output_dir, "model.keras"))
    dataset = load_data(config)
    predicted = np.argmax(network.predict(dataset.x_test, verbose=0), axis=-1)
    assert np.mean(predicted == dataset.y_test) * 100 == pytest.approx(metrics["accuracy"])
    assert [name for name in os.listdir(config.output_dir) if name.startswith(".")] == []
    assert not os.path.exists(os.path.join(config.output_dir, "backup"))


@pytest.mark.single_pass  # file and lock handling: the same on every backend
def test_a_second_process_is_refused_at_once_naming_the_holder(reference, tmp_path):
    out = tmp_path / "held"
    out.mkdir()
    (out / "config.json").write_text("{}")
    before = sorted(os.listdir(out))
    with RunLock(str(out)):
        assert read(out / LOCK_FILE).strip() == str(os.getpid())
        # The binary's answer, in this process (a lock is per open file, so this process's
        # second opening is refused like another's; test_tools starts the real binaries).
        result = run_tool_in_process("train", *TINY_FLAGS, "--epochs=1", f"--output_dir={out}")
        assert_one_line_error(result, str(out), f"is locked by process {os.getpid()}")
        assert sorted(os.listdir(out)) == sorted([*before, LOCK_FILE])  # nothing touched
        assert read(out / "config.json") == "{}"
        # In-process too, and for every job (they all hold their directory through RunDirectory).
        with pytest.raises(
            InputError, match=f"output_dir {out} is locked by process {os.getpid()}"
        ):
            train(tiny(out))
        with pytest.raises(InputError, match="is locked by process"):
            run_datafree(tiny_datafree(out, reference["teacher"]))
    assert sorted(os.listdir(out)) == before  # released: the lock file is gone


@pytest.mark.single_pass  # file and lock handling: the same on every backend
def test_a_lock_on_a_new_directory_leaves_nothing_when_nothing_was_written(tmp_path):
    out = tmp_path / "new" / "run"
    with RunLock(str(out)):
        assert os.listdir(out) == [LOCK_FILE]
    assert not os.path.exists(out)


@pytest.mark.single_pass  # file and lock handling: the same on every backend
def test_metrics_record_the_format_and_another_format_is_reported(reference, tmp_path):
    config = reference["normal"]
    metrics = json.loads(read(os.path.join(config.output_dir, "metrics.json")))
    assert metrics["format_version"] == FORMAT_VERSION
    copy = tmp_path / "copy"
    shutil.copytree(config.output_dir, copy)
    (copy / "metrics.json").write_text(json.dumps({**metrics, "format_version": 0}))
    with pytest.raises(
        InputError, match=f"finished run of format version 0.*format {FORMAT_VERSION}"
    ):
        train(config.replace(output_dir=str(copy)), on_finished="reuse")


def _scalar_tags(log_dir):
    import tensorflow as tf

    tags = set()
    for name in os.listdir(log_dir):
        for event in tf.compat.v1.train.summary_iterator(os.path.join(log_dir, name)):
            tags.update(value.tag for value in event.summary.value)
    return tags


# What a paired model's run (the nasty teacher's, a KD student's) logs for its training split.
PAIRED_MODEL_TAGS = {"epoch_ce", "epoch_kl", "epoch_accuracy", "epoch_learning_rate"}


def test_every_run_writes_tensorboard_logs(reference):
    pytest.importorskip("tensorboard")
    normal = os.path.join(reference["normal"].output_dir, "tensorboard")
    assert {"epoch_loss", "epoch_accuracy", "epoch_learning_rate"} <= _scalar_tags(
        os.path.join(normal, "train")
    )
    assert {"epoch_loss", "epoch_accuracy"} <= _scalar_tags(os.path.join(normal, "validation"))
    # The KD student's paired model logs its two terms (the nasty teacher's shares its code).
    student = os.path.join(reference["distill"][0].output_dir, "tensorboard", "train")
    assert PAIRED_MODEL_TAGS <= _scalar_tags(student)


@pytest.mark.single_pass  # the nasty job's own logs; the KD student's run on both backends
def test_the_nasty_teacher_logs_its_two_terms(nasty_reference):
    pytest.importorskip("tensorboard")
    nasty = os.path.join(nasty_reference[0].output_dir, "tensorboard", "train")
    assert PAIRED_MODEL_TAGS <= _scalar_tags(nasty)


if __name__ == "__main__":  # a job for `spawn_job`
    job = json.loads(sys.argv[1])
    config = _config_from_json(
        _CONFIGS["datafree" if job["kind"] == "datafree" else "train"], job["config"]
    )
    partner = None
    if job["partner"] is not None:
        partner = _config_from_json(_CONFIGS[job["kind"]], job["partner"])
    run_job(job["kind"], config, partner, job["on_finished"])
