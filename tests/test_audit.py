"""The audit (issue 20, item 3): a release attacked through what it serves, as a scorecard.

Tiny settings (tests/tiny_audit.py): a digits slice (the audit's `load_dataset` is patched to
slice it), a CNN teacher trained for two epochs, students of one epoch, two stealers; the
data-free stealer at its smallest DeepInversion settings.
"""

import dataclasses
import json
import os

import keras
import numpy as np
import pytest

import nasty_tf.data
from binaries import assert_one_line_error, run_tool_cases
from nasty_tf.audit import AuditConfig, audit
from nasty_tf.audit import runs as audit_runs
from nasty_tf.data import make_augmenter
from nasty_tf.errors import InputError
from nasty_tf.training.run_directory import RunLock
from tiny_audit import (  # noqa: F401 (fixtures: `tiny_digits` is autouse)
    STEALERS,
    TRAINS,
    load_tiny_digits,
    networks,
    rerun_without_training,
    tiny_config,
    tiny_digits,
)

pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")


@pytest.fixture(scope="module")
def keras_audit(networks, tmp_path_factory):
    directory = tmp_path_factory.mktemp("audit_keras")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(nasty_tf.data, "load_dataset", load_tiny_digits)
        config = tiny_config(directory, model=networks["teacher"], reference=networks["reference"])
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
    again = rerun_without_training(config, monkeypatch)
    assert again["stealers"] == scorecard["stealers"]
    assert again["baselines"] == scorecard["baselines"]
    assert {path: os.stat(path).st_mtime_ns for path in stamps} == stamps
    assert "audit: kd seed 0: student test accuracy" in capsys.readouterr().out
    with pytest.raises(InputError, match=r"runs/scratch_seed0.*different config.*epochs"):
        audit(dataclasses.replace(config, epochs=2))


@TRAINS
def test_the_binary_passes_stealer_params_and_reuses_another_audits_runs(
    keras_audit, networks, tmp_path
):
    config, _ = keras_audit
    tiny = [f"--epochs={config.epochs}", f"--batch_size={config.batch_size}"]
    (passed,) = run_tool_cases(
        "audit",
        [
            [
                f"--model={networks['teacher']}",
                "--stealers=kd,topk",
                "--stealer_params=kd.temperature=2,kd.alpha=0.5",
                f"--reuse_runs_from={config.output_dir}",
                *tiny,
                f"--output_dir={tmp_path / 'audit'}",
            ]
        ],
    )
    assert passed.returncode == 0, passed.stderr[-3000:]
    with open(tmp_path / "audit" / "scorecard.json") as f:
        written = json.load(f)
    assert written["config"]["stealer_params"] == {"kd": {"temperature": 2, "alpha": 0.5}}
    # Only kd's student differs from the other audit's: its runs are copied, kd's is trained.
    reused = {run["name"]: run["reused_from"] for run in written["runs"]}
    assert reused.pop("kd") is None
    assert "audit: kd seed 0: training..." in passed.stdout
    assert "audit: topk seed 0: training..." not in passed.stdout
    assert reused == {
        name: os.path.relpath(
            os.path.join(config.output_dir, "runs", f"{name}_seed0"), tmp_path / "audit"
        )
        for name in ("scratch", "label_smoothing", "topk")
    }
    with open(tmp_path / "audit" / "runs" / "kd_seed0" / "result.json") as f:
        stealer = json.load(f)["config"]["stealer"]
    assert (stealer["temperature"], stealer["alpha"]) == (2, 0.5)


@TRAINS
def test_several_seeds_give_means_and_the_scorecard_shows_each_seed(keras_audit, tmp_path):
    config, _ = keras_audit
    both = dataclasses.replace(
        config,
        stealers=("kd",),
        reference=None,
        seeds=(0, 1),
        reuse_runs_from=(config.output_dir,),  # seed 0's runs: only seed 1 trains
        output_dir=str(tmp_path / "two_seeds"),
    )
    scorecard = audit(both)
    per_seed = {(run["name"], run["seed"]): run["accuracy"] for run in scorecard["runs"]}
    assert sorted(per_seed) == [
        (name, seed) for name in ("kd", "label_smoothing", "scratch") for seed in (0, 1)
    ]
    assert [run["reused"] for run in scorecard["runs"] if run["seed"] == 1] == [False] * 3
    (kd,) = scorecard["stealers"]
    assert kd["accuracies"] == [per_seed["kd", 0], per_seed["kd", 1]]
    assert kd["accuracy"] == pytest.approx((per_seed["kd", 0] + per_seed["kd", 1]) / 2)
    with open(tmp_path / "two_seeds" / "scorecard.md") as f:
        table = f.read()
    assert "| protected | per seed |" in table
    assert f"| {per_seed['kd', 0]:.2f}, {per_seed['kd', 1]:.2f} |" in table
    for name, shown in (("scratch", "scratch"), ("label_smoothing", "label smoothing")):
        seeds = f"{per_seed[name, 0]:.2f}, {per_seed[name, 1]:.2f}"
        assert f"{shown} {scorecard['baselines'][name]:.2f}% (seeds: {seeds})" in table


