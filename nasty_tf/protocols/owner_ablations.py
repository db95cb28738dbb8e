"""The owner's side of the battery: what omega (Fig. 3) and the adversary's architecture
(Table 4) do to the nasty teacher, and to a stealer distilling from it.

Omega sweep: for each omega, a nasty teacher (the protocol's architecture, schedule and
adversary, only omega changed), then the protocol's first student arch by KD from it, every
student seed. Adversary ablation (Table 4): for each adversary architecture, a normal network
of that architecture trained with its own baseline recipe (`adversary_config`: the protocol's
student stage of that arch, e.g. Table 1's CNN at Adam 1e-3 for 100 epochs without weight
decay, as the reference's `baseline/cnn/params.json`; else the teacher's schedule), a nasty
teacher (the protocol's architecture) trained against it, then every student arch and seed by
KD from it.

Every nasty teacher here takes the protocol's `NastyConfig` with only omega (or the
adversary) changed, so it follows the protocol's `nasty_init_from_normal` (the protocol's
normal teacher, of the nasty network's own arch) and `omega_warmup_epochs`.

Every run is cached like the stealer sweeps (`battery.run_key`): teachers under
`owner/nasty/<key>/` and `owner/adversaries/<key>/`, students under `students/owner/<key>/`.
A run whose config equals one of the protocol's main runs (the protocol's own omega; the
teacher's own architecture as adversary, the paper's "self-undermining" row) reuses it.
"""

import os
import statistics

from nasty_tf.errors import InputError
from nasty_tf.protocols.battery import cached_run_dir, run_key
from nasty_tf.training import DistillConfig, distill, train, train_nasty


def check_adversary_archs(archs, available):
    """Validates `--adversary_archs`; returns them without duplicates, order kept."""
    archs = tuple(dict.fromkeys(archs or ()))
    for arch in archs:
        if arch not in available:
            raise InputError(
                f"adversary_archs: unknown architecture {arch!r}. Available: {', '.join(available)}"
            )
    return archs


def adversary_config(teacher_config, student_stages, arch):
    """The `TrainConfig` of the Table 4 adversary of `arch`: its own baseline recipe.

    The reference trains each adversary as that network's baseline (`experiments/CIFAR10/
    baseline/<arch>/params.json`), which is the recipe the protocol gives the same arch as a
    student: the student stage of `arch` in `student_stages` when there is one (its
    optimizer, rate, schedule, weight decay, epochs and batch), else the teacher's schedule.
    Data, seed and the rest are the teacher's.
    """
    config = teacher_config.replace(arch=arch)
    for stage in student_stages:
        if stage.arch == arch:
            return config.replace(
                epochs=stage.epochs,
                batch_size=stage.batch_size,
                optimizer=stage.optimizer,
                learning_rate=stage.learning_rate,
                lr_schedule=stage.lr_schedule,
                lr_milestones=stage.lr_milestones,
                lr_decay=stage.lr_decay,
                weight_decay=stage.weight_decay,
            )
    return config


def _teacher_entry(metrics, run_dir):
    """A nasty teacher as the report shows it, from its metrics."""
    return {
        "accuracy": metrics["accuracy"],
        "adversarial_kl": metrics.get("adversarial_kl"),
        "adversary_accuracy": metrics.get("adversary_accuracy"),
        "run_dir": run_dir,
    }


