"""The paper's Table 1 experiment, parametrised: teachers, then students by three routes.

1. a normal teacher (it becomes the adversary); 2. a nasty teacher trained against it
(eq. 2); 3. for every student architecture and seed: the student from scratch, by KD from
the normal teacher, and by KD from the nasty teacher (eq. 1); 4. the stealer sweeps of
`settings.sweeps` (tau_s, alpha, training fraction; `nasty_tf.protocols.battery`); 5. the
owner-side ablations (omega, Fig. 3; adversary architecture, Table 4;
`nasty_tf.protocols.owner_ablations`); 6. data-free stealers (DAFL, DeepInversion; Table 5;
`nasty_tf.protocols.datafree_attacks`); 7. with `settings.matrix_stealers`, the defences x
stealers matrix of the two teachers (`nasty_tf.audit.audit_matrix`, in `matrix/`). Every
stage is an ordinary run directory under the protocol's output directory, so an interrupted
protocol resumes where it stopped and a finished stage is reused when its config is unchanged.

Teachers trained elsewhere can stand in for steps 1 and 2 (`normal_teacher`,
`nasty_teacher`: `.keras` files): they are loaded and evaluated instead of trained, and the
report shows their accuracies as it would for trained ones. A student stage whose arch is
`TEACHER_SELF` takes the teacher's architecture: the paper's "Teacher Self" column.
"""

import dataclasses
import math
import os
import time

from nasty_tf import figures, models
from nasty_tf import report as report_lib
from nasty_tf.errors import InputError, check_count
from nasty_tf.protocols import battery, datafree_attacks, owner_ablations
from nasty_tf.training import (
    DistillConfig,
    NastyConfig,
    TrainConfig,
    distill,
    load_data,
    load_network,
    train,
    train_nasty,
)
from nasty_tf.training.evaluation import accuracy_percent, adversarial_kl, predict_logits

# A student arch that stands for the teacher's own ("Teacher Self" in the paper's tables).
TEACHER_SELF = "self"
# Where the defences x stealers matrix goes, under the protocol's output directory.
MATRIX_DIR = "matrix"


@dataclasses.dataclass(frozen=True)
class Stage:
    """How one network is trained: architecture and schedule."""

    arch: str
    epochs: int
    optimizer: str = "adam"
    learning_rate: float = 1e-3
    lr_schedule: str = "constant"
    lr_milestones: tuple = ()
    lr_decay: float = 0.1
    weight_decay: float = 0.0
    batch_size: int = 128


