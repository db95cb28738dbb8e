"""`audit(config)`: the job. It holds `output_dir` (`RunLock`), loads the release, runs every
student (`AuditRuns`) and writes the scorecard."""

import dataclasses
import datetime
import time

import keras

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
        `accuracies` per seed), `reference` (the KD student of the reference, or None),
        `runs`, `config`, `settings` (what was resolved: student arch, release, each data-free
        stealer's parameters), `machine`, `date`, `backend`, `command`, `seconds`, `figure`.
        Accuracies are test-split percentages, means over the seeds.

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
    # A data-free stealer attacks the network file, whatever the release serves: its runs are
    # keyed on the file alone.
    network_key = {"kind": target.teacher["kind"], "sha256": target.teacher["sha256"]}
    runs = AuditRuns(config, target)
    runs.run(SCRATCH, get_stealer(LABEL_SMOOTHING, label_smoothing=0.0))
    runs.run(LABEL_SMOOTHING, get_stealer(LABEL_SMOOTHING))
    for name, stealer in stealers.items():
        if stealer.kind == DATAFREE:
            runs.run(name, stealer, release_key=network_key)
        else:
            runs.run(name, stealer, target.served, target.teacher)
    if target.reference is not None:
        reference = target.reference
        runs.run(REFERENCE_KD, get_stealer("kd"), reference["served"], reference["key"])

    rows = stealer_rows(names, {n: s.kind for n, s in stealers.items()}, runs.accuracies)
    reference_accuracy = runs.mean(REFERENCE_KD) if target.reference is not None else None
    scorecard = {
        "teacher": {"accuracy": teacher_accuracy},
        "baselines": {SCRATCH: runs.mean(SCRATCH), LABEL_SMOOTHING: runs.mean(LABEL_SMOOTHING)},
        "stealers": rows,
        "reference": None if reference_accuracy is None else {"kd_accuracy": reference_accuracy},
        "runs": runs.runs,
        "config": _jsonable(dataclasses.asdict(config)),
        "settings": {
            "arch": target.arch,
            "stealers": names,
            "teacher": target.teacher,
            "datafree": {n: s.config() for n, s in stealers.items() if s.kind == DATAFREE},
            "selection": "none: every stealer runs with its registry defaults "
            "(or config.stealer_params)",
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
