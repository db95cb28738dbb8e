"""The keras-tuner omega search: a tiny 2-trial search, its table, its resumption, its errors,
and its held-out selection (the validation carve, and an objective that never reads the test
split)."""

import dataclasses
import json
import os

import keras
import numpy as np
import pytest

from binaries import assert_one_line_error, run_tool_cases
from nasty_tf.data import Dataset, carve_validation, load_dataset
from nasty_tf.errors import InputError
from nasty_tf.training import TrainConfig
from nasty_tf.training.checkpoints import load_network
from nasty_tf.training.evaluation import accuracy_percent, predict_logits
from nasty_tf.tuning import TuneConfig, trial_score, tune

pytestmark = pytest.mark.single_pass
TINY_FLAGS = [
    "--dataset=digits",
    "--train_fraction=0.15",
    "--epochs=1",
    "--batch_size=64",
    "--verbose=0",
    "--max_trials=2",
    "--student_epochs=1",
]


def tiny_configs(root):
    # The same settings as TINY_FLAGS with the binary's other defaults.
    train = TrainConfig(
        dataset="digits",
        train_fraction=0.15,
        epochs=1,
        batch_size=64,
        verbose=0,
        output_dir=str(root),
    )
    return train, TuneConfig(max_trials=2, student_epochs=1)


def tiny_dataset():
    # What tune() loads from tiny_configs: digits, 15% of the training split, seed 0.
    return load_dataset("digits", train_fraction=0.15, seed=0)


def finished_runs(root):
    """mtime of every finished run's metrics.json under the search's root."""
    found = {}
    for folder, _, files in os.walk(root):
        if "metrics.json" in files:
            path = os.path.join(folder, "metrics.json")
            found[os.path.relpath(path, root)] = os.stat(path).st_mtime_ns
    return found


@pytest.fixture(scope="module")
def search(tmp_path_factory):
    root = tmp_path_factory.mktemp("tune")
    report = tune(*tiny_configs(root))
    return root, report


def test_the_table_has_one_row_per_trial_equal_to_its_metrics(search):
    root, report = search
    assert len(report["trials"]) == 2
    assert json.load(open(root / "tune_report.json")) == report
    table = (root / "tune_report.md").read_text()
    for row in report["trials"]:
        nasty = json.load(open(root / "trials" / row["trial_id"] / "nasty" / "metrics.json"))
        student = json.load(open(root / "trials" / row["trial_id"] / "student" / "metrics.json"))
        assert row["omega"] == nasty["config"]["omega"]
        assert 0.02 <= row["omega"] <= 0.3
        assert row["temperature"] == nasty["config"]["temperature"] == 4.0
        # Test accuracies are the result; the validation ones (validation.json) chose.
        held_out = json.load(open(root / "trials" / row["trial_id"] / "validation.json"))
        assert row["teacher_accuracy"] == nasty["accuracy"]
        assert row["adversarial_kl"] == nasty["adversarial_kl"]
        assert row["student_accuracy"] == student["accuracy"]
        assert row["teacher_validation_accuracy"] == held_out["teacher_accuracy"]
        assert row["student_validation_accuracy"] == held_out["student_accuracy"]
        assert row["score"] == trial_score(
            held_out["teacher_accuracy"],
            held_out["student_accuracy"],
            report["normal_validation_accuracy"],
            1.0,
        )
        assert (
            f"| {row['teacher_validation_accuracy']:.2f} | {row['teacher_accuracy']:.2f} | "
            f"{row['adversarial_kl']:.3f} | {row['student_validation_accuracy']:.2f} | "
            f"{row['student_accuracy']:.2f} |"
        ) in table
    normal = json.load(open(root / "normal" / "metrics.json"))
    assert report["normal_accuracy"] == normal["accuracy"]
    assert report["floor"] == report["normal_validation_accuracy"] - 1.0
    assert [row["best"] for row in report["trials"]].count(True) == 1
    assert report["best"]["score"] == min(row["score"] for row in report["trials"])
    assert table.count("| * |") == 1
    assert "| teacher val acc | teacher test acc |" in table
    assert "| student val acc | student test acc |" in table


