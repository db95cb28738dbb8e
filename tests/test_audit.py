"""The audit (issue 20, item 3): a release attacked through what it serves, as a scorecard.

Tiny settings: a digits slice (the audit's `load_dataset` is patched to slice it), a CNN
teacher trained for two epochs here, students of one epoch, two stealers.
"""

import dataclasses
import json
import os

import keras
import numpy as np
import pytest

import nasty_tf.data
from binaries import assert_one_line_error, run_tool
from nasty_tf import audit as audit_module
from nasty_tf import models
from nasty_tf.audit import AuditConfig, audit
from nasty_tf.errors import InputError

pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")

STEALERS = ("kd", "topk")
# The audit only orchestrates stealers that tests/test_stealers.py trains on both backends; on
# JAX every student's `fit` compiles anew (about 12 s a run on 2 cores, 115 s for this file),
# so the tests that train run in the default-backend pass only.
TRAINS = pytest.mark.single_pass


def _tiny_digits(name, data_dir=None, **kwargs):
    data = _LOAD(name, data_dir=data_dir, **kwargs)
    # Every class kept (digits is stratified by class in order): 24 and 12 images a class.
    train = np.concatenate([np.flatnonzero(data.y_train == c)[:24] for c in range(10)])
    test = np.concatenate([np.flatnonzero(data.y_test == c)[:12] for c in range(10)])
    return dataclasses.replace(
        data,
        x_train=data.x_train[train],
        y_train=data.y_train[train],
        x_test=data.x_test[test],
        y_test=data.y_test[test],
    )


_LOAD = nasty_tf.data.load_dataset


@pytest.fixture(autouse=True)
def tiny_digits(monkeypatch):
    monkeypatch.setattr(nasty_tf.data, "load_dataset", _tiny_digits)


@pytest.fixture(scope="module")
def networks(tmp_path_factory):
    """A teacher trained for an epoch on the slice, and an untrained reference network."""
    root = tmp_path_factory.mktemp("audit_networks")
    data = _tiny_digits("digits")
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


def _config(output_dir, **fields):
    return AuditConfig(
        output_dir=str(output_dir),
        stealers=STEALERS,
        epochs=1,
        batch_size=64,
        **fields,
    )


@pytest.fixture(scope="module")
def keras_audit(networks, tmp_path_factory):
    directory = tmp_path_factory.mktemp("audit_keras")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(nasty_tf.data, "load_dataset", _tiny_digits)
        config = _config(directory, model=networks["teacher"], reference=networks["reference"])
        return config, audit(config)


