"""README.md and docs/: numbers that cannot go stale, a README a newcomer can read, links that lead
somewhere, and a library example that runs.

The tables and inline numbers between markers are rendered from committed `report.json` files by
`docs/generate_tables.py`; this test fails when a page differs from what its report renders.
"""

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
