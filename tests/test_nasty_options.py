"""The nasty teacher's cost-cutting options (issue 18): `init_from` and the omega warm-up."""

import json
import os

import keras
import numpy as np
import pytest

from binaries import run_tool_in_process
from nasty_tf import InputError, NastyTeacher, models
from nasty_tf.nasty_teacher import omega_warmup_scale
from nasty_tf.training import (
    NastyConfig,
    TrainConfig,
    jobs,
    load_data,
    load_network,
    train,
    train_nasty,
)
from nasty_tf.training.callbacks import TrainingBackup


@pytest.fixture(scope="module")
def digits():
    return load_data(TrainConfig(dataset="digits", train_fraction=0.1))


def tiny(root, name, **changes):
    fields = dict(
        dataset="digits", train_fraction=0.1, arch="cnn", epochs=1, batch_size=64, verbose=0
    )
    fields.update(changes)
    return TrainConfig(output_dir=str(root / name), **fields)


@pytest.fixture(scope="module")
def normal_file(tmp_path_factory, digits):
    root = tmp_path_factory.mktemp("normal")
    train(tiny(root, "normal"), digits)
    return str(root / "normal" / "model.keras")


def test_unset_options_leave_the_identity_and_the_recorded_config_as_before(normal_file):
    plain = NastyConfig(normal_file, 0.05, 4.0)
    assert set(plain.identity()) == {"adversary_sha256", "omega", "temperature"}
    assert set(plain.settings()) == {"adversary", "omega", "temperature"}
    both = plain.replace(init_from=normal_file, omega_warmup_epochs=2)
    assert both.identity() == {
        **plain.identity(),
        "init_from_sha256": plain.identity()["adversary_sha256"],
        "omega_warmup_epochs": 2,
    }
    assert both.settings()["init_from"] == normal_file


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"omega_warmup_epochs": -1}, "omega_warmup_epochs must be an integer >= 0"),
        ({"omega_warmup_epochs": 1.5}, "omega_warmup_epochs must be an integer >= 0"),
        ({"init_from": ""}, "init_from must be a .keras file or None"),
    ],
)
def test_bad_options_are_refused(changes, message):
    with pytest.raises(InputError, match=message):
        NastyConfig("x.keras", **changes)


def test_init_from_starts_the_nasty_network_from_the_file(
    normal_file, digits, tmp_path, monkeypatch
):
    started = {}

    class Recording(NastyTeacher):
        def __init__(self, network, *args, **kwargs):
            started["weights"] = network.get_weights()  # before any training step
            super().__init__(network, *args, **kwargs)

    monkeypatch.setattr(jobs, "NastyTeacher", Recording)
    nasty = NastyConfig(normal_file, 0.05, 4.0, init_from=normal_file)
    metrics = train_nasty(tiny(tmp_path, "nasty", seed=1), nasty, digits)
    expected = load_network(normal_file, "init_from").get_weights()
    assert len(started["weights"]) == len(expected)
    for ours, theirs in zip(started["weights"], expected):
        np.testing.assert_array_equal(ours, theirs)
    assert metrics["config"]["init_from"] == normal_file
    assert metrics["config"]["init_from_sha256"] == metrics["config"]["adversary_sha256"]
    # Trained from there, not left there.
    trained = load_network(str(tmp_path / "nasty" / "model.keras"), "model").get_weights()
    assert any(not np.array_equal(a, b) for a, b in zip(trained, expected))


def _saved(path, arch, classes, digits):
    keras.utils.set_random_seed(0)
    network = models.get_model(arch, classes, digits.input_shape, mean=digits.mean, std=digits.std)
    network.save(path)
    return str(path)


