"""The shared machinery of `NastyTeacher` and `KnowledgeDistiller`.

Both train one network against a frozen partner (the adversary of eq. 2, the teacher of eq. 1).
The objective is customised through `compute_loss`, the hook that every backend's
`train_step` calls, so one override serves TensorFlow, JAX and `tf.distribute`
(DESIGN.md section 3); `train_step` itself is left to Keras.
"""

import keras
from keras import ops

from nasty_tf.errors import InputError
from nasty_tf.losses import cross_entropy_per_sample


def regularisation_loss(network):
    """The sum of `network.losses` (kernel regularisers...), scaled for `tf.distribute`.

    Keras sums the replicas' gradients, so a per-replica regularisation term would count N
    times on N replicas (Keras's own `compute_loss` has this flaw for `self.losses`).
    """
    total = ops.zeros((), dtype="float32")
    for loss in network.losses:
        total = total + ops.sum(ops.cast(loss, "float32"))
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf  # only on the TensorFlow backend: JAX hosts may lack it

        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        if replicas > 1:
            total = total / replicas
    return total


def check_compatible(network, frozen, frozen_role):
    """Raises `InputError` unless the two networks take the same images and classes."""
    for what, ours, theirs in (
        ("input shape", tuple(network.input_shape[1:]), tuple(frozen.input_shape[1:])),
        ("number of classes", network.output_shape[-1], frozen.output_shape[-1]),
    ):
        if ours != theirs:
            raise InputError(
                f"The {frozen_role}'s {what} does not match the network's. "
                f"Received: {frozen_role}={theirs}, network={ours}"
            )


class PairedModel(keras.Model):
    """A trainable `network` plus a frozen partner fed exactly the same (augmented) batch.

    `call` returns `{"logits": network logits, "frozen_logits": partner logits}`. The
    augmenter, when given, runs once per step inside the model (on the device) and both
    networks see its output. The partner runs in inference mode (BatchNorm uses its moving
    statistics and never updates them) behind `stop_gradient`, and is excluded from the
    trainable weights.

    Subclasses set `objective` (a `keras.losses.Loss` taking `y_pred=(logits,
    frozen_logits)`) and define `kl_term`, the divergence logged as `kl`.
    """

    def __init__(self, network, frozen, objective, augmenter=None, frozen_role="partner", **kwargs):
        super().__init__(**kwargs)
        check_compatible(network, frozen, frozen_role)
        frozen.trainable = False
        self.network = network
        self.frozen = frozen
        self.objective = objective
        self.augmenter = augmenter
        self.cross_entropy_tracker = keras.metrics.Mean(name="ce")
        self.kl_tracker = keras.metrics.Mean(name="kl")
        self.accuracy_tracker = keras.metrics.SparseCategoricalAccuracy(name="accuracy")

    def call(self, images, training=False):
        images = ops.cast(images, "float32")
        if self.augmenter is not None:
            images = self.augmenter(images, training=training)
        logits = self.network(images, training=training)
        frozen_logits = ops.stop_gradient(self.frozen(images, training=False))
        return {"logits": logits, "frozen_logits": frozen_logits}

    def kl_term(self, logits, frozen_logits):
        """Per-sample divergence that the objective weighs; logged as `kl`."""
        raise NotImplementedError

    def objective_inputs(self, logits, frozen_logits, training):
        """The `y_pred` given to `objective` in one `compute_loss` call (default: both logits).

        A subclass may add a per-step input (`NastyTeacher`'s omega warm-up); it runs inside
        the compiled step on every backend, so it may read and update the model's variables.
        """
        del training
        return (logits, frozen_logits)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        logits, frozen_logits = y_pred["logits"], y_pred["frozen_logits"]
        loss = self.objective(
            y, self.objective_inputs(logits, frozen_logits, training), sample_weight=sample_weight
        )
        # Only the trained network's regularisers: the frozen partner's would add a
        # constant with no gradient and distort the logged loss.
        loss = loss + regularisation_loss(self.network)
        self.cross_entropy_tracker.update_state(
            cross_entropy_per_sample(y, logits), sample_weight=sample_weight
        )
        self.kl_tracker.update_state(
            self.kl_term(logits, frozen_logits), sample_weight=sample_weight
        )
        self.accuracy_tracker.update_state(y, logits, sample_weight=sample_weight)
        return loss

    def get_config(self):
        serialize = keras.saving.serialize_keras_object
        return {
            **super().get_config(),
            "network": serialize(self.network),
            "augmenter": serialize(self.augmenter) if self.augmenter is not None else None,
        }

    @staticmethod
    def _deserialize_models(config, *keys):
        config = dict(config)
        for key in keys:
            if config.get(key) is not None:
                config[key] = keras.saving.deserialize_keras_object(config[key])
        return config