@TRAINS
def test_the_scorecard_has_the_schema_and_protected_is_the_label_smoothing_bar(keras_audit):
    config, scorecard = keras_audit
    with open(os.path.join(config.output_dir, "scorecard.json")) as f:
        written = json.load(f)
    assert written == json.loads(json.dumps(scorecard))
    assert set(written["teacher"]) == {"accuracy"} and 0 <= written["teacher"]["accuracy"] <= 100
    assert set(written["baselines"]) == {"scratch", "label_smoothing"}
    assert {"config", "machine", "date", "backend", "command"} <= set(written)
    assert written["config"]["stealers"] == list(STEALERS)
    assert [row["name"] for row in written["stealers"]] == list(STEALERS)
    runs = {(run["name"], run["seed"]): run for run in written["runs"]}
    smoothing = written["baselines"]["label_smoothing"]
    assert smoothing == runs["label_smoothing", 0]["accuracy"]
    assert written["baselines"]["scratch"] == runs["scratch", 0]["accuracy"]
    reference = runs["reference_kd", 0]["accuracy"]
    assert written["reference"] == {"kd_accuracy": reference}
    for row in written["stealers"]:
        assert set(row) >= {
            "name",
            "accuracy",
            "vs_scratch",
            "vs_label_smoothing",
            "vs_reference",
            "protected",
        }
        assert row["accuracy"] == runs[row["name"], 0]["accuracy"] == np.mean(row["accuracies"])
        assert row["vs_scratch"] == pytest.approx(row["accuracy"] - written["baselines"]["scratch"])
        assert row["vs_label_smoothing"] == pytest.approx(row["accuracy"] - smoothing)
        assert row["vs_reference"] == pytest.approx(row["accuracy"] - reference)
        assert row["protected"] is (row["accuracy"] <= smoothing)
    for name in ("scratch", "label_smoothing", *STEALERS, "reference_kd"):
        run_dir = os.path.join(config.output_dir, "runs", f"{name}_seed0")
        assert os.path.isfile(os.path.join(run_dir, "model.keras"))
        with open(os.path.join(run_dir, "result.json")) as f:
            assert json.load(f)["config"]["name"] == name
    with open(os.path.join(config.output_dir, "scorecard.md")) as f:
        table = f.read()
    assert "| stealer | student accuracy (%) | vs scratch |" in table
    assert all(f"| {name} |" in table for name in STEALERS)
    with open(os.path.join(config.output_dir, "scorecard.png"), "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"


@TRAINS
def test_a_rerun_reuses_every_run_and_a_changed_config_is_refused(keras_audit, monkeypatch, capsys):
    config, scorecard = keras_audit
    runs_dir = os.path.join(config.output_dir, "runs")
    stamps = {
        path: os.stat(path).st_mtime_ns
        for run in os.listdir(runs_dir)
        for path in (os.path.join(runs_dir, run, n) for n in ("result.json", "model.keras"))
    }

    def no_training(*args, **kwargs):
        raise AssertionError("a finished run was trained again")

    monkeypatch.setattr(audit_module, "steal", no_training)
    again = audit(config)
    assert all(run["reused"] for run in again["runs"])
    assert again["stealers"] == scorecard["stealers"]
    assert again["baselines"] == scorecard["baselines"]
    assert {path: os.stat(path).st_mtime_ns for path in stamps} == stamps
    assert "audit: kd seed 0: student test accuracy" in capsys.readouterr().out
    with pytest.raises(InputError, match=r"runs/scratch_seed0.*different config.*epochs"):
        audit(dataclasses.replace(config, epochs=2))


@pytest.mark.single_pass  # a SavedModel is served through TensorFlow
def test_a_saved_model_audits_like_the_same_networks_keras_file(networks, keras_audit, tmp_path):
    from nasty_tf.export import export_saved_model

    export_saved_model(networks["teacher"], str(tmp_path / "export"))
    scorecard = audit(_config(tmp_path / "audit", saved_model=str(tmp_path / "export")))
    _, expected = keras_audit
    assert scorecard["teacher"]["accuracy"] == pytest.approx(expected["teacher"]["accuracy"])
    assert scorecard["baselines"] == pytest.approx(expected["baselines"])
    for row, same in zip(scorecard["stealers"], expected["stealers"]):
        assert row["name"] == same["name"]
        assert row["accuracy"] == pytest.approx(same["accuracy"], abs=1e-9)
        assert row["protected"] == same["protected"] and row["vs_reference"] is None


def test_bad_configs_name_the_argument(tmp_path):
    model = str(tmp_path / "release.keras")  # never read: a bad config is refused first
    for fields, message in (
        (
            {"model": model, "stealers": ("x",)},
            r"stealers must be distinct names from hard_label, high_temperature, kd, skeptical, "
            r"standardized, topk. Received: stealers=\['x'\]",
        ),
        ({"model": model, "stealers": ("kd", "dafl")}, "data-free dafl are not"),
        ({}, "Exactly one of model and saved_model must be given"),
        (
            {"saved_model": str(tmp_path), "release": "stingy"},
            "a saved_model is audited as it serves",
        ),
        (
            {"model": model, "release": "nasty"},
            "release must be one of plain, stingy",
        ),
        (
            {"model": model, "top_k_ratio": 0.3},
            "top_k_ratio applies to the stingy release only",
        ),
        ({"model": model, "seeds": ()}, r"seeds must be distinct integers"),
        ({"model": model, "epochs": 0}, "epochs must be an integer >= 1"),
    ):
        with pytest.raises(InputError, match=message):
            audit(AuditConfig(output_dir=str(tmp_path / "bad"), **fields))
    assert not os.path.exists(tmp_path / "bad")


def test_a_saved_model_needs_the_tensorflow_backend(tmp_path, monkeypatch):
    (tmp_path / "export").mkdir()
    (tmp_path / "export" / "saved_model.pb").write_bytes(b"")
    monkeypatch.setattr(keras.backend, "backend", lambda: "jax")
    with pytest.raises(InputError, match="needs the TensorFlow backend.*KERAS_BACKEND='jax'"):
        audit(AuditConfig(output_dir=str(tmp_path / "audit"), saved_model=str(tmp_path / "export")))


def test_the_binary_reports_bad_input_in_one_line(tmp_path):
    result = run_tool(
        "audit",
        f"--model={tmp_path / 'release.keras'}",
        "--stealers=kd,x",
        f"--output_dir={tmp_path / 'audit'}",
    )
    assert_one_line_error(result, "--stealers must be distinct names", "--stealers=['kd', 'x']")