def test_the_report_records_the_validation_selection(search):
    root, report = search
    assert report["selection_split"] == "validation"
    assert report["validation_fraction"] == 0.1
    train_part, (_, y_val) = carve_validation(tiny_dataset(), 0.1, seed=0)
    assert report["validation_images"] == len(y_val)
    assert report["train_images"] == len(train_part.y_train)
    # Every network of the search trained without the validation images.
    for path in ["normal"] + [
        f"trials/{row['trial_id']}/{run}"
        for row in report["trials"]
        for run in ("nasty", "student")
    ]:
        assert json.load(open(root / path / "metrics.json"))["train_images"] == len(
            train_part.y_train
        )
    markdown = (root / "tune_report.md").read_text()
    assert "validation split" in markdown
    # Where and how it was made, as every report says.
    assert report["backend"] == keras.backend.backend() and "CPUs" in report["machine"]
    assert report["date"].startswith("20") and report["date"] in markdown
    assert report["command"] and f"command `{report['command']}`" in markdown


def test_the_objective_is_the_validation_accuracy_measured_independently(search):
    root, report = search
    _, validation = carve_validation(tiny_dataset(), 0.1, seed=0)

    def held_out_accuracy(path):
        images, labels = validation
        return accuracy_percent(predict_logits(load_network(str(path), "test"), images), labels)

    normal = held_out_accuracy(root / "normal" / "model.keras")
    assert report["normal_validation_accuracy"] == normal
    for row in report["trials"]:
        teacher = held_out_accuracy(root / "trials" / row["trial_id"] / "nasty" / "model.keras")
        student = held_out_accuracy(root / "trials" / row["trial_id"] / "student" / "model.keras")
        assert (row["teacher_validation_accuracy"], row["student_validation_accuracy"]) == (
            teacher,
            student,
        )
        assert row["score"] == trial_score(teacher, student, normal, 1.0)


def test_the_choice_never_reads_the_test_split(search, tmp_path):
    """The same search with scrambled test labels and images chooses the same trial with the
    same recorded objective; only the reported test accuracies move."""
    root, report = search
    dataset = tiny_dataset()
    x_test = dataset.x_test[np.random.default_rng(1).permutation(len(dataset.x_test))]
    normal = load_network(str(root / "normal" / "model.keras"), "test")
    # Labels the normal teacher always gets wrong: a floor read from the test split would move.
    y_test = (np.argmax(predict_logits(normal, x_test), axis=-1) + 1) % 10
    scrambled = dataclasses.replace(dataset, x_test=x_test, y_test=y_test.astype(np.int32))
    train, tune_config = tiny_configs(tmp_path)
    # The fixture's normal teacher as the given adversary: no second normal to train.
    tune_config = dataclasses.replace(tune_config, adversary=str(root / "normal" / "model.keras"))
    again = tune(train, tune_config, dataset=scrambled)
    chosen = (
        "omega",
        "temperature",
        "teacher_validation_accuracy",
        "student_validation_accuracy",
        "feasible",
        "score",
        "best",
    )
    assert again["normal_validation_accuracy"] == report["normal_validation_accuracy"]
    assert [{k: row[k] for k in chosen} for row in again["trials"]] == [
        {k: row[k] for k in chosen} for row in report["trials"]
    ]
    assert again["best"]["trial_id"] == report["best"]["trial_id"]
    assert again["normal_accuracy"] == 0.0 != report["normal_accuracy"]  # the test split did change


def test_a_rerun_continues_the_project_without_retraining(search, request):
    root, report = search
    before = finished_runs(root)
    assert len(before) == 5  # normal, and a nasty teacher and a student per trial
    again = tune(*tiny_configs(root))
    assert again["trials"] == report["trials"]
    # Then the binary, twice (`binary_results`): with the same settings it reuses the same
    # project and prints the table of its two trials; a higher --max_trials adds one trial.
    result, more = request.getfixturevalue("binary_results")["reruns"]
    assert result.returncode == 0, result.stderr[-3000:]
    assert "| best | trial | omega |" in result.stdout
    assert f"{report['best']['omega']:.4g}" in result.stdout
    rows = [line for line in result.stdout.splitlines() if line.startswith("| ")]
    assert len(rows) == 1 + 2  # the header and the two trials
    assert more.returncode == 0, more.stderr[-3000:]
    after = finished_runs(root)
    assert len(after) == 7 and {path: after[path] for path in before} == before
    assert len(json.load(open(root / "tune_report.json"))["trials"]) == 3


