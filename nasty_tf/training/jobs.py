"""The training jobs as plain functions: normal training, nasty training, KD, evaluation.

Each takes frozen configs (and optionally an already loaded dataset), writes its
`output_dir` (DESIGN.md section 6) and returns the metrics dict that it saved.
"""

import math
import time

from nasty_tf import data as data_lib
from nasty_tf import models
from nasty_tf.distribute import make_strategy, shard_evenly
from nasty_tf.errors import InputError
from nasty_tf.knowledge_distiller import KnowledgeDistiller
from nasty_tf.nasty_teacher import NastyTeacher
from nasty_tf.training import input_pipeline, multi_worker, precision
from nasty_tf.training.augmented_classifier import AugmentedClassifier
from nasty_tf.training.callbacks import StopOnNonFiniteLoss, TrainingBackup, run_callbacks
from nasty_tf.training.checkpoints import load_network
from nasty_tf.training.evaluation import (
    accuracy_percent,
    adversarial_kl,
    evaluation_batch_size,
    predict_logits,
)
from nasty_tf.training.optimizers import make_optimizer
from nasty_tf.training.run_directory import RunDirectory


def load_data(config):
    """The dataset that `config` names, with its training fraction applied."""
    return data_lib.load_dataset(
        config.dataset,
        data_dir=config.data_dir,
        train_fraction=config.train_fraction,
        seed=config.seed,
        cache_dir=config.data_cache_dir,
    )


def _run_config(kind, config, partner=None):
    """What metrics.json records as the run's config: its identity and, for a run with a frozen
    partner (`NastyConfig`, `DistillConfig`), the partner's settings: its file's path for readers
    and its SHA-256, which is what runs are matched on (`run_directory.same_run`)."""
    extra = {**partner.settings(), **partner.identity()} if partner is not None else {}
    return {"kind": kind, **config.identity(), **extra}


def _strategy(config):
    """The run's `tf.distribute` strategy; refuses a global batch the replicas cannot share."""
    strategy = make_strategy(config.strategy)
    replicas = strategy.num_replicas_in_sync
    # Each replica averages its own slice and the slices' means are averaged, which is the
    # global batch mean only when the slices are equal.
    if config.batch_size % replicas:
        raise InputError(
            f"batch_size must be a multiple of the {replicas} replicas of "
            f"strategy={config.strategy}. Received: batch_size={config.batch_size}"
        )
    return strategy


def _run_directory(config, run_config, on_finished):
    """The run's directory; only the chief of a multi-worker run writes (and locks) it."""
    return RunDirectory(
        config.output_dir,
        run_config,
        on_finished,
        writes=multi_worker.is_chief_task() if config.strategy == "multi_worker" else True,
    )


def _set_up(config, run_dir, dataset):
    """An unfinished run's strategy (which also decides whether this worker writes) and data."""
    strategy = _strategy(config)
    run_dir.writes = multi_worker.is_chief(strategy)
    return strategy, (dataset if dataset is not None else load_data(config))


def _augmenter(config, dataset):
    if not config.augment:
        return None
    return data_lib.make_augmenter(dataset.augmentation, seed=config.seed)


def _steps_per_epoch(config, dataset, strategy):
    """Optimizer steps in one epoch of `config`'s run (over the shards `_fit` trains on)."""
    x_train, _ = shard_evenly(strategy, dataset.x_train, dataset.y_train)
    return math.ceil(len(x_train) / config.batch_size)


def _fit(trainer, dataset, config, run_dir, divergence_hint, strategy):
    x_train, y_train = shard_evenly(strategy, dataset.x_train, dataset.y_train)
    validation = shard_evenly(strategy, dataset.x_test, dataset.y_test)
    steps_per_epoch = _steps_per_epoch(config, dataset, strategy)
    trainer.compile(optimizer=make_optimizer(config, steps_per_epoch))
    trainer(dataset.x_train[:1])  # the backup can only be restored into a built model
    if run_dir.writes:
        backup = TrainingBackup(run_dir.backup_dir, every=config.backup_every)
        callbacks = run_callbacks(run_dir, divergence_hint, backup)
    else:  # a multi-worker run's other workers: read the chief's backup only
        backup = multi_worker.RestoreOnly(run_dir.backup_dir)
        callbacks = [StopOnNonFiniteLoss(divergence_hint), backup]
    # Where `fit` resumes; history rows of epochs after it are dropped (they are redone).
    initial_epoch = backup.completed_epochs()
    run_dir.restart_history(initial_epoch)
    started = time.time()
    if config.strategy == "multi_worker":
        _fit_multi_worker(trainer, x_train, y_train, validation, config, callbacks, strategy)
        return time.time() - started
    # Not Keras' own autotuned tf.data pipeline (input_pipeline.py); epoch e's order is a pure
    # function of (seed, e), so a resumed run sees the batches an uninterrupted one does.
    data = input_pipeline.fit_inputs(
        x_train,
        y_train,
        batch_size=config.batch_size,
        shuffle_seed=config.seed,
        epochs=config.epochs,
        initial_epoch=initial_epoch,
    )
    validation_batch_size = evaluation_batch_size(config.batch_size)
    if input_pipeline.uses_tf_data():
        validation = input_pipeline.batches(*validation, batch_size=validation_batch_size)
        validation_batch_size = None  # the dataset is batched; Keras takes no batch size
    trainer.fit(
        **data,
        epochs=config.epochs,
        validation_data=validation,
        validation_batch_size=validation_batch_size,
        validation_freq=evaluation_epochs(config),
        callbacks=callbacks,
        verbose=config.verbose,
    )
    return time.time() - started


