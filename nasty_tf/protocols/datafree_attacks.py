"""Data-free stealers in the battery (the paper's Table 5): each method of
`settings.datafree` against the normal and against the nasty teacher.

The stealer has only the released teacher file. Its student is the protocol's first student
architecture (Table 5: a ResNet-34 teacher, `--arch=resnet34`, and a ResNet-18 student,
`--student_archs=resnet18`); the protocol's dataset serves only to measure it on the test
split. Each method runs with `nasty_tf.datafree.DataFreeConfig`'s defaults for the
protocol's dataset (the authors' CIFAR settings; DAFL's loss weights by dataset) overridden by
`settings.datafree_options[method]`, which short protocols use to scale the attack down.

Runs are cached like the stealer sweeps: `students/datafree/<key>/`, `key` the short SHA-1
of the run's config (`battery.run_key`), so a rerun reuses finished attacks.
"""

import os

from nasty_tf.atomic_io import atomic_write_bytes
from nasty_tf.errors import InputError
from nasty_tf.protocols.battery import cached_run_dir


def check_methods(methods, options):
    """Validates `--datafree` and the protocol's per-method options; returns the methods."""
    from nasty_tf.datafree import METHODS, DataFreeConfig

    methods = tuple(dict.fromkeys(methods or ()))
    for method in methods:
        if method not in METHODS:
            raise InputError(
                f"datafree: unknown method {method!r}. Available: {', '.join(METHODS)}"
            )
        DataFreeConfig(
            method=method, teacher="", **options.get(method, {})
        )  # fails early on bad options
    return methods


def attack_config(settings, method, teacher_file, student_arch):
    """The `DataFreeConfig` of one attack of the protocol: the method's defaults for the
    protocol's dataset (e.g. DAFL's CIFAR-100 loss weights), then
    `settings.datafree_options[method]`."""
    from nasty_tf.datafree import DataFreeConfig

    return DataFreeConfig(
        method=method,
        teacher=teacher_file,
        arch=student_arch,
        dataset=settings.dataset,
        data_dir=settings.data_dir,
        data_cache_dir=settings.data_cache_dir,
        seed=settings.seed,
        init=settings.init,  # the protocol's students' init (Table 5's: the reference's)
        verbose=settings.verbose,
        **settings.datafree_options.get(method, {}),
    )


def run_datafree_attacks(
    settings, methods, student_arch, teacher_files, dataset, output_dir, on_finished
):
    """Runs (or reuses) each attack of `methods`; returns one entry per (method, teacher).

    Each entry: `method`, `teacher` ("normal" | "nasty"), `arch`, `teacher_accuracy`,
    `accuracy` (the student's), `run_dir` (relative to `output_dir`), `grid` (the run's
    `inversion_grid.png`, copied to `output_dir` as `inversion_<method>_<teacher>.png`) and
    `settings` (the config that ran, paths left out).
    """
    from nasty_tf.datafree import run_datafree

    entries = []
    for method in methods:
        for route in ("normal", "nasty"):
            config = attack_config(settings, method, teacher_files[route], student_arch)
            run_dir = cached_run_dir(
                os.path.join(output_dir, "students", "datafree"), route, config
            )
            print(
                f"== data-free {method} from the {route} teacher: student {student_arch}",
                flush=True,
            )
            metrics = run_datafree(config.replace(output_dir=run_dir), dataset, on_finished)
            relative = os.path.relpath(run_dir, output_dir)
            # Beside the report, like its other figures, so that report.md travels as one folder.
            grid = f"inversion_{method}_{route}.png"
            with open(os.path.join(run_dir, metrics["grid"]), "rb") as f:
                atomic_write_bytes(os.path.join(output_dir, grid), f.read())
            entries.append(
                {
                    "method": method,
                    "teacher": route,
                    "arch": student_arch,
                    "teacher_accuracy": metrics["teacher_accuracy"],
                    "accuracy": metrics["accuracy"],
                    "run_dir": relative,
                    "grid": grid,
                    "settings": {
                        key: value
                        for key, value in metrics["config"].items()
                        if key not in ("teacher", "teacher_sha256", "data_dir", "kind")
                    },
                }
            )
    return entries
