"""README.md and docs/: numbers that cannot go stale, a README a newcomer can read, links that lead
somewhere, and a library example that runs.

The tables and inline numbers between markers are rendered from committed `report.json` files by
`docs/generate_tables.py`; this test fails when a page differs from what its report renders.
"""

import dataclasses
import importlib.util
import json
import pathlib
import re

import numpy as np
import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
pytestmark = pytest.mark.single_pass

RUN_COMMAND = (
    "python3 -m venv .venv && . .venv/bin/activate && pip install -r requirements.txt "
    "&& python -m tools.reproduce"
)
TEST_COMMAND = (
    "python3 -m venv .venv && . .venv/bin/activate && pip install -r requirements-test.txt "
    "&& bash tests/run_all.sh"
)


def _generator():
    spec = importlib.util.spec_from_file_location(
        "generate_tables", ROOT / "docs" / "generate_tables.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_generated_tables_match_their_reports():
    stale = _generator().stale_files()
    assert stale == [], f"stale generated tables in {stale}: run python docs/generate_tables.py"


def test_readme_shows_a_generated_table_and_cites_only_existing_reports():
    generator = _generator()
    assert generator.blocks(README), "the README shows no generated results table"
    for page in generator.target_files():
        for report, _ in generator.blocks(page) + generator.values(page):
            assert (ROOT / report).is_file(), f"{page} cites {report}, which does not exist"


# What a report's settings record about where and how loudly it ran and what it cost, not
# what it measured.
RUN_SPECIFIC_SETTINGS = {
    "data_dir",
    "data_cache_dir",
    "verbose",
    "figures",
    "evaluate_every",
    "backup_every",
}


def _inert_settings(settings):
    """Settings that could not change the run: the data-free attacks' options when no data-free
    attack ran (neither `datafree` nor a data-free stealer of the matrix), the matrix's
    schedule and validation split when no matrix ran."""
    from nasty_tf.audit import DATA_FREE_STEALERS
    from nasty_tf.audit.matrix import matrix_stealer_names

    matrix = settings.get("matrix_stealers")
    stealers = matrix_stealer_names(matrix) if matrix else ()
    inert = set() if matrix else {"matrix_epochs", "matrix_validation_split"}
    if settings.get("datafree") or any(name in DATA_FREE_STEALERS for name in stealers):
        return inert
    return inert | {"datafree_options"}


def test_the_readme_table_is_a_run_of_its_protocols_defaults():
    """The README presents its table as what `--protocol=<name>` does: the report it cites must be
    a run of that protocol's current default settings, so a changed default needs a new run."""
    from nasty_tf import protocols

    generator = _generator()
    for report_path, _ in generator.blocks(README):
        report = json.loads((ROOT / report_path).read_text())
        defaults = dataclasses.asdict(protocols.get_protocol(report["protocol"]).default_settings())
        defaults = json.loads(json.dumps(defaults))  # tuples as the report's lists
        ignored = RUN_SPECIFIC_SETTINGS | _inert_settings(report["settings"])
        ran, default = (
            {key: value for key, value in settings.items() if key not in ignored}
            for settings in (report["settings"], defaults)
        )
        assert ran == default, f"{report_path} is not a run of {report['protocol']}'s defaults"


def test_a_changed_report_makes_its_table_stale(tmp_path):
    generator = _generator()
    (tmp_path / "docs" / "run").mkdir(parents=True)
    report = json.loads((ROOT / "docs" / "cifar10_cpu" / "report.json").read_text())
    (tmp_path / "docs" / "run" / "report.json").write_text(json.dumps(report))
    page = tmp_path / "README.md"
    page.write_text(
        "<!-- table: docs/run/report.json teacher_student -->\n<!-- /table -->\n"
        "epochs: <!-- value: docs/run/report.json settings.students.0.epochs -->?<!-- /value -->\n"
    )
    assert generator.stale_files(tmp_path) == ["README.md"]
    page.write_text(generator.render_file(page, tmp_path))
    assert generator.stale_files(tmp_path) == []
    assert (
        f"epochs: <!-- value: docs/run/report.json settings.students.0.epochs -->{report['settings']['students'][0]['epochs']}<"
        in page.read_text()
    )

    report["teachers"]["nasty"]["accuracy"] += 1.0
    (tmp_path / "docs" / "run" / "report.json").write_text(json.dumps(report))
    assert generator.stale_files(tmp_path) == ["README.md"]


def test_readme_is_short_and_opens_with_the_two_commands():
    lines = README.read_text().splitlines()
    assert len(lines) <= 200, f"README.md has {len(lines)} lines; at most 200"
    opening = "\n".join(lines[:25])
    assert RUN_COMMAND in opening
    assert TEST_COMMAND in opening


def _anchor(heading):
    """GitHub's anchor for a markdown heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def test_links_between_pages_resolve():
    pages = [README, *sorted((ROOT / "docs").glob("*.md")), ROOT / "benchmarks" / "RESULTS.md"]
    for page in pages:
        text = re.sub(r"```.*?```", "", page.read_text(), flags=re.DOTALL)
        for target in re.findall(r"\]\(([^)\s]+)\)", text):
            if re.match(r"^[a-z]+:", target):
                continue
            path, _, anchor = target.partition("#")
            destination = (page.parent / path).resolve() if path else page
            assert destination.exists(), f"{page.name}: broken link {target}"
            if anchor and destination.suffix == ".md":
                headings = re.findall(r"^#+ (.+)$", destination.read_text(), flags=re.MULTILINE)
                assert anchor in {_anchor(h) for h in headings}, (
                    f"{page.name}: no heading for {target}"
                )


def test_readme_library_example_runs(tmp_path, monkeypatch):
    """The README's example, on 16 random images and one epoch per fit."""
    import keras

    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.DOTALL)
    examples = [block for block in blocks if "NastyTeacher" in block]
    assert len(examples) == 1
    code = re.sub(r"epochs=\d+", "epochs=1", examples[0])
    monkeypatch.chdir(tmp_path)
    rng = np.random.default_rng(0)
    namespace = {
        "x_train": rng.integers(0, 256, size=(16, 32, 32, 3), dtype=np.uint8),
        "y_train": rng.integers(0, 10, size=16),
    }
    exec(compile(code, "README.md", "exec"), namespace)

    released = keras.saving.load_model(tmp_path / "nasty.keras")
    network = namespace["teacher"].network
    assert len(released.weights) == len(network.weights)  # the network alone, no adversary
    np.testing.assert_allclose(
        released.predict(namespace["x_train"][:4], verbose=0),
        network.predict(namespace["x_train"][:4], verbose=0),
        rtol=1e-5,
        atol=1e-5,
    )