def test_other_settings_in_the_same_project_are_refused(search):
    root, _ = search
    train, tune_config = tiny_configs(root)
    with pytest.raises(InputError, match="other settings"):
        tune(train, tune_config.__class__(max_trials=2, student_epochs=1, omega_max=0.5))


def test_a_search_whose_root_another_process_holds_is_refused_untouched(tmp_path):
    from nasty_tf.training.run_directory import RunLock

    root = tmp_path / "held"
    train, tune_config = tiny_configs(root)
    with RunLock(str(root)):
        before = sorted(p.name for p in root.iterdir())
        with pytest.raises(InputError, match=f"locked by process {os.getpid()}"):
            tune(train, tune_config, dataset=tiny_dataset())
        assert sorted(p.name for p in root.iterdir()) == before


def test_a_diverging_trial_is_infeasible_and_the_search_goes_on(search, tmp_path):
    root, _ = search
    train, _ = tiny_configs(tmp_path)
    # An absurd learning rate: every trial's nasty teacher diverges within its epoch.
    train = train.replace(optimizer="sgd", learning_rate=1e12)
    tune_config = TuneConfig(
        omega_min=0.01,
        omega_max=1.0,
        max_trials=2,
        oracle="random",
        student_epochs=1,
        adversary=str(root / "normal" / "model.keras"),
    )
    report = tune(train, tune_config)
    assert len(report["trials"]) == 2  # the first divergence did not end the search
    for row in report["trials"]:
        assert row["diverged"] and not row["feasible"] and row["score"] > 100.0
        diverged = json.load(open(tmp_path / "trials" / row["trial_id"] / "diverged.json"))
        assert diverged["omega"] == row["omega"] and "diverged" in diverged["error"]
    assert "diverged" in (tmp_path / "tune_report.md").read_text()


@pytest.fixture(scope="module")
def options_search(search, tmp_path_factory):
    """One trial against the `search`'s normal teacher with the options off by default: the
    nasty network started from the adversary and warmed up, and two proxy students."""
    root = tmp_path_factory.mktemp("tune_options")
    train, _ = tiny_configs(root)
    tune_config = TuneConfig(
        omega_min=0.05,
        omega_max=0.05,
        max_trials=1,
        student_epochs=1,
        adversary=str(search[0] / "normal" / "model.keras"),
        nasty_init_from_adversary=True,
        omega_warmup_epochs=1,
        proxy_students=2,
    )
    return root, tune(train, tune_config, dataset=tiny_dataset())


def test_nasty_teachers_can_start_from_the_adversary_and_warm_up(search, options_search):
    """`nasty_init_from_adversary`: every trial's nasty network starts from the adversary's
    weights; `omega_warmup_epochs`: its omega ramps up. Its run records both, and the report
    says so."""
    root, report = options_search
    (row,) = report["trials"]
    nasty = json.load(open(root / "trials" / row["trial_id"] / "nasty" / "metrics.json"))
    assert nasty["config"]["init_from"] == str(search[0] / "normal" / "model.keras")
    assert nasty["config"]["omega_warmup_epochs"] == 1
    assert report["config"]["tune"]["nasty_init_from_adversary"] is True
    text = (root / "tune_report.md").read_text()
    assert "started from the normal teacher's weights" in text
    assert "omega ramped up from 0 over 1 epochs" in text


