"""`topk`: the stealer keeps only the release's top-k probabilities and renormalises (issue 20).

A nasty teacher plants its misleading mass on wrong classes while keeping the true class on
top (paper section 3); truncating the target to the k most probable classes drops much of that
mass, and renormalising gives a proper distribution over the rest. Keeping the top-k of the
tempered softmax and renormalising equals the tempered softmax of the top-k logits with the
others at `-inf`, which is how it is computed (exactly k classes per row, ties included).
"""

import keras

from nasty_tf.errors import check_count
from nasty_tf.stealers.served import keep_top_k
from nasty_tf.stealers.served_distiller import ServedDistillationLoss, ServedDistiller

NAME = "topk"
DEFAULT_K = 2


@keras.saving.register_keras_serializable(package="nasty_tf")
class TopKDistillationLoss(ServedDistillationLoss):
    """Paper eq. 1 against the served distribution truncated to its top `k` and renormalised.

    Args:
        alpha: weight of the KD term, in [0, 1].
        temperature: `tau_s`, > 0.
        k: how many classes to keep, an integer >= 1 (default 2: 0.2 x 10 classes, the
            stingy release's default for CIFAR-10; use about 0.1 x classes for 100). A `k` at
            least the number of classes is plain KD.
    """

    def __init__(self, alpha=0.9, temperature=4.0, k=DEFAULT_K, name="topk_distillation", **kwargs):
        super().__init__(alpha=alpha, temperature=temperature, name=name, **kwargs)
        check_count("k", k)
        self.k = k

    def teacher_logits(self, served_logits):
        return keep_top_k(served_logits, min(self.k, served_logits.shape[-1]))

    def get_config(self):
        return {**super().get_config(), "k": self.k}


@keras.saving.register_keras_serializable(package="nasty_tf")
class TopKStealer(ServedDistiller):
    """The `topk` stealer: KD against the served top-`k`, renormalised.

    Arguments as `KDStealer`, plus `k` (`TopKDistillationLoss`).
    """

    loss_class = TopKDistillationLoss
