"""The tiny audit setting that tests/test_audit.py and tests/test_stealer_search.py share.

A digits slice (the audit's `load_dataset` is patched to slice it: 24 training and 12 test
images a class), a CNN teacher trained for two epochs on it, students of one epoch. Import the
fixtures into a test module to use them (`tiny_digits` is autouse there).
"""

import dataclasses

import keras
import numpy as np
import pytest

import nasty_tf.data
from nasty_tf import models
from nasty_tf.audit import AuditConfig, audit
from nasty_tf.audit import runs as audit_runs

STEALERS = ("kd", "topk")
# The audit only orchestrates stealers that tests/test_stealers.py trains on both backends; on
# JAX every student's `fit` compiles anew (about 12 s a run on 2 cores, 115 s for
# tests/test_audit.py), so the tests that train run in the default-backend pass only.
TRAINS = pytest.mark.single_pass

_LOAD = nasty_tf.data.load_dataset


def load_tiny_digits(name, data_dir=None, **kwargs):
    """`load_dataset` sliced: every class kept (digits is stratified by class in order), 24
    training and 12 test images a class."""
    data = _LOAD(name, data_dir=data_dir, **kwargs)
    train = np.concatenate([np.flatnonzero(data.y_train == c)[:24] for c in range(10)])
    test = np.concatenate([np.flatnonzero(data.y_test == c)[:12] for c in range(10)])
    return dataclasses.replace(
        data,
        x_train=data.x_train[train],
        y_train=data.y_train[train],
        x_test=data.x_test[test],
        y_test=data.y_test[test],
    )


@pytest.fixture(autouse=True)
def tiny_digits(monkeypatch):
    monkeypatch.setattr(nasty_tf.data, "load_dataset", load_tiny_digits)


@pytest.fixture(scope="module")
def networks(tmp_path_factory):
    """A teacher trained for two epochs on the slice, and an untrained reference network."""
    root = tmp_path_factory.mktemp("audit_networks")
    data = load_tiny_digits("digits")
    paths = {}
    for seed, name in enumerate(("teacher", "reference")):
        keras.utils.set_random_seed(seed)
        network = models.get_model("cnn", 10, data.input_shape, mean=data.mean, std=data.std)
        if name == "teacher":
            network.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
            network.fit(data.x_train, data.y_train, epochs=2, batch_size=32, verbose=0)
        paths[name] = str(root / f"{name}.keras")
        network.save(paths[name])
    return paths


def tiny_config(output_dir, **fields):
    """An `AuditConfig` of `STEALERS` with one-epoch students, `fields` added."""
    return AuditConfig(
        output_dir=str(output_dir),
        stealers=STEALERS,
        epochs=1,
        batch_size=64,
        **fields,
    )


def rerun_without_training(config, monkeypatch):
    """`audit(config)` again with training forbidden; asserts that every run came from the
    cache, and returns the scorecard."""

    def no_training(*args, **kwargs):
        raise AssertionError("a finished run was trained again")

    monkeypatch.setattr(audit_runs, "steal", no_training)
    again = audit(config)
    assert all(run["reused"] for run in again["runs"])
    return again
