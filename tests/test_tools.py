"""Every binary on a tiny setting, and every bad input ending in one clear line.

The binaries run as real subprocesses (`python -m tools.<name>`) from the repository root; the
bad inputs, the quick uses of the trained runs and the reproduce runs in this process, through
each binary's own flags and main (`run_tool_cases`).
"""

import json
import os
import zipfile

import keras
import numpy as np
import pytest

from binaries import (
    STARTUP_NOISE,
    assert_one_line_error,
    assert_quiet_start,
    binary_flags,
    run_tool,
    run_tool_cases,
    run_tool_in_process,
)
from nasty_tf import models
from nasty_tf.data import load_dataset

pytestmark = pytest.mark.single_pass
TINY = ["--dataset=digits", "--train_fraction=0.15", "--epochs=1", "--batch_size=64", "--verbose=0"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A normal, a nasty and a KD run made by the binaries themselves: the normal one by a real
    `python -m tools.train`, the others in this process (`run_tool_in_process`)."""
    root = tmp_path_factory.mktemp("tools")
    normal = run_tool("train", *TINY, f"--output_dir={root}/normal")
    assert normal.returncode == 0, normal.stderr[-3000:]
    nasty = run_tool_in_process(
        "train_nasty",
        *TINY,
        f"--adversary={root}/normal/model.keras",
        "--omega=0.05",
        "--temperature=4",
        f"--output_dir={root}/nasty",
    )
    assert nasty.returncode == 0, nasty.stderr[-3000:]
    student = run_tool_in_process(
        "distill",
        *TINY,
        f"--teacher={root}/nasty/model.keras",
        "--alpha=0.9",
        f"--output_dir={root}/student",
    )
    assert student.returncode == 0, student.stderr[-3000:]
    return root, normal, nasty, student


def test_train_nasty_and_distill_write_their_outputs(trained):
    root, normal, nasty, student = trained
    for run, name in ((normal, "normal"), (nasty, "nasty"), (student, "student")):
        assert "test accuracy" in run.stdout
        metrics = json.load(open(root / name / "metrics.json"))
        assert 0 <= metrics["accuracy"] <= 100
        assert (root / name / "model.keras").is_file()
    assert json.load(open(root / "nasty" / "metrics.json"))["config"]["omega"] == 0.05


def test_a_binary_starts_quietly(trained):
    """TensorFlow's start-up noise (an `E0000 ... cuInit` "error" on every CPU host) is gone
    from a real binary's training run (and its one-line error: below)."""
    assert_quiet_start(trained[1])


def test_evaluate_prints_and_writes_accuracy(trained, binary_results):
    result = binary_results["evaluate"]
    evaluation = binary_results["outputs"] / "evaluation"
    assert result.returncode == 0, result.stderr[-3000:]
    written = json.load(open(evaluation / "evaluation.json"))
    assert f"{written['accuracy']:.2f}%" in result.stdout
    expected = json.load(open(trained[0] / "nasty" / "metrics.json"))["accuracy"]
    assert written["accuracy"] == pytest.approx(expected)


def test_a_finished_run_is_not_overwritten_without_the_flag(trained, binary_results):
    before, result = binary_results["normal_model_before"], binary_results["rerun"]
    assert_one_line_error(result, "already holds a finished run", "--overwrite")
    assert (trained[0] / "normal" / "model.keras").read_bytes() == before


# What the tiny reproduce run (`binary_results`) was given: the sweep flag names the tau_s of the
# main KD runs, which the sweep reuses; the strategy and decay flags must reach every stage.
REPRODUCE = [
    "--train_fraction=0.15",
    "--epochs=1",
    "--student_epochs=1",
    "--student_seeds=0",
    "--verbose=0",
    "--sweep_kd_temperature=4",
    "--strategy=one_device",
    "--weight_decay_mode=decoupled",
]


def test_reproduce_writes_the_report(binary_results):
    out, result = binary_results["outputs"] / "reproduce", binary_results["reproduce"]
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.load(open(out / "report.json"))
    assert report["protocol"] == "digits_demo"
    # The sweep flag asked for a tau_s sweep (none by default): one value, KD from both teachers.
    sweep = report["sweeps"]["kd_temperature"]
    assert [(e["value"], e["route"]) for e in sweep] == [(4.0, "normal"), (4.0, "nasty")]
    for entry in sweep:
        main_run = next(row for row in report["students"] if row["teacher"] == entry["route"])
        assert entry["accuracy"] == main_run["accuracy"]
    assert {"normal", "nasty"} == set(report["teachers"])
    routes = {(row["arch"], row["teacher"]) for row in report["students"]}
    assert routes == {("cnn", "none"), ("cnn", "normal"), ("cnn", "nasty")}
    for row in report["students"]:
        run_dir = "scratch" if row["teacher"] == "none" else f"kd_{row['teacher']}"
        metrics = json.load(open(out / "students" / "cnn_seed0" / run_dir / "metrics.json"))
        assert row["accuracy"] == metrics["accuracy"]  # the report comes from the runs
        # --strategy and --weight_decay_mode reached every stage.
        assert (
            metrics["strategy"] == "one_device"
            and metrics["config"]["weight_decay_mode"] == "decoupled"
        )
    assert "| Student | Scratch | KD from normal | KD from nasty |" in result.stdout
    markdown = (out / "report.md").read_text()
    assert "KD from nasty" in markdown
    for figure in (
        "logit_responses.png",
        "tsne_features.png",
        "tsne_logits.png",
        "sweep_kd_temperature.png",
    ):
        assert (out / figure).stat().st_size > 10_000
        assert f"]({figure})" in markdown


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory):
    root = tmp_path_factory.mktemp("bad")
    (root / "corrupt.keras").write_bytes(b"\x00 definitely not a keras archive")
    (root / "empty").mkdir()
    for split in ("train", "test"):
        (root / "broken" / split / "cat").mkdir(parents=True)
        (root / "broken" / split / "cat" / "0.png").write_bytes(b"not an image")
    with zipfile.ZipFile(root / "noclasses.zip", "w") as archive:
        archive.writestr("readme.txt", "nothing here")
    return root


