"""The defences x stealers matrix (issue 20, item 3): four audits, shared baselines, teacher cost.

Tiny settings, as in tests/test_audit.py: a digits slice (`load_dataset` patched), two CNNs
(a "normal" one trained for two epochs, an untrained one standing for the nasty network: the
matrix's mechanics do not need a nasty one), students of one epoch, the `kd` stealer only.
"""

import dataclasses
import json
import os

import keras
import numpy as np
import pytest

import nasty_tf.data
from binaries import assert_one_line_error, binary_flags, run_tool_cases
from nasty_tf import protocols
from nasty_tf.audit import (
    AuditConfig,
    MatrixConfig,
    audit,
    audit_matrix,
    auditable_stealers,
    check_matrix_config,
    default_stealers,
    defence_configs,
    matrix_stealer_names,
    skeptical_search,
)
from nasty_tf.audit import runs as audit_runs
from nasty_tf.errors import InputError
from nasty_tf.protocols import teacher_student
from nasty_tf.protocols.teacher_student import Stage
from nasty_tf.report import format_matrix_table
from tiny_audit import load_tiny_digits, networks  # noqa: F401 (a fixture)

pytestmark = [
    pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning"),
    # Orchestration of audits that tests/test_audit.py runs on both backends.
    pytest.mark.single_pass,
]

BASELINES = ("scratch", "label_smoothing", "reference_kd")
DEFENCES = ("plain", "nasty", "stingy", "nasty+stingy")
# Where `audit_matrix` puts each defence's audit, spelled out as the tests expect it.
SUBDIRS = ("plain", "nasty", "stingy", "nasty_stingy")


@pytest.fixture(scope="module")
def matrix_networks(networks):
    """tiny_audit's networks under the matrix's names: its trained teacher is the "normal"
    network, its untrained reference stands for the nasty one."""
    return {"normal": networks["teacher"], "nasty": networks["reference"]}


def _counting_steal(calls):
    real = audit_runs.steal

    def steal(stealer, *args, **kwargs):
        calls.append(stealer.config().get("name", type(stealer).__name__))
        return real(stealer, *args, **kwargs)

    return steal


@pytest.fixture(scope="module")
def matrix_run(matrix_networks, tmp_path_factory):
    directory = tmp_path_factory.mktemp("matrix")
    calls = []
    config = MatrixConfig(
        normal=matrix_networks["normal"],
        nasty=matrix_networks["nasty"],
        output_dir=str(directory),
        stealers=("kd",),
        epochs=1,
        batch_size=64,
    )
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(nasty_tf.data, "load_dataset", load_tiny_digits)
        patch.setattr(audit_runs, "steal", _counting_steal(calls))
        matrix = audit_matrix(config)
    return config, matrix, calls


def _accuracy(path):
    data = load_tiny_digits("digits")
    logits = keras.saving.load_model(path).predict(data.x_test, verbose=0)
    return float(np.mean(np.argmax(logits, -1) == data.y_test) * 100)


