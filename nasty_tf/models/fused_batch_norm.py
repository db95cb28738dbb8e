"""BatchNormalization through TensorFlow's fused kernel, for every network of the zoo.

Keras 3's `BatchNormalization` computes the batch moments and the normalisation as separate
elementwise ops (`ops.moments`, then `tf.nn.batch_normalization`), with as many more in the
backward pass. TensorFlow's `FusedBatchNormV3` does each direction in one kernel (oneDNN's on
x86 CPUs). On the TensorFlow backend this layer trains through that kernel; at inference
(an affine map, cheap either way), on other backends, and wherever the fused kernel does not
apply (masks, renorm, synchronized statistics, inputs that are not 4-D channels-last), it
runs Keras' own arithmetic, so inference is bit for bit Keras' layer's. Weights,
config, outputs and gradients agree with `keras.layers.BatchNormalization` to float rounding
(tests/test_fused_batch_norm.py). One difference, on purpose: the moving variance averages
the *unbiased* batch variance (times n / (n - 1), n the values per channel), as PyTorch's
`BatchNorm` does, where Keras averages the biased one it normalised with (0.8% lower at batch
128 for a BN1d, issue 19). Masks, renorm and synchronized statistics keep Keras' update. A
network is saved with Keras' own layer in its place (`nasty_tf.models.as_plain_keras`, same
variables), so released files never name this class; it stays registered for files written
before that. The moving statistics are read only at inference, where the two layers agree.

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
        if (
            not (training and self.trainable)
            or mask is not None
            or self.renorm
            or self.synchronized
        ):
            # Inference is Keras' own arithmetic, bit for bit what the plain-Keras release
            # computes (the fused kernel rounds differently, which flips bfloat16 roundings).
            return super().call(inputs, training=training, mask=mask)
        if not self._fused_applies(inputs, mask):
            return self._unbiased_training_call(inputs)
        import tensorflow as tf

        # As Keras' layer: statistics in float32 whatever the compute dtype.
        x = tf.cast(inputs, "float32")
        channels = x.shape[-1]
        gamma = self.gamma if self.scale else tf.ones([channels])
        beta = self.beta if self.center else tf.zeros([channels])
        y, mean, unbiased_variance = tf.compat.v1.nn.fused_batch_norm(
            x, gamma, beta, epsilon=self.epsilon, data_format="NHWC", is_training=True
        )
        # The kernel returns Bessel's unbiased variance: what PyTorch's running_var averages.
        self._update_moving_statistics(mean, unbiased_variance)
        return ops.cast(y, self.compute_dtype)

    def _update_moving_statistics(self, mean, unbiased_variance):
        self.moving_mean.assign(self.moving_mean * self.momentum + mean * (1.0 - self.momentum))
        self.moving_variance.assign(
            self.moving_variance * self.momentum + unbiased_variance * (1.0 - self.momentum)
        )

    def _unbiased_training_call(self, inputs):
        """Keras' training-mode arithmetic (any backend, any rank), PyTorch's variance update."""
        x = ops.cast(inputs, keras.backend.result_type(inputs.dtype, "float32"))
        mean, variance = ops.moments(x, axes=self._reduction_axes)
        count = 1
        for axis in self._reduction_axes:
            count *= ops.shape(x)[axis]
        count = ops.cast(count, x.dtype)
        # n / (n - 1); one value per channel has no unbiased estimate (PyTorch refuses it).
        bessel = count / ops.maximum(count - 1.0, 1.0)
        self._update_moving_statistics(mean, variance * bessel)
        y = ops.batch_normalization(
            x,
            mean,
            variance,
            axis=self.axis,
            offset=ops.cast(self.beta, x.dtype) if self.center else None,
            scale=ops.cast(self.gamma, x.dtype) if self.scale else None,
            epsilon=self.epsilon,
        )
        return ops.cast(y, self.compute_dtype)


BATCH_NORM_LAYERS = {"fused": FusedBatchNormalization, "keras": keras.layers.BatchNormalization}


def batch_norm_class(kind):
    """The BatchNormalization class that `get_model(..., batch_norm=kind)` builds with.

    Args:
        kind: "fused" (`FusedBatchNormalization`, the zoo's default: the fused kernel on
            TensorFlow, PyTorch's unbiased moving-variance update) or "keras"
            (`keras.layers.BatchNormalization`, Keras' biased update, e.g. the benchmark's
            A/B). Either way a saved network holds Keras' own layer (`as_plain_keras`).

    Raises:
        InputError: for any other `kind`.
    """
    if not isinstance(kind, str) or kind not in BATCH_NORM_LAYERS:
        raise InputError(
            f"batch_norm must be one of {', '.join(BATCH_NORM_LAYERS)}. Received: batch_norm={kind!r}"
        )
    return BATCH_NORM_LAYERS[kind]