class OwnerAblations:
    """Trains (or reuses) the owner-side runs of one protocol run.

    Args:
        settings: the protocol's `TeacherStudentSettings`.
        teacher_config: `TrainConfig` of the main normal teacher (its output_dir set).
        nasty_config: `TrainConfig` of the main nasty teacher (its output_dir set).
        nasty_settings: `NastyConfig` of the main nasty teacher.
        student_configs: `[(stage, seed, TrainConfig)]` of the main student runs.
        dataset: the protocol's dataset.
        output_dir: the protocol's directory.
        on_finished: as for the jobs; runs of `main_dirs` are always reused.
        main_dirs: `{run_key: directory}` of runs this protocol run trained, reused on a match.
        main_nasty: `(file, metrics)` of the protocol's nasty teacher, given or trained.
    """

    def __init__(
        self,
        settings,
        teacher_config,
        nasty_config,
        nasty_settings,
        student_configs,
        dataset,
        output_dir,
        on_finished,
        main_dirs,
        main_nasty,
    ):
        self.settings = settings
        self.teacher_config = teacher_config
        self.nasty_config = nasty_config
        self.nasty_settings = nasty_settings
        self.student_configs = student_configs
        self.dataset = dataset
        self.output_dir = output_dir
        self.on_finished = on_finished
        self.main_dirs = main_dirs
        self.main_nasty = main_nasty

    def _cached(self, parts, route, config, kd=None):
        """(directory, policy) of a cached run under `parts`: the main run's directory when the
        key matches."""
        key = run_key(route, config, kd)
        if key in self.main_dirs:
            return self.main_dirs[key], "reuse"
        return cached_run_dir(
            os.path.join(self.output_dir, *parts), route, config, kd
        ), self.on_finished

    def _relative(self, path):
        return os.path.relpath(path, self.output_dir)

    def _adversary(self, arch):
        """The normal network of `arch`, trained with its baseline recipe (`adversary_config`)
        and the teacher's seed; its file and metrics."""
        stages = [stage for stage, _, _ in self.student_configs]
        config = adversary_config(self.teacher_config, stages, arch)
        run_dir, policy = self._cached(("owner", "adversaries"), "normal_teacher", config)
        print(f"== adversary ablation: normal {arch} (adversary)", flush=True)
        metrics = train(config.replace(output_dir=run_dir), self.dataset, policy)
        return os.path.join(run_dir, "model.keras"), metrics

    def _nasty_teacher(self, nasty, what):
        """A nasty teacher of the protocol's arch with `nasty` settings; (file, teacher entry)."""
        run_dir, policy = self._cached(
            ("owner", "nasty"), "nasty_teacher", self.nasty_config, nasty
        )
        print(f"== {what}: nasty {self.nasty_config.arch}", flush=True)
        metrics = train_nasty(
            self.nasty_config.replace(output_dir=run_dir), nasty, self.dataset, policy
        )
        return os.path.join(run_dir, "model.keras"), _teacher_entry(
            metrics, self._relative(run_dir)
        )

    def _students(self, teacher_file, archs, what):
        """KD students from `teacher_file` for `archs`, every seed; one entry per arch."""
        kd = DistillConfig(teacher_file, self.settings.alpha, self.settings.kd_temperature)
        by_arch = {}
        for stage, seed, config in self.student_configs:
            if stage.arch not in archs:
                continue
            run_dir, policy = self._cached(("students", "owner"), "nasty", config, kd)
            print(f"== {what}: student {stage.arch} seed {seed}, KD from it", flush=True)
            metrics = distill(config.replace(output_dir=run_dir), kd, self.dataset, policy)
            entry = by_arch.setdefault(
                stage.arch, {"arch": stage.arch, "accuracies": [], "run_dirs": []}
            )
            entry["accuracies"].append(metrics["accuracy"])
            entry["run_dirs"].append(self._relative(run_dir))
        for entry in by_arch.values():
            entry["accuracy"] = statistics.fmean(entry["accuracies"])
        return [by_arch[arch] for arch in archs if arch in by_arch]

    def omega_sweep(self, omegas):
        """Fig. 3: `[{value, teacher: {accuracy, adversarial_kl, ...}, student: {...}}]`."""
        first_arch = self.student_configs[0][0].arch
        entries = []
        for omega in omegas:
            what = f"omega sweep {omega:g}"
            nasty = self.nasty_settings.replace(omega=omega)
            teacher_file, teacher = self._nasty_teacher(nasty, what)
            (student,) = self._students(teacher_file, (first_arch,), what)
            entries.append({"value": omega, "teacher": teacher, "student": student})
        return entries

    def adversary_ablation(self, archs):
        """Table 4: `[{adversary_arch, teacher: {accuracy, adversary_accuracy, ...}, students}]`.

        The teacher's own architecture as adversary is the protocol's own nasty teacher (given
        or trained, the paper's "self-undermining" row), with its KD students reused.
        """
        student_archs = tuple(dict.fromkeys(stage.arch for stage, _, _ in self.student_configs))
        entries = []
        for arch in archs:
            what = f"adversary ablation {arch}"
            if arch == self.teacher_config.arch:
                teacher_file, metrics = self.main_nasty
                teacher = _teacher_entry(metrics, run_dir=None)  # the protocol's own nasty teacher
            else:
                adversary_file, adversary = self._adversary(arch)
                # Only the adversary changes: the nasty network is still the protocol's arch,
                # so `init_from` (when set) stays the protocol's normal teacher.
                nasty = self.nasty_settings.replace(adversary=adversary_file)
                teacher_file, teacher = self._nasty_teacher(nasty, what)
                teacher["adversary_accuracy"] = adversary["accuracy"]
            entries.append(
                {
                    "adversary_arch": arch,
                    "teacher": teacher,
                    "students": self._students(teacher_file, student_archs, what),
                }
            )
        return entries
