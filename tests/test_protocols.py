"""The paper's named protocols: registry, released defaults, `--epochs_scale`, student
overrides, and refusals of given teacher files that do not fit (tests/test_tools.py runs
`tools.reproduce` from given teachers)."""

import json
import os

import numpy as np
import pytest

from nasty_tf import protocols
from nasty_tf.errors import InputError
from nasty_tf.protocols import teacher_student
from nasty_tf.protocols.teacher_student import TEACHER_SELF, Stage
from nasty_tf.training import TrainConfig
from nasty_tf.training.optimizers import learning_rate_schedule

TABLES = ("table1_cifar10", "table2_cifar100", "table3_tiny_imagenet", "table5_cifar100")


def test_registry_lists_the_paper_protocols():
    assert set(TABLES) | {"digits_demo", "cifar10_cpu", "fast_cifar10"} == set(protocols.PROTOCOLS)
    for name in TABLES:
        module = protocols.get_protocol(name)
        assert module.NAME == name and module.DESCRIPTION and module.__doc__
        # Each names where the paper's text and the released configs differ.
        assert "released" in module.__doc__ and "last epoch" in module.__doc__


def _sgd(arch, epochs, milestones, decay):
    return Stage(arch, epochs, "sgd", 0.1, "multistep", milestones, decay, 5e-4, 128)


def test_table1_carries_the_released_cifar10_configs():
    settings = protocols.get_protocol("table1_cifar10").default_settings()
    schedule = dict(epochs=160, milestones=(0.5, 0.75), decay=0.1)  # x0.1 at 80, 120
    assert settings.dataset == "cifar10"
    assert settings.teacher == _sgd("resnet18", **schedule)
    assert settings.students == (
        Stage("cnn", 100, "adam", 1e-3, "constant", batch_size=128),
        _sgd("preresnet20", **schedule),
        _sgd("preresnet32", **schedule),
        _sgd(TEACHER_SELF, **schedule),
    )
    assert (settings.omega, settings.temperature) == (0.04, 4.0)  # the text says 0.004
    assert (settings.alpha, settings.kd_temperature) == (0.9, 4.0)
    archs = [stage.arch for stage in teacher_student.resolved_students(settings)]
    assert archs == ["cnn", "preresnet20", "preresnet32", "resnet18"]


@pytest.mark.parametrize(
    "name, dataset, omega",
    [("table2_cifar100", "cifar100", 0.005), ("table3_tiny_imagenet", "tiny_imagenet", 0.01)],
)
def test_tables_2_and_3_carry_the_released_configs(name, dataset, omega):
    settings = protocols.get_protocol(name).default_settings()
    schedule = dict(epochs=200, milestones=(0.3, 0.6, 0.8), decay=0.2)  # x0.2 at 60, 120, 160
    assert settings.dataset == dataset and settings.omega == omega
    assert settings.teacher == _sgd("resnet18", **schedule)
    archs = ("shufflenetv2", "mobilenetv2", "resnet18", TEACHER_SELF)
    assert settings.students == tuple(_sgd(arch, **schedule) for arch in archs)
    assert (settings.temperature, settings.alpha, settings.kd_temperature) == (20.0, 0.9, 20.0)
    # "Teacher Self" is the ResNet-18 student under a ResNet-18 teacher: trained once ...
    resolved = [stage.arch for stage in teacher_student.resolved_students(settings)]
    assert resolved == ["shufflenetv2", "mobilenetv2", "resnet18"]
    # ... and a column of its own under another teacher (the paper's ResNet-50 rows).
    other = settings.replace(teacher=_sgd("resnet50", **schedule))
    assert [s.arch for s in teacher_student.resolved_students(other)] == resolved + ["resnet50"]


def test_epochs_scale_keeps_the_schedules_shape():
    settings = protocols.get_protocol("table2_cifar100").default_settings()
    short = teacher_student.scale_epochs(settings, 0.1)
    assert short.teacher.epochs == 20 and {s.epochs for s in short.students} == {20}
    assert short.teacher.lr_milestones == (0.3, 0.6, 0.8) and short.teacher.lr_decay == 0.2
    config = TrainConfig(
        optimizer="sgd",
        epochs=short.teacher.epochs,
        learning_rate=0.1,
        lr_schedule="multistep",
        lr_milestones=short.teacher.lr_milestones,
        lr_decay=short.teacher.lr_decay,
    )
    schedule = learning_rate_schedule(config, steps_per_epoch=10)
    rates = [float(schedule(epoch * 10)) for epoch in (5, 6, 11, 12, 15, 16)]
    np.testing.assert_allclose(rates, [0.1, 0.02, 0.02, 0.004, 0.004, 0.0008], rtol=1e-5)
    table1 = teacher_student.scale_epochs(
        protocols.get_protocol("table1_cifar10").default_settings(), 0.001
    )
    assert table1.teacher.epochs == 1 and {s.epochs for s in table1.students} == {1}  # at least 1
    with pytest.raises(InputError, match="^epochs_scale must be > 0. Received: epochs_scale=0.0"):
        teacher_student.scale_epochs(settings, 0.0)