@dataclasses.dataclass(frozen=True)
class TeacherStudentSettings:
    """Everything a teacher/student protocol run depends on (stored in `report.json`).

    The nasty teacher uses the normal teacher's architecture and schedule, as in the
    reference. `temperature` is tau_A (eq. 2) and `kd_temperature` tau_s (eq. 1).
    `normal_teacher` / `nasty_teacher`: optional `.keras` files used instead of training
    that teacher (a given normal teacher is also the adversary of a nasty one trained here).
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
    data_cache_dir: str | None = None
    train_fraction: float = 1.0
    seed: int = 0
    augment: bool = True
    figures: bool = True
    verbose: int = 2
    normal_teacher: str | None = None
    nasty_teacher: str | None = None
    # Stealer-battery sweeps, dimension -> values (see `nasty_tf.protocols.battery`), e.g.
    # {"kd_temperature": (1.0, 4.0, 10.0)}: for the first student arch and every seed;
    # "omega" sweeps the nasty teacher's omega (Fig. 3, `owner_ablations`).
    sweeps: dict = dataclasses.field(default_factory=dict)
    # Adversary architectures of the Table 4 ablation (`owner_ablations`); empty: none.
    adversary_archs: tuple = ()
    # Data-free stealers (Table 5, `datafree_attacks`): methods, e.g. ("dafl",), and per
    # method `DataFreeConfig` overrides that scale the attack to the protocol.
    datafree: tuple = ()
    datafree_options: dict = dataclasses.field(default_factory=dict)
    # "coupled" (PyTorch's SGD weight decay, the reference) or "decoupled", for SGD stages.
    weight_decay_mode: str = "coupled"
    # Where every stage trains (`nasty_tf.distribute.STRATEGIES`); not part of any run's key.
    strategy: str = "auto"
    # Every stage's `TrainConfig.evaluate_every` and `backup_every`: how often a run evaluates
    # the test split for its history and writes its resumable backup. Not part of any run's
    # key: they change a run's cost, not its result.
    evaluate_every: int = 1
    backup_every: int = 1
    # Every stage's Keras dtype policy (`nasty_tf.training.precision`); float32 is the reference's.
    precision: str = "float32"
    # How every network trained here starts (`nasty_tf.models.INITS`): "keras" (Keras'
    # defaults) or "reference" (the reference PyTorch models' initialisers; the paper
    # protocols' default, docs/reference_differences.md).
    init: str = "keras"
    # The nasty teacher's cost-cutting options (issue 18, "the owner's cost"; every nasty
    # teacher trained here, owner ablations included, follows them): start it from the normal
    # teacher's weights (`NastyConfig.init_from` = the normal teacher's model.keras) instead of
    # a fresh network; ramp omega linearly from 0 over this many epochs
    # (`NastyConfig.omega_warmup_epochs`, not scaled by `scale_epochs`).
    nasty_init_from_normal: bool = False
    omega_warmup_epochs: int = 0
    # The defences x stealers matrix (issue 20; `nasty_tf.audit.audit_matrix`): the stealers
    # that attack each of plain, nasty, stingy and nasty+stingy, or ("all",) / ("served",)
    # (`matrix_stealer_names`). Empty (the default): no matrix; it trains about
    # 4 x stealers + 3 students of the first student stage's schedule.
    matrix_stealers: tuple = ()
    # With `skeptical` among them: each defence's audit chooses its loc and kd_delay on its
    # own validation split (`nasty_tf.audit.skeptical_search` at the matrix's epochs).
    matrix_search_skeptical: bool = False
    # The matrix students' epochs; None: the first student stage's. Its students train on
    # augmented batches with a validation split held out, which converges later than the
    # protocol's own students (issue 20: doubling the schedule must not change a verdict).
    matrix_epochs: int | None = None
    # Where the matrix's validation split comes from (`AuditConfig.validation_split`): "carved"
    # from its students' training split, or "unseen" from the training images that
    # `train_fraction` leaves out, which the teachers never saw.
    matrix_validation_split: str = "carved"

    def replace(self, **changes):
        return dataclasses.replace(self, **changes)


def scale_epochs(settings, factor):
    """Settings with every stage's epochs, and `matrix_epochs` where set, multiplied by `factor`
    (rounded, at least 1).

    Milestones are fractions of a stage's epochs, so the schedule keeps its shape: at
    `factor=0.1` the 200-epoch x0.2-at-60/120/160 schedule becomes 20 epochs with drops at
    6, 12 and 16.

    Raises:
        InputError: `factor` is not a positive number.
    """
    if not (isinstance(factor, (int, float)) and math.isfinite(factor) and factor > 0):
        raise InputError(f"epochs_scale must be > 0. Received: epochs_scale={factor}")

    def scaled_epochs(epochs):
        return max(1, round(epochs * factor))

    def scaled(stage):
        return dataclasses.replace(stage, epochs=scaled_epochs(stage.epochs))

    matrix_epochs = settings.matrix_epochs
    return settings.replace(
        teacher=scaled(settings.teacher),
        students=tuple(scaled(s) for s in settings.students),
        matrix_epochs=None if matrix_epochs is None else scaled_epochs(matrix_epochs),
    )


def with_student_archs(settings, archs):
    """Settings whose students are `archs`, in that order.

    An arch the protocol already lists keeps its own stage (e.g. the plain CNN's Adam
    schedule in Table 1); any other arch takes the schedule of the protocol's last student
    stage. `TEACHER_SELF` ("self") stands for the teacher's architecture.
    """
    if not archs:
        raise InputError("student_archs must name at least one architecture")
    known = {stage.arch: stage for stage in settings.students}
    template = settings.students[-1]
    return settings.replace(
        students=tuple(known.get(arch, dataclasses.replace(template, arch=arch)) for arch in archs)
    )


def resolved_students(settings):
    """The student stages with `TEACHER_SELF` replaced by the teacher's arch, duplicates dropped.

    With a ResNet-18 teacher, "Teacher Self" *is* the ResNet-18 student (the paper's Tables 2
    and 3 print the same numbers twice); it is trained once.
    """
    stages, seen = [], set()
    for stage in settings.students:
        if stage.arch == TEACHER_SELF:
            stage = dataclasses.replace(stage, arch=settings.teacher.arch)
        if stage.arch not in seen:
            seen.add(stage.arch)
            stages.append(stage)
    return tuple(stages)


def _train_config(settings, stage, output_dir, seed):
    return TrainConfig(
        dataset=settings.dataset,
        data_dir=settings.data_dir,
        data_cache_dir=settings.data_cache_dir,
        train_fraction=settings.train_fraction,
        precision=settings.precision,
        arch=stage.arch,
        init=settings.init,
        epochs=stage.epochs,
        batch_size=stage.batch_size,
        optimizer=stage.optimizer,
        learning_rate=stage.learning_rate,
        lr_schedule=stage.lr_schedule,
        lr_milestones=stage.lr_milestones,
        lr_decay=stage.lr_decay,
        weight_decay=stage.weight_decay,
        weight_decay_mode=settings.weight_decay_mode,
        augment=settings.augment,
        seed=seed,
        output_dir=output_dir,
        verbose=settings.verbose,
        strategy=settings.strategy,
        evaluate_every=settings.evaluate_every,
        backup_every=settings.backup_every,
    )


def _announce(what):
    print(f"== {what}", flush=True)


def _load_given(path, argument, dataset, arch):
    """Loads a teacher given by file; it must be the protocol's teacher architecture."""
    network = load_network(path, argument, dataset)
    # Files this toolkit wrote name the network after its arch; a foreign name is let through.
    if network.name in models.available_models() and network.name != arch:
        raise InputError(
            f"{argument}: {path!r} holds a {network.name} network but the protocol's teacher is "
            f"{arch}; pass arch={network.name}"
        )
    return network


