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
    assert probe.returncode != 0 and "blocked: JAX-only host" in probe.stderr
