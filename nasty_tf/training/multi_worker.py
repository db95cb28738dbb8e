"""Training under `MultiWorkerMirroredStrategy` (`--strategy=multi_worker`, TensorFlow only).

Keras 3's `fit` cannot run under this strategy (keras-team/keras#20585): measured with Keras
3.15 / TensorFlow 2.21 on two localhost workers, it fails first all-reducing the uint8 batch
it builds the model from, then reducing the scalar per-step logs with `axis=0` ("Invalid
reduction dimension 0 for input with 0 dimensions"). Both are in Keras' private trainer, so
instead of patching it this module runs the epochs itself through public APIs only: the
trainer's own `train_step` / `test_step` (the same `compute_loss` as under `fit`) inside
`strategy.run`, a `tf.data` pipeline split by `experimental_distribute_dataset`, and Keras'
`CallbackList` so that `TrainingBackup`, `CSVLogger` and the progress line work as in `fit`.

Every worker runs the same program (same flags, its own `TF_CONFIG`). Only the chief writes:
the run directory, the history and the per-epoch backups. The others read the chief's backup
when resuming, so `--output_dir` must be on a filesystem that every worker sees (as for
TensorFlow's own multi-worker checkpoints).
"""

import json
import math
import os
import tempfile

import keras

from nasty_tf.training import input_pipeline
from nasty_tf.training.callbacks import TrainingBackup

_RESTORED_EPOCH = "_initial_epoch"  # where BackupAndRestore tells `fit` the epoch to resume at


def is_chief(strategy):
    """True on the worker that writes: the `chief` task, else worker 0; always True locally."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.cluster_spec().as_dict():
        return True
    if "chief" in resolver.cluster_spec().as_dict():
        return resolver.task_type == "chief"
    return resolver.task_type == "worker" and resolver.task_id == 0


def is_chief_task():
    """`is_chief` read from `TF_CONFIG` alone, before any strategy exists (a run decides who
    locks its directory first): the `chief` task, else worker 0; True without a cluster."""
    try:
        cluster = json.loads(os.environ.get("TF_CONFIG") or "{}")
        spec, task = cluster.get("cluster") or {}, cluster.get("task") or {}
    except (ValueError, AttributeError):
        return True  # creating the strategy reports the bad TF_CONFIG in one clear line
    if not spec:
        return True
    if "chief" in spec:
        return task.get("type") == "chief"
    return task.get("type") == "worker" and int(task.get("index", 0)) == 0


class RestoreOnly(TrainingBackup):
    """A non-chief worker's `TrainingBackup`: resumes from the chief's backup, never writes it.

    It still saves its weights every epoch, to a scratch file it then deletes: reading
    synchronised variables is a collective op that every worker must join in step with the
    chief's save (TensorFlow's multi-worker rule: non-chief workers save to temporary paths).
    """

    def save(self, completed_epochs):
        with tempfile.TemporaryDirectory() as scratch:
            self.model.save_weights(os.path.join(scratch, "scratch.weights.h5"))


def _distributed_batches(strategy, images, labels, batch_size, shuffle_seed=None, epoch=None):
    import tensorflow as tf

    # The same seed on every worker: each epoch's global batches are the same everywhere and
    # the strategy gives each replica its own slice of them. Epoch e's order is a pure function
    # of (seed, e) (`input_pipeline.epoch_order`): a resumed run sees an uninterrupted one's.
    dataset = input_pipeline.batches(
        images, labels, batch_size=batch_size, shuffle_seed=shuffle_seed, epoch=epoch
    )
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return strategy.experimental_distribute_dataset(dataset.with_options(options))


def _distributed_step(strategy, step):
    import tensorflow as tf

    @tf.function
    def run(batch):
        logs = strategy.run(step, args=(batch,))
        # Every replica holds the mean of its own slice; their mean is the global one.
        return {name: strategy.reduce("MEAN", value, axis=None) for name, value in logs.items()}

    return run


def fit(
    trainer,
    x,
    y,
    *,
    strategy,
    batch_size,
    epochs,
    validation_data,
    callbacks,
    verbose,
    seed,
    validation_epochs=None,
    validation_batch_size=None,
):
    """`trainer.fit(x, y, ...)` under a `MultiWorkerMirroredStrategy`, with `fit`'s callbacks.

    Args:
        trainer: a compiled and built `keras.Model` (created in `strategy.scope()`).
        x, y: the training images and labels (every worker passes the same arrays).
        strategy: the `tf.distribute.MultiWorkerMirroredStrategy`.
        batch_size: the global batch, split across all replicas of all workers.
        epochs: total epochs (a restored backup skips those already done).
        validation_data: (images, labels) evaluated as `val_*` logs after each epoch of
            `validation_epochs`.
        callbacks: Keras callbacks; on a non-chief worker, pass none that write.
        verbose: 0 silent, else one progress line per epoch (chief only).
        seed: the shuffling seed, the same on every worker.
        validation_epochs: 1-based epochs, as Keras' `validation_freq` list; None: every one.
        validation_batch_size: the global batch of the validation steps, a multiple of the
            replicas; None: `batch_size`.
    """
    chief = is_chief(strategy)
    with strategy.scope():  # its variables cannot be created inside the distributed step
        trainer.optimizer.build(trainer.trainable_variables)
    steps = math.ceil(len(x) / batch_size)
    callback_list = keras.callbacks.CallbackList(
        callbacks,
        add_history=True,
        add_progbar=chief and verbose != 0,
        model=trainer,
        verbose=2 if verbose else 0,
        epochs=epochs,
        steps=steps,
    )
    validation_batches = _distributed_batches(
        strategy, *validation_data, validation_batch_size or batch_size
    )
    train_step = _distributed_step(strategy, trainer.train_step)
    test_step = _distributed_step(strategy, trainer.test_step)

    trainer.stop_training = False
    setattr(trainer, _RESTORED_EPOCH, None)
    callback_list.on_train_begin()
    logs = {}
    for epoch in range(getattr(trainer, _RESTORED_EPOCH) or 0, epochs):
        trainer.reset_metrics()
        callback_list.on_epoch_begin(epoch)
        train_batches = _distributed_batches(
            strategy, x, y, batch_size, shuffle_seed=seed, epoch=epoch
        )
        for step, batch in enumerate(train_batches):
            callback_list.on_train_batch_begin(step)
            step_logs = train_step(batch)
            callback_list.on_train_batch_end(step, step_logs)
        logs = {name: float(value) for name, value in step_logs.items()}
        if validation_epochs is None or epoch + 1 in validation_epochs:
            trainer.reset_metrics()
            for batch in validation_batches:
                validation_logs = test_step(batch)
            logs.update({f"val_{name}": float(value) for name, value in validation_logs.items()})
        callback_list.on_epoch_end(epoch, logs)
        if trainer.stop_training:
            break
    callback_list.on_train_end(logs)