def _results(output_dir):
    runs_dir = os.path.join(output_dir, "runs")
    results = {}
    for run in sorted(os.listdir(runs_dir)):
        with open(os.path.join(runs_dir, run, "result.json")) as f:
            results[run] = json.load(f)
    return results


@TRAINS
def test_a_validation_curve_is_recorded_and_leaves_the_training_as_it_was(
    keras_audit, tmp_path, monkeypatch
):
    config, _ = keras_audit
    longer = dataclasses.replace(
        config, stealers=("kd",), reference=None, epochs=2, output_dir=str(tmp_path / "curve")
    )
    scorecard = audit(longer)
    with_curve = _results(longer.output_dir)
    monkeypatch.setattr(audit_runs._ValidationCurve, "on_epoch_end", lambda *args, **kwargs: None)
    no_curve = audit(dataclasses.replace(longer, output_dir=str(tmp_path / "no_curve")))
    without_curve = _results(str(tmp_path / "no_curve"))
    one_epoch = _results(config.output_dir)
    assert sorted(with_curve) == ["kd_seed0", "label_smoothing_seed0", "scratch_seed0"]
    for run, result in with_curve.items():
        curve = result["validation_curve"]
        assert len(curve) == 2 and curve[-1] == round(result["validation_accuracy"], 4)
        # Predicting each epoch changes nothing the student learns.
        assert without_curve[run]["validation_curve"] == []
        for field in ("accuracy", "validation_accuracy"):
            assert without_curve[run][field] == result[field]
        # At a constant learning rate a longer schedule starts as the shorter one ran: its
        # curve holds the shorter run's end.
        assert curve[0] == round(one_epoch[run]["validation_accuracy"], 4)
    # The doubling check reads those curves: epoch 1 is the 1-epoch run's end, epoch 2 the
    # audit's (one-epoch tails).
    check = scorecard["doubling_check"]
    ends = {name: with_curve[f"{name}_seed0"]["validation_curve"] for name in ("scratch", "kd")}
    assert check["baselines"]["scratch"]["half"] == ends["scratch"][0]
    assert check["baselines"]["scratch"]["full"] == ends["scratch"][1]
    assert check["stealers"]["kd"]["half"] == ends["kd"][0]
    with open(os.path.join(longer.output_dir, "scorecard.md")) as f:
        text = f.read()
    assert "**Would half the schedule, 1 epoch, have done?**" in text
    assert "(epoch 1 and epoch 2)" in text and "1 epoch is " in text
    assert no_curve["doubling_check"] is None  # no curves recorded, no check
    # The baselines alone (no stealers) are enough for the check: every run here is reused.
    baselines_only = audit(
        dataclasses.replace(
            longer,
            stealers=(),
            reuse_runs_from=(longer.output_dir,),
            output_dir=str(tmp_path / "baselines"),
        )
    )
    assert baselines_only["stealers"] == [] and not baselines_only["doubling_check"]["stealers"]
    assert baselines_only["doubling_check"]["baselines"] == check["baselines"]
    assert [run["reused"] for run in baselines_only["runs"]] == [True, True]
    with open(tmp_path / "baselines" / "scorecard.md") as f:
        text = f.read()
    assert "No stealers: this audit trained the baselines only." in text
    assert "| stealer |" not in text


@TRAINS
def test_augment_trains_every_served_student_on_the_datasets_augmentation(
    keras_audit, tmp_path, monkeypatch
):
    config, _ = keras_audit
    augmenters, real = [], audit_runs.steal

    def steal(stealer, *args, augmenter=None, **kwargs):
        augmenters.append(augmenter)
        return real(stealer, *args, augmenter=augmenter, **kwargs)

    monkeypatch.setattr(audit_runs, "steal", steal)
    augmented = dataclasses.replace(config, output_dir=str(tmp_path / "augmented"), augment=True)
    scorecard = audit(augmented)
    # Scratch, label smoothing, the reference's KD student, kd and topk: each augmented.
    assert len(augmenters) == len(scorecard["runs"]) == 5
    recipe = make_augmenter(load_tiny_digits("digits").augmentation)
    for augmenter in augmenters:
        assert [type(layer) for layer in augmenter.layers] == [type(l) for l in recipe.layers]
    for run in scorecard["runs"]:
        with open(os.path.join(augmented.output_dir, run["run_dir"], "result.json")) as f:
            assert json.load(f)["config"]["augment"] is True
    # The cache tells augmented runs from plain ones.
    with pytest.raises(InputError, match=r"different config \(differs in: augment\)"):
        audit(dataclasses.replace(augmented, augment=False))