def test_four_audits_each_with_its_scorecard_and_the_baselines_trained_once(matrix_run):
    config, matrix, calls = matrix_run
    assert matrix["order"] == list(DEFENCES) and list(matrix["defences"]) == list(DEFENCES)
    for name, subdirectory in zip(DEFENCES, SUBDIRS):
        scorecard = json.loads(
            open(os.path.join(config.output_dir, subdirectory, "scorecard.json")).read()
        )
        assert matrix["defences"][name]["scorecard"] == f"{subdirectory}/scorecard.json"
        assert scorecard["settings"]["teacher"]["release"] == matrix["defences"][name]["release"]
        assert [row["name"] for row in scorecard["stealers"]] == ["kd"]
    # Six students in all: the two baselines once, kd once per defence; the reference's KD
    # student is the plain defence's kd student (the normal network's plain release).
    assert sorted(calls) == sorted(["label_smoothing"] * 2 + ["kd"] * 4)
    plain_dir = os.path.join(config.output_dir, "plain")
    first = {run["name"]: run for run in matrix["defences"]["plain"]["runs"]}
    assert [name for name, run in first.items() if run["reused"]] == ["reference_kd"]
    assert first["reference_kd"]["reused_from"] == "runs/kd_seed0"
    reference = matrix["defences"]["plain"]["reference"]["kd_accuracy"]
    assert reference == matrix["defences"]["plain"]["stealers"][0]["accuracy"]
    for name in DEFENCES[1:]:
        runs = {run["name"]: run for run in matrix["defences"][name]["runs"]}
        assert not runs["kd"]["reused"]
        for baseline in BASELINES:
            assert runs[baseline]["reused"]
            assert runs[baseline]["reused_from"] == f"../plain/runs/{baseline}_seed0"
        own = matrix["defences"][name]["scorecard"].split("/")[0]
        for baseline in BASELINES:
            copied = os.path.join(config.output_dir, own, "runs", f"{baseline}_seed0")
            source = os.path.join(plain_dir, "runs", f"{baseline}_seed0")
            # A complete copy (its model too), and the same record, so the audit stays whole.
            assert sorted(os.listdir(copied)) == sorted(os.listdir(source))
            assert (
                open(os.path.join(copied, "result.json")).read()
                == open(os.path.join(source, "result.json")).read()
            )
        assert matrix["defences"][name]["baselines"] == matrix["defences"]["plain"]["baselines"]
    table = open(os.path.join(config.output_dir, "matrix.md")).read()
    assert "| | plain | nasty | stingy | nasty+stingy |" in table
    assert json.loads(open(os.path.join(config.output_dir, "matrix.json")).read()) == (
        json.loads(json.dumps(matrix))
    )


def test_the_teacher_cost_is_against_the_plain_release(matrix_run, matrix_networks):
    _, matrix, _ = matrix_run
    defences = matrix["defences"]
    normal, nasty = _accuracy(matrix_networks["normal"]), _accuracy(matrix_networks["nasty"])
    assert defences["plain"]["teacher"] == {"accuracy": pytest.approx(normal), "cost": 0.0}
    # Stingy serves the top-k logits only: the argmax, hence the accuracy, is kept exactly.
    assert defences["stingy"]["teacher"]["accuracy"] == defences["plain"]["teacher"]["accuracy"]
    assert defences["stingy"]["teacher"]["cost"] == 0.0
    assert defences["nasty"]["teacher"]["accuracy"] == pytest.approx(nasty)
    assert defences["nasty"]["teacher"]["cost"] == pytest.approx(nasty - normal)
    assert defences["nasty"]["teacher"]["cost"] != 0.0  # an untrained network: far below
    assert defences["nasty+stingy"]["teacher"] == defences["nasty"]["teacher"]
    for defence in defences.values():
        (row,) = defence["stealers"]
        smoothing = defence["baselines"]["label_smoothing"]
        assert row["vs_label_smoothing"] == pytest.approx(row["accuracy"] - smoothing)
        assert row["protected"] is (row["accuracy"] <= smoothing)


def test_a_rerun_trains_nothing(matrix_run, monkeypatch):
    config, matrix, _ = matrix_run

    def no_training(*args, **kwargs):
        raise AssertionError("a finished run was trained again")

    monkeypatch.setattr(nasty_tf.data, "load_dataset", load_tiny_digits)
    monkeypatch.setattr(audit_runs, "steal", no_training)
    again = audit_matrix(config)
    for name in DEFENCES:
        assert all(run["reused"] for run in again["defences"][name]["runs"])
        assert again["defences"][name]["stealers"] == matrix["defences"][name]["stealers"]
        assert again["defences"][name]["teacher"] == matrix["defences"][name]["teacher"]


