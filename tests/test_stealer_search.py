"""A stealer's held-out parameter search in the audit (issue 20: skeptical's `loc` and
`kd_delay` "choose them on validation"): every combination trains once, the highest validation
accuracy is chosen, and the test split never moves the choice.

The tiny settings of tests/test_audit.py (tests/tiny_audit.py: its digits slice and teacher):
students of one epoch, a 2-value grid over skeptical's `kd_delay` (-1: KD every epoch; 0: the
one epoch on labels alone, so the two students differ).
"""

import dataclasses
import json
import os

import numpy as np
import pytest

import nasty_tf.data
from binaries import assert_one_line_error, run_tool_cases
from nasty_tf import protocols
from nasty_tf.audit import (
    SKEPTICAL_SEARCH,
    AuditConfig,
    MatrixConfig,
    audit,
    defence_configs,
    skeptical_search,
)
from nasty_tf.audit import runs as audit_runs
from nasty_tf.errors import InputError
from nasty_tf.protocols import teacher_student
from nasty_tf.training import load_network, predict_logits
from tiny_audit import (  # noqa: F401 (fixtures: `tiny_digits` is autouse)
    TRAINS,
    load_tiny_digits,
    networks,
    rerun_without_training,
    tiny_config,
    tiny_digits,
)

pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")

GRID = {"skeptical": {"kd_delay": [-1, 0]}}
RUNS = ("skeptical-kd_delay=-1", "skeptical-kd_delay=0")


def _search_config(output_dir, teacher, search=GRID):
    """The tiny audit of tests/test_audit.py, attacking with skeptical only, searched."""
    return dataclasses.replace(
        tiny_config(output_dir, model=teacher), stealers=("skeptical",), stealer_search=search
    )


@pytest.fixture(scope="module")
def searched(networks, tmp_path_factory):
    directory = tmp_path_factory.mktemp("search")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(nasty_tf.data, "load_dataset", load_tiny_digits)
        config = _search_config(directory, networks["teacher"])
        return config, audit(config)


def _result(config, run):
    with open(os.path.join(config.output_dir, "runs", f"{run}_seed0", "result.json")) as f:
        return json.load(f)


def test_the_default_skeptical_grid_is_resolved_against_the_epochs():
    assert SKEPTICAL_SEARCH == {"loc": (1, 2), "kd_delay": (0.0, 0.25)}
    # kd_delay = round(share * epochs) - 1: KD from the first epoch, or after a quarter.
    assert skeptical_search(24) == {"loc": [1, 2], "kd_delay": [-1, 5]}
    assert skeptical_search(200) == {"loc": [1, 2], "kd_delay": [-1, 49]}
    assert skeptical_search(1) == {"loc": [1, 2], "kd_delay": [-1]}  # the quarter is no epoch
    with pytest.raises(InputError, match=r"^epochs must be an integer >= 1. Received: epochs=0$"):
        skeptical_search(0)


@TRAINS
def test_every_combination_trains_once_and_the_best_on_validation_is_the_row(searched):
    config, scorecard = searched
    (row,) = scorecard["stealers"]
    record = row["search"]
    assert record["split"] == "validation"
    assert [r["params"] for r in record["rows"]] == [{"kd_delay": -1}, {"kd_delay": 0}]
    assert [r["run"] for r in record["rows"]] == list(RUNS)
    results = [_result(config, run) for run in RUNS]
    for candidate, result in zip(record["rows"], results):
        assert result["config"]["stealer"]["kd_delay"] == candidate["params"]["kd_delay"]
        assert result["config"]["stealer"]["loc"] == 1  # the rest at the registry's defaults
        assert candidate["validation_accuracy"] == result["validation_accuracy"]
        assert candidate["accuracy"] == result["accuracy"]
    validation = [r["validation_accuracy"] for r in results]
    best = validation.index(max(validation))  # the first on a tie
    assert record["chosen"] == record["rows"][best]["params"]
    assert row["accuracy"] == results[best]["accuracy"] and row["accuracies"] == [row["accuracy"]]
    smoothing = scorecard["baselines"]["label_smoothing"]
    assert row["protected"] is (row["accuracy"] <= smoothing)
    # Only the grid's runs: no student at the registry's default kd_delay.
    names = sorted(run["name"] for run in scorecard["runs"])
    assert names == sorted(["scratch", "label_smoothing", *RUNS])
    assert not os.path.exists(os.path.join(config.output_dir, "runs", "skeptical_seed0"))
    assert scorecard["settings"]["selection"].startswith("validation: skeptical chosen")
    with open(os.path.join(config.output_dir, "scorecard.json")) as f:
        assert json.load(f)["stealers"][0]["search"] == json.loads(json.dumps(record))
    with open(os.path.join(config.output_dir, "scorecard.md")) as f:
        table = f.read()
    assert "**skeptical**: kd_delay chosen on the validation split" in table
    assert "| kd_delay | validation accuracy (%) | test accuracy (%) | chosen |" in table
    chosen_line = f"| {record['chosen']['kd_delay']} | {validation[best]:.2f} |"
    assert any(line.startswith(chosen_line) and "**yes**" in line for line in table.splitlines())
    assert table.index("| stealer |") < table.index("| kd_delay |")  # below the main table


