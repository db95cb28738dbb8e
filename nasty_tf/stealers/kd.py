"""`kd`: standard knowledge distillation from what a release serves (Hinton et al., 2015; paper eq. 1).

Today's stealer: the student minimises `alpha * tau^2 * KL(p_served || p_student) + (1 - alpha) *
CE` with the served logits as the teacher's. It is `KnowledgeDistiller`'s objective, fed the
release's served outputs instead of the teacher network, and safe for a stingy release's
`-inf` logits.
"""

import keras

from nasty_tf.stealers.served_distiller import ServedDistillationLoss, ServedDistiller

NAME = "kd"


@keras.saving.register_keras_serializable(package="nasty_tf")
class KDStealer(ServedDistiller):
    """The `kd` stealer: paper eq. 1 on served logits.

    Args:
        student: the network to train.
        served: what the release serves (`nasty_tf.stealers.served.served_logits_model`).
        augmenter: optional Keras layer applied once per step before both.
        alpha: weight of the KD term, in [0, 1] (default 0.9, the paper's).
        temperature: `tau_s`, > 0 (default 4, the paper's CIFAR-10 value).

    Example:
        >>> stealer = KDStealer(student, releases.plain(teacher), alpha=0.9, temperature=4.0)
        >>> stealer.compile(optimizer="adam")
        >>> stealer.fit(x_train, y_train, epochs=10)
    """

    loss_class = ServedDistillationLoss