@pytest.mark.parametrize(
    "arch, classes, reason",
    [
        ("cnn", 3, "has 3 classes but dataset 'digits' has 10"),
        ("preresnet20", 10, "does not hold a network of the architecture being trained"),
    ],
)
def test_init_from_refuses_a_network_that_does_not_match(
    normal_file, digits, tmp_path, arch, classes, reason
):
    other = _saved(tmp_path / "other.keras", arch, classes, digits)
    nasty = NastyConfig(normal_file, 0.05, 4.0, init_from=other)
    with pytest.raises(InputError, match=r"^init_from: ") as error:
        train_nasty(tiny(tmp_path, "nasty", seed=1), nasty, digits)
    assert reason in str(error.value)
    assert str(error.value).endswith(f"Received: init_from={other!r}")
    assert not os.path.exists(tmp_path / "nasty" / "config.json")  # refused before it started


def test_the_warmup_schedule_is_linear_from_zero_to_one():
    assert [float(omega_warmup_scale(step, 4)) for step in (0, 1, 2, 4, 9)] == [
        0.0,
        0.25,
        0.5,
        1.0,
        1.0,
    ]
    assert float(omega_warmup_scale(0, 0)) == 1.0  # no warm-up: omega from the first step


def _wrapper(warmup_steps, seed=0):
    keras.utils.set_random_seed(seed)

    def network():
        return keras.Sequential(
            [keras.Input((6,)), keras.layers.Dense(8, activation="relu"), keras.layers.Dense(3)]
        )

    model = NastyTeacher(network(), network(), omega=0.5, omega_warmup_steps=warmup_steps)
    model.compile(optimizer=keras.optimizers.SGD(0.01))
    return model


def test_a_warmup_trains_at_omega_times_the_schedule_step_by_step():
    model = _wrapper(warmup_steps=4)
    x = np.random.default_rng(0).normal(size=(16, 6)).astype("float32")
    y = np.arange(16) % 3
    for step in range(6):
        logs = model.train_on_batch(x, y, return_dict=True)
        expected = logs["ce"] - 0.5 * min(step / 4, 1.0) * logs["kl"]
        assert logs["kl"] > 0
        assert logs["loss"] == pytest.approx(expected, rel=1e-4, abs=1e-5), step
    assert float(model.omega_warmup_step.value) == 6
    # Evaluation reads the schedule without counting a step.
    model.evaluate(x, y, verbose=0)
    assert float(model.omega_warmup_step.value) == 6


def test_the_warmup_step_is_saved_and_restored_with_the_backup(tmp_path):
    model = _wrapper(warmup_steps=10)
    x = np.random.default_rng(0).normal(size=(16, 6)).astype("float32")
    model.fit(x, np.arange(16) % 3, batch_size=8, epochs=1, verbose=0)  # 2 steps
    backup = TrainingBackup(str(tmp_path / "backup"))
    backup.set_model(model)
    backup.save(1)
    resumed = _wrapper(warmup_steps=10, seed=1)
    resumed(x[:1])
    backup.set_model(resumed)
    backup.on_train_begin()
    assert float(resumed.omega_warmup_step.value) == 2
    assert int(resumed.optimizer.iterations.value) == int(model.optimizer.iterations.value) == 2


def test_without_a_warmup_the_wrapper_has_no_extra_variable():
    model = _wrapper(warmup_steps=0)
    assert model.omega_warmup_step is None
    assert all("omega_warmup" not in v.path for v in model.variables)


