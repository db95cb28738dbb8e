"""The audit: how protected is a release against the attacks known today (issue 20, item 3).

`audit(config)` is the battery seen from a model owner's side: it attacks a release only
through what the release serves, with every stealer of `nasty_tf.stealers`, and writes a
scorecard:

- `D/scorecard.json`: `{"teacher": {"accuracy"}, "baselines": {"scratch", "label_smoothing"},
  "stealers": [{"name", "accuracy", "vs_scratch", "vs_label_smoothing", "vs_reference",
  "protected"}], ...}` plus the config, machine, date, backend and command;
- `D/scorecard.md`: the same as a table;
- `D/scorecard.png`: student accuracy per stealer, the baselines as lines.

What is attacked is what is served. A `.keras` network is served through
`nasty_tf.releases` (`plain` or `stingy`), the same code `tools.export --release` writes; a
SavedModel export (`nasty_tf.export`: `serving_default` takes a uint8 image batch and returns
`logits` and `probabilities`) is served as it is, through `keras.layers.TFSMLayer`
(TensorFlow backend only). Teacher accuracy is the argmax of the served logits.

Every student (the two baselines, each stealer, and the KD-from-reference student when a
reference is given) trains the same architecture with the same schedule and seed, on the
training split less a stratified validation split (`validation_fraction`), and reports its
test accuracy, averaged over seeds. Nothing is chosen on the test split: the stealers run with
their registry defaults (skeptical's `loc` and `kd_delay` included; choosing them belongs on
the validation split, whose accuracy every run records). A stealer is `protected` against when
its student ends at or below the label-smoothing student (CMIM's bar, issue 20).

The audit is resumable and cached: each student run lives in `D/runs/<name>_seed<k>/`
(`model.keras` and, written last, `result.json` holding the config it was made from). A rerun
with the same config reuses every finished run and trains only the missing ones; a finished
run whose config differs is refused, naming its directory.

Example:

```python
from nasty_tf.audit import AuditConfig, audit

scorecard = audit(AuditConfig(model="runs/nasty/model.keras", dataset="digits",
                              release="stingy", output_dir="audits/nasty_stingy"))
[(s["name"], s["protected"]) for s in scorecard["stealers"]]
```
"""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import json
import os
import statistics
import time

import keras
from keras import ops

from nasty_tf import releases
from nasty_tf.atomic_io import atomic_save_model, atomic_write_json, atomic_write_text
from nasty_tf.errors import InputError
from nasty_tf.stealers import available_stealers, get_stealer, steal
from nasty_tf.stealers.served import served_logits_model

# The attacks that learn from images the stealer synthesises rather than the training data; the
# audit does not run them yet (they are not in the registry's array-based `steal`).
DATA_FREE_STEALERS = ("dafl", "deepinversion")
# The baselines: a student that never sees the release. `scratch` is plain cross-entropy.
SCRATCH = "scratch"
LABEL_SMOOTHING = "label_smoothing"
REFERENCE_KD = "reference_kd"
RELEASES = ("plain", "stingy")
SCORECARD_JSON = "scorecard.json"
SCORECARD_MD = "scorecard.md"
SCORECARD_PNG = "scorecard.png"
RUNS_DIR = "runs"
RESULT_FILE = "result.json"
MODEL_FILE = "model.keras"


def auditable_stealers():
    """The stealer names the audit can run: the registry's, less the baseline and data-free ones."""
    return [
        name
        for name in available_stealers()
        if name != LABEL_SMOOTHING and name not in DATA_FREE_STEALERS
    ]