@TRAINS
def test_a_rerun_trains_nothing(searched, monkeypatch):
    config, scorecard = searched
    again = rerun_without_training(config, monkeypatch)
    assert again["stealers"] == scorecard["stealers"]


@TRAINS
def test_the_choice_never_reads_the_test_split(searched, tmp_path, monkeypatch):
    """The same search with test labels the chosen student always gets wrong chooses the same
    combination on the same validation accuracies; only the reported test accuracies move."""
    config, scorecard = searched
    record = scorecard["stealers"][0]["search"]
    chosen_run = next(r["run"] for r in record["rows"] if r["params"] == record["chosen"])
    data = load_tiny_digits("digits")
    model = os.path.join(config.output_dir, "runs", f"{chosen_run}_seed0", "model.keras")
    wrong = (np.argmax(predict_logits(load_network(model, "model"), data.x_test), -1) + 1) % 10

    def scrambled_test(name, **kwargs):
        return dataclasses.replace(load_tiny_digits(name, **kwargs), y_test=wrong.astype(np.int32))

    monkeypatch.setattr(nasty_tf.data, "load_dataset", scrambled_test)
    again = audit(dataclasses.replace(config, output_dir=str(tmp_path / "scrambled")))
    moved = again["stealers"][0]["search"]
    assert moved["chosen"] == record["chosen"]
    assert [r["validation_accuracy"] for r in moved["rows"]] == [
        r["validation_accuracy"] for r in record["rows"]
    ]
    assert again["stealers"][0]["accuracy"] == 0.0 != scorecard["stealers"][0]["accuracy"]


def test_bad_searches_are_refused_by_name(tmp_path):
    model = str(tmp_path / "release.keras")  # never read: a bad search is refused first
    for search, message in (
        ({"x": {"loc": [1]}}, r"^stealer_search: unknown stealer 'x': only the stealers that run"),
        ({"kd": {"alpha": [0.5]}}, r"^stealer_search: unknown stealer 'kd'.*\(skeptical\)"),
        ([("skeptical", {})], r"^stealer_search must be a non-empty dict"),
        ({"skeptical": {}}, r"^stealer_search\['skeptical'\]: must be a non-empty dict"),
        (
            {"skeptical": {"lock": [1]}},
            r"^stealer_search\['skeptical'\]: Unknown parameter\(s\) lock for SkepticalStudent. "
            r"Accepted: alpha, temperature, loc, kd_delay, tap_layers. "
            r"Received: stealer_search\['skeptical'\]=\{'lock': \[1\]\}$",
        ),
        (
            {"skeptical": {"loc": []}},
            r"^stealer_search\['skeptical'\]: 'loc' needs a non-empty list of values",
        ),
        (
            {"skeptical": {"loc": 1}},
            r"^stealer_search\['skeptical'\]: 'loc' needs a non-empty list of values",
        ),
        ({"skeptical": {"loc": [1, 1]}}, r"^stealer_search\['skeptical'\]: 'loc' repeats a value"),
        (
            {"skeptical": {"loc": [1, -1]}},
            r"^stealer_search\['skeptical'\]: loc must be an integer >= 0. Received: loc=-1. "
            r"Received: stealer_search\['skeptical'\]=\{'loc': \[1, -1\]\}$",
        ),
        (
            {"skeptical": {"kd_delay": [0, -2]}},
            r"^stealer_search\['skeptical'\]: kd_delay must be an integer >= -1",
        ),
        (
            {"skeptical": {"alpha": [0.5]}},
            r"^stealer_search\['skeptical'\]: 'alpha' is also fixed in stealer_params",
        ),
    ):
        config = AuditConfig(
            output_dir=str(tmp_path / "bad"),
            model=model,
            stealers=("skeptical",),
            stealer_params={"skeptical": {"alpha": 0.8}},
            stealer_search=search,
        )
        with pytest.raises(InputError, match=message):
            audit(config)
    assert not os.path.exists(tmp_path / "bad")