def evaluation_epochs(config):
    """The 1-based epochs after which `config`'s run evaluates the test split: every
    `evaluate_every`-th and the last (Keras' `validation_freq` as a list)."""
    every = range(config.evaluate_every, config.epochs + 1, config.evaluate_every)
    return sorted({*every, config.epochs})


def _fit_multi_worker(trainer, x_train, y_train, validation, config, callbacks, strategy):
    multi_worker.fit(
        trainer,
        x_train,
        y_train,
        strategy=strategy,
        batch_size=config.batch_size,
        epochs=config.epochs,
        validation_data=validation,
        validation_epochs=evaluation_epochs(config),
        validation_batch_size=evaluation_batch_size(config.batch_size),
        callbacks=callbacks,
        verbose=config.verbose,
        seed=config.seed,
    )


def _finish(run_dir, network, dataset, config, seconds, strategy, **extra):
    logits = predict_logits(network, dataset.x_test)
    metrics = {
        "accuracy": accuracy_percent(logits, dataset.y_test),
        "epochs": config.epochs,
        "arch": config.arch,
        "dataset": dataset.name,
        "train_images": int(len(dataset.x_train)),
        "train_seconds": round(seconds, 1),
        "history": run_dir.history(),
        "config": run_dir.config,
        "strategy": config.strategy,
        "replicas": strategy.num_replicas_in_sync,
        "precision": config.precision,
        "init": config.init,
        **extra,
    }
    run_dir.finish(network, metrics)
    return metrics


def train(config, dataset=None, on_finished="error"):
    """Trains a normal network (the future adversary or a scratch baseline).

    Args:
        config: a `TrainConfig`.
        dataset: an already loaded `Dataset`; loaded from `config` when None.
        on_finished: "error", "reuse" or "overwrite" (see `RunDirectory`).

    Returns:
        The metrics dict written to `metrics.json` (`accuracy` in percent on the test split).
    """
    # Held for the run's whole life: one writer per directory (`RunLock`).
    with _run_directory(config, _run_config("normal", config), on_finished) as run_dir:
        return _train(config, dataset, run_dir)


def _train(config, dataset, run_dir):
    if (metrics := run_dir.finished_metrics()) is not None:
        return metrics
    strategy, dataset = _set_up(config, run_dir, dataset)
    run_dir.prepare()
    # Networks, optimizer and metrics are created in the strategy's scope, under the policy.
    with strategy.scope(), precision.dtype_policy(config.precision):
        network = models.new_network(config, dataset, mean=dataset.mean, std=dataset.std)
        trainer = AugmentedClassifier(network, _augmenter(config, dataset))
        seconds = _fit(trainer, dataset, config, run_dir, "lower `learning_rate`", strategy)
        return _finish(run_dir, network, dataset, config, seconds, strategy)


def train_nasty(config, nasty, dataset=None, on_finished="error"):
    """Trains a nasty teacher against the normal network in `nasty.adversary` (eq. 2).

    Args:
        config: a `TrainConfig` for the nasty network.
        nasty: a `NastyConfig` (adversary file, omega, tau_A).
        dataset, on_finished: as in `train`.

    Returns:
        The metrics dict, with `adversary_accuracy` and `adversarial_kl` (tau_A^2-scaled
        `KL(p_nasty || p_adversary)` averaged over the test split) beside `accuracy`.
    """
    with _run_directory(config, _run_config("nasty", config, nasty), on_finished) as run_dir:
        return _train_nasty(config, nasty, dataset, run_dir)


