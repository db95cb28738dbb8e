"""A keras-tuner search of omega (and optionally tau_A): the most damaging nasty teacher that
still keeps its accuracy within a budget.

Held-out selection (DESIGN.md section 6): a stratified, seeded validation split
(`validation_fraction` of each class, seeded by the teachers' `seed`) is carved from the
training split first (`nasty_tf.data.carve_validation`). The normal teacher the search trains,
every nasty teacher and every proxy student train on the rest only, and the objective and its
accuracy floor read validation accuracies only. The test split only reports: the rows show
each trial's test accuracies beside the validation ones that chose.

Objective, minimised (`trial_score`): each trial trains a nasty teacher (paper eq. 2) for its
omega and tau_A against the normal teacher, distils a proxy student from it (eq. 1; or
`proxy_students` of them, differently seeded, whose mean accuracy is `student_accuracy`), and
scores

    score = student_accuracy                  if teacher_accuracy >= normal_accuracy - budget
    score = 100 + (normal_accuracy - budget - teacher_accuracy)   otherwise

so a feasible trial scores at most 100 and an infeasible one more than 100 (the further below
the accuracy floor, the worse): every infeasible trial ranks below every feasible one, and the
oracle is still told which infeasible omega was closest to feasible. Accuracies are percent on
the validation split, `budget` is in points.

A given adversary (`TuneConfig.adversary`) was trained elsewhere, maybe on the validation
images too: then its validation accuracy, the floor's reference, is inflated and the floor is
stricter than it should be (some feasible omegas are refused), never looser; the nasty
teachers and students are unaffected (they never train on the validation images).

Layout of the search's `output_dir`: `normal/` (its own normal teacher, unless an adversary
`.keras` is given), `keras_tuner/` (keras-tuner's project: oracle state and trials),
`trials/<trial_id>/{nasty,student}/` (ordinary run directories, whose `metrics.json` hold test
accuracies; `student_1/`, `student_2/`, ... beside `student/` with `proxy_students` > 1) and
`trials/<trial_id>/validation.json` (the trial's validation accuracies, what it was scored on);
a trial whose nasty teacher diverged holds `diverged.json` instead and counts as infeasible:
the search goes on), `tune_config.json`, `tune_report.json` and `tune_report.md`. Rerunning
with the same settings continues the search: finished trials are not retrained (keras-tuner
does not recreate them and their run directories are reused), an interrupted trial resumes
from its checkpoints, and a higher `max_trials` adds trials; other settings in the same
directory are refused.

Distributed search: with keras-tuner's variables set (`KERASTUNER_TUNER_ID`,
`KERASTUNER_ORACLE_IP`, `KERASTUNER_ORACLE_PORT`; `nasty_tf.search_cluster`), the same call
with the same settings and the same `output_dir` (a shared filesystem) runs in every process.
The chief (`KERASTUNER_TUNER_ID=chief`) holds the root's lock, checks the settings, trains the
shared normal teacher once, then serves the oracle (it runs no trial) and, once every trial is
over, writes the report from the oracle's trials and the trials' run directories. A worker takes
no lock on the root: it waits until the chief serves (so the normal teacher exists), refuses
settings other than the chief's, then runs the trials the oracle gives it, each locking its own
run directories, and writes no report. Each trial runs once, on one worker; a worker restarted
with the same id resumes the trial it held.

Example:

    report = tune(TrainConfig(epochs=15, output_dir="runs/tune"),
                  TuneConfig(omega_min=0.02, omega_max=0.3, max_trials=8))
    report["best"]["omega"]
"""

import dataclasses
import json
import os
import shutil
import traceback

import keras_tuner
import numpy as np

from nasty_tf import report as report_lib
from nasty_tf import search_cluster
from nasty_tf.atomic_io import atomic_write_json, atomic_write_text
from nasty_tf.data.validation import carve_validation, check_validation_fraction
from nasty_tf.errors import InputError, TrainingDiverged, check_count
from nasty_tf.training import jobs
from nasty_tf.training.checkpoints import load_network
from nasty_tf.training.config import DistillConfig, NastyConfig
from nasty_tf.training.evaluation import accuracy_percent, predict_logits
from nasty_tf.training.run_directory import RunLock