def _matrix(protected_kd):
    """A matrix dict as `nasty_tf.audit.audit_matrix` writes it, with made-up numbers."""
    defences = {}
    for name, teacher in (
        ("plain", 90.0),
        ("nasty", 88.5),
        ("stingy", 90.0),
        ("nasty+stingy", 88.5),
    ):
        kd = 80.0 if protected_kd and name != "plain" else 86.0
        defences[name] = {
            "teacher": {"accuracy": teacher, "cost": teacher - 90.0},
            "baselines": {"scratch": 84.0, "label_smoothing": 85.0},
            "reference": {"kd_accuracy": 86.0},
            "stealers": [
                {
                    "name": "kd",
                    "kind": "served",
                    "accuracy": kd,
                    "vs_label_smoothing": kd - 85.0,
                    "protected": kd <= 85.0,
                }
            ],
        }
    return {
        "defences": defences,
        "order": list(defences),
        "stealers": ["kd"],
        "settings": {
            "arch": "cnn",
            "dataset": "digits",
            "train_fraction": 1.0,
            "epochs": 24,
            "optimizer": "adam",
            "learning_rate": 0.001,
            "batch_size": 128,
            "seeds": [0, 1],
            "validation_fraction": 0.1,
            "top_k_ratio": None,
        },
        "date": "2026-12-03T00:00:00+00:00",
        "machine": "a CPU, 2 CPUs",
        "backend": "tensorflow",
        "command": "python -m tools.reproduce --matrix_stealers=kd",
    }


