"""`ServedDistiller`: the wrapper every teacher-reading stealer trains its student in.

A `PairedModel` whose frozen partner is the release's *served* output (`served_logits_model`),
never the teacher network: the stealer sees what a client of the release sees. The objective
is a `ServedDistillationLoss`, the KD loss of paper eq. 1 made safe for `-inf` served logits;
each stealer changes what it distils from (`teacher_logits`) or what the student's logits are
compared as (`student_kl_logits`).
"""

import inspect

import keras

from nasty_tf.errors import InputError
from nasty_tf.losses import cross_entropy_per_sample
from nasty_tf.paired_model import PairedModel
from nasty_tf.stealers.served import served_logits_model, tempered_kl_per_sample


def refuse_unknown_parameters(stealer_class, params, accepted):
    """Raises `InputError` naming any of `params` that is not among `accepted` (a stealer's)."""
    unknown = sorted(set(params) - set(accepted))
    if unknown:
        raise InputError(
            f"Unknown parameter(s) {', '.join(unknown)} for {stealer_class}. "
            f"Accepted: {', '.join(accepted)}"
        )


def check_alpha(alpha):
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not 0.0 <= alpha <= 1.0:
        raise InputError(f"alpha must be in [0, 1]. Received: alpha={alpha!r}")
    return float(alpha)


def check_temperature(temperature, low=0.0, high=None, low_inclusive=False):
    bad = isinstance(temperature, bool) or not isinstance(temperature, (int, float))
    if not bad:
        bad = temperature < low if low_inclusive else temperature <= low
        bad = bad or (high is not None and temperature > high)
    if bad:
        interval = (
            f"{'[' if low_inclusive else '('}{low:g}, {'inf)' if high is None else f'{high:g}]'}"
        )
        raise InputError(
            f"temperature must be in {interval}. Received: temperature={temperature!r}"
        )
    return float(temperature)


@keras.saving.register_keras_serializable(package="nasty_tf")
class ServedDistillationLoss(keras.losses.Loss):
    """`alpha * tau^2 * KL(p_served || p_student) + (1 - alpha) * CE(student, y)` (paper eq. 1).

    Call with `y_true` = integer labels and `y_pred` = `(student_logits, served_logits)`.
    Served logits may hold `-inf` (withheld classes); the KL treats them as probability 0
    (`nasty_tf.stealers.served.kl_per_sample`). For finite logits it equals
    `nasty_tf.losses.KnowledgeDistillationLoss`. A `Loss` with the default
    `sum_over_batch_size` reduction, so it scales right under `tf.distribute`.
    """

    def __init__(self, alpha=0.9, temperature=4.0, name="served_distillation", **kwargs):
        super().__init__(name=name, **kwargs)
        self.alpha = check_alpha(alpha)
        self.temperature = check_temperature(temperature)

    def teacher_logits(self, served_logits):
        """The logits whose tempered softmax the student is taught (the served ones here)."""
        return served_logits

    def student_kl_logits(self, student_logits):
        """The student's logits as the KL term compares them (unchanged here)."""
        return student_logits

    def kl(self, student_logits, served_logits):
        """The tempered KL term, per sample (without `alpha`)."""
        return tempered_kl_per_sample(
            self.teacher_logits(served_logits),
            self.student_kl_logits(student_logits),
            self.temperature,
        )

    def call(self, y_true, y_pred):
        student_logits, served_logits = y_pred
        ce = cross_entropy_per_sample(y_true, student_logits)
        return self.alpha * self.kl(student_logits, served_logits) + (1.0 - self.alpha) * ce

    def get_config(self):
        return {**super().get_config(), "alpha": self.alpha, "temperature": self.temperature}


MODEL_CONFIG_KEYS = ("name", "trainable", "dtype")


def is_served_logits_model(model):
    """Whether `model` is already what `served_logits_model` makes (e.g. revived from a config)."""
    if not isinstance(model, keras.Model) or model.name != "served":
        return False
    outputs = getattr(model, "outputs", None)
    return isinstance(outputs, list) and len(outputs) == 1


class ServedDistiller(PairedModel):
    """Trains `student` from a release's served outputs with the subclass's `loss_class`.

    `call` returns `{"logits": student logits, "frozen_logits": served logits}`; the served
    model runs in inference mode behind `stop_gradient`, on the same (augmented) batch as the
    student. Logs `ce` (against the labels), `kl` (the tempered KL the objective weighs) and
    `accuracy`. Regularisers of the student are added (DESIGN.md section 3).

    Args:
        student: the Keras network to train (the stealer's clone).
        served: what the release serves (see `served_logits_model`), or a model already made
            by it.
        augmenter: optional Keras layer applied once per step to the batch both see.
        **params: the objective's parameters (`loss_class`'s constructor arguments).
    """

    loss_class = ServedDistillationLoss

    def __init__(self, student, served, augmenter=None, **params):
        # What keras.Model's own config carries goes to keras.Model; the rest is the objective's.
        model_kwargs = {key: params.pop(key) for key in MODEL_CONFIG_KEYS if key in params}
        objective = self.make_objective(**params)
        if not is_served_logits_model(served):
            served = served_logits_model(served, student.input_shape[1:])
        super().__init__(
            student, served, objective, augmenter=augmenter, frozen_role="teacher", **model_kwargs
        )

    @classmethod
    def parameters(cls):
        """The stealer's parameters and their defaults (from `loss_class`)."""
        signature = inspect.signature(cls.loss_class.__init__)
        return {
            name: p.default
            for name, p in signature.parameters.items()
            if name not in ("self", "name", "kwargs") and p.kind is p.POSITIONAL_OR_KEYWORD
        }

    @classmethod
    def make_objective(cls, **params):
        """The objective for `params`; raises `InputError` for an unknown or bad parameter."""
        refuse_unknown_parameters(cls.__name__, params, cls.parameters())
        return cls.loss_class(**params)

    @classmethod
    def check_params(cls, **params):
        """All parameters, defaults filled in; raises `InputError` for an unknown or bad one."""
        cls.make_objective(**params)
        return {**cls.parameters(), **params}

    @property
    def student(self):
        return self.network

    @property
    def served(self):
        return self.frozen

    def kl_term(self, logits, frozen_logits):
        return self.objective.kl(logits, frozen_logits)

    def get_config(self):
        config = super().get_config()
        config["student"] = config.pop("network")
        params = {key: getattr(self.objective, key) for key in self.parameters()}
        return {**config, "served": keras.saving.serialize_keras_object(self.served), **params}

    @classmethod
    def from_config(cls, config):
        return cls(**cls._deserialize_models(config, "student", "served", "augmenter"))