def test_the_binary_audits_the_matrix_from_another_matrixs_runs(
    matrix_run, matrix_networks, tmp_path, monkeypatch
):
    """`tools.audit --matrix`: --model is the nasty network, --reference the normal one; with
    --reuse_runs_from naming a finished matrix's four audits, nothing trains again."""
    config, matrix, _ = matrix_run

    def no_training(*args, **kwargs):
        raise AssertionError("a finished run was trained again")

    monkeypatch.setattr(nasty_tf.data, "load_dataset", load_tiny_digits)
    monkeypatch.setattr(audit_runs, "steal", no_training)
    finished = {name: os.path.join(config.output_dir, d) for name, d in zip(DEFENCES, SUBDIRS)}
    (result,) = run_tool_cases(
        "audit",
        [
            [
                "--matrix",
                f"--model={matrix_networks['nasty']}",
                f"--reference={matrix_networks['normal']}",
                "--dataset=digits",
                "--stealers=kd",
                "--epochs=1",
                "--batch_size=64",
                f"--reuse_runs_from={','.join(finished.values())}",
                f"--output_dir={tmp_path}",
            ]
        ],
    )
    assert result.returncode == 0, result.stderr[-3000:]
    again = json.loads((tmp_path / "matrix.json").read_text())
    for name, subdirectory in zip(DEFENCES, SUBDIRS):
        defence = again["defences"][name]
        assert defence["stealers"] == json.loads(json.dumps(matrix["defences"][name]["stealers"]))
        assert defence["teacher"] == matrix["defences"][name]["teacher"]
        sources = {run["name"]: run["reused_from"] for run in defence["runs"]}
        # kd's key holds the release: only the same defence's audit has its twin. The
        # baselines' does not: the first directory given has theirs.
        assert os.path.normpath(os.path.join(tmp_path, subdirectory, sources["kd"])) == (
            os.path.join(finished[name], "runs", "kd_seed0")
        )
        for baseline in BASELINES:
            assert os.path.normpath(os.path.join(tmp_path, subdirectory, sources[baseline])) == (
                os.path.join(finished["plain"], "runs", f"{baseline}_seed0")
            )
        assert f"{name}: teacher {defence['teacher']['accuracy']:.2f}%" in result.stdout
    assert result.stdout.rstrip().endswith(f"-> {tmp_path}/matrix.md")


def test_the_binary_refuses_a_matrix_of_one_release_in_one_line(matrix_networks, tmp_path):
    out = f"--output_dir={tmp_path / 'matrix'}"
    nasty, normal = (
        f"--model={matrix_networks['nasty']}",
        f"--reference={matrix_networks['normal']}",
    )
    saved, release, alone = run_tool_cases(
        "audit",
        [
            ["--matrix", f"--saved_model={tmp_path}", normal, out],
            ["--matrix", nasty, normal, "--release=stingy", out],
            ["--matrix", nasty, out],
        ],
    )
    assert_one_line_error(saved, "--matrix audits the four releases", f"--saved_model={tmp_path}")
    assert_one_line_error(release, "--release does not apply", "--release=stingy")
    assert_one_line_error(
        alone, "--matrix needs two .keras files: --model, the nasty network, and --reference"
    )
    assert "--reference=None" in alone.stderr
    assert not os.path.exists(tmp_path / "matrix")


def test_the_matrix_table_has_a_teacher_row_and_a_cell_per_defence(matrix_run):
    _, matrix, _ = matrix_run
    lines = format_matrix_table(json.loads(json.dumps(matrix)))
    rows = {line.split(" | ")[0].lstrip("| "): line for line in lines if line.startswith("| ")}
    assert set(rows) >= {"teacher (cost)", "scratch", "label smoothing (the bar)", "kd"}
    teacher = rows["teacher (cost)"]
    for name in DEFENCES:
        cost = matrix["defences"][name]["teacher"]["cost"]
        assert f"({cost:+.2f})" in teacher
    kd = rows["kd"].split(" | ")[1:]
    assert len(kd) == 4
    for cell, name in zip(kd, DEFENCES):
        (row,) = matrix["defences"][name]["stealers"]
        assert cell.startswith(f"{row['accuracy']:.2f} ({row['vs_label_smoothing']:+.2f})")
        assert ("✓" in cell) is row["protected"] and ("✗" in cell) is (not row["protected"])
    assert rows["label smoothing (the bar)"].count("(+0.00)") == 4
    assert format_matrix_table(None) == []
    outside = "validated on training images outside the teachers' subset"
    assert not any(outside in line for line in lines)
    matrix = json.loads(json.dumps(matrix))
    matrix["settings"]["validation_split"] = "unseen"
    assert any(outside in line for line in format_matrix_table(matrix))