BAD_INPUTS = [
    ("train", ["--arch=resnet9000"], ["resnet9000"]),
    ("train", ["--dataset=mnist_pro"], ["mnist_pro"]),
    (
        "train",
        ["--train_fraction=0"],
        ["--train_fraction must be in (0, 1]. Received: --train_fraction=0"],
    ),
    ("train", ["--train_fraction=1.5"], ["--train_fraction"]),
    ("train", ["--dataset=image_folder"], ["--data_dir"]),
    ("train", ["--dataset=image_folder", "--data_dir={root}/nowhere"], ["nowhere"]),
    ("train", ["--dataset=image_folder", "--data_dir={root}/empty"], ["empty"]),
    ("train", ["--dataset=image_folder", "--data_dir={root}/broken"], ["0.png"]),
    ("train", ["--dataset=image_folder", "--data_dir={root}/noclasses.zip"], ["noclasses.zip"]),
    ("train", ["--dataset=cifar10", "--data_dir={root}/empty"], ["cifar10"]),
    ("train", ["--data_cache_dir={root}/cache"], ["--data_cache_dir", "digits"]),
    ("train", ["--precision=float8"], ["--precision", "float8"]),
    ("reproduce", ["--precision=float8"], ["--precision", "float8"]),
    ("train_nasty", ["--adversary={root}/missing.keras"], ["--adversary", "missing.keras"]),
    ("train_nasty", ["--adversary={root}/corrupt.keras"], ["--adversary", "corrupt.keras"]),
    ("train_nasty", ["--adversary={root}/seven.keras"], ["--adversary", "7 classes"]),
    ("train_nasty", ["--adversary={root}/big.keras"], ["--adversary", "shape"]),
    ("train_nasty", ["--adversary={root}/ten.keras", "--omega=-0.1"], ["--omega"]),
    ("train_nasty", ["--adversary={root}/ten.keras", "--temperature=0"], ["--temperature"]),
    ("distill", ["--teacher={root}/ten.keras", "--alpha=1.5"], ["--alpha"]),
    ("distill", ["--teacher={root}/ten.keras", "--temperature=-4"], ["--temperature"]),
    ("distill", ["--teacher={root}/seven.keras"], ["--teacher", "7 classes"]),
    ("evaluate", ["--model={root}/corrupt.keras"], ["--model", "corrupt.keras"]),
    ("reproduce", ["--protocol=table99"], ["--protocol", "table99"]),
    ("reproduce", ["--student_seeds=a,b"], ["--student_seeds"]),
    ("reproduce", ["--omega=-1"], ["--omega"]),
    ("reproduce", ["--epochs_scale=0"], ["--epochs_scale"]),
    ("reproduce", ["--sweep_alpha=2"], ["--sweep_alpha", "out of range"]),
    ("reproduce", ["--sweep_kd_temperature=a"], ["--sweep_kd_temperature"]),
    ("reproduce", ["--sweep_omega=-0.1"], ["--sweep_omega", "out of range"]),
    ("reproduce", ["--strategy=tpu_pod"], ["--strategy", "tpu_pod"]),
    ("reproduce", ["--datafree=dfad"], ["--datafree", "dfad"]),
    ("reproduce", ["--weight_decay_mode=adamw"], ["--weight_decay_mode", "adamw"]),
    ("reproduce", ["--adversary_archs=cnn,vgg99"], ["--adversary_archs", "vgg99"]),
    ("reproduce", ["--normal_teacher={root}/missing.keras"], ["--normal_teacher", "missing.keras"]),
    ("reproduce", ["--protocol=table3_tiny_imagenet"], ["--data_dir", "tiny_imagenet"]),
    ("train", ["--weight_decay_mode=adamw"], ["--weight_decay_mode"]),
    ("train", ["--lr_schedule=multistep", "--lr_milestones=a"], ["--lr_milestones"]),
    ("train", ["--lr_schedule=multistep"], ["--lr_milestones"]),
]