@dataclasses.dataclass(frozen=True)
class AuditConfig:
    """Everything an audit depends on.

    The student defaults are a converged schedule for the digits data: the digits demo's
    student recipe (the CNN, Adam at 1e-3, batch 128) trained 24 epochs instead of 4. Issue 20
    measured the gap a 4-epoch student showed shrink from 2 points to under 1 at 24 epochs: a
    short schedule would report a protection that does not survive a patient stealer. Other
    datasets need their own (longer) schedule.

    Attributes:
        output_dir: where the scorecard and the runs go.
        model: the released network, a `.keras` file (exactly one of `model`, `saved_model`).
        saved_model: a SavedModel export directory (`nasty_tf.export`), audited as it serves.
        dataset: the dataset name (`nasty_tf.data.DATASETS`).
        data_dir: the dataset's files, where it needs them.
        reference: optional normally trained `.keras` network: its KD student (a `kd` stealer
            on the reference's plain release) gives each stealer's `vs_reference`.
        stealers: stealer names (`auditable_stealers()`); None for all of them.
        release: how a `.keras` model is served: "plain" or "stingy"; None for "plain". Not
            for `saved_model`, which serves what it was exported with.
        top_k_ratio: the stingy release's share of classes served; None for its default.
        arch: the students' architecture; None for the teacher's own when its network names
            a registered architecture, else "cnn".
        epochs, optimizer, learning_rate, batch_size: every student's schedule (optimizer
            "adam" or "sgd", momentum 0.9).
        seeds: one student run per seed and per stealer; results are averaged.
        validation_fraction: the share of the training split held out (stratified, seeded
            by the first seed); students never train on it and it only reports.
        verbose: Keras' `fit` verbosity.
    """

    output_dir: str
    model: str | None = None
    saved_model: str | None = None
    dataset: str = "digits"
    data_dir: str | None = None
    reference: str | None = None
    stealers: tuple[str, ...] | None = None
    release: str | None = None
    top_k_ratio: float | None = None
    arch: str | None = None
    epochs: int = 24
    optimizer: str = "adam"
    learning_rate: float = 1e-3
    batch_size: int = 128
    seeds: tuple[int, ...] = (0,)
    validation_fraction: float = 0.1
    verbose: int = 0


def _check_count(name, value, minimum=1):
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise InputError(f"{name} must be an integer >= {minimum}. Received: {name}={value!r}")


def check_config(config):
    """Validates `config` before anything loads or trains; returns the stealer names to run.

    Raises:
        InputError: naming the argument and what was received.
    """
    if not config.output_dir:
        raise InputError("output_dir is required. Received: output_dir=None")
    if (config.model is None) == (config.saved_model is None):
        raise InputError(
            "Exactly one of model and saved_model must be given. "
            f"Received: model={config.model!r}, saved_model={config.saved_model!r}"
        )
    if config.saved_model is not None:
        if config.release is not None or config.top_k_ratio is not None:
            raise InputError(
                "release and top_k_ratio apply to model only: a saved_model is audited as it "
                f"serves. Received: release={config.release!r}, top_k_ratio={config.top_k_ratio!r}"
            )
        if keras.backend.backend() != "tensorflow":
            raise InputError(
                "saved_model is served through TensorFlow and needs the TensorFlow backend; "
                f"unset KERAS_BACKEND. Received: KERAS_BACKEND={keras.backend.backend()!r}"
            )
        if not os.path.isfile(os.path.join(config.saved_model, "saved_model.pb")):
            raise InputError(
                f"saved_model must be a SavedModel directory (holding saved_model.pb). "
                f"Received: saved_model={config.saved_model!r}"
            )
    else:
        if config.release is not None and config.release not in RELEASES:
            raise InputError(
                f"release must be one of {', '.join(RELEASES)}. Received: release={config.release!r}"
            )
        if config.top_k_ratio is not None:
            if config.release != "stingy":
                raise InputError(
                    "top_k_ratio applies to the stingy release only. "
                    f"Received: release={config.release!r}, top_k_ratio={config.top_k_ratio!r}"
                )
            releases.check_top_k_ratio(config.top_k_ratio)
    names = auditable_stealers()
    chosen = names if config.stealers is None else list(config.stealers)
    data_free = [name for name in chosen if name in DATA_FREE_STEALERS]
    if data_free and not isinstance(config.stealers, str):
        raise InputError(
            f"stealers: the data-free {', '.join(data_free)} are not in the audit yet (run "
            f"tools.datafree on the network). Received: stealers={list(config.stealers)!r}"
        )
    if (
        isinstance(config.stealers, str)
        or not chosen
        or any(name not in names for name in chosen)
        or len(set(chosen)) != len(chosen)
    ):
        shown = config.stealers if isinstance(config.stealers, str) else list(config.stealers)
        raise InputError(
            f"stealers must be distinct names from {', '.join(names)}. Received: stealers={shown!r}"
        )
    if config.arch is not None:
        from nasty_tf.models import available_models

        if config.arch not in available_models():
            raise InputError(
                f"arch must be one of {', '.join(available_models())}. Received: arch={config.arch!r}"
            )
    _check_count("epochs", config.epochs)
    _check_count("batch_size", config.batch_size)
    if config.optimizer not in ("adam", "sgd"):
        raise InputError(f"optimizer must be adam or sgd. Received: optimizer={config.optimizer!r}")
    rate = config.learning_rate
    if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0 < rate < float("inf"):
        raise InputError(f"learning_rate must be > 0. Received: learning_rate={rate!r}")
    seeds = config.seeds
    if (
        isinstance(seeds, (str, int))
        or not seeds
        or any(isinstance(s, bool) or not isinstance(s, int) or s < 0 for s in seeds)
        or len(set(seeds)) != len(seeds)
    ):
        raise InputError(
            f"seeds must be distinct integers >= 0, at least one. Received: seeds={seeds!r}"
        )
    from nasty_tf.data.validation import check_validation_fraction

    check_validation_fraction(config.validation_fraction)
    return chosen


