"""`audit(config)`: the job. It holds `output_dir` (`RunLock`), loads the release, runs every
student (`AuditRuns`) and writes the scorecard."""

import dataclasses
import datetime
import time

import keras

from nasty_tf.audit import schedule, search
from nasty_tf.audit.config import (
    LABEL_SMOOTHING,
    REFERENCE_KD,
    SCRATCH,
    check_config,
    stealers_to_run,
)
from nasty_tf.audit.runs import AuditRuns, _accuracy
from nasty_tf.audit.scorecard import SCORECARD_PNG, stealer_rows, write_scorecard
from nasty_tf.audit.target import load_target
from nasty_tf.errors import InputError
from nasty_tf.stealers import get_stealer
from nasty_tf.stealers.registry import DATAFREE
from nasty_tf.stealers.served import served_logits_model
from nasty_tf.training.run_directory import RunLock


def _jsonable(value):
    if isinstance(value, tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    return value


def audit(config):
    """Attacks a release through what it serves and writes its scorecard in `output_dir`.

    One audit at a time writes an `output_dir`: it holds the directory's `RunLock` for its
    whole life, and a second one is refused at once, naming the holder's process id, before it
    loads or writes anything.

    Args:
        config: an `AuditConfig`.

    Returns:
        The scorecard dict written to `scorecard.json`: `teacher.accuracy` (served argmax, test
        split), `baselines.scratch` and `baselines.label_smoothing`, `stealers` (one entry per
        stealer: `name`, `kind` ("served" | "datafree"), `accuracy`, `vs_scratch`,
        `vs_label_smoothing`, `vs_reference` (None without a reference), `protected`,
        `accuracies` per seed; a stealer of `config.stealer_search` is its chosen
        combination's student and adds `search`: `{"split": "validation", "rows": [{params,
        run, validation_accuracy, accuracy}], "chosen": params}`), `reference` (the KD student
        of the reference, or None), `doubling_check` (would half the epochs have done: the
        validation curves' doubling check, `nasty_tf.audit.schedule.doubling_check`; None
        where it does not apply), `runs`, `config`, `settings` (what was resolved: student
        arch, release, each data-free stealer's parameters, `selection`), `machine`, `date`,
        `backend`, `command`, `seconds`, `figure`. Accuracies are test-split percentages,
        means over the seeds.

    Raises:
        InputError: a bad config, an unusable model or dataset, a finished run in
            `output_dir` made with another config, or `output_dir` held by another process.
        TrainingDiverged: a student's loss became NaN or infinite.
    """
    names = check_config(config)
    with RunLock(config.output_dir):
        return _audit(config, names)


def _audit(config, names):
    from nasty_tf.report import _machine, invoking_command

    start = time.perf_counter()
    target = load_target(config)
    dataset = target.dataset
    teacher_network = served_logits_model(target.served, dataset.input_shape, name="teacher_served")
    teacher_accuracy = _accuracy(teacher_network, dataset.x_test, dataset.y_test)
    print(f"audit: teacher (served) test accuracy {teacher_accuracy:.2f}%", flush=True)

    stealers = stealers_to_run(config, names)
    runs = AuditRuns(config, target)
    searched = {name: search.candidates(config, name) for name in config.stealer_search or {}}
    _check_searched_builds(runs, target, searched)  # before anything trains
    runs.run(SCRATCH, get_stealer(LABEL_SMOOTHING, label_smoothing=0.0))
    runs.run(LABEL_SMOOTHING, get_stealer(LABEL_SMOOTHING))
    # The run each stealer's entry reads: its own, or a searched stealer's chosen combination's.
    entry_runs, searches = {}, {}
    for name, stealer in stealers.items():
        if name not in searched:
            _run_stealer(runs, target, name, stealer)
            entry_runs[name] = name
            continue
        searches[name] = _search(runs, target, name, searched[name])
        entry_runs[name] = search.chosen_row(searches[name])["run"]
    if target.reference is not None:
        reference = target.reference
        runs.run(REFERENCE_KD, get_stealer("kd"), reference["served"], reference["key"])

    kinds = {n: s.kind for n, s in stealers.items()}
    entry_accuracies = {name: runs.accuracies[run] for name, run in entry_runs.items()}
    rows = stealer_rows(names, kinds, {**runs.accuracies, **entry_accuracies})
    for row in rows:
        if row["name"] in searches:
            row["search"] = searches[row["name"]]
    reference_accuracy = runs.mean(REFERENCE_KD) if target.reference is not None else None
    curves = {
        name: runs.validation_curves[run]
        for name, run in {SCRATCH: SCRATCH, LABEL_SMOOTHING: LABEL_SMOOTHING, **entry_runs}.items()
    }
    scorecard = {
        "teacher": {"accuracy": teacher_accuracy},
        "baselines": {SCRATCH: runs.mean(SCRATCH), LABEL_SMOOTHING: runs.mean(LABEL_SMOOTHING)},
        "stealers": rows,
        "reference": None if reference_accuracy is None else {"kd_accuracy": reference_accuracy},
        "doubling_check": schedule.doubling_check(curves, config.epochs),
        "runs": runs.runs,
        "config": _jsonable(dataclasses.asdict(config)),
        "settings": {
            "arch": target.arch,
            "stealers": names,
            "teacher": target.teacher,
            "datafree": {n: s.config() for n, s in stealers.items() if s.kind == DATAFREE},
            "selection": _selection(searches),
        },
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "machine": _machine(),
        "backend": keras.backend.backend(),
        "command": invoking_command(),
        "seconds": round(time.perf_counter() - start, 1),
        "figure": SCORECARD_PNG,
    }
    write_scorecard(scorecard, config.output_dir)
    return scorecard


def _run_stealer(runs, target, name, stealer):
    """Every seed's run of one stealer under the run name `name`."""
    if stealer.kind == DATAFREE:
        # A data-free stealer attacks the network file, whatever the release serves: its runs
        # are keyed on the file alone.
        network_key = {"kind": target.teacher["kind"], "sha256": target.teacher["sha256"]}
        runs.run(name, stealer, release_key=network_key)
    else:
        runs.run(name, stealer, target.served, target.teacher)


def _check_searched_builds(runs, target, searched):
    """Builds every searched served combination's training wrapper once, before anything
    trains: a value the students' architecture refuses (skeptical's `loc` beyond its stages)
    is refused here, naming `stealer_search`, not after the other combinations trained."""
    for name, candidates in searched.items():
        for params, _, stealer in candidates:
            if stealer.kind == DATAFREE:
                continue  # its parameters are all checked by `get_stealer`
            try:
                runs.check_builds(stealer, target.served)
            except InputError as error:
                raise InputError(
                    f"stealer_search[{name!r}]: {params} is refused for the {target.arch} "
                    f"students: {error}"
                ) from None


def _search(runs, target, name, candidates):
    """Trains (or reuses) every combination of `name`'s grid; returns its `search` record."""
    rows = []
    for params, run_name, stealer in candidates:
        _run_stealer(runs, target, run_name, stealer)
        validation = runs.validation_accuracies[run_name]
        if any(value is None for value in validation):
            raise InputError(
                f"output_dir: a finished {run_name} run records no validation accuracy, which "
                "the search chooses on; delete its run directory to train it again"
            )
        rows.append(
            {
                "params": params,
                "run": run_name,
                "validation_accuracy": runs.validation_mean(run_name),
                "accuracy": runs.mean(run_name),
            }
        )
    record = search.search_record(rows)
    chosen = search.chosen_row(record)
    print(
        f"audit: {name}: chose {chosen['params']} on the validation split "
        f"({chosen['validation_accuracy']:.2f}%, best of {len(rows)})",
        flush=True,
    )
    return record


def _selection(searches):
    if not searches:
        return "none: every stealer runs with its registry defaults (or config.stealer_params)"
    return (
        f"validation: {', '.join(searches)} chosen by the highest validation accuracy over "
        "config.stealer_search (each entry's `search`); the other stealers run with their "
        "registry defaults (or config.stealer_params)"
    )