def _given_metrics(network, path, dataset, arch):
    logits = predict_logits(network, dataset.x_test)
    metrics = {
        "accuracy": accuracy_percent(logits, dataset.y_test),
        "arch": arch,
        "file": path,
        "train_seconds": None,
    }
    return metrics, logits


def _given_nasty_metrics(network, settings, dataset, normal_path):
    """Metrics of a given nasty teacher, with its adversarial KL against the normal teacher."""
    metrics, logits = _given_metrics(
        network, settings.nasty_teacher, dataset, settings.teacher.arch
    )
    normal_logits = predict_logits(
        load_network(normal_path, "normal_teacher", dataset), dataset.x_test
    )
    metrics["adversarial_kl"] = adversarial_kl(logits, normal_logits, settings.temperature)
    metrics["adversary_accuracy"] = accuracy_percent(normal_logits, dataset.y_test)
    return metrics


def matrix_config(settings, teacher_files, output_dir):
    """The `MatrixConfig` of the protocol's defences x stealers matrix, or None without one.

    Its students take the first student stage's architecture and schedule (its epochs unless
    `settings.matrix_epochs` sets them), the protocol's
    student seeds and data (dataset, training fraction), its validation split from
    `settings.matrix_validation_split`, and a data-free stealer the
    protocol's `datafree_options` for its method, and its augmentation (`augment`). The audit
    trains with a constant learning rate and no weight decay, so a stage with a decaying
    schedule or weight decay is refused rather than silently changed.

    Raises:
        InputError: an unknown stealer name, or a student stage the audit cannot follow.
    """
    from nasty_tf.audit import DATA_FREE_STEALERS, MatrixConfig
    from nasty_tf.audit.matrix import matrix_stealer_names

    if not settings.matrix_stealers:
        return None
    names = matrix_stealer_names(settings.matrix_stealers)
    stage = resolved_students(settings)[0]
    epochs = stage.epochs if settings.matrix_epochs is None else settings.matrix_epochs
    check_count("matrix_epochs", epochs)
    if settings.matrix_validation_split == "unseen":
        if settings.train_fraction == 1.0:
            raise InputError(
                "matrix_validation_split='unseen' needs `train_fraction` below 1: the teachers "
                "trained on the whole training split, none of it is unseen. "
                "Received: train_fraction=1.0"
            )
        # The audits draw the subset with their first seed; the teachers' was `settings.seed`.
        if settings.student_seeds[0] != settings.seed:
            raise InputError(
                "matrix_validation_split='unseen' draws the teachers' training subset with the "
                f"first student seed, so it must be the protocol's seed ({settings.seed}) to "
                "leave out only images the teachers never saw. "
                f"Received: student_seeds={','.join(map(str, settings.student_seeds))}"
            )
    audit_like = stage.lr_schedule == "constant" and not stage.weight_decay
    if not (audit_like and stage.optimizer in ("adam", "sgd")):
        raise InputError(
            "matrix_stealers: the matrix's students train as the audit does (adam or sgd at a "
            "constant learning rate, no weight decay), but the protocol's first student stage is "
            f"{stage.arch} with {stage.optimizer}, lr_schedule {stage.lr_schedule}, weight_decay "
            f"{stage.weight_decay}; put a constant-rate student first (`student_archs`). "
            f"Received: matrix_stealers={','.join(settings.matrix_stealers)}"
        )
    return MatrixConfig(
        normal=teacher_files["normal"],
        nasty=teacher_files["nasty"],
        output_dir=os.path.join(output_dir, MATRIX_DIR),
        stealers=names,
        stealer_params={
            name: dict(settings.datafree_options[name])
            for name in names
            if name in DATA_FREE_STEALERS and name in settings.datafree_options
        }
        or None,
        dataset=settings.dataset,
        data_dir=settings.data_dir,
        data_cache_dir=settings.data_cache_dir,
        train_fraction=settings.train_fraction,
        arch=stage.arch,
        epochs=epochs,
        optimizer=stage.optimizer,
        learning_rate=stage.learning_rate,
        batch_size=stage.batch_size,
        seeds=tuple(settings.student_seeds),
        validation_split=settings.matrix_validation_split,
        augment=settings.augment,
        verbose=settings.verbose,
        stealer_search=_matrix_search(settings, names, epochs),
    )