def _tree_sha256(directory):
    """One SHA-256 over every file of a directory (relative names and contents), in order."""
    digest = hashlib.sha256()
    for root, dirs, files in os.walk(directory):
        dirs.sort()
        for name in sorted(files):
            path = os.path.join(root, name)
            digest.update(os.path.relpath(path, directory).encode() + b"\0")
            with open(path, "rb") as f:
                digest.update(hashlib.file_digest(f, "sha256").digest())
    return digest.hexdigest()


def _saved_model_release(path, dataset):
    """What a SavedModel export serves, as a Keras model from float pixels to its outputs."""
    import tensorflow as tf

    try:
        loaded = tf.saved_model.load(path)
        signature = loaded.signatures["serving_default"]
    except Exception as error:  # TensorFlow raises many types for a foreign directory.
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise InputError(
            f"saved_model: cannot load {path!r} with a serving_default signature: {reason[:200]}"
        ) from None
    specs = signature.structured_input_signature[1]
    outputs = signature.structured_outputs
    if "images" not in specs or "logits" not in outputs:
        raise InputError(
            f"saved_model: {path!r} must serve images -> logits (as nasty_tf.export writes). "
            f"Received: inputs={sorted(specs)}, outputs={sorted(outputs)}"
        )
    shape = tuple(specs["images"].shape[1:])
    classes = outputs["logits"].shape[-1]
    if shape != tuple(dataset.input_shape) or classes != dataset.num_classes:
        raise InputError(
            f"saved_model: {path!r} serves images {shape} over {classes} classes but dataset "
            f"{dataset.name!r} has {tuple(dataset.input_shape)} and {dataset.num_classes}"
        )
    served = keras.layers.TFSMLayer(path, call_endpoint="serving_default", trainable=False)
    inputs = keras.Input(shape, name="images")
    # The signature takes uint8: what a client sends. Pixels in [0, 255] cast exactly.
    pixels = ops.cast(ops.clip(ops.round(inputs), 0, 255), specs["images"].dtype.name)
    outputs = served(pixels)
    return keras.Model(
        inputs,
        {"logits": outputs["logits"], "probabilities": outputs["probabilities"]},
        name="saved_model_release",
    )


def _prepared(config):
    """Loads the data and the release; returns everything the runs need."""
    from nasty_tf.data import load_dataset
    from nasty_tf.data.validation import carve_validation
    from nasty_tf.models import available_models
    from nasty_tf.training import load_network
    from nasty_tf.training.checkpoints import model_file_sha256

    dataset = load_dataset(config.dataset, data_dir=config.data_dir)
    train, validation = carve_validation(dataset, config.validation_fraction, config.seeds[0])
    if config.model is not None:
        network = load_network(config.model, "model", dataset)
        release = config.release or "plain"
        params = {"top_k_ratio": config.top_k_ratio} if config.top_k_ratio is not None else {}
        served = releases.get_release(release, network, **params)
        teacher = {
            "kind": "keras",
            "sha256": model_file_sha256(config.model, "model"),
            "release": release,
            "top_k_ratio": config.top_k_ratio,
        }
        arch = config.arch or (network.name if network.name in available_models() else "cnn")
    else:
        served = _saved_model_release(config.saved_model, dataset)
        teacher = {"kind": "saved_model", "sha256": _tree_sha256(config.saved_model)}
        arch = config.arch or "cnn"
    reference = None
    if config.reference is not None:
        reference_network = load_network(config.reference, "reference", dataset)
        reference = {
            "served": releases.plain(reference_network),
            "key": {"kind": "keras", "sha256": model_file_sha256(config.reference, "reference")},
        }
    return dataset, train, validation, served, teacher, arch, reference