def test_the_matrix_table_says_the_doubling_check_under_it(matrix_run):
    from nasty_tf.audit.schedule import doubling_check

    _, matrix, _ = matrix_run
    assert matrix["defences"]["plain"]["doubling_check"] is None  # 1 epoch: no half to check
    assert not any("Doubling check" in line for line in format_matrix_table(matrix))
    matrix = json.loads(json.dumps(matrix))
    rising, flat = [70.0, 70.2, 70.4, 71.0], [71.0] * 4  # 4 epochs: tails of 1 epoch
    for name, kd in (("plain", flat), ("nasty", rising), ("stingy", flat), ("nasty+stingy", flat)):
        curves = {"scratch": [rising], "label_smoothing": [flat], "kd": [kd]}
        matrix["defences"][name]["doubling_check"] = doubling_check(curves, 4)
    (line,) = [line for line in format_matrix_table(matrix) if "Doubling check" in line]
    assert "half the schedule, 2 epochs, is **not** enough" in line
    assert "(the baselines moved scratch +0.80, label smoothing +0.00 from 2 to 4" in line
    # kd against nasty: 0.8 under the bar at 2 epochs, level with it at 4: still protected.
    assert line.endswith("validation verdicts that change between them: none.")
    matrix["defences"]["nasty"]["doubling_check"]["stealers"]["kd"]["verdict_changes"] = True
    (line,) = [line for line in format_matrix_table(matrix) if "Doubling check" in line]
    assert line.endswith("validation verdicts that change between them: nasty kd.")


def test_the_matrix_table_names_each_defences_searched_choice(matrix_run):
    _, unsearched, _ = matrix_run
    matrix = json.loads(json.dumps(unsearched))
    for delay, name in enumerate(DEFENCES):
        (row,) = matrix["defences"][name]["stealers"]
        row["search"] = {"split": "validation", "rows": [], "chosen": {"loc": 1, "kd_delay": delay}}
    assert (
        "**kd**, chosen on each defence's validation split: plain: kd_delay 0, loc 1; nasty: "
        "kd_delay 1, loc 1; stingy: kd_delay 2, loc 1; nasty+stingy: kd_delay 3, loc 1."
    ) in format_matrix_table(matrix)
    plain_lines = format_matrix_table(json.loads(json.dumps(unsearched)))
    assert not any("validation split:" in line for line in plain_lines)
    assert not any("augmented" in line for line in plain_lines)


