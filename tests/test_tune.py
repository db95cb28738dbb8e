"""The keras-tuner omega search: a tiny 2-trial search, its table, its resumption, its errors."""

import json
import os
import subprocess
import sys

import pytest
from binaries import assert_one_line_error

from nasty_tf.errors import InputError
from nasty_tf.training import TrainConfig
from nasty_tf.tuning import TuneConfig, trial_score, tune

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
pytestmark = pytest.mark.single_pass
TINY_FLAGS = [
    "--dataset=digits", "--train_fraction=0.15", "--epochs=1", "--batch_size=64", "--verbose=0",
    "--max_trials=2", "--student_epochs=1",
]


def tiny_configs(root):
    # The same settings as TINY_FLAGS with the binary's other defaults.
    train = TrainConfig(
        dataset="digits", train_fraction=0.15, epochs=1, batch_size=64, verbose=0, output_dir=str(root)
    )
    return train, TuneConfig(max_trials=2, student_epochs=1)


def run_tune(*args):
    return subprocess.run(
        [sys.executable, "-m", "tools.tune", *args],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )


def finished_runs(root):
    """mtime of every finished run's metrics.json under the search's root."""
    found = {}
    for folder, _, files in os.walk(root):
        if "metrics.json" in files:
            path = os.path.join(folder, "metrics.json")
            found[os.path.relpath(path, root)] = os.stat(path).st_mtime_ns
    return found


@pytest.fixture(scope="module")
def search(tmp_path_factory):
    root = tmp_path_factory.mktemp("tune")
    report = tune(*tiny_configs(root))
    return root, report


def test_the_table_has_one_row_per_trial_equal_to_its_metrics(search):
    root, report = search
    assert len(report["trials"]) == 2
    assert json.load(open(root / "tune_report.json")) == report
    table = (root / "tune_report.md").read_text()
    for row in report["trials"]:
        nasty = json.load(open(root / "trials" / row["trial_id"] / "nasty" / "metrics.json"))
        student = json.load(open(root / "trials" / row["trial_id"] / "student" / "metrics.json"))
        assert row["omega"] == nasty["config"]["omega"]
        assert 0.02 <= row["omega"] <= 0.3
        assert row["temperature"] == nasty["config"]["temperature"] == 4.0
        assert row["teacher_accuracy"] == nasty["accuracy"]
        assert row["adversarial_kl"] == nasty["adversarial_kl"]
        assert row["student_accuracy"] == student["accuracy"]
        assert row["score"] == trial_score(
            nasty["accuracy"], student["accuracy"], report["normal_accuracy"], 1.0
        )
        assert f"| {row['teacher_accuracy']:.2f} | {row['adversarial_kl']:.3f} |" in table
    normal = json.load(open(root / "normal" / "metrics.json"))
    assert report["normal_accuracy"] == normal["accuracy"]
    assert [row["best"] for row in report["trials"]].count(True) == 1
    assert report["best"]["score"] == min(row["score"] for row in report["trials"])
    assert table.count("| * |") == 1


def test_a_rerun_continues_the_project_without_retraining(search):
    root, report = search
    before = finished_runs(root)
    assert len(before) == 5  # normal, and a nasty teacher and a student per trial
    again = tune(*tiny_configs(root))
    assert again["trials"] == report["trials"]
    # The binary with the same settings reuses the same project too, and prints the table.
    result = run_tune(*TINY_FLAGS, f"--output_dir={root}")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "| best | trial | omega |" in result.stdout
    assert f"{report['best']['omega']:.4g}" in result.stdout
    assert finished_runs(root) == before
    # A higher --max_trials adds one trial and leaves the finished ones alone.
    more = run_tune(*TINY_FLAGS, "--max_trials=3", f"--output_dir={root}")
    assert more.returncode == 0, more.stderr[-3000:]
    after = finished_runs(root)
    assert len(after) == 7 and {path: after[path] for path in before} == before
    assert len(json.load(open(root / "tune_report.json"))["trials"]) == 3


def test_other_settings_in_the_same_project_are_refused(search):
    root, _ = search
    train, tune_config = tiny_configs(root)
    with pytest.raises(InputError, match="other settings"):
        tune(train, tune_config.__class__(max_trials=2, student_epochs=1, omega_max=0.5))


def test_a_diverging_trial_is_infeasible_and_the_search_goes_on(search, tmp_path):
    root, _ = search
    train, _ = tiny_configs(tmp_path)
    # An absurd learning rate: every trial's nasty teacher diverges within its epoch.
    train = train.replace(optimizer="sgd", learning_rate=1e12)
    tune_config = TuneConfig(
        omega_min=0.01, omega_max=1.0, max_trials=2, oracle="random", student_epochs=1,
        adversary=str(root / "normal" / "model.keras"),
    )
    report = tune(train, tune_config)
    assert len(report["trials"]) == 2  # the first divergence did not end the search
    for row in report["trials"]:
        assert row["diverged"] and not row["feasible"] and row["score"] > 100.0
        diverged = json.load(open(tmp_path / "trials" / row["trial_id"] / "diverged.json"))
        assert diverged["omega"] == row["omega"] and "diverged" in diverged["error"]
    assert "diverged" in (tmp_path / "tune_report.md").read_text()


def test_infeasible_trials_rank_below_feasible_ones():
    normal, budget = 90.0, 1.0
    feasible_worst = trial_score(89.0, 100.0, normal, budget)  # exactly on the floor
    barely_infeasible = trial_score(88.99, 10.0, normal, budget)
    far_infeasible = trial_score(50.0, 5.0, normal, budget)
    assert trial_score(95.0, 60.0, normal, budget) == 60.0
    assert feasible_worst == 100.0
    assert feasible_worst < barely_infeasible < far_infeasible
    assert far_infeasible == pytest.approx(100.0 + 39.0)


@pytest.mark.parametrize(
    "fields, fragment",
    [
        (dict(omega_min=0.5, omega_max=0.1), "--omega_min must be <= --omega_max"),
        (dict(max_trials=0), "--max_trials"),
        (dict(omega_min=0.0), "--omega_min"),
        (dict(temperatures=()), "--temperatures"),
        (dict(accuracy_budget=-1), "--accuracy_budget"),
        (dict(oracle="grid"), "--oracle"),
        (dict(adversary="/no/such.keras"), "--adversary"),
    ],
)
def test_bad_settings_name_their_flag(fields, fragment):
    with pytest.raises(InputError, match=fragment):
        TuneConfig(**fields)


@pytest.mark.parametrize(
    "flag, fragment",
    [("--omega_min=0.5", "--omega_min must be <= --omega_max"), ("--max_trials=0", "--max_trials")],
)
def test_a_bad_flag_ends_in_one_error_line(tmp_path, flag, fragment):
    result = run_tune("--dataset=digits", "--omega_max=0.3", flag, f"--output_dir={tmp_path}")
    assert result.returncode == 1
    assert_one_line_error(result, fragment)