@pytest.mark.single_pass  # a SavedModel is served through TensorFlow
def test_a_saved_model_audits_like_the_same_networks_keras_file(networks, keras_audit, tmp_path):
    from nasty_tf.export import export_saved_model

    export_saved_model(networks["teacher"], str(tmp_path / "export"))
    scorecard = audit(tiny_config(tmp_path / "audit", saved_model=str(tmp_path / "export")))
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
            r"stealers must be distinct names from dafl, deepinversion, hard_label, "
            r"high_temperature, kd, skeptical, standardized, topk. Received: stealers=\['x'\]",
        ),
        (
            {"model": model, "stealers": ("kd",), "stealer_params": {"topk": {"k": 2}}},
            r"stealer_params must map stealers that run",
        ),
        (
            {
                "model": model,
                "stealers": ("deepinversion",),
                "stealer_params": {"deepinversion": {"epochs": 0}},
            },
            r"stealer_params\['deepinversion'\]: epochs must be >= 1. Received: epochs=0",
        ),
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
        ({"model": model, "augment": "yes"}, "augment must be True or False"),
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


def _fake_saved_model(directory):
    directory.mkdir()
    (directory / "saved_model.pb").write_bytes(b"")  # never loaded: refused before
    return str(directory)


def test_the_binary_reports_bad_input_in_one_line(tmp_path):
    export = _fake_saved_model(tmp_path / "export")
    unknown, data_free, params, twice, reuse, fraction, cache, unseen = run_tool_cases(
        "audit",
        [
            [
                f"--model={tmp_path / 'release.keras'}",
                "--stealers=kd,x",
                f"--output_dir={tmp_path / 'audit'}",
            ],
            [
                f"--saved_model={export}",
                "--stealers=kd,dafl",
                f"--output_dir={tmp_path / 'audit'}",
            ],
            [
                f"--model={tmp_path / 'release.keras'}",
                "--stealer_params=skeptical.loc",
                f"--output_dir={tmp_path / 'audit'}",
            ],
            [
                f"--model={tmp_path / 'release.keras'}",
                "--stealer_params=kd.alpha=0.5,kd.alpha=0.6",
                f"--output_dir={tmp_path / 'audit'}",
            ],
            [
                f"--model={tmp_path / 'release.keras'}",
                f"--reuse_runs_from={tmp_path / 'missing'}",
                f"--output_dir={tmp_path / 'audit'}",
            ],
            [
                f"--model={tmp_path / 'release.keras'}",
                "--train_fraction=0",
                f"--output_dir={tmp_path / 'audit'}",
            ],
            [
                f"--model={tmp_path / 'release.keras'}",
                f"--data_cache_dir={tmp_path / 'cache'}",
                f"--output_dir={tmp_path / 'audit'}",
            ],
            [
                f"--model={tmp_path / 'release.keras'}",
                "--validation_split=unseen",
                f"--output_dir={tmp_path / 'audit'}",
            ],
        ],
    )
    assert_one_line_error(unknown, "--stealers must be distinct names", "--stealers=['kd', 'x']")
    assert_one_line_error(
        params,
        "--stealer_params must be stealer.parameter=value items",
        "Received: --stealer_params=skeptical.loc",
    )
    assert_one_line_error(twice, "--stealer_params gives kd.alpha twice")
    assert_one_line_error(
        reuse, "--reuse_runs_from must be a list of other audits' existing output directories"
    )
    assert_one_line_error(fraction, "--train_fraction", "Received: --train_fraction=0")
    assert_one_line_error(cache, "--data_cache_dir applies to the file sources")
    assert_one_line_error(
        unseen,
        "--validation_split='unseen' needs --train_fraction below 1",
        "Received: --train_fraction=1.0",
    )
    assert_one_line_error(
        data_free,
        "--stealers: dafl needs the released network's file (--model)",
        f"--saved_model='{export}'",
    )
    assert not os.path.exists(tmp_path / "audit")


def test_data_free_stealers_are_refused_for_a_saved_model_up_front(tmp_path, monkeypatch):
    export = _fake_saved_model(tmp_path / "export")

    def no_loading(*args, **kwargs):
        raise AssertionError("the release was loaded before the stealers were checked")

    monkeypatch.setattr(nasty_tf.data, "load_dataset", no_loading)
    with pytest.raises(
        InputError,
        match=r"^stealers: dafl, deepinversion need the released network's file \(`model`\); a "
        r"saved_model serves only its outputs.*Received: saved_model=.*stealers=\['kd', 'dafl', "
        r"'deepinversion'\]",
    ):
        audit(
            AuditConfig(
                output_dir=str(tmp_path / "audit"),
                saved_model=export,
                stealers=("kd", "dafl", "deepinversion"),
            )
        )
    assert not os.path.exists(tmp_path / "audit")


