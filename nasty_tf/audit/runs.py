"""The audit's student runs, cached: `D/runs/<name>_seed<k>/`, one per student and seed.

Each run directory holds the student's `model.keras` and, written last, `result.json` (the
config it was made from, its test and validation accuracy, and for a served student its
`validation_curve`: the validation accuracy after each epoch). A rerun with the same config
reuses a finished run; a finished run whose config differs is refused, naming its directory. A
run missing here is copied from a finished twin in another audit's directory
(`AuditConfig.reuse_runs_from`) or in this one: a run of the same config, or of one that trains
the same student (`nasty_tf.audit.twins`), so that audits of several releases train each
student once. A data-free run is a `nasty_tf.datafree.run_datafree` job in the same directory
(its own `metrics.json`, `inversion_grid.png`, and backup while it runs), which resumes an
interrupted attack; `result.json` is written once it finished.
"""

import json
import os
import shutil
import statistics
import time

import keras

from nasty_tf.atomic_io import atomic_save_model, atomic_write_json
from nasty_tf.audit.twins import training_identity
from nasty_tf.datafree import run_datafree
from nasty_tf.errors import InputError
from nasty_tf.stealers import steal
from nasty_tf.stealers.registry import DATAFREE
from nasty_tf.training.run_directory import LOCK_FILE

RUNS_DIR = "runs"
RESULT_FILE = "result.json"
MODEL_FILE = "model.keras"


def _make_optimizer(config):
    """Every served student's optimizer: PyTorch's Adam (the reference CNN's) or SGD 0.9."""
    if config.optimizer == "sgd":
        return keras.optimizers.SGD(learning_rate=config.learning_rate, momentum=0.9)
    from nasty_tf.training import ReferenceAdam

    return ReferenceAdam(learning_rate=config.learning_rate)


def _accuracy(network, images, labels):
    from nasty_tf.training import accuracy_percent, predict_logits

    return accuracy_percent(predict_logits(network, images), labels)


class _ValidationCurve(keras.callbacks.Callback):
    """The student's (`model.student`, the stealer wrapper's network) validation accuracy after
    every epoch, in `curve`.

    It only predicts (no weight, optimizer or random state changes), so the student trains
    exactly as without it. The curve shows how settled the end of a schedule is: one final
    accuracy cannot tell a plateau from a point on a slope or from epoch-to-epoch jitter.
    """

    def __init__(self, images, labels):
        super().__init__()
        self._images, self._labels = images, labels
        self.curve = []

    def on_epoch_end(self, epoch, logs=None):
        self.curve.append(round(_accuracy(self.model.student, self._images, self._labels), 4))


def _trained_config(result):
    """The key a finished run's student was trained under: `twin_config` for a twin's copy."""
    return result.get("twin_config") or result["config"]


def _read_result(run_dir):
    path = os.path.join(run_dir, RESULT_FILE)
    if not os.path.isfile(path):
        return None
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None  # a damaged record: the run is trained again