@pytest.fixture(scope="module")
def saved_networks(bad_files):
    """Small networks of the wrong shape / class count, saved as the binaries' inputs."""
    models.get_model("cnn", 7, (32, 32, 3)).save(f"{bad_files}/seven.keras")
    models.get_model("preresnet20", 10, (64, 64, 3)).save(f"{bad_files}/big.keras")
    models.get_model("cnn", 10, (32, 32, 3)).save(f"{bad_files}/ten.keras")
    return bad_files


@pytest.fixture(scope="module")
def binary_results(saved_networks, trained, given_teachers, tmp_path_factory):
    """What each binary ended with on each BAD_INPUTS case; on two uses of the `trained` runs,
    an evaluation of the nasty teacher and a rerun of the normal one without --overwrite (with
    the model's bytes before it); and on two tiny reproduce runs, one training its teachers, one
    from given teacher files. All in this process (`run_tool_cases`). Keyed by BAD_INPUTS
    index or use ("evaluate", "rerun", "reproduce", "from_given"), beside `outputs` (where they
    wrote) and `normal_model_before`."""
    outputs = tmp_path_factory.mktemp("bad_outputs")
    root = trained[0]
    cases = {tool: [] for tool, _, _ in BAD_INPUTS}
    for i, (tool, args, _) in enumerate(BAD_INPUTS):
        args = [arg.format(root=saved_networks) for arg in args]
        if tool != "evaluate":
            args += ["--epochs=1", "--verbose=0"]
        cases[tool].append((i, [*args, f"--output_dir={outputs}/case{i}"]))
    evaluation = outputs / "evaluation"
    cases["evaluate"].append(
        (
            "evaluate",
            [f"--model={root}/nasty/model.keras", "--dataset=digits", f"--output_dir={evaluation}"],
        )
    )
    before = (root / "normal" / "model.keras").read_bytes()
    cases["train"].append(("rerun", [*TINY, f"--output_dir={root}/normal"]))
    reproduced = outputs / "reproduce"
    cases["reproduce"].append(("reproduce", [*REPRODUCE, f"--output_dir={reproduced}"]))
    from_given = outputs / "from_given"
    given = [
        "--protocol=digits_demo",
        f"--normal_teacher={given_teachers['normal']}",
        f"--nasty_teacher={given_teachers['nasty']}",
        "--epochs_scale=0.01",
        "--train_fraction=0.1",
        "--student_seeds=0",
        "--batch_size=64",
        "--verbose=0",
        "--nofigures",
        "--sweep_kd_temperature=",
        f"--output_dir={from_given}",
    ]
    cases["reproduce"].append(("from_given", given))
    results = {}
    for tool, keyed in cases.items():
        keys, arg_lists = zip(*keyed)
        results.update(zip(keys, run_tool_cases(tool, list(arg_lists))))
    return {**results, "outputs": outputs, "normal_model_before": before}


