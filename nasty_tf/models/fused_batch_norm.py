"""BatchNormalization through TensorFlow's fused kernel, for every network of the zoo.

Keras 3's `BatchNormalization` computes the batch moments and the normalisation as separate
elementwise ops (`ops.moments`, then `tf.nn.batch_normalization`), with as many more in the
backward pass. TensorFlow's `FusedBatchNormV3` does each direction in one kernel (oneDNN's on
x86 CPUs). On the TensorFlow backend this layer runs the same arithmetic through that kernel;
on other backends, and wherever the fused kernel does not apply (masks, renorm, synchronized
statistics, inputs that are not 4-D channels-last), it is Keras' own layer unchanged. Weights,
config and the moving-statistics update (Keras' biased batch variance, Keras' momentum) are
the same, so results agree with `keras.layers.BatchNormalization` to float rounding
(tests/test_fused_batch_norm.py). A network is saved with Keras' own layer in its place
(`nasty_tf.models.as_plain_keras`, same variables), so released files never name this class;
it stays registered for files written before that.

Why: ResNet-18 training steps at batch 128 on 2 CPU cores ran 14.6% (normal) and 13.7%
(nasty) faster with it than with Keras' layer (2026-11-27, `python -m tools.benchmark
--batch_norm=keras,fused`, benchmarks/RESULTS.md).
"""

import keras
from keras import ops

from nasty_tf.errors import InputError


@keras.saving.register_keras_serializable(package="nasty_tf")
class FusedBatchNormalization(keras.layers.BatchNormalization):
    """`keras.layers.BatchNormalization`, through `FusedBatchNormV3` on TensorFlow."""

    def _fused_applies(self, inputs, mask):
        return (
            keras.backend.backend() == "tensorflow"
            and mask is None
            and not self.renorm
            and not self.synchronized
            and len(inputs.shape) == 4
            and self.axis in (-1, 3)
        )

    def call(self, inputs, training=None, mask=None):
        if not self._fused_applies(inputs, mask):
            return super().call(inputs, training=training, mask=mask)
        import tensorflow as tf

        # As Keras' layer: statistics in float32 whatever the compute dtype.
        x = tf.cast(inputs, "float32")
        channels = x.shape[-1]
        gamma = self.gamma if self.scale else tf.ones([channels])
        beta = self.beta if self.center else tf.zeros([channels])
        if training and self.trainable:
            y, mean, unbiased_variance = tf.compat.v1.nn.fused_batch_norm(
                x, gamma, beta, epsilon=self.epsilon, data_format="NHWC", is_training=True
            )
            # The kernel returns Bessel's unbiased variance; Keras' moving variance averages
            # the biased one (the one it normalised with).
            count = tf.cast(tf.size(x) // channels, "float32")
            variance = unbiased_variance * ((count - 1.0) / count)
            self.moving_mean.assign(self.moving_mean * self.momentum + mean * (1.0 - self.momentum))
            self.moving_variance.assign(
                self.moving_variance * self.momentum + variance * (1.0 - self.momentum)
            )
        else:
            y, _, _ = tf.compat.v1.nn.fused_batch_norm(
                x,
                gamma,
                beta,
                mean=self.moving_mean,
                variance=self.moving_variance,
                epsilon=self.epsilon,
                data_format="NHWC",
                is_training=False,
            )
        return ops.cast(y, self.compute_dtype)


BATCH_NORM_LAYERS = {"fused": FusedBatchNormalization, "keras": keras.layers.BatchNormalization}


def batch_norm_class(kind):
    """The BatchNormalization class that `get_model(..., batch_norm=kind)` builds with.

    Args:
        kind: "fused" (`FusedBatchNormalization`, the zoo's default: the fused kernel on
            TensorFlow) or "keras" (`keras.layers.BatchNormalization`, e.g. the benchmark's
            A/B). Either way a saved network holds Keras' own layer (`as_plain_keras`).

    Raises:
        InputError: for any other `kind`.
    """
    if not isinstance(kind, str) or kind not in BATCH_NORM_LAYERS:
        raise InputError(
            f"batch_norm must be one of {', '.join(BATCH_NORM_LAYERS)}. Received: batch_norm={kind!r}"
        )
    return BATCH_NORM_LAYERS[kind]