def test_several_proxy_students_are_seeded_apart_and_scored_on_their_mean(options_search):
    """`proxy_students=2`: each trial distils two students (the teachers' seed, then + 1) and
    is scored on their mean validation accuracy, each measured independently here."""
    root, report = options_search
    (row,) = report["trials"]
    trial = root / "trials" / row["trial_id"]
    _, (images, labels) = carve_validation(tiny_dataset(), 0.1, seed=0)
    validation, test, seeds = [], [], []
    for name in ("student", "student_1"):
        metrics = json.load(open(trial / name / "metrics.json"))
        seeds.append(metrics["config"]["seed"])
        test.append(metrics["accuracy"])
        network = load_network(str(trial / name / "model.keras"), "test")
        validation.append(accuracy_percent(predict_logits(network, images), labels))
    assert seeds == [0, 1]
    assert row["student_validation_accuracies"] == validation
    assert row["student_validation_accuracy"] == pytest.approx(np.mean(validation))
    assert row["student_accuracies"] == test
    assert row["student_accuracy"] == pytest.approx(np.mean(test))
    assert row["score"] == trial_score(
        row["teacher_validation_accuracy"],
        row["student_validation_accuracy"],
        report["normal_validation_accuracy"],
        1.0,
    )
    assert report["config"]["tune"]["proxy_students"] == 2
    assert (
        "mean of 2 proxy students per trial (seeds 0 to 1" in (root / "tune_report.md").read_text()
    )


def test_options_at_their_defaults_stay_out_of_the_identity(search):
    """Left out of a search's identity at their defaults, so older searches continue unchanged."""
    identity = json.load(open(search[0] / "tune_config.json"))["tune"]
    for option in ("nasty_init_from_adversary", "omega_warmup_epochs", "proxy_students"):
        assert option not in identity