@pytest.mark.parametrize("case", range(len(BAD_INPUTS)), ids=lambda i: str(BAD_INPUTS[i])[:40])
def test_bad_input_ends_in_one_clear_line(binary_results, case):
    assert_one_line_error(binary_results[case], *BAD_INPUTS[case][2])
    assert not (binary_results["outputs"] / f"case{case}" / "model.keras").exists()


def test_reproduce_starts_from_given_teachers_without_training_them(given_teachers, binary_results):
    """Through the binary: the flags reach the protocol, teachers are evaluated, not trained."""
    out, result = binary_results["outputs"] / "from_given", binary_results["from_given"]
    assert result.returncode == 0, result.stderr[-3000:]
    # No teacher runs; an empty sweep flag turned the protocol's sweep off.
    assert sorted(os.listdir(out)) == ["report.json", "report.md", "students"]
    report = json.load(open(out / "report.json"))
    digits = load_dataset("digits")
    for route in ("normal", "nasty"):
        teacher = report["teachers"][route]
        assert teacher["file"] == given_teachers[route] and teacher["train_seconds"] is None
        network = keras.saving.load_model(given_teachers[route])
        logits = network.predict(digits.x_test, verbose=0)
        assert teacher["accuracy"] == pytest.approx(
            np.mean(np.argmax(logits, -1) == digits.y_test) * 100
        )
        kd = json.load(open(out / "students" / "cnn_seed0" / f"kd_{route}" / "metrics.json"))
        # --epochs_scale=0.01 of 24 epochs: at least 1.
        assert kd["config"]["teacher"] == given_teachers[route] and kd["epochs"] == 1
    assert report["teachers"]["nasty"]["adversarial_kl"] > 0
    assert "given, not trained" in (out / "report.md").read_text()


def test_one_bad_input_ends_in_one_clear_line_from_a_real_binary(saved_networks, tmp_path):
    """The in-process cases above run what a real `python -m tools.<name>` runs: one here."""
    result = run_tool(
        "train_nasty",
        f"--adversary={saved_networks}/seven.keras",
        "--epochs=1",
        f"--output_dir={tmp_path}/out",
    )
    assert_one_line_error(result, "--adversary", "7 classes")
    assert_quiet_start(result)
    assert not (tmp_path / "out" / "model.keras").exists()


def test_stray_arguments_are_refused():
    # NASTY_TF_VERBOSE_STARTUP=1 brings TensorFlow's start-up lines back (checked here, where a
    # binary starts anyway).
    result = run_tool("train", "oops", env={"NASTY_TF_VERBOSE_STARTUP": "1"})
    assert result.returncode != 0 and "Unexpected arguments: oops" in result.stderr
    assert any(noise in result.stderr for noise in STARTUP_NOISE), result.stderr[:2000]