ORACLES = ("bayesian", "random")
_PROJECT = "keras_tuner"
_DIVERGED_FILE = "diverged.json"  # in a trial's directory when its nasty teacher diverged
_VALIDATION_FILE = "validation.json"  # in a trial's directory: what the trial was scored on
SELECTION_SPLIT = "validation"


@dataclasses.dataclass(frozen=True)
class TuneConfig:
    """Settings of the omega search (the teachers' schedule is a separate `TrainConfig`).

    Attributes:
        omega_min, omega_max: the omega range, sampled on a log scale (0 < min <= max; equal
            values fix omega).
        temperatures: tau_A values to choose from (`hp.Choice`; one value fixes it).
        accuracy_budget: points of validation accuracy the nasty teacher may lose against the
            normal.
        max_trials: number of trials of the whole search (a rerun counts the finished ones).
        oracle: "bayesian" (Gaussian process) or "random", keras-tuner's oracles, seeded.
        adversary: a normal `.keras` network to undermine; None trains one into `normal/`.
        student_arch, student_epochs: the proxy student, distilled with the teachers' optimizer
            settings.
        proxy_students: proxy students per trial, seeded by the teachers' seed + 0, 1, ...; a
            trial is scored on their mean validation accuracy. Several are needed to separate
            settings whose margins are within one student's seed-to-seed spread.
        alpha, kd_temperature: its KD settings (eq. 1).
        validation_fraction: the share of each class of the training split held out for
            scoring the trials, in (0, 1) (module docstring).
        nasty_init_from_adversary: every trial's nasty network starts from the adversary's
            weights (`NastyConfig.init_from`, the owner's normal teacher) instead of a fresh
            initialisation; False (the default): a fresh network seeded by the teachers' seed.
        omega_warmup_epochs: every trial's omega ramps from 0 over this many epochs
            (`NastyConfig.omega_warmup_epochs`); 0 (the default): the trial's omega from the
            first step.
    """

    omega_min: float = 0.02
    omega_max: float = 0.3
    temperatures: tuple = (4.0,)
    accuracy_budget: float = 1.0
    max_trials: int = 8
    oracle: str = "bayesian"
    adversary: str | None = None
    student_arch: str = "cnn"
    student_epochs: int = 4
    proxy_students: int = 1
    alpha: float = 0.9
    kd_temperature: float = 4.0
    validation_fraction: float = 0.1
    nasty_init_from_adversary: bool = False
    omega_warmup_epochs: int = 0

    def __post_init__(self):
        if not isinstance(self.temperatures, tuple):
            object.__setattr__(self, "temperatures", tuple(self.temperatures))
        if self.max_trials < 1:
            raise InputError(f"max_trials must be >= 1. Received: max_trials={self.max_trials}")
        if not self.omega_min > 0:
            raise InputError(
                f"omega_min must be > 0 (log sampling). Received: omega_min={self.omega_min}"
            )
        if not self.omega_min <= self.omega_max:
            raise InputError(
                "omega_min must be <= `omega_max`. "
                f"Received: omega_min={self.omega_min}, omega_max={self.omega_max}"
            )
        shown = ",".join(str(t) for t in self.temperatures)
        if not self.temperatures or not all(t > 0 for t in self.temperatures):
            raise InputError(
                f"temperatures must be one or more numbers > 0. Received: temperatures={shown}"
            )
        if len(set(self.temperatures)) != len(self.temperatures):
            raise InputError(f"temperatures must not repeat. Received: temperatures={shown}")
        if not self.accuracy_budget >= 0:
            raise InputError(
                f"accuracy_budget must be >= 0. Received: accuracy_budget={self.accuracy_budget}"
            )
        if self.oracle not in ORACLES:
            raise InputError(f"oracle must be one of {ORACLES}. Received: oracle={self.oracle!r}")
        if self.student_epochs < 1:
            raise InputError(
                f"student_epochs must be >= 1. Received: student_epochs={self.student_epochs}"
            )
        check_count("proxy_students", self.proxy_students)
        if not 0 <= self.alpha <= 1:
            raise InputError(f"alpha must be in [0, 1]. Received: alpha={self.alpha}")
        if not self.kd_temperature > 0:
            raise InputError(
                f"kd_temperature must be > 0. Received: kd_temperature={self.kd_temperature}"
            )
        if self.adversary is not None and not os.path.isfile(self.adversary):
            raise InputError(
                f"adversary must be an existing .keras file. Received: adversary={self.adversary}"
            )
        check_count("omega_warmup_epochs", self.omega_warmup_epochs, minimum=0)
        check_validation_fraction(self.validation_fraction)


