"""The omega search on keras-tuner's distributed mode: a chief and two workers on localhost
(real `python -m tools.tune` processes) finish one search, every trial run exactly once and the
report written once, by the chief; and the cluster's variables end in clear errors when wrong.

The search is test_tune's tiny one (digits, 15% of the training split, one epoch, two trials),
one trial per worker when both ask at once. TensorFlow only (keras-tuner's gRPC oracle is
backend-independent, and three TensorFlow processes are this file's whole cost).
"""

import collections
import hashlib
import json
import os
import re
import socket
import subprocess
import sys
from concurrent import futures

import grpc
import pytest

from binaries import assert_one_line_error, run_tool
from nasty_tf import search_cluster
from nasty_tf.errors import InputError
from nasty_tf.search_cluster import ClusterRole, cluster_role
from nasty_tf.tuning import tune
from tests.test_tune import TINY_FLAGS, tiny_configs

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
pytestmark = pytest.mark.single_pass
WORKERS = ("tuner0", "tuner1")
TRIAL_LINE = re.compile(r"^worker (\S+) runs trial (\S+) ", re.MULTILINE)
# test_tune's tiny search: two trials, one per worker.


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cluster_env(tuner_id, port):
    env = {k: v for k, v in os.environ.items() if not k.startswith("KERASTUNER_")}
    return {
        **env,
        "PYTHONPATH": ROOT,
        # Three processes share the CPU cores: one thread each avoids oversubscribing them.
        "TF_NUM_INTRAOP_THREADS": "1",
        "TF_NUM_INTEROP_THREADS": "1",
        "KERASTUNER_TUNER_ID": tuner_id,
        "KERASTUNER_ORACLE_IP": "127.0.0.1",
        "KERASTUNER_ORACLE_PORT": str(port),
    }


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """A chief and two workers, started together with the same flags; their outputs."""
    root = tmp_path_factory.mktemp("tune_cluster") / "search"
    port = free_port()
    processes = {
        tuner_id: subprocess.Popen(
            [sys.executable, "-m", "tools.tune", *TINY_FLAGS, f"--output_dir={root}"],
            cwd=ROOT,
            env=cluster_env(tuner_id, port),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for tuner_id in ("chief", *WORKERS)
    }
    outputs = {}
    try:
        for tuner_id, process in processes.items():
            stdout, stderr = process.communicate(timeout=600)
            outputs[tuner_id] = subprocess.CompletedProcess(
                process.args, process.returncode, stdout, stderr
            )
    finally:
        for process in processes.values():
            if process.poll() is None:
                process.kill()
                process.wait()
    for tuner_id, result in outputs.items():
        assert result.returncode == 0, f"{tuner_id}:\n{result.stdout}\n{result.stderr[-3000:]}"
    return root, outputs


@pytest.mark.slow  # the cluster: 35-65 s on 2 cores
def test_every_trial_ran_exactly_once_on_one_worker(cluster):
    root, outputs = cluster
    report = json.load(open(root / "tune_report.json"))
    trial_ids = sorted(row["trial_id"] for row in report["trials"])
    assert trial_ids == ["0", "1"]
    # The workers' logs together name each trial once; the chief ran none.
    ran = [
        trial_id
        for tuner_id in WORKERS
        for worker, trial_id in TRIAL_LINE.findall(outputs[tuner_id].stdout)
        if worker == tuner_id
    ]
    assert collections.Counter(ran) == {trial_id: 1 for trial_id in trial_ids}
    assert not TRIAL_LINE.search(outputs["chief"].stdout)
    for tuner_id in WORKERS:
        mine = [t for w, t in TRIAL_LINE.findall(outputs[tuner_id].stdout) if w == tuner_id]
        assert f"worker {tuner_id} done: ran trials {', '.join(mine) or 'none'}" in (
            outputs[tuner_id].stdout
        )
    # One finished run per network and trial, trained with the oracle's values for that trial.
    for trial_id in trial_ids:
        oracle_trial = json.load(open(root / "keras_tuner" / f"trial_{trial_id}" / "trial.json"))
        assert oracle_trial["status"] == "COMPLETED"
        nasty = json.load(open(root / "trials" / trial_id / "nasty" / "metrics.json"))
        assert nasty["config"]["omega"] == oracle_trial["hyperparameters"]["values"]["omega"]
        assert (root / "trials" / trial_id / "student" / "metrics.json").exists()
        assert (root / "trials" / trial_id / "validation.json").exists()
    assert sorted(os.listdir(root / "trials")) == trial_ids
    # The oracle's saved state holds no running trial: a rerun would not run one again.
    assert json.load(open(root / "keras_tuner" / "oracle.json"))["ongoing_trials"] == {}


@pytest.mark.slow  # the cluster: 35-65 s on 2 cores
def test_the_shared_normal_teacher_was_trained_once_by_the_chief(cluster):
    root, outputs = cluster
    normal = root / "normal" / "model.keras"
    assert (root / "normal" / "metrics.json").exists()
    digest = hashlib.sha256(normal.read_bytes()).hexdigest()
    for trial_id in os.listdir(root / "trials"):
        nasty = json.load(open(root / "trials" / trial_id / "nasty" / "metrics.json"))
        assert nasty["config"]["adversary"] == str(normal)
        assert nasty["config"]["adversary_sha256"] == digest
    # The trials started after the normal teacher had finished (the chief serves only then).
    finished = (root / "normal" / "metrics.json").stat().st_mtime_ns
    for trial_id in os.listdir(root / "trials"):
        assert (root / "trials" / trial_id / "nasty" / "config.json").stat().st_mtime_ns >= (
            finished
        )
    for tuner_id in WORKERS:
        assert f"worker {tuner_id}: waiting for the chief's oracle" in outputs[tuner_id].stdout


@pytest.mark.slow  # the cluster: 35-65 s on 2 cores
def test_the_report_was_written_once_by_the_chief_after_every_trial(cluster):
    root, outputs = cluster
    report = json.load(open(root / "tune_report.json"))
    table = (root / "tune_report.md").read_text()
    assert report["selection_split"] == "validation"
    assert len(report["trials"]) == 2 and report["best"] is not None
    for row in report["trials"]:
        student = json.load(open(root / "trials" / row["trial_id"] / "student" / "metrics.json"))
        assert row["student_accuracy"] == student["accuracy"]
        assert f"| {row['trial_id']} | {row['omega']:.4g} |" in table
    chief = outputs["chief"].stdout
    assert "chief: serving the oracle at 127.0.0.1:" in chief
    assert "| best | trial | omega |" in chief and "tune_report.md" in chief
    for tuner_id in WORKERS:
        assert "tune_report" not in outputs[tuner_id].stdout
        assert "| best |" not in outputs[tuner_id].stdout
    # Written after the last trial had finished.
    written = (root / "tune_report.json").stat().st_mtime_ns
    for row in report["trials"]:
        path = root / "trials" / row["trial_id"] / "validation.json"
        assert path.stat().st_mtime_ns <= written


@pytest.mark.parametrize(
    "environ, expected",
    [
        ({}, None),
        (
            {
                "KERASTUNER_TUNER_ID": "chief",
                "KERASTUNER_ORACLE_IP": "10.0.0.1",
                "KERASTUNER_ORACLE_PORT": "8000",
            },
            ClusterRole("chief", "10.0.0.1", 8000),
        ),
        (
            {
                "KERASTUNER_TUNER_ID": "tuner3",
                "KERASTUNER_ORACLE_IP": "host",
                "KERASTUNER_ORACLE_PORT": "65535",
            },
            ClusterRole("tuner3", "host", 65535),
        ),
    ],
)
def test_the_role_comes_from_keras_tuners_variables(environ, expected):
    assert cluster_role(environ) == expected
    if expected is not None:
        assert expected.is_chief == (expected.tuner_id == "chief")


@pytest.mark.parametrize(
    "environ, fragment",
    [
        (
            {"KERASTUNER_TUNER_ID": "tuner0"},
            "needs KERASTUNER_TUNER_ID, KERASTUNER_ORACLE_IP and KERASTUNER_ORACLE_PORT "
            "all set and not empty, on the chief and on every worker. Received: "
            "KERASTUNER_TUNER_ID=tuner0, KERASTUNER_ORACLE_IP unset, KERASTUNER_ORACLE_PORT unset",
        ),
        (
            {
                "KERASTUNER_TUNER_ID": "",
                "KERASTUNER_ORACLE_IP": "h",
                "KERASTUNER_ORACLE_PORT": "1",
            },
            "Received: KERASTUNER_TUNER_ID=, KERASTUNER_ORACLE_IP=h",
        ),
        (
            {
                "KERASTUNER_TUNER_ID": "tuner0",
                "KERASTUNER_ORACLE_IP": "h",
                "KERASTUNER_ORACLE_PORT": "80000",
            },
            "KERASTUNER_ORACLE_PORT must be a port number in [1, 65535]. "
            "Received: KERASTUNER_ORACLE_PORT=80000",
        ),
        (
            {
                "KERASTUNER_TUNER_ID": "subchief",
                "KERASTUNER_ORACLE_IP": "h",
                "KERASTUNER_ORACLE_PORT": "8000",
            },
            "Received: KERASTUNER_TUNER_ID=subchief",
        ),
    ],
)
def test_incomplete_or_wrong_variables_are_refused(environ, fragment):
    with pytest.raises(InputError) as error:
        cluster_role(environ)
    assert fragment in str(error.value)


def test_a_worker_without_the_oracle_address_ends_in_one_error_line(tmp_path):
    result = run_tool(
        "tune",
        *TINY_FLAGS,
        f"--output_dir={tmp_path}",
        env={"KERASTUNER_TUNER_ID": "tuner0"},
    )
    assert result.returncode == 1
    assert_one_line_error(result, "KERASTUNER_ORACLE_IP unset")
    assert not os.listdir(tmp_path)


def test_a_worker_may_not_overwrite_the_chiefs_search(tmp_path, monkeypatch):
    for name, value in cluster_env("tuner0", free_port()).items():
        if name.startswith("KERASTUNER_"):
            monkeypatch.setenv(name, value)
    with pytest.raises(InputError, match="^overwrite starts a search again, which only its chief"):
        tune(*tiny_configs(tmp_path / "search"), overwrite=True)
    assert not (tmp_path / "search").exists()


def test_a_worker_with_other_settings_than_the_chiefs_is_refused(tmp_path, monkeypatch):
    # Something listening at the address stands in for the chief; the settings it wrote differ.
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=1))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        for name, value in cluster_env("tuner0", port).items():
            if name.startswith("KERASTUNER_"):
                monkeypatch.setenv(name, value)
        root = tmp_path / "search"
        root.mkdir()
        (root / "tune_config.json").write_text(json.dumps({"train": {}, "tune": {}}))
        with pytest.raises(InputError, match="other settings than worker tuner0's"):
            tune(*tiny_configs(root))
        # A worker takes no lock on the search's root and writes nothing there.
        assert sorted(os.listdir(root)) == ["tune_config.json"]
    finally:
        server.stop(None)


def test_a_worker_whose_chief_never_answers_is_told_so(monkeypatch):
    role = ClusterRole("tuner0", "127.0.0.1", free_port())
    with pytest.raises(InputError, match=f"no chief oracle answered at {role.address} within"):
        search_cluster.wait_for_chief(role, timeout=0.5)
