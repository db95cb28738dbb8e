"""The paper's Table 1 experiment, parametrised: teachers, then students by three routes.

1. a normal teacher (it becomes the adversary); 2. a nasty teacher trained against it
(eq. 2); 3. for every student architecture and seed: the student from scratch, by KD from
the normal teacher, and by KD from the nasty teacher (eq. 1). Every stage is an ordinary
run directory under the protocol's output directory, so an interrupted protocol resumes
where it stopped and a finished stage is reused when its config is unchanged.
"""

import dataclasses
import os
import time

from nasty_tf import report as report_lib
from nasty_tf.training import DistillConfig, NastyConfig, TrainConfig, distill, load_data
from nasty_tf.training import train, train_nasty


@dataclasses.dataclass(frozen=True)
class Stage:
    """How one network is trained: architecture and schedule."""

    arch: str
    epochs: int
    optimizer: str = "adam"
    learning_rate: float = 1e-3
    lr_schedule: str = "constant"
    weight_decay: float = 0.0
    batch_size: int = 128


@dataclasses.dataclass(frozen=True)
class TeacherStudentSettings:
    """Everything a teacher/student protocol run depends on (stored in `report.json`).

    The nasty teacher uses the normal teacher's architecture and schedule, as in the
    reference. `temperature` is tau_A (eq. 2) and `kd_temperature` tau_s (eq. 1).
    """

    dataset: str
    teacher: Stage
    students: tuple
    omega: float
    temperature: float
    alpha: float
    kd_temperature: float
    student_seeds: tuple = (0,)
    data_dir: str | None = None
    train_fraction: float = 1.0
    seed: int = 0
    augment: bool = True
    verbose: int = 2

    def replace(self, **changes):
        return dataclasses.replace(self, **changes)


def _train_config(settings, stage, output_dir, seed):
    return TrainConfig(
        dataset=settings.dataset,
        data_dir=settings.data_dir,
        train_fraction=settings.train_fraction,
        arch=stage.arch,
        epochs=stage.epochs,
        batch_size=stage.batch_size,
        optimizer=stage.optimizer,
        learning_rate=stage.learning_rate,
        lr_schedule=stage.lr_schedule,
        weight_decay=stage.weight_decay,
        augment=settings.augment,
        seed=seed,
        output_dir=output_dir,
        verbose=settings.verbose,
    )


def _announce(what):
    print(f"== {what}", flush=True)


def run(name, settings, output_dir, on_finished="reuse"):
    """Runs the protocol and writes `report.json` and `report.md` into `output_dir`.

    Args:
        name: the protocol's registry name (recorded in the report).
        settings: a `TeacherStudentSettings`.
        output_dir: the protocol's directory; each stage gets a subdirectory.
        on_finished: "reuse" finished stages (resume) or "overwrite" them.

    Returns:
        The report dict (see `nasty_tf.report.build_report`).
    """
    started = time.time()
    # Validate every config before the first (possibly long) stage starts.
    teacher_config = _train_config(
        settings, settings.teacher, os.path.join(output_dir, "teacher_normal"), settings.seed
    )
    # Another seed than the adversary's: at identical weights the KL term has zero gradient.
    nasty_config = teacher_config.replace(
        output_dir=os.path.join(output_dir, "teacher_nasty"), seed=settings.seed + 1
    )
    nasty_settings = NastyConfig(
        os.path.join(teacher_config.output_dir, "model.keras"), settings.omega, settings.temperature
    )
    kd_settings = {
        route: DistillConfig(
            os.path.join(output_dir, f"teacher_{route}", "model.keras"),
            settings.alpha,
            settings.kd_temperature,
        )
        for route in ("normal", "nasty")
    }
    student_configs = [
        (stage, seed, _train_config(settings, stage, "", seed))
        for stage in settings.students
        for seed in settings.student_seeds
    ]
    dataset = load_data(teacher_config)

    _announce(f"normal teacher {settings.teacher.arch}")
    normal = train(teacher_config, dataset, on_finished)
    _announce(f"nasty teacher {settings.teacher.arch} (omega={settings.omega}, tau_A={settings.temperature})")
    nasty = train_nasty(nasty_config, nasty_settings, dataset, on_finished)

    students = []
    for stage, seed, config in student_configs:
        run_dir = os.path.join(output_dir, "students", f"{stage.arch}_seed{seed}")
        _announce(f"student {stage.arch} seed {seed}: scratch")
        result = train(config.replace(output_dir=os.path.join(run_dir, "scratch")), dataset, on_finished)
        students.append(report_lib.student_row(stage.arch, "none", seed, result))
        for route in ("normal", "nasty"):
            _announce(f"student {stage.arch} seed {seed}: KD from the {route} teacher")
            kd_config = config.replace(output_dir=os.path.join(run_dir, f"kd_{route}"))
            result = distill(kd_config, kd_settings[route], dataset, on_finished)
            students.append(report_lib.student_row(stage.arch, route, seed, result))

    report = report_lib.build_report(
        protocol=name,
        settings=dataclasses.asdict(settings),
        normal=normal,
        nasty=nasty,
        student_runs=students,
        seconds=time.time() - started,
    )
    report_lib.write_report(report, output_dir)
    return report