def trial_score(teacher_accuracy, student_accuracy, normal_accuracy, budget):
    """The minimised objective (module docstring): the student's accuracy if the teacher keeps
    `teacher_accuracy >= normal_accuracy - budget`, else 100 plus the shortfall. The search
    passes validation accuracies (percent)."""
    violation = max(0.0, (normal_accuracy - budget) - teacher_accuracy)
    return float(student_accuracy) if violation == 0 else 100.0 + violation


class _FatalInputError(InputError, keras_tuner.errors.FatalError):
    """Bad input inside a trial: keras-tuner would swallow a plain exception as a failed trial."""


def validation_accuracy(model_path, validation, dataset=None):
    """Accuracy (percent) of the network saved in `model_path` on the held-out `(x, y)`."""
    network = load_network(model_path, "the search's model", dataset)
    images, labels = validation
    return accuracy_percent(predict_logits(network, images), labels)


def _student_dirs(proxy_students):
    """A trial's proxy students' run directories, relative to the trial's: `student` (the
    teachers' seed, the only one of a one-student search), then `student_1`, `student_2`, ..."""
    return ["student"] + [f"student_{i}" for i in range(1, proxy_students)]


def _trial_validation(root, validation, dataset, proxy_students, measure=False):
    """A trial's validation accuracies (`validation.json`): the teacher's, each proxy student's
    (`student_accuracies`) and their mean (`student_accuracy`, what the trial is scored on);
    measured from the saved networks when `measure` or when the file is missing, and then
    written there."""
    path = os.path.join(root, _VALIDATION_FILE)
    if not measure and os.path.exists(path):
        with open(path) as f:
            scores = json.load(f)
        # Written before proxy_students: one student.
        scores.setdefault("student_accuracies", [scores["student_accuracy"]])
        return scores
    students = [
        validation_accuracy(os.path.join(root, name, "model.keras"), validation, dataset)
        for name in _student_dirs(proxy_students)
    ]
    scores = {
        "teacher_accuracy": validation_accuracy(
            os.path.join(root, "nasty", "model.keras"), validation, dataset
        ),
        "student_accuracy": float(np.mean(students)),
        "student_accuracies": students,
        "images": int(len(validation[1])),
    }
    atomic_write_json(path, scores)
    return scores


