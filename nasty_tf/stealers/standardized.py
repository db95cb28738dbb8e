"""`standardized`: KD on per-sample z-scored logits (Sun et al., "Logit Standardization in
Knowledge Distillation", CVPR 2024; code sunshangquan/logit-standardization-KD).

A nasty teacher misleads through the scale and spacing of its logits (paper section 3); the
z-score takes the scale out of each served row, so only the relations between classes remain.
As in the authors' `kd_loss` with `logit_stand`, both the served and the student's logits are
standardised before the tempered softmax, and the CE term uses the raw student logits; their
recipe's base temperature 2 and KD weight 9 : CE weight 1 (alpha 0.9) are the defaults.
"""

import keras

from nasty_tf.stealers.served import standardize_logits
from nasty_tf.stealers.served_distiller import ServedDistillationLoss, ServedDistiller

NAME = "standardized"


@keras.saving.register_keras_serializable(package="nasty_tf")
class StandardizedDistillationLoss(ServedDistillationLoss):
    """Paper eq. 1 with both logits z-scored per row before `/ tau` (default tau 2).

    Invariant to any per-row affine change `a * z + b` (`a > 0`) of the served logits.
    Withheld (`-inf`) classes stay withheld (`standardize_logits`).
    """

    def __init__(self, alpha=0.9, temperature=2.0, name="standardized_distillation", **kwargs):
        super().__init__(alpha=alpha, temperature=temperature, name=name, **kwargs)

    def teacher_logits(self, served_logits):
        return standardize_logits(served_logits)

    def student_kl_logits(self, student_logits):
        return standardize_logits(student_logits)


@keras.saving.register_keras_serializable(package="nasty_tf")
class StandardizedStealer(ServedDistiller):
    """The `standardized` stealer: KD on z-scored logits (default alpha 0.9, temperature 2).

    Arguments as `KDStealer`.
    """

    loss_class = StandardizedDistillationLoss
