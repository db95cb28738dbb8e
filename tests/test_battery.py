"""The stealer battery's sweeps: cached per config, resumable, reported from the runs' own
metrics, and drawn as one figure per swept dimension."""

import glob
import json
import os

import pytest

from nasty_tf import protocols
from nasty_tf.errors import InputError
from nasty_tf.protocols import battery, teacher_student
from nasty_tf.protocols.teacher_student import Stage
from nasty_tf.training import DistillConfig, TrainConfig

pytestmark = pytest.mark.single_pass


def test_cache_keys_are_stable_for_equal_configs_and_differ_otherwise(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    for name, contents in [
        ("a/teacher.keras", b"one"),
        ("b/teacher.keras", b"one"),
        ("other.keras", b"two"),
    ]:
        (tmp_path / name).write_bytes(contents)
    teacher = str(tmp_path / "a" / "teacher.keras")
    config = TrainConfig(dataset="digits", arch="cnn", epochs=1, seed=0, output_dir="a", verbose=0)
    kd = DistillConfig(teacher, 0.9, 4.0)
    key = battery.run_key("normal", config, kd)
    assert len(key) == 12
    # Equal configs, written elsewhere and more quietly, from the same teacher file moved, share a key.
    same = TrainConfig(dataset="digits", arch="cnn", epochs=1, seed=0, output_dir="b", verbose=2)
    moved = str(tmp_path / "b" / "teacher.keras")
    assert battery.run_key("normal", same, DistillConfig(moved, 0.9, 4.0)) == key
    others = {
        battery.run_key("nasty", config, kd),
        battery.run_key("normal", config.replace(seed=1), kd),
        battery.run_key("normal", config.replace(train_fraction=0.5), kd),
        battery.run_key("normal", config, DistillConfig(teacher, 0.5, 4.0)),
        battery.run_key("normal", config, DistillConfig(teacher, 0.9, 2.0)),
        battery.run_key("normal", config, DistillConfig(str(tmp_path / "other.keras"), 0.9, 4.0)),
        battery.run_key("none", config),
    }
    assert key not in others and len(others) == 7
    with pytest.raises(InputError, match="^teacher: no such file"):
        battery.run_key("normal", config, DistillConfig(str(tmp_path / "gone.keras")))


def test_a_run_is_cached_under_its_current_key_only(tmp_path):
    teacher = tmp_path / "teacher.keras"
    teacher.write_bytes(b"weights")
    config = TrainConfig(dataset="digits", arch="cnn", epochs=1, seed=0, output_dir="a", verbose=0)
    kd = DistillConfig(str(teacher), 0.9, 4.0)
    parent = tmp_path / "sweeps"
    current = battery.run_key("normal", config, kd)
    assert battery.cached_run_dir(str(parent), "normal", config, kd) == str(parent / current)
    # No fallback to keys of unreleased formats (issue 16): run directories carry format_version.
    assert not hasattr(battery, "legacy_run_key")


def test_bad_sweeps_are_refused():
    with pytest.raises(InputError, match="unknown sweep dimension 'beta'"):
        battery.check_sweeps({"beta": (0.1,)})
    with pytest.raises(InputError, match="^sweep_omega: value out of range"):
        battery.check_sweeps({"omega": (-0.1,)})
    with pytest.raises(InputError, match="^sweep_alpha: value out of range"):
        battery.check_sweeps({"alpha": (1.5,)})
    with pytest.raises(InputError, match="^sweep_train_fraction: value out of range"):
        battery.check_sweeps({"train_fraction": (0.0,)})
    assert battery.check_sweeps({"kd_temperature": ("1", 4, 4.0)}) == {"kd_temperature": (1.0, 4.0)}


def tiny_settings(**changes):
    """The digits demo shrunk to one 1-epoch student on 10% of the data, quiet, no Figs. 1-2."""
    return (
        protocols.get_protocol("digits_demo")
        .default_settings()
        .replace(
            students=(Stage("cnn", 1, batch_size=64),),
            student_seeds=(0,),
            train_fraction=0.1,
            figures=False,
            verbose=0,
            **changes,
        )
    )


def _metrics_files(output_dir):
    """The KD and scratch students' metrics files (the data-free stealers' excluded)."""
    return sorted(
        path
        for path in glob.glob(
            os.path.join(output_dir, "students", "**", "metrics.json"), recursive=True
        )
        if not path.startswith(os.path.join(output_dir, "students", "datafree", ""))
    )


def _snapshot(output_dir):
    """The bytes of the files at the top of `output_dir` (report, figures, grids)."""
    return {p.name: p.read_bytes() for p in output_dir.iterdir() if p.is_file()}


@pytest.fixture(scope="module")
def stealer_battery(given_teachers, tmp_path_factory):
    """One protocol run from the given teachers with the stealer sweeps and both data-free
    stealers, then a second with one more sweep value.

    The sweep and the data-free tests read the same two runs: every job costs seconds of
    tracing, and the main students they both need are trained once. What the first run wrote
    at the top of its directory is kept, since the second rewrites it.
    """
    output_dir = tmp_path_factory.mktemp("battery")
    settings = tiny_settings(
        normal_teacher=given_teachers["normal"],
        nasty_teacher=given_teachers["nasty"],
        sweeps={"kd_temperature": (4.0, 2.0), "train_fraction": (0.05,)},
        datafree=("dafl", "deepinversion"),
        datafree_options={
            "dafl": dict(latent_dim=16, batch_size=16, steps_per_epoch=2, epochs=1),
            "deepinversion": dict(batch_size=10, num_images=20, inversion_steps=3, epochs=1),
        },
    )
    report = teacher_student.run("digits_demo", settings, str(output_dir))
    first = _metrics_files(output_dir)
    every_run = glob.glob(str(output_dir / "**" / "metrics.json"), recursive=True)
    mtimes = {path: os.path.getmtime(path) for path in every_run}
    written = _snapshot(output_dir)
    more = settings.replace(sweeps={"kd_temperature": (4.0, 2.0, 8.0), "train_fraction": (0.05,)})
    again = teacher_student.run("digits_demo", more, str(output_dir))
    return {
        "dir": output_dir,
        "settings": settings,
        "report": report,
        "first": first,
        "mtimes": mtimes,
        "written": written,
        "again": again,
        "second": _metrics_files(output_dir),
    }


def test_battery_resumes_reuses_and_reports_the_runs_numbers(stealer_battery):
    tmp_path, settings = stealer_battery["dir"], stealer_battery["settings"]
    report, written = stealer_battery["report"], stealer_battery["written"]

    # Main runs: 3; tau_s=4 is the main KD config (reused), tau_s=2: 2; fraction 0.05: 3.
    first = stealer_battery["first"]
    assert len(first) == 3 + 2 + 3
    sweeps = report["sweeps"]
    assert [(e["value"], e["route"]) for e in sweeps["kd_temperature"]] == [
        (4.0, "normal"),
        (4.0, "nasty"),
        (2.0, "normal"),
        (2.0, "nasty"),
    ]
    assert [e["route"] for e in sweeps["train_fraction"]] == ["none", "normal", "nasty"]
    for dimension, entries in sweeps.items():
        for entry in entries:
            metrics = [json.load(open(tmp_path / d / "metrics.json")) for d in entry["run_dirs"]]
            assert entry["accuracies"] == [m["accuracy"] for m in metrics]
            assert entry["accuracy"] == pytest.approx(sum(entry["accuracies"]) / len(metrics))
            config = metrics[0]["config"]
            if dimension == "kd_temperature":
                assert config["temperature"] == entry["value"]
            else:
                assert config["train_fraction"] == entry["value"]
                if entry["route"] != "none":
                    assert config["temperature"] == settings.kd_temperature
    # tau_s = 4 is the main KD run itself, not a copy.
    main = [e for e in sweeps["kd_temperature"] if e["value"] == 4.0]
    assert {e["run_dirs"][0] for e in main} == {
        "students/cnn_seed0/kd_normal",
        "students/cnn_seed0/kd_nasty",
    }
    # The fraction sweep's students saw their own subset; the teachers were not retrained.
    scratch = json.load(
        open(tmp_path / sweeps["train_fraction"][0]["run_dirs"][0] / "metrics.json")
    )
    assert scratch["config"]["train_fraction"] == 0.05
    assert not os.path.exists(tmp_path / "teacher_normal")

    # Figures and report.
    for dimension in ("kd_temperature", "train_fraction"):
        png = f"sweep_{dimension}.png"
        assert written[png][:8] == b"\x89PNG\r\n\x1a\n"
        assert report["figures"][f"sweep_{dimension}"] == png
    markdown = written["report.md"].decode()
    assert "Sweep of KD temperature" in markdown and "](sweep_kd_temperature.png)" in markdown
    assert json.loads(written["report.json"])["sweeps"] == json.loads(json.dumps(sweeps))

    # One more value: only its two runs train; finished ones are untouched.
    second = stealer_battery["second"]
    assert len(second) == len(first) + 2
    assert {path: os.path.getmtime(path) for path in first} == {
        path: stealer_battery["mtimes"][path] for path in first
    }
    again = stealer_battery["again"]["sweeps"]["kd_temperature"]
    assert [e["value"] for e in again][-2:] == [8.0, 8.0]


def test_owner_ablations_reuse_the_main_runs_resume_and_report_the_runs_numbers(tmp_path):
    settings = tiny_settings(
        teacher=Stage("cnn", 1, batch_size=64),
        omega=0.12,
        sweeps={"omega": (0.12, 0.3)},
        adversary_archs=("cnn", "preresnet20"),
    )
    report = teacher_student.run("digits_demo", settings, str(tmp_path))

    # 2 teachers + 3 main students; omega 0.12 and adversary cnn are the main nasty teacher and
    # its KD student, reused; omega 0.3: nasty + student; preresnet20: adversary + nasty + student.
    runs = sorted(glob.glob(os.path.join(tmp_path, "**", "metrics.json"), recursive=True))
    assert len(runs) == 2 + 3 + 2 + 3
    omega = report["owner"]["omega"]
    assert [entry["value"] for entry in omega] == [0.12, 0.3]
    assert omega[0]["teacher"]["run_dir"] == "teacher_nasty"
    assert omega[0]["student"]["run_dirs"] == ["students/cnn_seed0/kd_nasty"]
    swept = json.load(open(tmp_path / omega[1]["teacher"]["run_dir"] / "metrics.json"))
    assert swept["config"]["omega"] == 0.3 and swept["accuracy"] == omega[1]["teacher"]["accuracy"]
    assert swept["adversarial_kl"] == omega[1]["teacher"]["adversarial_kl"]
    student = json.load(open(tmp_path / omega[1]["student"]["run_dirs"][0] / "metrics.json"))
    assert student["config"]["teacher"].startswith(str(tmp_path / omega[1]["teacher"]["run_dir"]))
    assert student["accuracy"] == omega[1]["student"]["accuracy"]

    self_row, other = report["owner"]["adversary_arch"]
    assert self_row["teacher"]["accuracy"] == report["teachers"]["nasty"]["accuracy"]
    assert self_row["students"][0]["run_dirs"] == ["students/cnn_seed0/kd_nasty"]
    nasty = json.load(open(tmp_path / other["teacher"]["run_dir"] / "metrics.json"))
    adversary = json.load(open(nasty["config"]["adversary"].replace("model.keras", "metrics.json")))
    assert adversary["arch"] == "preresnet20" and nasty["arch"] == "cnn"
    assert (
        other["teacher"]["adversary_accuracy"]
        == adversary["accuracy"]
        == nasty["adversary_accuracy"]
    )

    assert (tmp_path / "sweep_omega.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    markdown = (tmp_path / "report.md").read_text()
    assert "Sweep of omega (Fig. 3)" in markdown and "| cnn(preresnet20) |" in markdown

    # Moved elsewhere, a second call trains nothing: every run is found by its key, and its
    # partners (adversaries, teachers) are matched on their files' contents, not their paths.
    mtimes = {os.path.relpath(path, tmp_path): os.path.getmtime(path) for path in runs}
    moved = tmp_path.with_name(tmp_path.name + "-moved")
    os.rename(tmp_path, moved)
    again = teacher_student.run("digits_demo", settings, str(moved))
    assert {path: os.path.getmtime(moved / path) for path in mtimes} == mtimes
    assert again["owner"] == json.loads(json.dumps(report["owner"]))
    assert again["students"] == json.loads(json.dumps(report["students"]))


def test_datafree_stealers_attack_both_teachers_and_are_reported_and_cached(
    given_teachers, stealer_battery
):
    tmp_path, written = stealer_battery["dir"], stealer_battery["written"]
    entries = stealer_battery["report"]["datafree"]
    assert [(e["method"], e["teacher"]) for e in entries] == [
        ("dafl", "normal"),
        ("dafl", "nasty"),
        ("deepinversion", "normal"),
        ("deepinversion", "nasty"),
    ]
    for entry in entries:
        metrics = json.load(open(tmp_path / entry["run_dir"] / "metrics.json"))
        assert (
            entry["accuracy"] == metrics["accuracy"]
            and entry["teacher_accuracy"] == metrics["teacher_accuracy"]
        )
        assert metrics["config"]["teacher"] == given_teachers[entry["teacher"]]
        assert (
            entry["settings"]["epochs"] == 1
            and entry["grid"] == f"inversion_{entry['method']}_{entry['teacher']}.png"
        )
        assert (
            written[entry["grid"]]
            == (tmp_path / entry["run_dir"] / "inversion_grid.png").read_bytes()
        )
    markdown = written["report.md"].decode()
    assert "Data-free KD (Table 5)" in markdown and "| DAFL | nasty |" in markdown

    # The second protocol run (one more sweep value, the same stealers) trained none again.
    mtimes = stealer_battery["mtimes"]
    for entry in entries:
        path = str(tmp_path / entry["run_dir"] / "metrics.json")
        assert os.path.getmtime(path) == mtimes[path]
    assert stealer_battery["again"]["datafree"] == json.loads(json.dumps(entries))


def test_unknown_datafree_methods_are_refused():
    from nasty_tf.protocols import datafree_attacks

    with pytest.raises(InputError, match="^datafree: unknown method 'dfad'"):
        datafree_attacks.check_methods(("dfad",), {})
    with pytest.raises(InputError, match="^epochs must be >= 1. Received: epochs=0"):
        datafree_attacks.check_methods(("dafl",), {"dafl": {"epochs": 0}})