class NastyOmegaTuner(keras_tuner.engine.base_tuner.BaseTuner):
    """A tuner without a HyperModel: a trial is a nasty teacher plus a proxy student.

    Args:
        oracle: a keras-tuner oracle minimising "score", its space already declared.
        train_config: the teachers' `TrainConfig` (its `output_dir` is the search's root).
        tune_config: a `TuneConfig`.
        adversary: the normal network's `.keras` file; normal_accuracy: its validation accuracy
            (the floor's reference).
        dataset: the dataset every trial trains on: the training split without the validation
            images (`carve_validation`); its test split only reports.
        validation: the held-out `(x, y)` that scores every trial.
        on_finished: for the trials' run directories ("reuse" resumes; "overwrite" retrains).
        worker_id: a distributed search's worker (`KERASTUNER_TUNER_ID`): each trial it runs
            is named in its log and in `trials_run`; None on one machine.
    """

    def __init__(
        self,
        oracle,
        train_config,
        tune_config,
        adversary,
        normal_accuracy,
        dataset,
        validation,
        on_finished="reuse",
        worker_id=None,
        **kwargs,
    ):
        self.worker_id = worker_id
        self.trials_run = []
        self.trials_failed = []
        self.train_config = train_config
        self.tune_config = tune_config
        self.adversary = adversary
        self.normal_accuracy = normal_accuracy
        self.dataset = dataset
        self.validation = validation
        self.on_finished = on_finished
        super().__init__(oracle, directory=train_config.output_dir, project_name=_PROJECT, **kwargs)

    def trial_dir(self, trial_id):
        return os.path.join(self.train_config.output_dir, "trials", str(trial_id))

    def run_trial(self, trial, *args, **kwargs):
        if self.worker_id is None:
            return self._run_trial(trial)
        hp = trial.hyperparameters
        print(
            f"worker {self.worker_id} runs trial {trial.trial_id} (omega {hp.get('omega'):.4g}, "
            f"tau_A {hp.get('temperature'):g})",
            flush=True,
        )
        try:
            results = self._run_trial(trial)
        except keras_tuner.errors.FatalError as error:
            # Ended as failed, or the chief would wait for this trial forever; the chief then
            # stops the search (`search_cluster.serve_oracle`): this worker asks once more, to
            # be told to stop and not waited for, and ends here.
            print(f"worker {self.worker_id}: trial {trial.trial_id} failed: {error}", flush=True)
            trial.status = keras_tuner.engine.trial.TrialStatus.FAILED
            trial.message = str(error)
            self.oracle.end_trial(trial)
            self.oracle.create_trial(self.worker_id)
            raise
        except Exception as error:
            # keras-tuner ends the trial as failed (the cause never reaches the chief) and asks
            # for the next, which the chief refuses: the search stops on it.
            self.trials_failed.append(trial.trial_id)
            print(
                f"worker {self.worker_id}: trial {trial.trial_id} failed: "
                f"{type(error).__name__}: {error}",
                flush=True,
            )
            traceback.print_exc()  # a bug: the chief never sees it
            raise
        self.trials_run.append(trial.trial_id)
        print(
            f"worker {self.worker_id} finished trial {trial.trial_id}: score "
            f"{results['score']:.2f}",
            flush=True,
        )
        return results

    def _run_trial(self, trial):
        hp = trial.hyperparameters
        tune = self.tune_config
        root = self.trial_dir(trial.trial_id)
        try:
            jobs.train_nasty(
                self.train_config.replace(output_dir=os.path.join(root, "nasty")),
                NastyConfig(
                    self.adversary,
                    hp.get("omega"),
                    hp.get("temperature"),
                    init_from=self.adversary if tune.nasty_init_from_adversary else None,
                    omega_warmup_epochs=tune.omega_warmup_epochs,
                ),
                self.dataset,
                self.on_finished,
            )
            kd = DistillConfig(
                os.path.join(root, "nasty", "model.keras"), tune.alpha, tune.kd_temperature
            )
            for offset, name in enumerate(_student_dirs(tune.proxy_students)):
                jobs.distill(
                    self.train_config.replace(
                        arch=tune.student_arch,
                        epochs=tune.student_epochs,
                        seed=self.train_config.seed + offset,
                        output_dir=os.path.join(root, name),
                    ),
                    kd,
                    self.dataset,
                    self.on_finished,
                )
            # Measured afresh: a trial retried after an interruption may hold a stale file.
            scores = _trial_validation(
                root, self.validation, self.dataset, tune.proxy_students, measure=True
            )
        except InputError as error:
            raise _FatalInputError(str(error)) from None
        except TrainingDiverged as error:
            # A too-large omega diverging is an outcome of the search, not the end of it: the
            # trial is infeasible with the largest shortfall (as if the teacher were at 0%).
            atomic_write_json(
                os.path.join(root, _DIVERGED_FILE),
                {
                    "omega": hp.get("omega"),
                    "temperature": hp.get("temperature"),
                    "error": str(error),
                },
            )
            print(
                f"trial {trial.trial_id} diverged (omega={hp.get('omega'):.4g}): {error}",
                flush=True,
            )
            return {"score": trial_score(0.0, 100.0, self.normal_accuracy, tune.accuracy_budget)}
        # The oracle is told validation numbers only: the test split never reaches a choice.
        return {
            "score": trial_score(
                scores["teacher_accuracy"],
                scores["student_accuracy"],
                self.normal_accuracy,
                tune.accuracy_budget,
            ),
            "teacher_validation_accuracy": scores["teacher_accuracy"],
            "student_validation_accuracy": scores["student_accuracy"],
        }


