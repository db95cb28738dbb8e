"""`KnowledgeDistiller`: standard knowledge distillation (Hinton et al., 2015; paper eq. 1)."""

import keras

from nasty_tf.losses import KnowledgeDistillationLoss, tempered_kl_per_sample
from nasty_tf.paired_model import PairedModel


@keras.saving.register_keras_serializable(package="nasty_tf")
class KnowledgeDistiller(PairedModel):
    """Trains `student` on `alpha * tau^2 * KL(p_teacher || p_student) + (1 - alpha) * CE`.

    This is how a stealer clones a released model. Logs `ce`, `kl` and `accuracy`.
    Written from `keras.losses.Loss` instances rather than `keras.distillation`, which
    mis-scales under `tf.distribute` and drops regularisation (DESIGN.md section 3).

    Args:
        student: the Keras model to train.
        teacher: the teacher network; frozen (inference mode, no gradient).
        alpha: weight of the KD term, in [0, 1].
        temperature: `tau_s`, > 0.
        augmenter: optional Keras layer applied once per step to the batch both nets see.

    Example:
        >>> kd = KnowledgeDistiller(student, teacher, alpha=0.9, temperature=4.0)
        >>> kd.compile(optimizer="adam")
        >>> kd.fit(x_train, y_train, epochs=10)
    """

    def __init__(self, student, teacher, alpha=0.9, temperature=4.0, augmenter=None, **kwargs):
        super().__init__(
            student,
            teacher,
            KnowledgeDistillationLoss(alpha=alpha, temperature=temperature),
            augmenter=augmenter,
            frozen_role="teacher",
            **kwargs,
        )

    @property
    def student(self):
        return self.network

    @property
    def teacher(self):
        return self.frozen

    @property
    def alpha(self):
        return self.objective.alpha

    @property
    def temperature(self):
        return self.objective.temperature

    def kl_term(self, logits, frozen_logits):
        return tempered_kl_per_sample(frozen_logits, logits, self.temperature)

    def get_config(self):
        config = super().get_config()
        config["student"] = config.pop("network")
        return {
            **config,
            "teacher": keras.saving.serialize_keras_object(self.teacher),
            "alpha": self.alpha,
            "temperature": self.temperature,
        }

    @classmethod
    def from_config(cls, config):
        return cls(**cls._deserialize_models(config, "student", "teacher", "augmenter"))