def _make_optimizer(config):
    if config.optimizer == "sgd":
        return keras.optimizers.SGD(learning_rate=config.learning_rate, momentum=0.9)
    from nasty_tf.training import ReferenceAdam

    return ReferenceAdam(learning_rate=config.learning_rate)  # the reference CNN's (PyTorch) Adam


def _accuracy(network, images, labels):
    from nasty_tf.training import accuracy_percent, predict_logits

    return accuracy_percent(predict_logits(network, images), labels)


def _read_result(run_dir):
    path = os.path.join(run_dir, RESULT_FILE)
    if not os.path.isfile(path):
        return None
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None  # a damaged record: the run is trained again


def _student_run(config, run_key, run_dir, stealer, served, data, arch):
    """One student: reused when `run_dir` holds a finished run of the same key, else trained."""
    dataset, train, validation = data
    finished = _read_result(run_dir)
    if finished is not None:
        if finished.get("config") != run_key:
            changed = sorted(
                key
                for key in set(run_key) | set(finished.get("config") or {})
                if run_key.get(key) != (finished.get("config") or {}).get(key)
            )
            raise InputError(
                f"output_dir: {run_dir!r} holds a finished run made with a different config "
                f"(differs in: {', '.join(changed)}); use another output_dir or delete it"
            )
        return finished, True
    from nasty_tf.models import get_model

    os.makedirs(run_dir, exist_ok=True)
    keras.utils.set_random_seed(run_key["seed"])
    student = get_model(
        arch, dataset.num_classes, dataset.input_shape, mean=dataset.mean, std=dataset.std
    )
    start = time.perf_counter()
    steal(
        stealer,
        student,
        served,
        train.x_train,
        train.y_train,
        epochs=config.epochs,
        batch_size=config.batch_size,
        optimizer=_make_optimizer(config),
        verbose=config.verbose,
    )
    seconds = time.perf_counter() - start
    result = {
        "config": run_key,
        "accuracy": _accuracy(student, dataset.x_test, dataset.y_test),
        "validation_accuracy": _accuracy(student, *validation),
        "train_seconds": round(seconds, 1),
    }
    atomic_save_model(student, os.path.join(run_dir, MODEL_FILE))
    atomic_write_json(os.path.join(run_dir, RESULT_FILE), result)  # last: marks it finished
    return result, False