def _space(tune):
    hp = keras_tuner.HyperParameters()
    if tune.omega_min == tune.omega_max:
        hp.Fixed("omega", tune.omega_min)
    else:
        hp.Float("omega", tune.omega_min, tune.omega_max, sampling="log")
    if len(tune.temperatures) == 1:
        hp.Fixed("temperature", tune.temperatures[0])
    else:
        hp.Choice("temperature", list(tune.temperatures))
    return hp


def _oracle(tune, seed):
    common = dict(
        objective=keras_tuner.Objective("score", "min"),
        max_trials=tune.max_trials,
        hyperparameters=_space(tune),
        allow_new_entries=False,
        # keras-tuner takes a seed of 0 for "no seed" (`seed or random.randint(...)`), which
        # would leave the default --seed=0 search unseeded: shift every seed by one.
        seed=seed + 1,
        # A trial only fails on a bug (bad input is fatal): stop at the first one.
        max_consecutive_failed_trials=1,
    )
    if tune.oracle == "random":
        return keras_tuner.oracles.RandomSearchOracle(**common)
    return keras_tuner.oracles.BayesianOptimizationOracle(**common)


def _tuner(train_config, tune_config, adversary, normal_accuracy, dataset, validation, **kwargs):
    """The search's tuner, on the chief (or one machine) and on a worker alike: the same
    seeded oracle and trials, which resume (`on_finished="reuse"`); `kwargs` go to
    `NastyOmegaTuner` (`overwrite`, `worker_id`)."""
    return NastyOmegaTuner(
        _oracle(tune_config, train_config.seed),
        train_config,
        tune_config,
        adversary,
        normal_accuracy,
        dataset,
        validation,
        on_finished="reuse",
        **kwargs,
    )


def _check_same_search(root, identity, overwrite):
    """A project directory belongs to one search: refuse to continue it with other settings."""
    path = os.path.join(root, "tune_config.json")
    if overwrite:
        for name in (_PROJECT, "trials"):
            shutil.rmtree(os.path.join(root, name), ignore_errors=True)
    elif os.path.exists(path):
        with open(path) as f:
            if json.load(f) != identity:
                raise InputError(
                    f"output_dir {root} holds a search with other settings; choose another "
                    "`output_dir` or set `overwrite` to start it again"
                )
    atomic_write_json(path, identity)


def tune(train_config, tune_config, dataset=None, overwrite=False):
    """Searches omega (and tau_A) for the lowest proxy-student accuracy within the budget.

    Every choice reads the validation split carved from the training split
    (`tune_config.validation_fraction`, seeded by `train_config.seed`); the test split only
    reports (module docstring). With keras-tuner's `KERASTUNER_*` variables set, this process
    is the chief or a worker of a distributed search (module docstring,
    `nasty_tf.search_cluster`).

    Args:
        train_config: the `TrainConfig` of the normal and nasty teachers; its `output_dir` is
            the search's root (module docstring) and its `seed` seeds the oracle and the
            validation split too.
        tune_config: a `TuneConfig`.
        dataset: an already loaded `Dataset` (whole training split, before the carve); loaded
            from `train_config` when None.
        overwrite: start the search (and its normal teacher) again instead of continuing it
            (not on a worker: the chief starts a distributed search again).

    Returns:
        On one machine and on the chief, the report written to `tune_report.json`:
        `selection_split` ("validation"), `validation_fraction`, `validation_images`,
        `train_images` (what the networks trained on), `normal_validation_accuracy` and
        `normal_accuracy` (test), `floor` (validation), `trials` (one row per finished trial:
        trial_id, omega, temperature, teacher_validation_accuracy, teacher_accuracy (test),
        adversarial_kl (test), student_validation_accuracy, student_accuracy (test), feasible,
        score (validation), best), `best` (the best row) and both configs. On a worker,
        `{"worker": <its KERASTUNER_TUNER_ID>, "trials": [the ids of the trials it ran]}`.
    """
    role = search_cluster.cluster_role()
    if train_config.strategy == "multi_worker":
        # Every worker would run the oracle and write the trials. A search spreads over hosts
        # with keras-tuner's own distribution instead (module docstring), each process on one.
        raise InputError(
            "strategy=multi_worker trains single runs (tools.train, train_nasty, distill); "
            "a search runs on one host: use strategy=auto or mirrored"
        )
    if role is not None and not role.is_chief:
        if overwrite:
            raise InputError(
                f"overwrite starts a search again, which only its chief does; worker "
                f"{role.tuner_id} continues the chief's search. Received: overwrite=True"
            )
        return _work(train_config, tune_config, dataset, role)
    # One writer per search: the trials' own run directories lock themselves, the root holds
    # the report and the oracle's state (the chief's, in a distributed search).
    with RunLock(train_config.output_dir):
        return _search(train_config, tune_config, dataset, overwrite, role)


