"""Callbacks that the Keras set lacks."""

import math

import keras

from nasty_tf.errors import TrainingDiverged


class StopOnNonFiniteLoss(keras.callbacks.Callback):
    """Raises `TrainingDiverged` at the end of an epoch whose loss is NaN or infinite.

    Checked per epoch, not per batch like `keras.callbacks.TerminateOnNaN`, because reading
    the loss every batch forces a host sync each step (DESIGN.md section 3). Put it before
    `BackupAndRestore` so the diverged weights never overwrite the last good checkpoint.
    """

    def __init__(self, hint="lower --learning_rate"):
        super().__init__()
        self.hint = hint

    def on_epoch_end(self, epoch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            raise TrainingDiverged(
                f"training diverged: the loss is {loss} at epoch {epoch + 1}; {self.hint}"
            )