def test_library_errors_name_arguments_and_binaries_name_flags():
    """The library's messages name its arguments; `tools.common` turns them into flags, once."""
    from nasty_tf.errors import InputError
    from nasty_tf.training import TrainConfig
    from tools import common

    with pytest.raises(InputError, match=r"^epochs must be >= 1\. Received: epochs=0$") as caught:
        TrainConfig(epochs=0)
    flags = {"epochs", "dataset", "data_dir", "data_cache_dir", "arch", "teacher"}
    assert (
        common.flag_message(str(caught.value), flags)
        == "--epochs must be >= 1. Received: --epochs=0"
    )
    assert (
        common.flag_message("cache_dir applies to the file sources, not to dataset=digits", flags)
        == "--data_cache_dir applies to the file sources, not to --dataset=digits"
    )
    # Only argument positions change: a flag name used as a word, or one of another binary, stays.
    assert (
        common.flag_message(
            "teacher: 'a=b/t.keras' fits no teacher; pass arch=cnn or `seed`", flags
        )
        == "--teacher: 'a=b/t.keras' fits no teacher; pass --arch=cnn or `seed`"
    )


# Each binary's flags (flags/*.py) that the messages below name, and names of other binaries.
BENCHMARK_FLAGS = {"mode", "batch_norm", "steps", "jit_compile", "image_size", "num_classes"}
DATAFREE_FLAGS = {"teacher", "latent_dim", "generator_learning_rate", "student_learning_rate"}
TRAIN_FLAGS = {"batch_size", "strategy", "learning_rate", "output_dir", "overwrite"}
NASTY_FLAGS = TRAIN_FLAGS | {"adversary", "omega"}
EVALUATE_FLAGS = {"model", "split", "output_dir", "dataset"}
EXPORT_FLAGS = {"model", "export_dir", "overwrite", "top_k"}
TUNE_FLAGS = TRAIN_FLAGS | {"max_trials", "omega_min", "omega_max", "temperatures", "adversary"}


def _message(call, *args, **kwargs):
    from nasty_tf.errors import InputError, TrainingDiverged

    with pytest.raises((InputError, TrainingDiverged)) as caught:
        call(*args, **kwargs)
    return str(caught.value)