def _identity(train_config, tune_config):
    """What a search's settings are (`tune_config.json`): a rerun and a worker must match it."""
    search_settings = dataclasses.asdict(tune_config)
    search_settings.pop("max_trials")  # a rerun may raise it to add trials
    for option, default in (
        ("nasty_init_from_adversary", False),
        ("omega_warmup_epochs", 0),
        ("proxy_students", 1),
    ):
        if search_settings[option] == default:
            # Left out at its default: a search from before the option continues as the same one.
            search_settings.pop(option)
    return json.loads(
        json.dumps(
            {
                "train": jobs._run_config("tune", train_config),
                "tune": search_settings,
            }
        )
    )


def _search(train_config, tune_config, dataset, overwrite, role=None):
    root = train_config.output_dir
    identity = _identity(train_config, tune_config)
    os.makedirs(root, exist_ok=True)
    _check_same_search(root, identity, overwrite)
    on_finished = "overwrite" if overwrite else "reuse"
    dataset = dataset if dataset is not None else jobs.load_data(train_config)
    # Every network of the search trains without the validation images, the normal teacher
    # too: a floor measured on images its reference had learnt would be biased.
    dataset, validation = carve_validation(
        dataset, tune_config.validation_fraction, train_config.seed
    )
    if tune_config.adversary is None:
        # Trained here once, before any worker can get a trial (the chief serves after it).
        normal_config = train_config.replace(output_dir=os.path.join(root, "normal"))
        normal_accuracy = jobs.train(normal_config, dataset, on_finished)["accuracy"]
        adversary = os.path.join(normal_config.output_dir, "model.keras")
    else:
        adversary = tune_config.adversary
        normal_accuracy = jobs.evaluate(adversary, dataset)["accuracy"]
    normal_validation_accuracy = validation_accuracy(adversary, validation, dataset)
    # Trials retried after an interruption resume; an overwrite already removed them.
    tuner = _tuner(
        train_config,
        tune_config,
        adversary,
        normal_validation_accuracy,
        dataset,
        validation,
        overwrite=overwrite,
    )
    # keras-tuner reloads its oracle only when this process's own tuner file exists (named
    # after KERASTUNER_TUNER_ID): a search continued under another role must reload it too.
    oracle_file = os.path.join(root, _PROJECT, "oracle.json")
    if not overwrite and not os.path.exists(tuner._get_tuner_fname()):
        if os.path.exists(oracle_file):
            tuner.oracle.reload()
    if role is None:
        tuner.search()
    else:
        tuner.save()
        search_cluster.serve_oracle(
            tuner.oracle,
            role,
            on_serving=lambda: print(
                f"chief: serving the oracle at {role.address} for {tune_config.max_trials} "
                f"trials; start the workers with {search_cluster.TUNER_ID_ENV}=<name> "
                f"{search_cluster.ORACLE_IP_ENV}={role.ip} "
                f"{search_cluster.ORACLE_PORT_ENV}={role.port} and these settings",
                flush=True,
            ),
        )
        # keras-tuner saves its oracle before it lets go of an ended trial: saved once more,
        # or a rerun would take the last trials for interrupted ones and run them again.
        tuner.save()
    report = _report(tuner, normal_validation_accuracy, normal_accuracy, identity)
    atomic_write_json(os.path.join(root, "tune_report.json"), report)
    atomic_write_text(os.path.join(root, "tune_report.md"), format_table(report))
    return report