def _train_nasty(config, nasty, dataset, run_dir):
    if (metrics := run_dir.finished_metrics()) is not None:
        return metrics
    strategy, dataset = _set_up(config, run_dir, dataset)
    with strategy.scope(), precision.dtype_policy(config.precision):  # as in `train`
        adversary = precision.match_precision(
            load_network(nasty.adversary, "adversary", dataset), config.precision
        )
        # Loaded (and checked) before the fresh network is seeded, so that loading it moves no
        # random state that the run draws from afterwards.
        initial = _load_initial_network(nasty.init_from, dataset)
        network = models.new_network(config, dataset, mean=dataset.mean, std=dataset.std)
        if initial is not None:
            # Before `fit`: a resumed run's backup is restored over these weights when `fit`
            # begins (`TrainingBackup.on_train_begin`), so they never replace restored ones.
            # Before `prepare`: a file that does not fit is refused before the run starts.
            _copy_weights(initial, network, nasty.init_from)
        run_dir.prepare()
        trainer = NastyTeacher(
            network,
            adversary,
            nasty.omega,
            nasty.temperature,
            augmenter=_augmenter(config, dataset),
            omega_warmup_steps=nasty.omega_warmup_epochs
            * _steps_per_epoch(config, dataset, strategy),
        )
        seconds = _fit(
            trainer, dataset, config, run_dir, "lower `omega` or `learning_rate`", strategy
        )
        adversary_logits = predict_logits(adversary, dataset.x_test)
        nasty_logits = predict_logits(network, dataset.x_test)
        return _finish(
            run_dir,
            network,
            dataset,
            config,
            seconds,
            strategy,
            adversary_accuracy=accuracy_percent(adversary_logits, dataset.y_test),
            adversarial_kl=adversarial_kl(nasty_logits, adversary_logits, nasty.temperature),
        )


def _load_initial_network(path, dataset):
    """The network of `NastyConfig.init_from` (None when unset), checked against `dataset`."""
    if path is None:
        return None
    try:
        return load_network(path, "init_from", dataset)
    except InputError as error:
        raise InputError(f"{error}. Received: init_from={path!r}") from None


def _copy_weights(source, network, path):
    """Copies every weight of `source` into `network`; refuses a network of another shape."""
    theirs = [tuple(w.shape) for w in source.weights]
    ours = [tuple(w.shape) for w in network.weights]
    if theirs != ours:
        differs = next(
            (
                f"weight {i} has shape {a}, the network's {b}"
                for i, (a, b) in enumerate(zip(theirs, ours))
                if a != b
            ),
            f"{len(theirs)} weights, the network {len(ours)}",
        )
        raise InputError(
            f"init_from: {path!r} does not hold a network of the architecture being trained "
            f"({network.name}: the file's {differs}). Received: init_from={path!r}"
        )
    network.set_weights(source.get_weights())


def distill(config, kd, dataset=None, on_finished="error"):
    """Trains a student by KD from the teacher in `kd.teacher` (eq. 1): the stealer's attack.

    Args:
        config: a `TrainConfig` for the student.
        kd: a `DistillConfig` (teacher file, alpha, tau_s).
        dataset, on_finished: as in `train`.

    Returns:
        The metrics dict, with `teacher_accuracy` beside the student's `accuracy`.
    """
    with _run_directory(config, _run_config("distill", config, kd), on_finished) as run_dir:
        return _distill(config, kd, dataset, run_dir)


def _distill(config, kd, dataset, run_dir):
    if (metrics := run_dir.finished_metrics()) is not None:
        return metrics
    strategy, dataset = _set_up(config, run_dir, dataset)
    with strategy.scope(), precision.dtype_policy(config.precision):  # as in `train`
        teacher = precision.match_precision(
            load_network(kd.teacher, "teacher", dataset), config.precision
        )
        run_dir.prepare()
        student = models.new_network(config, dataset, mean=dataset.mean, std=dataset.std)
        trainer = KnowledgeDistiller(
            student, teacher, kd.alpha, kd.temperature, augmenter=_augmenter(config, dataset)
        )
        seconds = _fit(trainer, dataset, config, run_dir, "lower `learning_rate`", strategy)
        teacher_accuracy = accuracy_percent(predict_logits(teacher, dataset.x_test), dataset.y_test)
        return _finish(
            run_dir,
            student,
            dataset,
            config,
            seconds,
            strategy,
            teacher_accuracy=teacher_accuracy,
        )


def evaluate(model_path, dataset, split="test"):
    """Accuracy (percent) of the network in `model_path` on a split of `dataset`."""
    if split not in ("train", "test"):
        raise InputError(f"split must be 'train' or 'test'. Received: split={split!r}")
    network = load_network(model_path, "model_path", dataset)
    images, labels = (
        (dataset.x_test, dataset.y_test) if split == "test" else (dataset.x_train, dataset.y_train)
    )
    return {
        "accuracy": accuracy_percent(predict_logits(network, images), labels),
        "model": model_path,
        "dataset": dataset.name,
        "split": split,
        "images": int(len(labels)),
    }