def _indexed_dataset(labels):
    """A dataset whose image i holds i (two bytes), to trace every example through a carve."""
    labels = np.asarray(labels, np.int32)
    index = np.arange(len(labels))
    images = np.stack([index // 256, index % 256], axis=-1).astype(np.uint8).reshape(-1, 1, 1, 2)
    return Dataset(
        name="indexed",
        x_train=images,
        y_train=labels,
        x_test=images[:3],
        y_test=labels[:3],
        num_classes=int(labels.max()) + 1,
        class_names=(),
        mean=(0.5,),
        std=(0.5,),
        augmentation="crop",
    )


def _indices(images):
    return (images[:, 0, 0, 0].astype(int) * 256 + images[:, 0, 0, 1]).tolist()


def test_the_carve_is_stratified_seeded_disjoint_and_complete():
    labels = np.repeat(np.arange(4), [100, 50, 20, 2])
    rng = np.random.default_rng(0)
    labels = labels[rng.permutation(len(labels))]
    dataset = _indexed_dataset(labels)
    train_part, (x_val, y_val) = carve_validation(dataset, 0.1, seed=3)
    train_ids, val_ids = _indices(train_part.x_train), _indices(x_val)
    # Disjoint and complete, labels aligned, original order kept in both parts.
    assert not set(train_ids) & set(val_ids)
    assert sorted(train_ids + val_ids) == list(range(len(labels)))
    assert train_ids == sorted(train_ids) and val_ids == sorted(val_ids)
    assert (train_part.y_train == labels[train_ids]).all() and (y_val == labels[val_ids]).all()
    # Stratified: 10% of each class, at least one, and training keeps every class.
    assert np.bincount(y_val, minlength=4).tolist() == [10, 5, 2, 1]
    assert set(train_part.y_train.tolist()) == {0, 1, 2, 3}
    # The test split and the statistics are the dataset's own.
    assert train_part.x_test is dataset.x_test and train_part.mean == dataset.mean
    # Seeded: the same seed holds out the same examples, another seed others.
    assert _indices(carve_validation(dataset, 0.1, seed=3)[1][0]) == val_ids
    assert _indices(carve_validation(dataset, 0.1, seed=4)[1][0]) != val_ids


def test_the_carve_of_digits_keeps_the_class_proportions():
    dataset = tiny_dataset()
    train_part, (x_val, y_val) = carve_validation(dataset, 0.2, seed=0)
    assert len(train_part.y_train) + len(y_val) == len(dataset.y_train)
    counts = np.bincount(dataset.y_train, minlength=10)
    assert (np.abs(np.bincount(y_val, minlength=10) - 0.2 * counts) <= 0.5).all()
    assert x_val.shape[1:] == dataset.x_train.shape[1:] and x_val.dtype == np.uint8


@pytest.mark.parametrize("fraction", [0, 1, 1.5, -0.1, float("nan"), True, "0.1"])
def test_a_bad_validation_fraction_names_the_argument(fraction):
    expected = f"validation_fraction must be in (0, 1). Received: validation_fraction={fraction!r}"
    with pytest.raises(InputError) as carve_error:
        carve_validation(_indexed_dataset([0, 0, 1, 1]), fraction)
    assert str(carve_error.value) == expected
    with pytest.raises(InputError) as config_error:
        TuneConfig(validation_fraction=fraction)
    assert str(config_error.value) == expected


def test_infeasible_trials_rank_below_feasible_ones():
    normal, budget = 90.0, 1.0
    feasible_worst = trial_score(89.0, 100.0, normal, budget)  # exactly on the floor
    barely_infeasible = trial_score(88.99, 10.0, normal, budget)
    far_infeasible = trial_score(50.0, 5.0, normal, budget)
    assert trial_score(95.0, 60.0, normal, budget) == 60.0
    assert feasible_worst == 100.0
    assert feasible_worst < barely_infeasible < far_infeasible
    assert far_infeasible == pytest.approx(100.0 + 39.0)


@pytest.mark.parametrize(
    "fields, fragment",
    [
        (
            dict(omega_min=0.5, omega_max=0.1),
            r"^omega_min must be <= `omega_max`\. Received: omega_min=0\.5, omega_max=0\.1$",
        ),
        (dict(max_trials=0), r"^max_trials must be >= 1\. Received: max_trials=0$"),
        (dict(omega_min=0.0), "^omega_min must be > 0 .* Received: omega_min=0.0$"),
        (dict(temperatures=()), "^temperatures must be one or more numbers > 0"),
        (dict(temperatures=(4, 4)), "^temperatures must not repeat. Received: temperatures=4,4$"),
        (dict(accuracy_budget=-1), "^accuracy_budget must be >= 0. Received: accuracy_budget=-1$"),
        (dict(oracle="grid"), "^oracle must be one of .* Received: oracle='grid'$"),
        (dict(student_epochs=0), "^student_epochs must be >= 1. Received: student_epochs=0$"),
        (
            dict(proxy_students=0),
            "^proxy_students must be an integer >= 1. Received: proxy_students=0$",
        ),
        (dict(alpha=2), r"^alpha must be in \[0, 1\]. Received: alpha=2$"),
        (dict(kd_temperature=0), "^kd_temperature must be > 0. Received: kd_temperature=0$"),
        (
            dict(omega_warmup_epochs=-1),
            "^omega_warmup_epochs must be an integer >= 0. Received: omega_warmup_epochs=-1$",
        ),
        (dict(adversary="/no/such.keras"), "^adversary must be .* Received: adversary=/no/such"),
    ],
)
def test_bad_settings_name_their_argument(fields, fragment):
    with pytest.raises(InputError, match=fragment):
        TuneConfig(**fields)


BAD_FLAGS = {
    "--omega_min=0.5": "--omega_min must be <= --omega_max",
    "--max_trials=0": "--max_trials",
    "--validation_fraction=1.5": "validation_fraction must be in (0, 1). Received: ",
}


@pytest.fixture(scope="module")
def binary_results(search, tmp_path_factory):
    """The binary's answers, all from one process (`run_tool_cases`): two reruns on the
    `search` project (the same settings, then --max_trials=3), and each of BAD_FLAGS."""
    root = search[0]
    bad = tmp_path_factory.mktemp("bad_flags")
    cases = [
        [*TINY_FLAGS, f"--output_dir={root}"],
        [*TINY_FLAGS, "--max_trials=3", f"--output_dir={root}"],
        *(
            ["--dataset=digits", "--omega_max=0.3", flag, f"--output_dir={bad / str(i)}"]
            for i, flag in enumerate(BAD_FLAGS)
        ),
    ]
    results = run_tool_cases("tune", cases)
    return {"reruns": results[:2], **dict(zip(BAD_FLAGS, results[2:]))}


@pytest.mark.parametrize("flag", BAD_FLAGS)
def test_a_bad_flag_ends_in_one_error_line(binary_results, flag):
    assert binary_results[flag].returncode == 1
    assert_one_line_error(binary_results[flag], BAD_FLAGS[flag])