def _jsonable(value):
    if isinstance(value, tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    return value


def audit(config):
    """Attacks a release through what it serves and writes its scorecard in `output_dir`.

    Args:
        config: an `AuditConfig`.

    Returns:
        The scorecard dict written to `scorecard.json`: `teacher.accuracy` (served argmax, test
        split), `baselines.scratch` and `baselines.label_smoothing`, `stealers` (one entry per
        stealer: `name`, `accuracy`, `vs_scratch`, `vs_label_smoothing`, `vs_reference` (None
        without a reference), `protected`, `accuracies` per seed), `reference` (the KD
        student of the reference, or None), `runs`, `config`, `settings` (what was resolved:
        student arch, release), `machine`, `date`, `backend`, `command`, `seconds`, `figure`.
        Accuracies are test-split percentages, means over the seeds.

    Raises:
        InputError: a bad config, an unusable model or dataset, or a finished run in
            `output_dir` made with another config.
        TrainingDiverged: a student's loss became NaN or infinite.
    """
    from nasty_tf.report import _machine, invoking_command

    names = check_config(config)
    start = time.perf_counter()
    dataset, train, validation, served, teacher, arch, reference = _prepared(config)
    data = (dataset, train, validation)
    teacher_network = served_logits_model(served, dataset.input_shape, name="teacher_served")
    teacher_accuracy = _accuracy(teacher_network, dataset.x_test, dataset.y_test)
    print(f"audit: teacher (served) test accuracy {teacher_accuracy:.2f}%", flush=True)

    shared = {
        "dataset": config.dataset,
        "arch": arch,
        "epochs": config.epochs,
        "optimizer": config.optimizer,
        "learning_rate": float(config.learning_rate),
        "batch_size": config.batch_size,
        "validation_fraction": float(config.validation_fraction),
        "validation_seed": config.seeds[0],
    }
    plan = [(SCRATCH, get_stealer(LABEL_SMOOTHING, label_smoothing=0.0), None, None)]
    plan.append((LABEL_SMOOTHING, get_stealer(LABEL_SMOOTHING), None, None))
    plan += [(name, get_stealer(name), served, teacher) for name in names]
    if reference is not None:
        plan.append((REFERENCE_KD, get_stealer("kd"), reference["served"], reference["key"]))

    runs = []
    accuracies = {}
    for name, stealer, run_served, release_key in plan:
        for seed in config.seeds:
            run_key = {
                **shared,
                "name": name,
                "stealer": stealer.config(),
                "release": release_key,
                "seed": seed,
            }
            run_dir = os.path.join(config.output_dir, RUNS_DIR, f"{name}_seed{seed}")
            result, reused = _student_run(config, run_key, run_dir, stealer, run_served, data, arch)
            accuracies.setdefault(name, []).append(result["accuracy"])
            runs.append(
                {
                    "name": name,
                    "seed": seed,
                    "accuracy": result["accuracy"],
                    "validation_accuracy": result.get("validation_accuracy"),
                    "train_seconds": result.get("train_seconds"),
                    "run_dir": os.path.relpath(run_dir, config.output_dir),
                    "reused": reused,
                }
            )
            how = "reused" if reused else f"{result.get('train_seconds', 0):.0f} s"
            print(
                f"audit: {name} seed {seed}: student test accuracy "
                f"{result['accuracy']:.2f}% ({how})",
                flush=True,
            )

    mean = {name: statistics.fmean(values) for name, values in accuracies.items()}
    scratch, smoothing = mean[SCRATCH], mean[LABEL_SMOOTHING]
    reference_accuracy = mean.get(REFERENCE_KD)
    rows = [
        {
            "name": name,
            "accuracy": mean[name],
            "vs_scratch": mean[name] - scratch,
            "vs_label_smoothing": mean[name] - smoothing,
            "vs_reference": None if reference_accuracy is None else mean[name] - reference_accuracy,
            "protected": bool(mean[name] <= smoothing),
            "accuracies": accuracies[name],
        }
        for name in names
    ]
    scorecard = {
        "teacher": {"accuracy": teacher_accuracy},
        "baselines": {SCRATCH: scratch, LABEL_SMOOTHING: smoothing},
        "stealers": rows,
        "reference": None if reference_accuracy is None else {"kd_accuracy": reference_accuracy},
        "runs": runs,
        "config": _jsonable(dataclasses.asdict(config)),
        "settings": {
            "arch": arch,
            "stealers": names,
            "teacher": teacher,
            "selection": "none: every stealer runs with its registry defaults",
        },
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "machine": _machine(),
        "backend": keras.backend.backend(),
        "command": invoking_command(),
        "seconds": round(time.perf_counter() - start, 1),
        "figure": SCORECARD_PNG,
    }
    plot_scorecard(scorecard, os.path.join(config.output_dir, SCORECARD_PNG))
    atomic_write_text(os.path.join(config.output_dir, SCORECARD_MD), format_scorecard(scorecard))
    atomic_write_json(os.path.join(config.output_dir, SCORECARD_JSON), scorecard)
    return scorecard


def _signed(value):
    return "n/a" if value is None else f"{value:+.2f}"


def _what_is_audited(scorecard):
    config = scorecard["config"]
    if config.get("saved_model"):
        return f"SavedModel `{config['saved_model']}` (as it serves)"
    release = scorecard["settings"]["teacher"].get("release", "plain")
    ratio = config.get("top_k_ratio")
    shown = f"{release} release" + (f", top_k_ratio {ratio}" if ratio is not None else "")
    return f"`{config.get('model')}`, {shown}"


def format_scorecard(scorecard):
    """The scorecard as Markdown: what was audited, the baselines, one row per stealer."""
    config = scorecard["config"]
    seeds = ", ".join(str(seed) for seed in config["seeds"])
    lines = [
        "# Protection scorecard",
        "",
        f"Audited: {_what_is_audited(scorecard)} on `{config['dataset']}`.",
        f"Students: {scorecard['settings']['arch']}, {config['epochs']} epochs of "
        f"{config['optimizer']} at {config['learning_rate']}, batch {config['batch_size']}; "
        f"seeds {seeds} (means); validation fraction {config['validation_fraction']} held out.",
        "",
        f"Teacher (served argmax) test accuracy: {scorecard['teacher']['accuracy']:.2f}%.",
        f"Baselines: scratch {scorecard['baselines'][SCRATCH]:.2f}%, "
        f"label smoothing {scorecard['baselines'][LABEL_SMOOTHING]:.2f}%"
        + (
            f"; KD from the reference {scorecard['reference']['kd_accuracy']:.2f}%."
            if scorecard.get("reference")
            else "."
        ),
        "",
        "A stealer is **protected** against when its student ends at or below the "
        "label-smoothing student.",
        "",
        "| stealer | student accuracy (%) | vs scratch | vs label smoothing | vs reference | protected |",
        "|---|---|---|---|---|---|",
    ]
    for row in scorecard["stealers"]:
        lines.append(
            f"| {row['name']} | {row['accuracy']:.2f} | {_signed(row['vs_scratch'])} | "
            f"{_signed(row['vs_label_smoothing'])} | {_signed(row['vs_reference'])} | "
            f"{'yes' if row['protected'] else '**no**'} |"
        )
    lines += ["", f"![student accuracy per stealer]({scorecard['figure']})", ""]
    lines += [
        f"{scorecard['date']}, {scorecard['machine']}, backend {scorecard['backend']}, "
        f"{scorecard['seconds']} s.",
        "",
        f"`{scorecard['command']}`" if scorecard.get("command") else "",
    ]
    return "\n".join(lines).rstrip() + "\n"


def plot_scorecard(scorecard, path):
    """Student test accuracy per stealer (bars) with the baselines and teacher as lines."""
    from nasty_tf.figures import _pyplot, _save

    plt = _pyplot()
    rows = scorecard["stealers"]
    figure, axis = plt.subplots(figsize=(max(6, 0.9 * len(rows) + 4), 4.2), layout="constrained")
    colors = ["tab:green" if row["protected"] else "tab:red" for row in rows]
    bars = axis.bar([row["name"] for row in rows], [row["accuracy"] for row in rows], color=colors)
    axis.bar_label(bars, fmt="%.2f", fontsize=7)
    lines = [
        (scorecard["teacher"]["accuracy"], "teacher (served)", "black", "--"),
        (scorecard["baselines"][SCRATCH], "student from scratch", "tab:gray", ":"),
        (scorecard["baselines"][LABEL_SMOOTHING], "label smoothing (the bar)", "tab:blue", "-"),
    ]
    if scorecard.get("reference"):
        lines.append(
            (scorecard["reference"]["kd_accuracy"], "KD from the reference", "tab:purple", "-.")
        )
    for value, label, color, style in lines:
        axis.axhline(value, color=color, linestyle=style, linewidth=1.2, label=label)
    accuracies = [row["accuracy"] for row in rows] + [value for value, *_ in lines]
    axis.set_ylim(max(0.0, min(accuracies) - 10.0), min(100.0, max(accuracies) + 3.0))
    axis.set_xlabel("stealer (green: protected, red: not)")
    axis.set_ylabel("student test accuracy (%)")
    axis.set_title(f"Audit: {_what_is_audited(scorecard).replace('`', '')}", fontsize=9)
    axis.grid(alpha=0.3, axis="y")
    axis.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)
    axis.tick_params(axis="x", labelrotation=20)
    _save(figure, path)
    return os.path.basename(path)
