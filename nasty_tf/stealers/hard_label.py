"""`hard_label`: cross-entropy on the release's top-1 class only (issue 20).

The student never sees the served distribution, only its argmax, so whatever a nasty teacher
hides in its soft outputs (paper section 3) cannot mislead it; it learns the teacher's
decisions, labels the stealer may not have. The true labels are not used in the loss.
"""

import keras
from keras import ops

from nasty_tf.losses import cross_entropy_per_sample
from nasty_tf.stealers.served import kl_per_sample
from nasty_tf.stealers.served_distiller import ServedDistiller

NAME = "hard_label"


@keras.saving.register_keras_serializable(package="nasty_tf")
class HardLabelLoss(keras.losses.Loss):
    """`CE(student, argmax(served))`. Call with `y_pred = (student_logits, served_logits)`.

    `y_true` is accepted (the wrapper's contract) and ignored.
    """

    def __init__(self, name="hard_label", **kwargs):
        super().__init__(name=name, **kwargs)

    def targets(self, served_logits):
        """The one-hot targets: the served argmax (`-inf` never wins: k >= 1 is served)."""
        num_classes = served_logits.shape[-1]
        return ops.one_hot(ops.argmax(served_logits, axis=-1), num_classes, dtype="float32")

    def kl(self, student_logits, served_logits):
        """Logged as `kl`: `KL(p_served || p_student)` at temperature 1 (not optimised)."""
        return kl_per_sample(served_logits, student_logits)

    def call(self, y_true, y_pred):
        student_logits, served_logits = y_pred
        return cross_entropy_per_sample(ops.argmax(served_logits, axis=-1), student_logits)


@keras.saving.register_keras_serializable(package="nasty_tf")
class HardLabelStealer(ServedDistiller):
    """The `hard_label` stealer: the student fits the served argmax. No parameters.

    Arguments as `KDStealer`, without `alpha` and `temperature`.
    """

    loss_class = HardLabelLoss
