"""`tools.reproduce` runs under KERAS_BACKEND=jax on a host where TensorFlow cannot be imported."""

import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
pytestmark = [pytest.mark.single_pass, pytest.mark.slow]


def test_reproduce_runs_under_jax_without_tensorflow(tmp_path):
    pytest.importorskip("jax")
    result = subprocess.run(
        [
            sys.executable,
            os.path.join(ROOT, "tests", "without_tensorflow.py"),
            "tools.reproduce",
            "--train_fraction=0.15",
            "--epochs=1",
            "--student_epochs=1",
            "--student_seeds=0",
            "--verbose=0",
            "--nofigures",  # matplotlib and scikit-learn, no backend: tests/test_figures.py
            f"--output_dir={tmp_path}",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "KERAS_BACKEND": "jax"},
        timeout=900,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.load(open(tmp_path / "report.json"))
    assert report["backend"] == "jax"
    assert len(report["students"]) == 3
    assert "KD from nasty" in result.stdout


def test_the_blocker_really_blocks_tensorflow():
    blocker = os.path.join(ROOT, "tests", "without_tensorflow.py")
    probe = subprocess.run([sys.executable, blocker, "tensorflow"], capture_output=True, text=True)
    # TensorFlow is installed where the tests run, so only the blocker can make this fail.
    assert probe.returncode != 0 and "No module named tensorflow" in probe.stderr


def test_the_blocker_answers_find_spec_as_for_absent_packages(tmp_path):
    # JAX's compilation cache (through etils) asks find_spec whether TensorFlow is installed.
    (tmp_path / "probe.py").write_text(
        "import importlib.util\n"
        "print([importlib.util.find_spec(m) is None for m in"
        " ('tensorflow', 'tensorflow_datasets', 'keras_tuner', 'numpy')])\n"
    )
    blocker = os.path.join(ROOT, "tests", "without_tensorflow.py")
    probe = subprocess.run(
        [sys.executable, blocker, "probe"], cwd=tmp_path, capture_output=True, text=True
    )
    assert probe.returncode == 0, probe.stderr
    assert probe.stdout.strip() == "[True, True, True, False]"