def test_a_twin_run_is_copied_only_when_it_trains_the_same_student(
    matrix_networks, tmp_path, monkeypatch
):
    """The cache stays honest: another audit's run is taken only under the same key, or one
    that trains the same student (`nasty_tf.audit.twins`), and the copy says which."""
    calls = []

    def untrained(stealer, student, *args, **kwargs):  # the key, not the training, is tested
        calls.append(stealer.config().get("name"))
        return student

    monkeypatch.setattr(nasty_tf.data, "load_dataset", load_tiny_digits)
    monkeypatch.setattr(audit_runs, "steal", untrained)
    base = AuditConfig(
        output_dir=str(tmp_path / "first"),
        model=matrix_networks["normal"],
        stealers=("kd", "hard_label", "topk"),
        epochs=1,
    )
    audit(base)
    assert len(calls) == 5
    calls.clear()
    other = audit(
        dataclasses.replace(
            base,
            output_dir=str(tmp_path / "other_schedule"),
            epochs=2,
            reuse_runs_from=(base.output_dir,),
        )
    )
    assert len(calls) == 5 and not any(run["reused"] for run in other["runs"])
    calls.clear()
    stingy = audit(
        dataclasses.replace(
            base,
            output_dir=str(tmp_path / "stingy"),
            release="stingy",
            stealers=("kd", "hard_label", "standardized"),
            reuse_runs_from=(base.output_dir,),
        )
    )
    # Standardized soft targets differ between the releases. Hard labels do not (stingy keeps
    # the argmax), and kd on the stingy release (2 of 10 classes) is topk on the plain one.
    assert calls == ["standardized"]
    sources = {run["name"]: run["reused_from"] for run in stingy["runs"]}
    assert sources == {
        "scratch": "../first/runs/scratch_seed0",
        "label_smoothing": "../first/runs/label_smoothing_seed0",
        "kd": "../first/runs/topk_seed0",
        "hard_label": "../first/runs/hard_label_seed0",
        "standardized": None,
    }
    with open(tmp_path / "stingy" / "runs" / "kd_seed0" / "result.json") as f:
        copied = json.load(f)
    with open(tmp_path / "first" / "runs" / "topk_seed0" / "result.json") as f:
        twin = json.load(f)
    assert copied["config"]["name"] == "kd" and copied["config"]["release"]["release"] == "stingy"
    assert copied["twin_config"] == twin["config"]
    assert copied["accuracy"] == twin["accuracy"]
    # A rerun finds its own records: the copies hold their own keys.
    calls.clear()
    audit(
        dataclasses.replace(
            base,
            output_dir=str(tmp_path / "stingy"),
            release="stingy",
            stealers=("kd", "hard_label", "standardized"),
        )
    )
    assert calls == []
    # A copy of a copy names the run that trained it: plain's topk found only as the stingy
    # audit's kd copy comes back as plain's own record, not as a twin of stingy's kd.
    again = audit(
        dataclasses.replace(
            base,
            output_dir=str(tmp_path / "plain_again"),
            stealers=("topk",),
            reuse_runs_from=(str(tmp_path / "stingy"),),
        )
    )
    assert calls == []
    assert {run["name"]: run["reused_from"] for run in again["runs"]}["topk"] == (
        "../stingy/runs/kd_seed0"
    )
    with open(tmp_path / "plain_again" / "runs" / "topk_seed0" / "result.json") as f:
        assert json.load(f) == twin


def test_matrix_stealer_names_expand_the_aliases_and_refuse_unknown_names():
    assert matrix_stealer_names(("all",)) == tuple(auditable_stealers())
    assert matrix_stealer_names(["served"]) == tuple(default_stealers())
    assert matrix_stealer_names(("topk", "kd")) == ("topk", "kd")
    for names, shown in (
        (("kd", "x"), "kd,x"),
        (("kd", "kd"), "kd,kd"),
        (("all", "kd"), "all,kd"),
        ((), ""),
    ):
        with pytest.raises(
            InputError,
            match=rf"^matrix_stealers must be distinct names from dafl, .*topk, or one of all "
            rf"\(every one\) and served \(all but the data-free ones\)\. "
            rf"Received: matrix_stealers={shown}$",
        ):
            matrix_stealer_names(names)


def test_a_protocol_with_matrix_stealers_reports_the_matrix(given_teachers, tmp_path, monkeypatch):
    """The protocol runs the matrix on its two teachers; report.json and report.md show it."""
    calls = []

    def untrained(stealer, student, *args, **kwargs):  # the audit's training is tested above
        calls.append(stealer.config().get("name"))
        return student

    monkeypatch.setattr(audit_runs, "steal", untrained)
    monkeypatch.setattr(nasty_tf.data, "load_dataset", load_tiny_digits)
    settings = protocols.get_protocol("digits_demo").default_settings()
    tiny = settings.replace(
        teacher=Stage("cnn", 1, batch_size=64),
        students=(Stage("cnn", 1, batch_size=64),),
        normal_teacher=given_teachers["normal"],
        nasty_teacher=given_teachers["nasty"],
        student_seeds=(0,),
        figures=False,
        verbose=0,
        matrix_stealers=("kd",),
    )
    report = teacher_student.run("digits_demo", tiny, str(tmp_path))
    # The baselines once, kd once per defence (the reference's KD student is the plain kd's).
    assert sorted(calls) == sorted(["label_smoothing"] * 2 + ["kd"] * 4)
    matrix = report["matrix"]
    assert matrix["stealers"] == ["kd"] and list(matrix["defences"]) == list(DEFENCES)
    assert matrix["settings"]["epochs"] == 1 and matrix["settings"]["batch_size"] == 64
    assert matrix["defences"]["plain"]["teacher"]["accuracy"] == pytest.approx(
        report["teachers"]["normal"]["accuracy"]
    )
    assert matrix["defences"]["nasty"]["teacher"]["cost"] == pytest.approx(
        report["teachers"]["nasty"]["delta"]
    )
    for directory in SUBDIRS:
        assert (tmp_path / "matrix" / directory / "scorecard.json").is_file()
    written = json.loads((tmp_path / "report.json").read_text())
    assert written["matrix"] == json.loads(json.dumps(matrix))
    assert written["settings"]["matrix_stealers"] == ["kd"]
    text = (tmp_path / "report.md").read_text()
    assert "Defences x stealers" in text and "| | plain | nasty | stingy | nasty+stingy |" in text
    assert "| teacher (cost) |" in text and "| kd |" in text
    assert ", augmented, means over seeds" in text  # the protocol's augmentation