def _work(train_config, tune_config, dataset, role):
    """A worker of a distributed search: the chief's trials, no lock on the root, no report."""
    root = train_config.output_dir
    print(f"worker {role.tuner_id}: waiting for the chief's oracle at {role.address}", flush=True)
    # The chief serves once its settings are written and the normal teacher is trained.
    search_cluster.wait_for_chief(role)
    path = os.path.join(root, "tune_config.json")
    if not os.path.exists(path):
        raise InputError(
            f"output_dir {root} holds no search settings although the chief at {role.address} "
            "serves: give every worker the chief's `output_dir`, on a filesystem they share"
        )
    with open(path) as f:
        if json.load(f) != _identity(train_config, tune_config):
            raise InputError(
                f"output_dir {root} holds the chief's search with other settings than worker "
                f"{role.tuner_id}'s: start every worker with the chief's settings"
            )
    dataset = dataset if dataset is not None else jobs.load_data(train_config)
    dataset, validation = carve_validation(
        dataset, tune_config.validation_fraction, train_config.seed
    )
    adversary = tune_config.adversary or os.path.join(root, "normal", "model.keras")
    # The same network on the same seeded carve as the chief's: the same floor.
    normal_validation_accuracy = validation_accuracy(adversary, validation, dataset)
    tuner = _tuner(
        train_config,
        tune_config,
        adversary,
        normal_validation_accuracy,
        dataset,
        validation,
        worker_id=role.tuner_id,
    )
    import grpc

    try:
        tuner.search()
    except grpc.RpcError as error:
        details = error.details() if hasattr(error, "details") else str(error)
        details = (details or "").strip().splitlines() or ["no details"]
        raise InputError(
            f"worker {role.tuner_id} lost the chief's oracle at {role.address}: {details[0]}"
        ) from None
    if tuner.trials_failed:
        raise InputError(
            f"worker {role.tuner_id}: trial {tuner.trials_failed[0]} failed (traceback above); "
            "the chief stopped the search"
        )
    return {"worker": role.tuner_id, "trials": list(tuner.trials_run)}


def _diverged_row(trial_id, root, normal_validation_accuracy, budget):
    with open(os.path.join(root, _DIVERGED_FILE)) as f:
        diverged = json.load(f)
    return {
        "trial_id": trial_id,
        "omega": diverged["omega"],
        "temperature": diverged["temperature"],
        "teacher_validation_accuracy": None,
        "teacher_accuracy": None,
        "adversarial_kl": None,
        "student_validation_accuracy": None,
        "student_validation_accuracies": None,
        "student_accuracy": None,
        "student_accuracies": None,
        "feasible": False,
        "diverged": True,
        "score": trial_score(0.0, 100.0, normal_validation_accuracy, budget),
        "best": False,
    }