def test_every_converted_module_names_arguments_that_its_binary_names_as_flags(tmp_path):
    """One message of each module that once named flags: the argument in the library, the
    flag (after `ARGUMENT_FLAGS`) in the binary's one line."""
    from types import SimpleNamespace

    from nasty_tf import benchmark, export, tuning
    from nasty_tf.datafree.generator import dafl_generator
    from nasty_tf.training import callbacks, checkpoints, jobs
    from nasty_tf.training.run_directory import RunDirectory
    from tools.common import flag_message

    def both(message, flags):
        return message, flag_message(message, flags)

    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "metrics.json").write_text("{}")
    (tmp_path / "search").mkdir()
    (tmp_path / "search" / "tune_config.json").write_text('{"omega_max": 0.3}')
    (tmp_path / "served").mkdir()
    (tmp_path / "served" / "keep.txt").write_text("")
    nan = float("nan")
    cases = [
        (
            _message(benchmark.BenchmarkConfig, modes=("normal", "bogus")),
            BENCHMARK_FLAGS,
            "--mode must be a comma-separated list of normal, nasty, kd. "
            "Received: --mode=normal,bogus",
        ),
        (
            _message(benchmark.BenchmarkConfig, batch_norms=("sync",)),
            BENCHMARK_FLAGS,
            "--batch_norm must be a comma-separated list of fused, keras. "
            "Received: --batch_norm=sync",
        ),
        (
            _message(benchmark.BenchmarkConfig, image_size=4),
            BENCHMARK_FLAGS,
            "--image_size must be >= 8 and --num_classes >= 2. "
            "Received: --image_size=4, --num_classes=10",
        ),
        (
            _message(dafl_generator, 0),
            DATAFREE_FLAGS,
            "--latent_dim must be >= 1. Received: --latent_dim=0",
        ),
        (
            _message(checkpoints.load_network, "", "teacher"),
            DATAFREE_FLAGS,
            "--teacher is required",
        ),
        (
            # nasty_tf.datafree.jobs' hint for DAFL
            _message(
                callbacks.StopOnNonFiniteLoss(
                    "lower `generator_learning_rate` or `student_learning_rate`"
                ).on_epoch_end,
                0,
                {"loss": nan},
            ),
            DATAFREE_FLAGS,
            "training diverged: the loss is nan at epoch 1; "
            "lower --generator_learning_rate or --student_learning_rate",
        ),
        (
            _message(callbacks.StopOnNonFiniteLoss().on_epoch_end, 2, {"loss": nan}),
            TRAIN_FLAGS,
            "training diverged: the loss is nan at epoch 3; lower --learning_rate",
        ),
        (
            # nasty_tf.training.jobs' hint for train_nasty
            _message(
                callbacks.StopOnNonFiniteLoss("lower `omega` or `learning_rate`").on_epoch_end,
                0,
                {"loss": nan},
            ),
            NASTY_FLAGS,
            "training diverged: the loss is nan at epoch 1; lower --omega or --learning_rate",
        ),
        (
            _message(jobs.evaluate, str(tmp_path / "none.keras"), None),
            EVALUATE_FLAGS,
            f"--model: no such file: {str(tmp_path / 'none.keras')!r}",
        ),
        (
            _message(jobs.evaluate, "m.keras", None, split="val"),
            EVALUATE_FLAGS,
            "--split must be 'train' or 'test'. Received: --split='val'",
        ),
        (
            _message(RunDirectory(str(tmp_path / "run"), {}).finished_metrics),
            TRAIN_FLAGS,
            f"--output_dir {tmp_path / 'run'} already holds a finished run; "
            "set --overwrite to replace it",
        ),
        (
            _message(export._check_export_dir, str(tmp_path / "served"), False),
            EXPORT_FLAGS,
            f"--export_dir {str(tmp_path / 'served')!r} is not empty; "
            "set --overwrite to replace it",
        ),
        (
            _message(export._check_top_k, 11, 10),
            EXPORT_FLAGS,
            "--top_k must be an integer in [1, 10] (the number of classes). Received: --top_k=11",
        ),
        (
            _message(tuning.TuneConfig, omega_min=0.5, omega_max=0.1),
            TUNE_FLAGS,
            "--omega_min must be <= --omega_max. Received: --omega_min=0.5, --omega_max=0.1",
        ),
        (
            _message(tuning._check_same_search, str(tmp_path / "search"), {}, False),
            TUNE_FLAGS,
            f"--output_dir {tmp_path / 'search'} holds a search with other settings; choose "
            "another --output_dir or set --overwrite to start it again",
        ),
        (
            _message(tuning.tune, SimpleNamespace(strategy="multi_worker"), tuning.TuneConfig()),
            TUNE_FLAGS,
            "--strategy=multi_worker trains single runs (tools.train, train_nasty, distill); "
            "a search runs on one host: use --strategy=auto or mirrored",
        ),
    ]
    for message, flags, expected in cases:
        assert "--" not in message, message  # the library names arguments
        assert both(message, flags) == (message, expected)


def test_reproduce_gives_the_cifar10_protocols_the_shared_copy():
    """No library default holds a data path: the binary supplies the shared CIFAR-10 copy."""
    from absl import flags as absl_flags

    from nasty_tf import protocols

    with binary_flags("reproduce") as reproduce:
        for name in ("cifar10_cpu", "fast_cifar10"):
            protocol = protocols.get_protocol(name)
            assert protocol.default_settings().data_dir is None
            absl_flags.FLAGS(["reproduce"])
            assert (
                reproduce.settings_from_flags(protocol).data_dir
                == "../shared/data/cifar10-jpeg.tar.gz"
            )
            absl_flags.FLAGS.unparse_flags()
            absl_flags.FLAGS(["reproduce", "--data_dir=elsewhere.tar.gz"])
            assert reproduce.settings_from_flags(protocol).data_dir == "elsewhere.tar.gz"
            absl_flags.FLAGS.unparse_flags()