class AuditRuns:
    """Trains or reuses the audit's students and collects their accuracies.

    Args:
        config: the `AuditConfig`.
        target: its `AuditTarget`.

    Attributes:
        runs: one entry per run, in order: `name`, `seed`, `accuracy`, `validation_accuracy`,
            `train_seconds`, `run_dir` (relative to `output_dir`), `reused`, `reused_from` (the
            other audit's run directory a twin was copied from, relative to `output_dir`, or
            None).
        accuracies: `{name: [test accuracy per seed]}`.
        validation_accuracies: `{name: [validation accuracy per seed]}`: what a search
            (`nasty_tf.audit.search`) chooses on.
        validation_curves: `{name: [validation curve per seed]}`, a curve None where the run
            records none (data-free, or recorded before curves were): what the doubling check
            (`nasty_tf.audit.schedule`) reads.
    """

    def __init__(self, config, target):
        self.config = config
        self.target = target
        self.runs = []
        self.accuracies = {}
        self.validation_accuracies = {}
        self.validation_curves = {}
        # What every run's result depends on; a served student's schedule only where it applies.
        self._data_key = {
            "dataset": config.dataset,
            "arch": target.arch,
            "validation_fraction": float(config.validation_fraction),
            "validation_seed": config.seeds[0],
            # Absent for the carved split: the key of runs made before the field was.
            **(
                {"validation_split": config.validation_split}
                if config.validation_split != "carved"
                else {}
            ),
            # Absent for the whole training split: the key of runs made before the field was.
            **(
                {"train_fraction": float(config.train_fraction)}
                if config.train_fraction != 1.0
                else {}
            ),
        }
        self._schedule_key = {
            "epochs": config.epochs,
            "optimizer": config.optimizer,
            "learning_rate": float(config.learning_rate),
            "batch_size": config.batch_size,
            # Absent without augmentation: the key of runs made before the field was.
            **({"augment": True} if config.augment else {}),
        }

    def mean(self, name):
        return statistics.fmean(self.accuracies[name])

    def validation_mean(self, name):
        return statistics.fmean(self.validation_accuracies[name])

    def run(self, name, stealer, served=None, release_key=None):
        """Every seed's run of `stealer` under `name`, against `served` (keyed `release_key`).

        A data-free stealer attacks `target.network_file`; its release key is the network's,
        whatever the release serves.
        """
        datafree = stealer.kind == DATAFREE
        for seed in self.config.seeds:
            key = {
                **self._data_key,
                **({} if datafree else self._schedule_key),
                "name": name,
                "stealer": stealer.config(),
                "release": release_key,
                "seed": seed,
            }
            run_dir = os.path.join(self.config.output_dir, RUNS_DIR, f"{name}_seed{seed}")
            result, reused, source = self._run_once(key, run_dir, stealer, served, datafree)
            self.accuracies.setdefault(name, []).append(result["accuracy"])
            self.validation_accuracies.setdefault(name, []).append(
                result.get("validation_accuracy")
            )
            self.validation_curves.setdefault(name, []).append(result.get("validation_curve"))
            self.runs.append(
                {
                    "name": name,
                    "seed": seed,
                    "accuracy": result["accuracy"],
                    "validation_accuracy": result.get("validation_accuracy"),
                    "train_seconds": result.get("train_seconds"),
                    "run_dir": os.path.relpath(run_dir, self.config.output_dir),
                    "reused": reused,
                    "reused_from": None
                    if source is None
                    else os.path.relpath(source, self.config.output_dir),
                }
            )
            how = f"{result.get('train_seconds', 0):.0f} s"
            if reused:
                how = "reused" + (f" from {source}" if source else "")
            print(
                f"audit: {name} seed {seed}: student test accuracy "
                f"{result['accuracy']:.2f}% ({how})",
                flush=True,
            )

    def _run_once(self, key, run_dir, stealer, served, datafree):
        """One student: reused when `run_dir` holds a finished run of the same key, else copied
        from a finished twin of the same key in `config.reuse_runs_from`, else trained.

        Returns `(result, reused, source)`, `source` the directory a twin was copied from.
        """
        finished = _read_result(run_dir)
        source = None
        if finished is None:
            finished, source = self._adopt_twin(key, run_dir)
        if finished is not None:
            stored = finished.get("config") or {}
            if stored != key:
                changed = sorted(k for k in set(key) | set(stored) if key.get(k) != stored.get(k))
                raise InputError(
                    f"output_dir: {run_dir!r} holds a finished run made with a different config "
                    f"(differs in: {', '.join(changed)}); use another output_dir or delete it"
                )
            return finished, True, source
        # A student takes minutes and trains silently at verbose 0: say which one is under way.
        print(f"audit: {key['name']} seed {key['seed']}: training...", flush=True)
        os.makedirs(run_dir, exist_ok=True)
        start = time.perf_counter()
        curve = None
        if datafree:
            student, accuracy = self._train_datafree(stealer, run_dir, key["seed"])
        else:
            student, curve = self._train_served(stealer, served, key["seed"])
            accuracy = _accuracy(student, self.target.dataset.x_test, self.target.dataset.y_test)
            atomic_save_model(student, os.path.join(run_dir, MODEL_FILE))
        result = {
            "config": key,
            "accuracy": accuracy,
            "validation_accuracy": _accuracy(student, *self.target.validation),
            "train_seconds": round(time.perf_counter() - start, 1),
            **({} if curve is None else {"validation_curve": curve}),
        }
        atomic_write_json(os.path.join(run_dir, RESULT_FILE), result)  # last: marks it finished
        return result, False, None

    def _adopt_twin(self, key, run_dir):
        """Copies a finished twin of `key` into `run_dir`; returns `(its result, its
        directory)`, or `(None, None)` when there is none.

        A twin is a finished run whose key trains the same student (`twins.training_identity`),
        looked for in the same run name in each of `config.reuse_runs_from`, then any other run
        there or in this audit's own `runs/` (e.g. `reference_kd` for `kd` against the same plain
        network, `kd` on a stingy release for `topk` on the plain one). A run trained under
        `key` itself is taken before any other twin, even when it reaches here as another
        audit's copy. The copy's `result.json` holds `key` as its `config` and, when its student
        was trained under another key, that key as `twin_config` (a copy of a copy names the
        run that trained it).

        A copy, not a link: each audit's directory stays complete on its own (resumable,
        movable, deletable). A run here that never finished is replaced by the twin.
        """
        wanted = self._identity(key)
        found = None
        for twin in self._twin_candidates(run_dir):
            result = _read_result(twin)
            if result is None or self._identity(result.get("config")) != wanted:
                continue
            if _trained_config(result) == key:
                found = twin, result
                break
            found = found or (twin, result)
        if found is None:
            return None, None
        twin, result = found
        trained = _trained_config(result)
        record = {name: value for name, value in result.items() if name != "twin_config"}
        record["config"] = key
        if trained != key:
            record["twin_config"] = trained
        staged = f"{run_dir}.copying"
        shutil.rmtree(staged, ignore_errors=True)
        # The twin's lock file belongs to its own audit; result.json is written last, so a copy
        # cut short is an unfinished run here, never a finished one.
        shutil.copytree(twin, staged, ignore=shutil.ignore_patterns(LOCK_FILE, RESULT_FILE))
        if record == result:
            shutil.copy2(os.path.join(twin, RESULT_FILE), os.path.join(staged, RESULT_FILE))
        else:
            atomic_write_json(os.path.join(staged, RESULT_FILE), record)
        shutil.rmtree(run_dir, ignore_errors=True)
        os.replace(staged, run_dir)
        return record, twin

    def _identity(self, key):
        if not isinstance(key, dict):
            return None  # a damaged record twins with nothing
        return training_identity(key, self.target.dataset.num_classes)

    def _twin_candidates(self, run_dir):
        """Run directories that may hold a twin of `run_dir`'s run, in the order they are tried."""
        name = os.path.basename(run_dir)
        sources = [os.path.join(other, RUNS_DIR) for other in self.config.reuse_runs_from]
        yield from (os.path.join(source, name) for source in sources)
        own = os.path.join(self.config.output_dir, RUNS_DIR)
        for source in [*sources, own]:
            if not os.path.isdir(source):
                continue
            for other in sorted(os.listdir(source)):
                if other != name and not other.endswith(".copying"):
                    yield os.path.join(source, other)

    def _student(self):
        from nasty_tf.models import get_model

        dataset = self.target.dataset
        return get_model(
            self.target.arch,
            dataset.num_classes,
            dataset.input_shape,
            mean=dataset.mean,
            std=dataset.std,
        )

    def check_builds(self, stealer, served):
        """Builds a served `stealer`'s training wrapper around a fresh student and drops it.

        Raises the wrapper's `InputError` for a parameter the students' architecture refuses
        (skeptical's `loc` beyond its stages); trains nothing. Every run seeds itself before
        building its own student, so this changes no result.
        """
        stealer.build(self._student(), served)

    def _train_served(self, stealer, served, seed):
        """The trained student and its validation curve (`_ValidationCurve.curve`)."""
        keras.utils.set_random_seed(seed)
        student = self._student()
        validation_curve = _ValidationCurve(*self.target.validation)
        student = steal(
            stealer,
            student,
            served,
            self.target.train.x_train,
            self.target.train.y_train,
            epochs=self.config.epochs,
            batch_size=self.config.batch_size,
            optimizer=_make_optimizer(self.config),
            augmenter=self._augmenter(seed),
            callbacks=[validation_curve],
            verbose=self.config.verbose,
        )
        return student, validation_curve.curve

    def _augmenter(self, seed):
        if not self.config.augment:
            return None
        from nasty_tf.data import make_augmenter

        return make_augmenter(self.target.dataset.augmentation, seed=seed)

    def _train_datafree(self, stealer, run_dir, seed):
        """The data-free attack as a `run_datafree` job in `run_dir` (resumed or reused there);
        returns its student and test accuracy."""
        from nasty_tf.training import load_network

        datafree_config = stealer.datafree_config(
            self.target.network_file,
            arch=self.target.arch,
            dataset=self.config.dataset,
            data_dir=self.config.data_dir,
            seed=seed,
            output_dir=run_dir,
            verbose=self.config.verbose,
        )
        metrics = run_datafree(datafree_config, self.target.dataset, on_finished="reuse")
        student = load_network(os.path.join(run_dir, MODEL_FILE), "model", self.target.dataset)
        return student, metrics["accuracy"]
