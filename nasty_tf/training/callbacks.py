"""Callbacks that the Keras set lacks, and the set every run directory uses."""

import json
import math
import os

import keras
import numpy as np

from nasty_tf.atomic_io import atomic_write_json
from nasty_tf.errors import TrainingDiverged
from nasty_tf.training.run_directory import KILL_AT_ENV, kill_point


class StopOnNonFiniteLoss(keras.callbacks.Callback):
    """Raises `TrainingDiverged` at the end of an epoch whose loss is NaN or infinite.

    Checked per epoch, not per batch like `keras.callbacks.TerminateOnNaN`, because reading
    the loss every batch forces a host sync each step (DESIGN.md section 3). Put it before
    `TrainingBackup` so the diverged weights never overwrite the last good checkpoint.
    """

    def __init__(self, hint="lower `learning_rate`"):
        super().__init__()
        self.hint = hint

    def on_epoch_end(self, epoch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            raise TrainingDiverged(
                f"training diverged: the loss is {loss} at epoch {epoch + 1}; {self.hint}"
            )


_METADATA_FILE = "training_metadata.json"
_SEED_STATE_NAME = "seed_generator_state"


def seed_generator_states(model):
    """The state variables of every `keras.random.SeedGenerator` inside `model` (augmentation,
    dropout, latent draws), in a fixed order. `save_weights` leaves them out."""
    states, seen = [], set()
    for variable in model.variables:
        if variable.name == _SEED_STATE_NAME and id(variable) not in seen:
            seen.add(id(variable))
            states.append(variable)
    return states


class TrainingBackup(keras.callbacks.Callback):
    """A per-epoch backup of the whole training state, from which a killed run resumes exactly.

    Like `keras.callbacks.BackupAndRestore` (whose `save_weights` holds the weights and the
    optimizer state, its step count included, so a learning-rate schedule resumes where it
    was), plus the state of every `SeedGenerator` of the model, which `save_weights` leaves out:
    a resumed run then draws the same augmentation, dropout and latent noise as an uninterrupted
    one. The data order is a pure function of (seed, epoch) (`input_pipeline.epoch_order`).

    Crash-safe: each epoch's weights go to a new file, and a small metadata file, replaced
    atomically, names the last complete one. A process killed mid-save leaves the previous
    backup intact. The backup is kept when `fit` ends; the run directory removes it once the
    run's final files are in place.

    Args:
        backup_dir: the directory of the backup (the run's `backup/`).
        every: back up after every this many epochs (a killed run redoes at most this many).
    """

    def __init__(self, backup_dir, every=1):
        super().__init__()
        self.backup_dir = backup_dir
        self.every = every
        self.metadata_path = os.path.join(backup_dir, _METADATA_FILE)

    def completed_epochs(self):
        """How many epochs the backup holds (0 when there is none)."""
        metadata = self._metadata()
        return metadata["epoch"] if metadata else 0

    def _metadata(self):
        if not os.path.exists(self.metadata_path):
            return None
        with open(self.metadata_path) as f:
            return json.load(f)

    def on_train_begin(self, logs=None):
        metadata = self._metadata()
        if metadata is None:
            return
        model = self.model
        optimizer = getattr(model, "optimizer", None)
        if metadata.get("optimizer_built") and optimizer is not None and not optimizer.built:
            optimizer.build(model.trainable_variables)  # its variables must exist to be loaded
        model.load_weights(os.path.join(self.backup_dir, metadata["weights"]))
        states = seed_generator_states(model)
        if len(states) != len(metadata["seed_states"]):
            raise ValueError(
                f"the backup in {self.backup_dir} holds {len(metadata['seed_states'])} random "
                f"generator states, the model has {len(states)}"
            )
        for variable, value in zip(states, metadata["seed_states"]):
            variable.assign(
                np.asarray(value, dtype=keras.backend.standardize_dtype(variable.dtype))
            )
        # Where Keras' `fit` resumes (the hook BackupAndRestore sets too).
        model._initial_epoch = metadata["epoch"]

    def on_epoch_end(self, epoch, logs=None):
        if (epoch + 1) % self.every == 0:
            self.save(epoch + 1)

    def save(self, completed_epochs):
        os.makedirs(self.backup_dir, exist_ok=True)
        name = f"epoch-{completed_epochs}.weights.h5"
        path = os.path.join(self.backup_dir, name)
        partial = os.path.join(self.backup_dir, ".tmp-" + name)
        self.model.save_weights(partial, overwrite=True)
        os.replace(partial, path)
        kill_point(f"backup:{completed_epochs - 1}")
        seed_states = [
            np.asarray(keras.ops.convert_to_numpy(v.value)).tolist()
            for v in seed_generator_states(self.model)
        ]
        optimizer = getattr(self.model, "optimizer", None)
        metadata = {
            "epoch": completed_epochs,
            "weights": name,
            "seed_states": seed_states,
            # DAFL's own two optimizers are built before `fit`; Keras' default one never is.
            "optimizer_built": bool(optimizer is not None and optimizer.built),
        }
        atomic_write_json(self.metadata_path, metadata)
        for other in os.listdir(self.backup_dir):
            if other != name and other.endswith(".weights.h5"):  # older epochs, killed saves
                os.remove(os.path.join(self.backup_dir, other))


class KillPoints(keras.callbacks.Callback):
    """Test hook: SIGKILLs the process before a given batch (`run_directory.kill_point`).

    Added by the jobs only when `NASTY_TF_KILL_AT` is set, so normal runs have no per-batch
    callback."""

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_begin(self, batch, logs=None):
        kill_point(f"epoch:{self._epoch}:batch:{batch}")


def run_callbacks(run_dir, divergence_hint, backup, log_adders=()):
    """The callbacks of a run that writes `run_dir`: divergence check, `log_adders` (callbacks
    that add entries to an epoch's logs), history, TensorBoard, backup (in that order: never
    back up a NaN epoch; log an epoch before backing it up, as `RunDirectory.restart_history`
    expects), and the test hook when asked for."""
    callbacks = [StopOnNonFiniteLoss(divergence_hint)]
    if os.environ.get(KILL_AT_ENV):
        callbacks.append(KillPoints())
    callbacks.extend(log_adders)
    callbacks.append(keras.callbacks.CSVLogger(run_dir.history_path, append=True))
    board = tensorboard(run_dir.tensorboard_dir)
    if board is not None:
        callbacks.append(board)
    return callbacks + [backup]


def tensorboard(log_dir):
    """Keras' TensorBoard callback writing per-epoch scalars (every log, the learning rate) to
    `log_dir`, or None where TensorFlow's summary writer or the `tensorboard` package that
    implements it is absent (JAX-only hosts): the run then goes without.

    Epoch-level only (`update_freq="epoch"`, no graph, no profiling): no per-step host sync.
    """
    try:
        import tensorboard  # noqa: F401  (what implements tf.summary's writers)
        import tensorflow  # noqa: F401
    except ImportError:
        return None
    return keras.callbacks.TensorBoard(
        log_dir=log_dir, update_freq="epoch", write_graph=False, profile_batch=0
    )