def test_a_warmup_is_given_in_epochs_of_the_run(normal_file, digits, tmp_path, monkeypatch):
    made = {}

    class Recording(NastyTeacher):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            made["model"] = self

    monkeypatch.setattr(jobs, "NastyTeacher", Recording)
    nasty = NastyConfig(normal_file, 0.05, 4.0, omega_warmup_epochs=2)
    metrics = train_nasty(tiny(tmp_path, "nasty", seed=1, batch_size=32), nasty, digits)
    steps_per_epoch = -(-len(digits.x_train) // 32)
    assert made["model"].omega_warmup_steps == 2 * steps_per_epoch
    assert float(made["model"].omega_warmup_step.value) == steps_per_epoch  # one epoch ran
    assert metrics["config"]["omega_warmup_epochs"] == 2
    assert "init_from" not in metrics["config"]


class _Stop(Exception):
    pass


@pytest.mark.single_pass  # protocol wiring only
def test_protocols_pass_the_options_to_their_nasty_teacher(tmp_path, monkeypatch):
    from nasty_tf import protocols
    from nasty_tf.protocols import teacher_student
    from nasty_tf.protocols.teacher_student import Stage

    given = []

    def stop_at_the_nasty_teacher(config, nasty, *args, **kwargs):
        given.append(nasty)
        raise _Stop

    monkeypatch.setattr(teacher_student, "train_nasty", stop_at_the_nasty_teacher)
    settings = protocols.get_protocol("digits_demo").default_settings()
    assert not settings.nasty_init_from_normal and settings.omega_warmup_epochs == 0
    settings = settings.replace(
        train_fraction=0.1,
        teacher=Stage("cnn", 1, batch_size=64),
        students=(Stage("cnn", 1, batch_size=64),),
        figures=False,
        verbose=0,
    )
    for changes in ({}, {"nasty_init_from_normal": True, "omega_warmup_epochs": 1}):
        with pytest.raises(_Stop):  # the normal teacher is trained once, then reused
            teacher_student.run("digits_demo", settings.replace(**changes), str(tmp_path))
    unset, both = given
    assert unset.init_from is None and unset.omega_warmup_epochs == 0
    assert both.init_from == str(tmp_path / "teacher_normal" / "model.keras")
    assert both.omega_warmup_epochs == 1
    assert both.adversary == both.init_from


def test_owner_ablations_keep_the_protocol_nasty_options(monkeypatch):
    from nasty_tf.protocols import owner_ablations
    from nasty_tf.protocols.teacher_student import Stage

    protocol_nasty = NastyConfig(
        "normal.keras", 0.1, 4.0, init_from="normal.keras", omega_warmup_epochs=2
    )
    ablations = owner_ablations.OwnerAblations(
        settings=None,
        teacher_config=TrainConfig(arch="cnn"),
        nasty_config=TrainConfig(arch="cnn"),
        nasty_settings=protocol_nasty,
        student_configs=[(Stage("cnn", 1), 0, TrainConfig(arch="cnn"))],
        dataset=None,
        output_dir="out",
        on_finished="reuse",
        main_dirs={},
        main_nasty=None,
    )
    trained = []  # only which NastyConfig each owner-side nasty teacher gets; nothing trains
    monkeypatch.setattr(
        ablations, "_nasty_teacher", lambda nasty, what: trained.append(nasty) or ("t", {})
    )
    monkeypatch.setattr(ablations, "_students", lambda *args: [{}])
    monkeypatch.setattr(ablations, "_adversary", lambda arch: (f"{arch}.keras", {"accuracy": 1}))
    ablations.omega_sweep((0.05,))
    ablations.adversary_ablation(("preresnet20",))
    swept, other_adversary = trained
    assert swept == protocol_nasty.replace(omega=0.05)
    # The nasty network is still the protocol's arch: it starts from the protocol's teacher.
    assert other_adversary == protocol_nasty.replace(adversary="preresnet20.keras")


@pytest.mark.single_pass  # the binary runs on the default backend
def test_train_nasty_records_its_new_flags(normal_file, tmp_path):
    result = run_tool_in_process(
        "train_nasty",
        f"--adversary={normal_file}",
        f"--init_from={normal_file}",
        "--omega_warmup_epochs=1",
        "--train_fraction=0.1",
        "--epochs=1",
        "--verbose=0",
        f"--output_dir={tmp_path / 'nasty'}",
    )
    assert result.returncode == 0, result.stderr[-2000:]
    config = json.load(open(tmp_path / "nasty" / "metrics.json"))["config"]
    assert config["init_from"] == normal_file and config["omega_warmup_epochs"] == 1
    assert "init_from_sha256" in config
