"""`AuditConfig`: everything an audit depends on, and its validation before anything runs."""

from __future__ import annotations

import dataclasses
import os

import keras

from nasty_tf import releases
from nasty_tf.audit.search import check_stealer_search
from nasty_tf.errors import InputError, check_count
from nasty_tf.stealers import available_stealers, get_stealer

# The baselines: a student that never sees the release. `scratch` is plain cross-entropy.
SCRATCH = "scratch"
LABEL_SMOOTHING = "label_smoothing"
REFERENCE_KD = "reference_kd"
RELEASES = ("plain", "stingy")
# Where the validation split comes from (`AuditConfig.validation_split`).
VALIDATION_SPLITS = ("carved", "unseen")
# The white-box stealers: they attack the network file (`model`), never a served SavedModel.
DATA_FREE_STEALERS = tuple(available_stealers("datafree"))


def auditable_stealers():
    """The stealer names the audit can run: the registry's, less the label-smoothing baseline.

    The data-free `dafl` and `deepinversion` are among them but need `model` (the network
    file); `default_stealers()` leaves them out.
    """
    return [name for name in available_stealers() if name != LABEL_SMOOTHING]


def default_stealers():
    """The stealers an audit runs when none are named: every one that learns from what the
    release serves. The data-free ones (a few minutes each on 2 cores at their digits scale)
    are added by naming them, which keeps the digits audit within its 10-minute budget."""
    return [name for name in auditable_stealers() if name not in DATA_FREE_STEALERS]


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
        data_cache_dir: where decoded images are kept, memory-mapped (`load_dataset`'s
            `cache_dir`); it changes no result.
        train_fraction: the stratified share of the training split kept (seeded by the first
            seed), in (0, 1], before the validation split is carved from it: a protocol's
            matrix audits on the data its students train on.
        reference: optional normally trained `.keras` network: its KD student (a `kd` stealer
            on the reference's plain release) gives each stealer's `vs_reference`.
        stealers: stealer names (`auditable_stealers()`); None for `default_stealers()`, the
            ones that learn from what the release serves; an empty tuple for the baselines
            only (a schedule's doubling check, `nasty_tf.audit.schedule`, reads no stealer).
            The data-free `dafl` and `deepinversion` attack the network file and need `model`.
        stealer_params: optional `{stealer name: {parameter: value}}` over the registry's
            defaults (`get_stealer`), e.g. a data-free stealer's scale; only for stealers that
            run. None: every stealer with its defaults.
        stealer_search: optional `{stealer name: {parameter: [values, ...]}}`, a held-out
            search (`nasty_tf.audit.search`): every combination trains (each a cached run
            keyed by its full parameters), and the stealer's entry is the one with the highest
            validation accuracy (ties: the first in grid order); the test split only reports.
            Only for stealers that run, over `stealer_params`; `search.skeptical_search(epochs)`
            is the default grid for `skeptical`. None: no search.
        release: how a `.keras` model is served: "plain" or "stingy"; None for "plain". Not
            for `saved_model`, which serves what it was exported with. The data-free stealers
            bypass it: they attack the network file itself.
        top_k_ratio: the stingy release's share of classes served; None for its default.
        arch: the students' architecture; None for the teacher's own when its network names
            a registered architecture, else "cnn".
        epochs, optimizer, learning_rate, batch_size: every served stealer's and baseline's
            schedule (optimizer "adam" or "sgd", momentum 0.9). A data-free stealer trains
            with its own registry parameters (`nasty_tf.stealers.data_free`).
        seeds: one student run per seed and per stealer; results are averaged.
        validation_fraction: the share of the training split held out (stratified, seeded
            by the first seed); students never train on it and it only reports.
        validation_split: where the validation images come from. "carved": out of the
            students' training split (`carve_validation`). "unseen": out of the training
            images that `train_fraction`'s subset leaves out, `validation_fraction` times the
            subset's size (`unseen_validation`); the students train on the whole subset.
            "unseen" is for a teacher trained on that subset (a protocol's): its outputs on its
            own training images are better than on new ones, which flatters its copies'
            validation accuracy and every choice made among them. Needs `train_fraction`
            below 1.
        augment: every served stealer and baseline trains on the dataset's augmentation
            (`nasty_tf.data.make_augmenter`: crop, and flip for natural images), applied once
            per step before both the student and the release, which is queried on the
            augmented batch, as the protocols' KD students train. A stealer with an image
            pipeline of its own would do as much; without it a small training split of
            natural images overfits (docs/attacks.md). Off by default: the digits default
            converges without it.
        verbose: Keras' `fit` verbosity.
        reuse_runs_from: output directories of other audits: a run missing here whose
            finished twin there was made with exactly this run's config (its cache key: data,
            schedule, stealer, release, seed), or with one that trains the same student
            (`nasty_tf.audit.twins`: hard labels from a plain or a stingy release, `topk` on a
            plain release and `kd` on the stingy one serving as many classes), is copied in
            instead of trained; this audit's own finished runs are looked at too. The matrix
            (`audit_matrix`) shares runs this way (the baselines, the reference's KD student, a
            data-free attack of the same network file, and those twins); any other run is
            never taken.
    """

    output_dir: str
    model: str | None = None
    saved_model: str | None = None
    dataset: str = "digits"
    data_dir: str | None = None
    data_cache_dir: str | None = None
    train_fraction: float = 1.0
    reference: str | None = None
    stealers: tuple[str, ...] | None = None
    stealer_params: dict | None = None
    stealer_search: dict | None = None
    release: str | None = None
    top_k_ratio: float | None = None
    arch: str | None = None
    epochs: int = 24
    optimizer: str = "adam"
    learning_rate: float = 1e-3
    batch_size: int = 128
    seeds: tuple[int, ...] = (0,)
    validation_fraction: float = 0.1
    validation_split: str = "carved"
    augment: bool = False
    verbose: int = 0
    reuse_runs_from: tuple[str, ...] = ()


def _check_release(config):
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
        return
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


def _check_stealers(config):
    names = auditable_stealers()
    if config.stealers is None:
        return default_stealers()
    if isinstance(config.stealers, str):
        chosen, shown = None, config.stealers
    else:
        chosen = list(config.stealers)
        shown = chosen
    if (
        chosen is None
        or any(name not in names for name in chosen)
        or len(set(chosen)) != len(chosen)
    ):
        raise InputError(
            f"stealers must be distinct names from {', '.join(names)}. Received: stealers={shown!r}"
        )
    data_free = [name for name in chosen if name in DATA_FREE_STEALERS]
    if data_free and config.saved_model is not None:
        verb = "needs" if len(data_free) == 1 else "need"
        raise InputError(
            f"stealers: {', '.join(data_free)} {verb} the released network's file (`model`); "
            "a saved_model serves only its outputs, and a data-free stealer back-propagates "
            "through the network (DeepInversion reads its BatchNorm statistics). "
            f"Received: saved_model={config.saved_model!r}, stealers={shown!r}"
        )
    if "dafl" in data_free and keras.backend.backend() != "tensorflow":
        raise InputError(
            "stealers: dafl needs the TensorFlow backend (deepinversion runs on any); unset "
            f"KERAS_BACKEND. Received: KERAS_BACKEND={keras.backend.backend()!r}, "
            f"stealers={shown!r}"
        )
    return chosen


def _check_stealer_params(config, chosen):
    params = config.stealer_params
    if params is None:
        return
    if not isinstance(params, dict) or any(
        name not in chosen or not isinstance(values, dict) for name, values in params.items()
    ):
        raise InputError(
            "stealer_params must map stealers that run (stealers) to dicts of their "
            f"parameters. Received: stealer_params={params!r}, stealers={chosen!r}"
        )
    for name, values in params.items():
        try:
            get_stealer(name, **values)
        except InputError as error:
            raise InputError(f"stealer_params[{name!r}]: {error}") from None


def stealers_to_run(config, names):
    """`{name: Stealer}` for `names`, with `config.stealer_params` applied."""
    params = config.stealer_params or {}
    return {name: get_stealer(name, **params.get(name, {})) for name in names}


def check_config(config):
    """Validates `config` before anything loads, locks or trains; returns the stealers to run.

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
    chosen = _check_stealers(config)  # first: a data-free stealer on a saved_model, on any backend
    _check_release(config)
    _check_stealer_params(config, chosen)
    if config.arch is not None:
        from nasty_tf.models import available_models

        if config.arch not in available_models():
            raise InputError(
                f"arch must be one of {', '.join(available_models())}. Received: arch={config.arch!r}"
            )
    check_count("epochs", config.epochs)
    check_count("batch_size", config.batch_size)
    if config.optimizer not in ("adam", "sgd"):
        raise InputError(f"optimizer must be adam or sgd. Received: optimizer={config.optimizer!r}")
    if not isinstance(config.augment, bool):
        raise InputError(f"augment must be True or False. Received: augment={config.augment!r}")
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
    from nasty_tf.data.subset import check_fraction
    from nasty_tf.data.validation import check_validation_fraction

    check_fraction(config.train_fraction)
    check_validation_fraction(config.validation_fraction)
    if config.validation_split not in VALIDATION_SPLITS:
        raise InputError(
            f"validation_split must be one of {', '.join(VALIDATION_SPLITS)}. "
            f"Received: validation_split={config.validation_split!r}"
        )
    if config.validation_split == "unseen" and config.train_fraction == 1.0:
        raise InputError(
            "validation_split='unseen' needs `train_fraction` below 1: the whole training split "
            "leaves no image unseen. Received: train_fraction=1.0"
        )
    check_stealer_search(config.stealer_search, chosen, config.stealer_params)
    _check_reuse_runs_from(config)
    return chosen


def _check_reuse_runs_from(config):
    sources = config.reuse_runs_from
    here = os.path.realpath(config.output_dir)
    if (
        isinstance(sources, str)
        or not isinstance(sources, (tuple, list))
        or any(
            not isinstance(source, str)
            or not os.path.isdir(source)
            or os.path.realpath(source) == here
            for source in sources
        )
    ):
        raise InputError(
            "reuse_runs_from must be a list of other audits' existing output directories. "
            f"Received: reuse_runs_from={sources!r}"
        )