def test_a_protocol_without_the_option_runs_no_matrix():
    settings = protocols.get_protocol("digits_demo").default_settings()
    assert settings.matrix_stealers == ()
    assert teacher_student.matrix_config(settings, {"normal": "n", "nasty": "m"}, "out") is None


def test_the_matrix_students_take_the_protocols_augmentation():
    settings = protocols.get_protocol("digits_demo").default_settings()
    settings = settings.replace(matrix_stealers=("kd",))
    files = {"normal": "n", "nasty": "m"}
    assert settings.augment is True
    assert teacher_student.matrix_config(settings, files, "out").augment is True
    plain = settings.replace(augment=False)
    assert teacher_student.matrix_config(plain, files, "out").augment is False


def test_the_matrix_epochs_are_the_first_students_unless_set():
    settings = protocols.get_protocol("digits_demo").default_settings()
    settings = settings.replace(matrix_stealers=("kd", "skeptical"), matrix_search_skeptical=True)
    files = {"normal": "n", "nasty": "m"}
    first = teacher_student.resolved_students(settings)[0].epochs
    config = teacher_student.matrix_config(settings, files, "out")
    assert config.epochs == first
    assert config.stealer_search == {"skeptical": skeptical_search(first)}
    longer = teacher_student.matrix_config(settings.replace(matrix_epochs=2 * first), files, "o")
    assert longer.epochs == 2 * first != first
    # The searched kd_delay is a share of the matrix's own schedule.
    assert longer.stealer_search == {"skeptical": skeptical_search(2 * first)}
    assert longer.stealer_search != config.stealer_search
    halved = teacher_student.scale_epochs(settings.replace(matrix_epochs=40), 0.5)
    assert halved.matrix_epochs == 20
    assert teacher_student.scale_epochs(settings, 0.5).matrix_epochs is None
    with pytest.raises(InputError, match=r"^matrix_epochs must be an integer >= 1"):
        teacher_student.matrix_config(settings.replace(matrix_epochs=0), files, "out")


def test_cifar10_cpus_matrix_students_train_longer_than_its_own():
    """Its augmented matrix students did not converge in the protocol's 20 epochs (issue 20)."""
    settings = protocols.get_protocol("cifar10_cpu").default_settings()
    config = teacher_student.matrix_config(
        settings.replace(matrix_stealers=("served",)), {"normal": "n", "nasty": "m"}, "out"
    )
    assert config.epochs == settings.matrix_epochs == 160
    # Its teachers trained on its 30% subset: the matrix validates on images outside it.
    assert config.validation_split == "unseen"
    assert teacher_student.resolved_students(settings)[0].epochs == 20


def test_the_binary_passes_matrix_epochs_to_the_settings():
    from absl import flags as absl_flags

    protocol = protocols.get_protocol("digits_demo")
    with binary_flags("reproduce") as reproduce:
        try:
            absl_flags.FLAGS(
                [
                    "reproduce",
                    "--matrix_stealers=kd",
                    "--matrix_epochs=48",
                    "--matrix_validation_split=unseen",
                ]
            )
            settings = reproduce.settings_from_flags(protocol)
            assert settings.matrix_epochs == 48
            assert settings.matrix_validation_split == "unseen"
        finally:
            absl_flags.FLAGS.unparse_flags()