def test_a_matrix_renders_from_a_report_or_from_its_own_json(tmp_path):
    generator = _generator()
    (tmp_path / "docs" / "run").mkdir(parents=True)
    report = json.loads((ROOT / "docs" / "cifar10_cpu" / "report.json").read_text())
    report["matrix"] = _matrix(protected_kd=True)
    (tmp_path / "docs" / "run" / "report.json").write_text(json.dumps(report))
    (tmp_path / "docs" / "run" / "matrix.json").write_text(json.dumps(_matrix(True)))
    page = tmp_path / "README.md"
    page.write_text(
        "<!-- table: docs/run/report.json matrix -->\n<!-- /table -->\n\n"
        "<!-- table: docs/run/matrix.json matrix -->\n<!-- /table -->\n"
    )
    page.write_text(generator.render_file(page, tmp_path))
    text = page.read_text()
    assert generator.stale_files(tmp_path) == []
    assert text.count("| | plain | nasty | stingy | nasty+stingy |") == 2
    assert (
        "| teacher (cost) | 90.00 (+0.00) | 88.50 (-1.50) | 90.00 (+0.00) | 88.50 (-1.50) |" in text
    )
    assert (
        "| kd | 86.00 (+1.00) **✗** | 80.00 (-5.00) ✓ | 80.00 (-5.00) ✓ | 80.00 (-5.00) ✓ |" in text
    )
    assert "matrix students: cnn, 24 epochs (adam, lr 0.001, constant), seeds 0, 1" in text
    assert "protocol `cifar10_cpu`" in text  # the report's provenance, and the matrix's own
    assert text.count("protocol `") == 1  # a matrix.json of `tools.audit --matrix` has none
    assert "command: `python -m tools.reproduce --matrix_stealers=kd`" in text

    report["matrix"] = _matrix(protected_kd=False)
    (tmp_path / "docs" / "run" / "report.json").write_text(json.dumps(report))
    assert generator.stale_files(tmp_path) == ["README.md"]
    del report["matrix"]
    (tmp_path / "docs" / "run" / "report.json").write_text(json.dumps(report))
    with pytest.raises(ValueError, match="has no matrix results"):
        generator.render_file(page, tmp_path)


def test_a_doubling_check_renders_from_an_audits_scorecard(tmp_path):
    from nasty_tf.audit.schedule import doubling_check

    generator = _generator()
    (tmp_path / "docs" / "audit").mkdir(parents=True)
    ramp = [70.0 + epoch / 10 for epoch in range(20)]  # 71.8 and 71.9 at epochs 19 and 20
    scorecard = {
        "doubling_check": doubling_check({"scratch": [ramp], "label_smoothing": [ramp]}, 20),
        "config": {
            "dataset": "digits",
            "train_fraction": 1.0,
            "epochs": 20,
            "optimizer": "adam",
            "learning_rate": 0.001,
            "seeds": [0],
        },
        "settings": {"arch": "cnn", "teacher": {"kind": "keras", "release": "plain"}},
        "machine": "test machine",
        "date": "2026-12-05",
        "backend": "tensorflow",
        "command": "python -m tools.audit --epochs=20",
    }
    path = tmp_path / "docs" / "audit" / "scorecard.json"
    path.write_text(json.dumps(scorecard))
    page = tmp_path / "README.md"
    page.write_text("<!-- table: docs/audit/scorecard.json doubling_check -->\n<!-- /table -->\n")
    page.write_text(generator.render_file(page, tmp_path))
    text = page.read_text()
    assert generator.stale_files(tmp_path) == []
    assert "| scratch | 70.90 | 71.85 | +0.95 | | | |" in text
    assert "10 epochs is **not** enough here" in text
    assert "scorecard.json): dataset `digits`; machine: test machine;" in text
    assert "; train fraction 1; students: cnn, 20 epochs (adam" in text
    assert "command: `python -m tools.audit --epochs=20`" in text

    scorecard["doubling_check"] = None  # an audit of odd epochs, or without curves
    path.write_text(json.dumps(scorecard))
    with pytest.raises(ValueError, match="has no doubling_check results"):
        generator.render_file(page, tmp_path)
