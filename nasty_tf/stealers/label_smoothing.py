"""`label_smoothing`: the baseline that never sees the teacher (issue 20, after CMIM, 2025).

A student trained with cross-entropy on labels smoothed by 0.1 (Szegedy et al., 2016). Label
smoothing is itself a soft target that carries no dark knowledge, so it is the bar a
"protected" verdict must clear: a release protects against a stealer only when that stealer's
student ends at or below this one. It takes no `served` argument at all.
"""

import keras
from keras import ops

from nasty_tf.errors import InputError
from nasty_tf.losses import cross_entropy_per_sample
from nasty_tf.paired_model import regularisation_loss
from nasty_tf.stealers.served_distiller import refuse_unknown_parameters

NAME = "label_smoothing"
DEFAULT_LABEL_SMOOTHING = 0.1


@keras.saving.register_keras_serializable(package="nasty_tf")
class LabelSmoothingCrossEntropy(keras.losses.Loss):
    """Cross-entropy of integer labels smoothed to `(1 - eps) * one_hot + eps / classes`.

    Computed from `log_softmax` in float32; same value as
    `keras.losses.CategoricalCrossentropy(from_logits=True, label_smoothing=eps)` on one-hot labels.
    """

    def __init__(
        self, label_smoothing=DEFAULT_LABEL_SMOOTHING, name="label_smoothing_ce", **kwargs
    ):
        super().__init__(name=name, **kwargs)
        if (
            isinstance(label_smoothing, bool)
            or not isinstance(label_smoothing, (int, float))
            or not 0.0 <= label_smoothing < 1.0
        ):
            raise InputError(
                f"label_smoothing must be in [0, 1). Received: label_smoothing={label_smoothing!r}"
            )
        self.label_smoothing = float(label_smoothing)

    def call(self, y_true, y_pred):
        logits = ops.cast(y_pred, "float32")
        num_classes = logits.shape[-1]
        labels = ops.cast(ops.reshape(y_true, (-1,)), "int32")
        targets = ops.one_hot(labels, num_classes, dtype="float32")
        targets = targets * (1.0 - self.label_smoothing) + self.label_smoothing / num_classes
        return -ops.sum(targets * ops.log_softmax(logits, axis=-1), axis=-1)

    def get_config(self):
        return {**super().get_config(), "label_smoothing": self.label_smoothing}


@keras.saving.register_keras_serializable(package="nasty_tf")
class LabelSmoothingStudent(keras.Model):
    """Trains `student` on label-smoothed cross-entropy; no teacher, no release.

    Logs `ce` (plain cross-entropy against the labels) and `accuracy`; regularisers of the
    student are added to the loss (DESIGN.md section 3).

    Args:
        student: the network to train.
        augmenter: optional Keras layer applied once per step to the batch.
        label_smoothing: `eps` in [0, 1) (default 0.1).

    Example:
        >>> baseline = LabelSmoothingStudent(student)
        >>> baseline.compile(optimizer="adam")
        >>> baseline.fit(x_train, y_train, epochs=10)
    """

    def __init__(self, student, augmenter=None, label_smoothing=DEFAULT_LABEL_SMOOTHING, **kwargs):
        super().__init__(**kwargs)
        self.objective = self.make_objective(label_smoothing=label_smoothing)
        self.network = student
        self.augmenter = augmenter
        self.cross_entropy_tracker = keras.metrics.Mean(name="ce")
        self.accuracy_tracker = keras.metrics.SparseCategoricalAccuracy(name="accuracy")

    @staticmethod
    def parameters():
        return {"label_smoothing": DEFAULT_LABEL_SMOOTHING}

    @classmethod
    def make_objective(cls, **params):
        refuse_unknown_parameters(cls.__name__, params, cls.parameters())
        return LabelSmoothingCrossEntropy(**params)

    @classmethod
    def check_params(cls, **params):
        """All parameters, defaults filled in; raises `InputError` for an unknown or bad one."""
        cls.make_objective(**params)
        return {**cls.parameters(), **params}

    @property
    def student(self):
        return self.network

    def call(self, images, training=False):
        images = ops.cast(images, "float32")
        if self.augmenter is not None:
            images = self.augmenter(images, training=training)
        return self.network(images, training=training)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        loss = self.objective(y, y_pred, sample_weight=sample_weight)
        loss = loss + regularisation_loss(self.network)
        self.cross_entropy_tracker.update_state(
            cross_entropy_per_sample(y, y_pred), sample_weight=sample_weight
        )
        self.accuracy_tracker.update_state(y, y_pred, sample_weight=sample_weight)
        return loss

    def get_config(self):
        serialize = keras.saving.serialize_keras_object
        return {
            **super().get_config(),
            "student": serialize(self.network),
            "augmenter": serialize(self.augmenter) if self.augmenter is not None else None,
            "label_smoothing": self.objective.label_smoothing,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        for key in ("student", "augmenter"):
            if config.get(key) is not None:
                config[key] = keras.saving.deserialize_keras_object(config[key])
        return cls(**config)