def test_overridden_students_keep_their_own_schedule_or_take_the_last_one():
    settings = protocols.get_protocol("table1_cifar10").default_settings()
    students = teacher_student.with_student_archs(settings, ["cnn", "resnet34"]).students
    assert students[0] == settings.students[0]  # the CNN keeps Adam
    assert students[1].optimizer == "sgd" and students[1].arch == "resnet34"
    with pytest.raises(InputError, match="^student_archs must name at least one"):
        teacher_student.with_student_archs(settings, [])


def test_unknown_architectures_are_refused_before_anything_trains(tmp_path):
    settings = protocols.get_protocol("digits_demo").default_settings()
    bad = teacher_student.with_student_archs(settings, ["resnet9000"])
    with pytest.raises(InputError, match="^student_archs: unknown architecture 'resnet9000'"):
        teacher_student.run("digits_demo", bad, str(tmp_path))
    assert not os.path.exists(tmp_path / "teacher_normal")


def test_a_wrong_given_teacher_is_refused(given_teachers, tmp_path):
    settings = protocols.get_protocol("digits_demo").default_settings()
    wrong = settings.replace(
        teacher=Stage("preresnet20", 1), normal_teacher=given_teachers["normal"]
    )
    with pytest.raises(InputError, match="^normal_teacher: .* holds a cnn network .* arch=cnn"):
        teacher_student.run("digits_demo", wrong, str(tmp_path))
    missing = settings.replace(nasty_teacher=str(tmp_path / "missing.keras"))
    with pytest.raises(InputError, match="^nasty_teacher: no such file"):
        teacher_student.run("digits_demo", missing, str(tmp_path))


def _tiny_image_folder(root, per_class=6):
    """A 10-class image folder of random 32x32 JPEGs (train and test), like the CIFAR copy."""
    from PIL import Image

    rng = np.random.default_rng(0)
    for split in ("train", "test"):
        for label in range(10):
            folder = root / split / f"class{label}"
            folder.mkdir(parents=True)
            for index in range(per_class):
                pixels = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
                Image.fromarray(pixels).save(folder / f"{index}.jpg")
    return str(root)


@pytest.mark.single_pass  # protocol wiring only; the JAX pass covers the same stages elsewhere
def test_cifar10_cpu_reads_the_shared_copy_and_reports_its_omega_sweep(tmp_path):
    settings = protocols.get_protocol("cifar10_cpu").default_settings()
    assert settings.dataset == "image_folder"
    assert (
        settings.data_dir is None
    )  # tools.reproduce gives it the shared copy (tests/test_tools.py)
    assert not settings.sweeps  # about half an hour: the omega sweep is asked for by flag
    tiny = settings.replace(
        data_dir=_tiny_image_folder(tmp_path / "data"),
        train_fraction=1.0,
        teacher=Stage("cnn", 1, batch_size=32),
        students=(Stage("cnn", 1, batch_size=32),),
        sweeps={"omega": (0.04, settings.omega)},
        figures=False,
        verbose=0,
    )
    report = protocols.get_protocol("cifar10_cpu").run(tiny, str(tmp_path / "run"))
    assert [entry["value"] for entry in report["owner"]["omega"]] == [0.04, settings.omega]
    assert (
        report["owner"]["omega"][1]["teacher"]["accuracy"]
        == report["teachers"]["nasty"]["accuracy"]
    )
    assert (tmp_path / "run" / "sweep_omega.png").exists()


@pytest.mark.single_pass  # protocol wiring only
def test_fast_cifar10_trains_every_stage_in_bfloat16(tmp_path):
    settings = protocols.get_protocol("fast_cifar10").default_settings()
    assert settings.precision == "mixed_bfloat16" and settings.teacher.arch == "resnet18"
    assert settings.teacher.batch_size == 500 and settings.teacher.lr_schedule == "warmup_cosine"
    # Full batches only in both CIFAR-10 splits: one XLA program per step under JAX.
    assert all(
        50_000 % s.batch_size == 0 == 10_000 % s.batch_size
        for s in (settings.teacher, *settings.students)
    )
    assert [stage.arch for stage in settings.students] == ["cnn", "preresnet20", "self"]
    tiny = settings.replace(
        data_dir=_tiny_image_folder(tmp_path / "data"),
        teacher=Stage(
            "cnn",
            1,
            batch_size=32,
            optimizer="sgd",
            learning_rate=0.05,
            lr_schedule="warmup_cosine",
        ),
        students=(Stage("cnn", 1, batch_size=32),),
        verbose=0,
    )
    report = protocols.get_protocol("fast_cifar10").run(tiny, str(tmp_path / "run"))
    assert {student["teacher"] for student in report["students"]} == {"none", "normal", "nasty"}
    metrics = json.load(open(tmp_path / "run" / "teacher_nasty" / "metrics.json"))
    assert (
        metrics["precision"] == "mixed_bfloat16"
        and metrics["config"]["precision"] == "mixed_bfloat16"
    )