def test_dafl_needs_the_tensorflow_backend_up_front(tmp_path, monkeypatch):
    monkeypatch.setattr(keras.backend, "backend", lambda: "jax")
    with pytest.raises(InputError, match="^stealers: dafl needs the TensorFlow backend"):
        audit(
            AuditConfig(
                output_dir=str(tmp_path / "audit"),
                model=str(tmp_path / "release.keras"),
                stealers=("dafl",),
            )
        )
    assert not os.path.exists(tmp_path / "audit")


def test_the_default_stealers_leave_the_data_free_ones_out():
    from nasty_tf.audit import DATA_FREE_STEALERS, auditable_stealers, default_stealers

    assert DATA_FREE_STEALERS == ("dafl", "deepinversion")
    assert set(default_stealers()) == set(auditable_stealers()) - set(DATA_FREE_STEALERS)
    assert default_stealers() == [
        "hard_label",
        "high_temperature",
        "kd",
        "skeptical",
        "standardized",
        "topk",
    ]


def test_a_second_audit_on_a_held_output_dir_is_refused_and_touches_nothing(tmp_path, monkeypatch):
    out = tmp_path / "audit"
    (out / "runs" / "kd_seed0").mkdir(parents=True)
    (out / "runs" / "kd_seed0" / "result.json").write_text("{}")

    def no_loading(*args, **kwargs):
        raise AssertionError("a refused audit loaded its data")

    monkeypatch.setattr(nasty_tf.data, "load_dataset", no_loading)
    config = AuditConfig(output_dir=str(out), model=str(tmp_path / "release.keras"))
    with RunLock(str(out)):  # another audit, in this process: flock is per open file
        before = {p: p.stat().st_mtime_ns for p in out.rglob("*")}
        with pytest.raises(
            InputError, match=f"output_dir {out} is locked by process {os.getpid()}"
        ):
            audit(config)
        assert {p: p.stat().st_mtime_ns for p in out.rglob("*")} == before
    assert sorted(p.name for p in out.iterdir()) == ["runs"]  # released with the holder


# The smallest DeepInversion (tests/test_runs.py's `tiny_datafree`, tests/test_battery.py).
TINY_DEEPINVERSION = {"batch_size": 10, "num_images": 20, "inversion_steps": 3, "epochs": 1}


@TRAINS
def test_a_data_free_stealer_is_a_scorecard_row_and_its_run_is_cached(
    networks, tmp_path, monkeypatch
):
    config = AuditConfig(
        output_dir=str(tmp_path / "audit"),
        model=networks["teacher"],
        release="stingy",  # bypassed: the data-free stealer attacks the network file
        stealers=("deepinversion",),
        stealer_params={"deepinversion": TINY_DEEPINVERSION},
        epochs=1,
        batch_size=64,
    )
    scorecard = audit(config)
    (row,) = scorecard["stealers"]
    smoothing = scorecard["baselines"]["label_smoothing"]
    assert row["name"] == "deepinversion" and row["kind"] == "datafree"
    assert row["vs_scratch"] == pytest.approx(row["accuracy"] - scorecard["baselines"]["scratch"])
    assert row["vs_label_smoothing"] == pytest.approx(row["accuracy"] - smoothing)
    assert row["vs_reference"] is None and row["protected"] is (row["accuracy"] <= smoothing)
    run_dir = tmp_path / "audit" / "runs" / "deepinversion_seed0"
    metrics = json.loads((run_dir / "metrics.json").read_text())  # a run_datafree job
    assert metrics["method"] == "deepinversion" and metrics["images_synthesized"] == 20
    assert metrics["config"]["inversion_steps"] == 3 and metrics["config"]["arch"] == "cnn"
    assert row["accuracy"] == metrics["accuracy"]
    result = json.loads((run_dir / "result.json").read_text())
    assert result["config"]["release"] == {
        "kind": "keras",
        "sha256": metrics["config"]["teacher_sha256"],
    }
    assert "epochs" not in result["config"]  # the audit's student schedule is not its own
    assert scorecard["settings"]["datafree"]["deepinversion"]["num_images"] == 20
    table = (tmp_path / "audit" / "scorecard.md").read_text()
    assert "| deepinversion (data-free) |" in table and "attack the network file" in table

    def no_attack(*args, **kwargs):
        raise AssertionError("a finished data-free run was attacked again")

    monkeypatch.setattr(audit_runs, "run_datafree", no_attack)
    monkeypatch.setattr(audit_runs, "steal", no_attack)
    # Served plain now: the data-free run is keyed on the network file alone, and reused.
    again = audit(dataclasses.replace(config, release=None))
    assert [run["reused"] for run in again["runs"]] == [True, True, True]
    assert again["stealers"][0]["accuracy"] == row["accuracy"]