def _matrix_search(settings, names, epochs):
    """`settings.matrix_search_skeptical` as `MatrixConfig.stealer_search`."""
    from nasty_tf.audit import skeptical_search

    if not settings.matrix_search_skeptical:
        return None
    if "skeptical" not in names:
        raise InputError(
            "matrix_search_skeptical searches the skeptical stealer, which matrix_stealers "
            f"leaves out. Received: matrix_stealers={','.join(settings.matrix_stealers)}"
        )
    return {"skeptical": skeptical_search(epochs)}


def _scratch_accuracy(student_rows, arch):
    accuracies = [
        row["accuracy"] for row in student_rows if row["arch"] == arch and row["teacher"] == "none"
    ]
    return sum(accuracies) / len(accuracies)


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
    if settings.strategy == "multi_worker":
        # Every worker would write the report and figures; the single-run binaries handle it.
        raise InputError(
            "strategy=multi_worker trains single runs (tools.train, train_nasty, distill); "
            "a protocol runs on one host: use strategy=auto or mirrored"
        )
    # Validate every config before the first (possibly long) stage starts.
    teacher_config = _train_config(
        settings, settings.teacher, os.path.join(output_dir, "teacher_normal"), settings.seed
    )
    # Another seed than the adversary's: at identical weights the KL term has zero gradient.
    # (With `nasty_init_from_normal` the network does start at the adversary's weights, on
    # purpose; the cross-entropy's gradient moves it off that point, which maximises -KL.)
    nasty_config = teacher_config.replace(
        output_dir=os.path.join(output_dir, "teacher_nasty"), seed=settings.seed + 1
    )
    teacher_files = {
        "normal": settings.normal_teacher or os.path.join(teacher_config.output_dir, "model.keras"),
        "nasty": settings.nasty_teacher or os.path.join(nasty_config.output_dir, "model.keras"),
    }
    nasty_settings = NastyConfig(
        teacher_files["normal"],
        settings.omega,
        settings.temperature,
        init_from=teacher_files["normal"] if settings.nasty_init_from_normal else None,
        omega_warmup_epochs=settings.omega_warmup_epochs,
    )
    kd_settings = {
        route: DistillConfig(teacher_files[route], settings.alpha, settings.kd_temperature)
        for route in ("normal", "nasty")
    }
    student_stages = resolved_students(settings)
    for argument, stage in [("arch", settings.teacher)] + [
        ("student_archs", s) for s in student_stages
    ]:
        if stage.arch not in models.available_models():
            raise InputError(
                f"{argument}: unknown architecture {stage.arch!r}. "
                f"Available: {', '.join(models.available_models())}, or '{TEACHER_SELF}' for students"
            )
    student_configs = [
        (stage, seed, _train_config(settings, stage, "", seed))
        for stage in student_stages
        for seed in settings.student_seeds
    ]
    sweeps = battery.check_sweeps(settings.sweeps)
    adversary_archs = owner_ablations.check_adversary_archs(
        settings.adversary_archs, models.available_models()
    )
    datafree_methods = datafree_attacks.check_methods(settings.datafree, settings.datafree_options)
    matrix_settings = matrix_config(settings, teacher_files, output_dir)
    if matrix_settings is not None:
        from nasty_tf.audit.matrix import check_matrix_config

        check_matrix_config(matrix_settings)
    dataset = load_data(teacher_config)
    arch = settings.teacher.arch
    # Given files are checked before anything trains: a wrong path should not cost a teacher.
    given = {
        route: _load_given(path, f"{route}_teacher", dataset, arch)
        for route, path in (("normal", settings.normal_teacher), ("nasty", settings.nasty_teacher))
        if path
    }

    if "normal" in given:
        _announce(f"normal teacher {arch}: given, {settings.normal_teacher}")
        normal, _ = _given_metrics(given["normal"], settings.normal_teacher, dataset, arch)
    else:
        _announce(f"normal teacher {arch}")
        normal = train(teacher_config, dataset, on_finished)
    if "nasty" in given:
        _announce(f"nasty teacher {arch}: given, {settings.nasty_teacher}")
        nasty = _given_nasty_metrics(given["nasty"], settings, dataset, teacher_files["normal"])
    else:
        options = "".join(
            (
                ", from the normal teacher" if settings.nasty_init_from_normal else "",
                f", omega warm-up {settings.omega_warmup_epochs} epochs"
                if settings.omega_warmup_epochs
                else "",
            )
        )
        _announce(
            f"nasty teacher {arch} (omega={settings.omega}, tau_A={settings.temperature}{options})"
        )
        nasty = train_nasty(nasty_config, nasty_settings, dataset, on_finished)

    students = []
    main_dirs = {}  # battery key -> directory of the main runs, which sweeps may reuse
    if "nasty" not in given:
        main_dirs[battery.run_key("nasty_teacher", nasty_config, nasty_settings)] = (
            nasty_config.output_dir
        )
    for stage, seed, config in student_configs:
        run_dir = os.path.join(output_dir, "students", f"{stage.arch}_seed{seed}")
        _announce(f"student {stage.arch} seed {seed}: scratch")
        result = train(
            config.replace(output_dir=os.path.join(run_dir, "scratch")), dataset, on_finished
        )
        students.append(report_lib.student_row(stage.arch, "none", seed, result))
        main_dirs[battery.run_key("none", config)] = os.path.join(run_dir, "scratch")
        for route in ("normal", "nasty"):
            _announce(f"student {stage.arch} seed {seed}: KD from the {route} teacher")
            kd_config = config.replace(output_dir=os.path.join(run_dir, f"kd_{route}"))
            result = distill(kd_config, kd_settings[route], dataset, on_finished)
            students.append(report_lib.student_row(stage.arch, route, seed, result))
            main_dirs[battery.run_key(route, config, kd_settings[route])] = kd_config.output_dir

    sweep_results, sweep_figures = {}, {}
    if sweeps:
        first_stage = student_stages[0]
        sweep_results = battery.run_sweeps(
            settings,
            _train_config(settings, first_stage, "", settings.student_seeds[0]),
            kd_settings,
            dataset,
            output_dir,
            on_finished,
            main_dirs,
        )
        for dimension, entries in sweep_results.items():
            sweep_figures[f"sweep_{dimension}"] = figures.plot_sweep(
                dimension,
                entries,
                normal["accuracy"],
                os.path.join(output_dir, f"sweep_{dimension}.png"),
                arch=first_stage.arch,
            )

    owner = {}
    ablations = owner_ablations.OwnerAblations(
        settings,
        teacher_config,
        nasty_config,
        nasty_settings,
        student_configs,
        dataset,
        output_dir,
        on_finished,
        main_dirs,
        main_nasty=(teacher_files["nasty"], nasty),
    )
    if "omega" in sweeps:
        owner["omega"] = ablations.omega_sweep(sweeps["omega"])
        sweep_figures["sweep_omega"] = figures.plot_omega_sweep(
            owner["omega"],
            normal["accuracy"],
            _scratch_accuracy(students, student_stages[0].arch),
            os.path.join(output_dir, "sweep_omega.png"),
            arch=student_stages[0].arch,
        )
    if adversary_archs:
        owner["adversary_arch"] = ablations.adversary_ablation(adversary_archs)

    datafree = []
    if datafree_methods:
        datafree = datafree_attacks.run_datafree_attacks(
            settings,
            datafree_methods,
            student_stages[0].arch,
            teacher_files,
            dataset,
            output_dir,
            on_finished,
        )

    matrix = None
    if matrix_settings is not None:
        from nasty_tf.audit import audit_matrix

        _announce(f"defences x stealers matrix: {', '.join(matrix_settings.stealers)}")
        matrix = audit_matrix(
            dataclasses.replace(matrix_settings, overwrite=on_finished == "overwrite")
        )

    written_figures = {}
    if settings.figures:
        _announce("figures: logit responses, t-SNE of features and logits")
        written_figures = figures.teacher_figures(
            load_network(teacher_files["normal"], "normal_teacher"),
            load_network(teacher_files["nasty"], "nasty_teacher"),
            dataset,
            settings.kd_temperature,  # the temperature a stealer's KD sees
            output_dir,
            seed=settings.seed,
        )
    written_figures.update(sweep_figures)
    report = report_lib.build_report(
        protocol=name,
        settings=dataclasses.asdict(settings),
        normal=normal,
        nasty=nasty,
        student_runs=students,
        seconds=time.time() - started,
        figures=written_figures,
        sweeps=sweep_results,
        owner=owner,
        datafree=datafree,
        matrix=matrix,
    )
    report_lib.write_report(report, output_dir)
    return report
