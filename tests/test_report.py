"""The report averages seeds, computes deltas from the runs' numbers, and is written atomically."""

import json
import os

import pytest

from nasty_tf import report as report_lib

pytestmark = pytest.mark.single_pass


def _report():
    runs = [
        report_lib.student_row("cnn", "none", 0, {"accuracy": 90.0}),
        report_lib.student_row("cnn", "none", 1, {"accuracy": 92.0}),
        report_lib.student_row("cnn", "normal", 0, {"accuracy": 93.0}),
        report_lib.student_row("cnn", "normal", 1, {"accuracy": 95.0}),
        report_lib.student_row("cnn", "nasty", 0, {"accuracy": 80.0}),
        report_lib.student_row("cnn", "nasty", 1, {"accuracy": 84.0}),
    ]
    normal = {"arch": "cnn", "accuracy": 99.0}
    nasty = {"arch": "cnn", "accuracy": 98.5, "adversarial_kl": 4.25}
    return report_lib.build_report("demo", {"student_seeds": (0, 1)}, normal, nasty, runs, 12.0)


def test_students_are_averaged_over_seeds_with_deltas_to_scratch():
    report = _report()
    rows = {row["teacher"]: row for row in report["students"]}
    assert rows["none"]["accuracy"] == 91.0 and rows["none"]["std"] == 1.0
    assert rows["normal"]["delta_vs_scratch"] == 3.0
    assert rows["nasty"]["delta_vs_scratch"] == -9.0
    assert report["teachers"]["nasty"]["delta"] == -0.5
    assert len(report["student_runs"]) == 6


def test_table_has_the_paper_shape_and_the_stealers_change():
    table = report_lib.format_table(_report())
    assert "| cnn | 99.00 | 98.50 (-0.50) | 4.250 |" in table
    assert "| cnn | 91.00 ± 1.00 | 94.00 ± 1.00 (+3.00) | 82.00 ± 2.00 (-9.00) |" in table
    assert "KD from nasty vs KD from normal (cnn): -12.00 points" in table


def test_write_report_leaves_no_temporary_files(tmp_path, capsys):
    report_lib.write_report(_report(), str(tmp_path))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.json", "report.md"]
    assert json.load(open(tmp_path / "report.json"))["teachers"]["normal"]["accuracy"] == 99.0
    umask = os.umask(0)
    os.umask(umask)
    assert (tmp_path / "report.md").stat().st_mode & 0o777 == 0o666 & ~umask  # not mkstemp's 0600
    assert "KD from nasty" in capsys.readouterr().out


def test_report_records_the_command_in_the_form_a_user_retypes():
    from nasty_tf.report import invoking_command

    assert (
        invoking_command(["/x/tools/reproduce.py", "--protocol=cifar10_cpu", "--data_dir=a b"])
        == "python -m tools.reproduce --protocol=cifar10_cpu '--data_dir=a b'"
    )
    assert (
        invoking_command(["/venv/bin/nasty-tf-reproduce", "--seed=1"])
        == "nasty-tf-reproduce --seed=1"
    )