def test_the_matrix_draws_an_unseen_validation_split_only_from_a_subset():
    settings = protocols.get_protocol("cifar10_cpu").default_settings()
    files = {"normal": "n", "nasty": "m"}
    served = settings.replace(matrix_stealers=("served",), matrix_validation_split="carved")
    assert teacher_student.matrix_config(served, files, "out").validation_split == "carved"
    unseen = served.replace(matrix_validation_split="unseen")
    config = teacher_student.matrix_config(unseen, files, "out")
    assert config.validation_split == "unseen"
    assert config.train_fraction == settings.train_fraction < 1
    # Each defence's audit gets it.
    assert {c.validation_split for c in defence_configs(config).values()} == {"unseen"}
    with pytest.raises(
        InputError, match=r"^matrix_validation_split='unseen' needs `train_fraction`"
    ):
        teacher_student.matrix_config(unseen.replace(train_fraction=1.0), files, "out")
    # The teachers' subset is drawn with the protocol's seed, the audits' with their first.
    assert teacher_student.matrix_config(unseen.replace(student_seeds=(0, 2)), files, "o")
    with pytest.raises(InputError, match=r"must be the protocol's seed \(0\).*student_seeds=1,2"):
        teacher_student.matrix_config(unseen.replace(student_seeds=(1, 2)), files, "out")


def test_a_matrix_of_no_stealers_is_refused_before_anything_runs(tmp_path):
    config = MatrixConfig(
        normal="never_read.keras", nasty="never_read.keras", output_dir=str(tmp_path / "m")
    )
    with pytest.raises(InputError, match=r"^stealers must name at least one stealer for a matrix"):
        check_matrix_config(dataclasses.replace(config, stealers=()))
    assert not os.path.exists(tmp_path / "m")


def test_the_binary_refuses_a_bad_matrix_in_one_line(tmp_path):
    unknown, schedule, no_matrix, epochs, no_matrix_split = run_tool_cases(
        "reproduce",
        [
            ["--matrix_stealers=kd,x", f"--output_dir={tmp_path / 'run'}"],
            [
                "--protocol=table2_cifar100",
                "--matrix_stealers=served",
                f"--output_dir={tmp_path / 'run'}",
            ],
            ["--matrix_epochs=48", f"--output_dir={tmp_path / 'run'}"],
            ["--matrix_stealers=kd", "--matrix_epochs=0", f"--output_dir={tmp_path / 'run'}"],
            ["--matrix_validation_split=unseen", f"--output_dir={tmp_path / 'run'}"],
        ],
    )
    assert_one_line_error(
        unknown, "--matrix_stealers must be distinct names from", "--matrix_stealers=kd,x"
    )
    assert_one_line_error(
        no_matrix, "--matrix_epochs is the matrix students' schedule, but no matrix runs"
    )
    assert_one_line_error(epochs, "--matrix_epochs must be an integer >= 1", "--matrix_epochs=0")
    assert_one_line_error(
        no_matrix_split, "--matrix_validation_split is the matrix's validation split, but no"
    )
    assert_one_line_error(
        schedule, "--matrix_stealers: the matrix's students train as the audit does", "multistep"
    )
    assert not os.path.exists(tmp_path / "run")


def test_the_matrix_passes_every_shared_audit_field_with_the_audits_default():
    """MatrixConfig repeats AuditConfig's shared fields: one added to AuditConfig without its
    twin here, or a default that drifts, fails."""
    audit_fields = {f.name: f for f in dataclasses.fields(AuditConfig)}
    matrix_fields = {f.name: f for f in dataclasses.fields(MatrixConfig)}
    set_per_defence = {"model", "saved_model", "release", "reference"}
    assert set(audit_fields) - set(matrix_fields) == set_per_defence
    assert set(matrix_fields) - set(audit_fields) == {"normal", "nasty", "overwrite"}
    for name in set(matrix_fields) & set(audit_fields):
        assert matrix_fields[name].default == audit_fields[name].default, name
