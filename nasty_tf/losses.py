"""The objectives of the paper as `keras.losses.Loss` subclasses.

Every term is a `Loss` instance with the default `sum_over_batch_size` reduction, because that
reduction is what scales a loss correctly under `tf.distribute` (DESIGN.md section 3). All
softmaxes are computed as `log_softmax` in float32, never from clipped probabilities.

Notation (paper, eq. 1 and 2): `KL_tau(p || q) = tau^2 * KL(softmax(p / tau) || softmax(q / tau))`
for logits `p` and `q`.
"""

import keras
from keras import ops

from nasty_tf.errors import InputError


def _check_temperature(temperature):
    if not temperature > 0:
        raise InputError(f"temperature must be > 0. Received: temperature={temperature}")
    return float(temperature)


def tempered_kl_per_sample(target_logits, predicted_logits, temperature):
    """`tau^2 * KL(softmax(target / tau) || softmax(predicted / tau))`, one value per row."""
    target_logits = ops.cast(target_logits, "float32")
    predicted_logits = ops.cast(predicted_logits, "float32")
    log_p = ops.log_softmax(target_logits / temperature, axis=-1)
    log_q = ops.log_softmax(predicted_logits / temperature, axis=-1)
    return temperature**2 * ops.sum(ops.exp(log_p) * (log_p - log_q), axis=-1)


def cross_entropy_per_sample(labels, logits):
    """Cross-entropy of integer labels against logits, computed in float32."""
    return keras.losses.sparse_categorical_crossentropy(
        ops.cast(labels, "int32"), ops.cast(logits, "float32"), from_logits=True
    )


@keras.saving.register_keras_serializable(package="nasty_tf")
class TemperedKLDivergence(keras.losses.Loss):
    """Tempered KL divergence `tau^2 * KL(softmax(y_true/tau) || softmax(y_pred/tau))`.

    Both arguments are logits. `y_true` is the distribution the divergence is measured from
    (the teacher in KD, eq. 1; the trained network in the self-undermining term, eq. 2).
    The `tau^2` factor keeps gradient magnitudes comparable across temperatures (Hinton et
    al., 2015), as in the paper.

    Example:
        >>> kl = TemperedKLDivergence(temperature=4.0)
        >>> float(kl([[1.0, 2.0]], [[1.0, 2.0]]))
        0.0
    """

    def __init__(self, temperature=4.0, name="tempered_kl_divergence", **kwargs):
        super().__init__(name=name, **kwargs)
        self.temperature = _check_temperature(temperature)

    def call(self, y_true, y_pred):
        return tempered_kl_per_sample(y_true, y_pred, self.temperature)

    def get_config(self):
        return {**super().get_config(), "temperature": self.temperature}


@keras.saving.register_keras_serializable(package="nasty_tf")
class KnowledgeDistillationLoss(keras.losses.Loss):
    """The KD student objective (paper eq. 1).

    `alpha * tau^2 * KL(softmax(f_T/tau) || softmax(f_S/tau)) + (1 - alpha) * CE(f_S, y)`.

    Call it with `y_true` = integer labels and `y_pred` = `(student_logits, teacher_logits)`.
    """

    def __init__(self, alpha=0.9, temperature=4.0, name="knowledge_distillation", **kwargs):
        super().__init__(name=name, **kwargs)
        if not 0.0 <= alpha <= 1.0:
            raise InputError(f"alpha must be in [0, 1]. Received: alpha={alpha}")
        self.alpha = float(alpha)
        self.temperature = _check_temperature(temperature)

    def call(self, y_true, y_pred):
        student_logits, teacher_logits = y_pred
        kl = tempered_kl_per_sample(teacher_logits, student_logits, self.temperature)
        ce = cross_entropy_per_sample(y_true, student_logits)
        return self.alpha * kl + (1.0 - self.alpha) * ce

    def get_config(self):
        return {**super().get_config(), "alpha": self.alpha, "temperature": self.temperature}


@keras.saving.register_keras_serializable(package="nasty_tf")
class SelfUnderminingLoss(keras.losses.Loss):
    """The nasty-teacher objective (paper eq. 2).

    `CE(f_T, y) - omega * tau_A^2 * KL(softmax(f_T/tau_A) || softmax(f_A/tau_A))`.

    Call it with `y_true` = integer labels and `y_pred` = `(network_logits, adversary_logits)`,
    or `(network_logits, adversary_logits, omega_scale)` with a scalar `omega_scale` in [0, 1]
    that multiplies omega for this call (`NastyTeacher`'s omega warm-up; a tensor, so that
    a compiled step reads its current value).
    The KL direction follows the released reference code, `KL(p_T || p_A)` (DESIGN.md section
    1); its constant `+100` offset only shifts the logged value and is left out.
    """

    def __init__(self, omega=0.04, temperature=4.0, name="self_undermining", **kwargs):
        super().__init__(name=name, **kwargs)
        if not omega >= 0:
            raise InputError(f"omega must be >= 0. Received: omega={omega}")
        self.omega = float(omega)
        self.temperature = _check_temperature(temperature)

    def call(self, y_true, y_pred):
        network_logits, adversary_logits, *omega_scale = y_pred
        ce = cross_entropy_per_sample(y_true, network_logits)
        kl = tempered_kl_per_sample(network_logits, adversary_logits, self.temperature)
        omega = self.omega
        if omega_scale:
            omega = omega * ops.cast(omega_scale[0], "float32")
        return ce - omega * kl

    def get_config(self):
        return {**super().get_config(), "omega": self.omega, "temperature": self.temperature}