def _report(tuner, normal_validation_accuracy, normal_accuracy, identity):
    tune_config = tuner.tune_config
    budget = tune_config.accuracy_budget
    floor = normal_validation_accuracy - budget
    rows = []
    by_number = lambda item: (len(item[0]), item[0])  # noqa: E731  trial ids are numerals
    for trial_id, trial in sorted(tuner.oracle.trials.items(), key=by_number):
        if trial.status != keras_tuner.engine.trial.TrialStatus.COMPLETED:
            continue
        root = tuner.trial_dir(trial_id)
        if os.path.exists(os.path.join(root, _DIVERGED_FILE)):
            rows.append(_diverged_row(trial_id, root, normal_validation_accuracy, budget))
            continue
        with open(os.path.join(root, "nasty", "metrics.json")) as f:
            nasty = json.load(f)
        students = []
        for name in _student_dirs(tune_config.proxy_students):
            with open(os.path.join(root, name, "metrics.json")) as f:
                students.append(json.load(f)["accuracy"])
        held_out = _trial_validation(
            root, tuner.validation, tuner.dataset, tune_config.proxy_students
        )
        score = trial_score(
            held_out["teacher_accuracy"],
            held_out["student_accuracy"],
            normal_validation_accuracy,
            budget,
        )
        rows.append(
            {
                "trial_id": trial_id,
                "omega": nasty["config"]["omega"],
                "temperature": nasty["config"]["temperature"],
                "teacher_validation_accuracy": held_out["teacher_accuracy"],
                "teacher_accuracy": nasty["accuracy"],
                "adversarial_kl": nasty["adversarial_kl"],
                "student_validation_accuracy": held_out["student_accuracy"],
                "student_validation_accuracies": held_out["student_accuracies"],
                "student_accuracy": float(np.mean(students)),
                "student_accuracies": students,
                "feasible": score <= 100.0,
                "diverged": False,
                "score": score,
                "best": False,
            }
        )
    best = min(rows, key=lambda row: (row["score"], row["trial_id"])) if rows else None
    if best is not None:
        best["best"] = True
    return {
        **report_lib.provenance(),
        "selection_split": SELECTION_SPLIT,
        "validation_fraction": tune_config.validation_fraction,
        "validation_seed": tuner.train_config.seed,
        "validation_images": int(len(tuner.validation[1])),
        "train_images": int(len(tuner.dataset.y_train)),
        "normal_validation_accuracy": normal_validation_accuracy,
        "normal_accuracy": normal_accuracy,
        "accuracy_budget": budget,
        "floor": floor,
        "objective": "minimise student_validation_accuracy s.t. teacher_validation_accuracy >= "
        "normal_validation_accuracy - accuracy_budget; infeasible trials score 100 + "
        "the shortfall; test accuracies (teacher_accuracy, student_accuracy, "
        "normal_accuracy, adversarial_kl) are reported, never used to choose",
        "trials": rows,
        "best": best,
        "config": identity,
    }


def format_table(report):
    """The trade-off table of all trials as Markdown, the best trial marked with `*`: the
    validation accuracies that chose beside the test accuracies that report."""
    lines = [
        f"# Omega search: normal teacher {report['normal_validation_accuracy']:.2f}% validation "
        f"({report['normal_accuracy']:.2f}% test), budget {report['accuracy_budget']:g} points "
        f"(floor {report['floor']:.2f}% validation)",
        "",
        f"{report.get('date', 'date not recorded')}, {report.get('machine', 'machine not recorded')}, "
        f"Keras backend {report.get('backend', 'not recorded')}, "
        f"command `{report.get('command') or 'not recorded'}`.",
        "",
        f"Chosen on the validation split: {report['validation_images']} images, "
        f"{report['validation_fraction']:g} of each class of the training split (seed "
        f"{report['validation_seed']}), which no network of the search trained on; the test "
        "split only reports.",
        "",
        "Score: the proxy student's validation accuracy if the nasty teacher's stays at or above "
        "the floor, else 100 + the shortfall (lower is better).",
        "",
    ]
    if report["config"]["tune"].get("nasty_init_from_adversary"):
        lines += ["Every nasty teacher started from the normal teacher's weights.", ""]
    if warmup := report["config"]["tune"].get("omega_warmup_epochs"):
        lines += [f"Every nasty teacher's omega ramped up from 0 over {warmup} epochs.", ""]
    if (students := report["config"]["tune"].get("proxy_students", 1)) > 1:
        seed = report["validation_seed"]
        lines += [
            f"Student accuracies are the mean of {students} proxy students per trial (seeds "
            f"{seed} to {seed + students - 1}; each one's in tune_report.json).",
            "",
        ]
    lines += [
        "| best | trial | omega | tau_A | teacher val acc | teacher test acc | adversarial KL (test) "
        "| student val acc | student test acc | feasible | score |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in report["trials"]:
        if row.get("diverged"):
            measured = "diverged | - | - | - | -"
        else:
            measured = (
                f"{row['teacher_validation_accuracy']:.2f} | {row['teacher_accuracy']:.2f} | "
                f"{row['adversarial_kl']:.3f} | {row['student_validation_accuracy']:.2f} | "
                f"{row['student_accuracy']:.2f}"
            )
        lines.append(
            f"| {'*' if row['best'] else ''} | {row['trial_id']} | {row['omega']:.4g} | "
            f"{row['temperature']:g} | {measured} | "
            f"{'yes' if row['feasible'] else 'no'} | {row['score']:.2f} |"
        )
    return "\n".join(lines) + "\n"
