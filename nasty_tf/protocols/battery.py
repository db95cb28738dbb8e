"""The stealer battery's sweeps: KD students across tau_s (Fig. 4), alpha (Fig. 5a) and the
fraction of the training data (Fig. 5b).

For the protocol's first student architecture and each student seed, every value of each swept
dimension gets a student by KD from the normal and from the nasty teacher (the other settings
at the protocol's values); a `train_fraction` value also gets its own scratch baseline, since a
student with less data has its own. The teachers are never retrained: they keep the
protocol's training data whatever fraction the students see. The owner-side dimension
`omega` (Fig. 3) is validated here but run by `nasty_tf.protocols.owner_ablations`.

Every run lives in `students/sweeps/<dimension>/<key>/`, where `key` is the short SHA-1 of the
run's canonical JSON config (`run_key`). So an interrupted battery resumes where it stopped, a
rerun with one more value trains only that one, and two configs never share a directory. A run
whose config equals one of the protocol's main student runs (e.g. tau_s at the protocol's own
value) is not trained again: the main run's directory is used.
"""

import hashlib
import json
import os
import statistics

from nasty_tf.data import load_dataset
from nasty_tf.errors import InputError
from nasty_tf.training import DistillConfig, distill, train

# Dimension -> what the figure's x axis says.
DIMENSIONS = {
    "kd_temperature": "KD temperature tau_s",
    "alpha": "KD weight alpha",
    "train_fraction": "fraction of the training data (students)",
    "omega": "omega of the nasty teacher",
}
# Swept on the owner's side: each value trains a nasty teacher (`owner_ablations`), not here.
OWNER_DIMENSIONS = ("omega",)


def check_sweeps(sweeps):
    """Validates `{dimension: values}`; returns it with float values, in a stable order.

    Raises:
        InputError: an unknown dimension, an empty list, or a value out of range.
    """
    checked = {}
    for dimension, values in (sweeps or {}).items():
        name = f"sweep_{dimension}"  # the sweep's name in reports (and the binary's flag)
        if dimension not in DIMENSIONS:
            raise InputError(
                f"unknown sweep dimension {dimension!r}. Available: {', '.join(DIMENSIONS)}"
            )
        try:
            values = tuple(float(value) for value in values)
        except (TypeError, ValueError):
            raise InputError(f"{name} must be a list of numbers. Received: {values!r}") from None
        if not values:
            raise InputError(f"{name} must list at least one value")
        for value in values:
            ok = {
                "kd_temperature": value > 0,
                "alpha": 0 <= value <= 1,
                "train_fraction": 0 < value <= 1,
                "omega": value >= 0,
            }[dimension]
            if not ok:
                raise InputError(f"{name}: value out of range: {value}")
        checked[dimension] = tuple(dict.fromkeys(values))  # duplicates dropped, order kept
    return checked


def canonical_config(route, config, kd=None):
    """The run's config (a `TrainConfig` or `DataFreeConfig`) as a JSON-ready dict: the fields
    that decide its result only (their `identity()`; a partner file by its contents, so that a
    moved output directory keeps its keys)."""
    return {"route": route, **config.identity(), "kd": kd.identity() if kd is not None else None}


def run_key(route, config, kd=None):
    """Short SHA-1 of the canonical JSON of a student run's config: its cache key."""
    return _short_sha1(canonical_config(route, config, kd))


def _short_sha1(fields):
    text = json.dumps(fields, sort_keys=True, separators=(",", ":"))
    return hashlib.sha1(text.encode("utf-8")).hexdigest()[:12]


def cached_run_dir(parent, route, config, kd=None):
    """`parent/<run_key>`: where the run is cached (a run written under another format of the
    run directory is reported as such when reused: `RunDirectory` checks `format_version`)."""
    return os.path.join(parent, run_key(route, config, kd))


def run_sweeps(
    settings, student_config, kd_settings, main_dataset, output_dir, on_finished, main_dirs
):
    """Trains (or reuses) every sweep run; returns `{dimension: [entry, ...]}` for the report.

    Args:
        settings: the protocol's `TeacherStudentSettings` (`settings.sweeps` is read).
        student_config: the first student stage's `TrainConfig` at seed 0 (the seed is replaced).
        kd_settings: `{"normal": DistillConfig, "nasty": DistillConfig}` at the protocol's values.
        main_dataset: the protocol's dataset (used for every run at the protocol's fraction).
        output_dir: the protocol's directory.
        on_finished: as for the jobs; runs of `main_dirs` are always reused.
        main_dirs: `{run_key: directory}` of the main student runs trained by this protocol run.

    Each entry: `value`, `route` ("none" | "normal" | "nasty"), `accuracy` (mean over seeds),
    `accuracies` (per seed, in `settings.student_seeds` order) and `run_dirs` (relative to
    `output_dir`).
    """
    sweeps = check_sweeps(settings.sweeps)
    datasets = {settings.train_fraction: main_dataset}

    def dataset_for(fraction):
        # The subset is drawn with the protocol's seed: every student seed sees the same images.
        if fraction not in datasets:
            datasets[fraction] = load_dataset(
                settings.dataset,
                data_dir=settings.data_dir,
                train_fraction=fraction,
                seed=settings.seed,
                cache_dir=settings.data_cache_dir,
            )
        return datasets[fraction]

    results = {}
    for dimension, values in sweeps.items():
        if dimension in OWNER_DIMENSIONS:
            continue
        entries = []
        for value in values:
            routes = (
                ("none", "normal", "nasty")
                if dimension == "train_fraction"
                else ("normal", "nasty")
            )
            for route in routes:
                accuracies, run_dirs = [], []
                for seed in settings.student_seeds:
                    config = student_config.replace(seed=seed)
                    kd = kd_settings.get(route)
                    if dimension == "train_fraction":
                        config = config.replace(train_fraction=value)
                    elif dimension == "alpha":
                        kd = DistillConfig(kd.teacher, value, kd.temperature)
                    else:
                        kd = DistillConfig(kd.teacher, kd.alpha, value)
                    key = run_key(route, config, kd)
                    run_dir = main_dirs.get(key) or cached_run_dir(
                        os.path.join(output_dir, "students", "sweeps", dimension), route, config, kd
                    )
                    policy = "reuse" if key in main_dirs else on_finished
                    print(
                        f"== sweep {dimension}={value:g}, seed {seed}: "
                        + ("scratch" if route == "none" else f"KD from the {route} teacher"),
                        flush=True,
                    )
                    config = config.replace(output_dir=run_dir)
                    dataset = dataset_for(config.train_fraction)
                    if route == "none":
                        metrics = train(config, dataset, policy)
                    else:
                        metrics = distill(config, kd, dataset, policy)
                    accuracies.append(metrics["accuracy"])
                    run_dirs.append(os.path.relpath(run_dir, output_dir))
                entries.append(
                    {
                        "value": value,
                        "route": route,
                        "accuracy": statistics.fmean(accuracies),
                        "accuracies": accuracies,
                        "run_dirs": run_dirs,
                    }
                )
        results[dimension] = entries
    return results
