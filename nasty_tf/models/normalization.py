"""The in-model pixel normalisation that makes every saved network self-contained.

Networks take raw pixel values in [0, 255] (uint8 accepted) and normalise them themselves, so
a `.keras` file needs no side file with the dataset statistics (DESIGN.md section 6).
"""

import math

import keras
import numpy as np
from keras import ops

from nasty_tf.errors import InputError

# The reference code normalises CIFAR-100 with these CIFAR-10 constants too (DESIGN.md 2).
CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.247, 0.243, 0.261)


def _as_floats(values, what):
    try:
        floats = tuple(float(v) for v in values)
    except (TypeError, ValueError):
        raise InputError(
            f"{what} must be a sequence of numbers, one per channel. Received: {what}={values!r}"
        ) from None
    if not floats or not all(math.isfinite(v) for v in floats):
        raise InputError(
            f"{what} must be a non-empty sequence of finite numbers. Received: {what}={values!r}"
        )
    return floats


@keras.saving.register_keras_serializable(package="nasty_tf")
class PixelNormalization(keras.layers.Layer):
    """Maps pixel values in [0, 255] to `(x / 255 - mean) / std`, per channel.

    The constants are plain config values, not weights, so they can never be trained, are not
    counted among the network's parameters, and survive a `.keras` round trip through
    `get_config`.

    Args:
        mean: Per-channel mean in [0, 1] units (torchvision convention), e.g. `CIFAR10_MEAN`.
        std: Per-channel standard deviation in [0, 1] units, all positive.
        **kwargs: Standard `keras.layers.Layer` arguments (`name`, `dtype`, ...).

    Example:

    ```python
    layer = PixelNormalization(CIFAR10_MEAN, CIFAR10_STD)
    y = layer(np.full((1, 32, 32, 3), 255, dtype="uint8"))  # float32, about (1 - mean) / std
    ```
    """

    def __init__(self, mean, std, **kwargs):
        # Autocasting would round float pixel inputs to the compute dtype (bfloat16 under mixed
        # precision) before we get to normalise them in float32.
        kwargs.setdefault("autocast", False)
        super().__init__(**kwargs)
        self.mean = _as_floats(mean, "mean")
        self.std = _as_floats(std, "std")
        if len(self.mean) != len(self.std):
            raise InputError(
                "mean and std must have one value per channel each. "
                f"Received: mean={self.mean}, std={self.std}"
            )
        if not all(s > 0 for s in self.std):
            raise InputError(f"std values must all be positive. Received: std={self.std}")

    def build(self, input_shape):
        channels = input_shape[-1]
        if channels is not None and channels != len(self.mean):
            raise InputError(
                f"PixelNormalization holds statistics for {len(self.mean)} channels but the "
                f"input has {channels}. Received: input_shape={tuple(input_shape)}"
            )
        self.built = True

    def call(self, inputs):
        # Always normalise in float32: uint8 inputs must not wrap and bfloat16 would cost
        # precision before the first convolution.
        x = ops.cast(inputs, "float32")
        mean = ops.convert_to_tensor(np.asarray(self.mean, dtype="float32"))
        std = ops.convert_to_tensor(np.asarray(self.std, dtype="float32"))
        x = (x / 255.0 - mean) / std
        return ops.cast(x, self.compute_dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def compute_output_spec(self, inputs):
        return keras.KerasTensor(inputs.shape, dtype=self.compute_dtype)

    def get_config(self):
        config = super().get_config()
        config.update({"mean": list(self.mean), "std": list(self.std)})
        return config