@pytest.mark.single_pass
def test_a_loc_deeper_than_the_students_is_refused_before_anything_trains(
    networks,
    tmp_path,
    monkeypatch,
):
    def no_training(*args, **kwargs):
        raise AssertionError("a student trained before the search was checked")

    monkeypatch.setattr(audit_runs, "steal", no_training)
    search = {"skeptical": {"loc": [1, 4]}}  # the CNN has 3 intermediate stages
    with pytest.raises(
        InputError,
        match=r"^stealer_search\['skeptical'\]: \{'loc': 4\} is refused for the cnn students: "
        r"loc must be in \[0, 3\]",
    ):
        audit(_search_config(tmp_path / "audit", networks["teacher"], search))
    assert not os.path.exists(tmp_path / "audit" / "runs")


@pytest.mark.single_pass  # trains, on the full digits data (the binary runs in a subprocess)
def test_the_binary_flag_searches_skeptical_on_the_default_grid(
    networks,
    tmp_path,
):
    # 90% held out for validation: each student trains one step of the full digits data.
    tiny = ["--epochs=1", "--validation_fraction=0.9", "--batch_size=256"]
    searched, left_out = run_tool_cases(
        "audit",
        [
            [
                f"--model={networks['teacher']}",
                "--stealers=skeptical",
                "--search_skeptical",
                *tiny,
                f"--output_dir={tmp_path / 'audit'}",
            ],
            [
                f"--model={networks['teacher']}",
                "--stealers=kd,topk",
                "--search_skeptical",
                f"--output_dir={tmp_path / 'refused'}",
            ],
        ],
    )
    assert searched.returncode == 0, searched.stderr[-3000:]
    with open(tmp_path / "audit" / "scorecard.json") as f:
        (row,) = json.load(f)["stealers"]
    # skeptical_search(1): loc 1, 2; kd_delay -1 only (a quarter of one epoch is none).
    assert [r["params"] for r in row["search"]["rows"]] == [
        {"loc": 1, "kd_delay": -1},
        {"loc": 2, "kd_delay": -1},
    ]
    assert "chose {'loc'" in searched.stdout
    assert_one_line_error(
        left_out,
        "--search_skeptical searches the skeptical stealer, which --stealers leaves out",
        "Received: --stealers=kd,topk",
    )
    assert not os.path.exists(tmp_path / "refused")


def test_the_matrix_passes_the_search_to_its_four_audits():
    config = MatrixConfig(normal="n.keras", nasty="m.keras", output_dir="out", stealer_search=GRID)
    assert {c.stealer_search == GRID for c in defence_configs(config).values()} == {True}
    settings = protocols.get_protocol("digits_demo").default_settings()
    files = {"normal": "n.keras", "nasty": "m.keras"}
    both = settings.replace(matrix_stealers=("kd", "skeptical"), matrix_search_skeptical=True)
    matrix = teacher_student.matrix_config(both, files, "out")
    epochs = teacher_student.resolved_students(both)[0].epochs
    assert matrix.stealer_search == {"skeptical": skeptical_search(epochs)}
    unsearched = teacher_student.matrix_config(
        both.replace(matrix_search_skeptical=False), files, "o"
    )
    assert unsearched.stealer_search is None
    with pytest.raises(
        InputError,
        match=r"^matrix_search_skeptical searches the skeptical stealer, which matrix_stealers "
        r"leaves out. Received: matrix_stealers=kd$",
    ):
        teacher_student.matrix_config(both.replace(matrix_stealers=("kd",)), files, "out")
