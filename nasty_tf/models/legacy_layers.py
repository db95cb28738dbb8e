"""Layers that networks saved before releases became plain Keras hold; kept so those files load.

Networks written before releases became plain Keras (issue 16) name three custom classes:
`nasty_tf>PixelNormalization`, `nasty_tf>ChannelSplit` and `nasty_tf>ChannelShuffle` (and
`nasty_tf>FusedBatchNormalization`, which still trains the zoo: see `fused_batch_norm`).
Importing `nasty_tf.models` registers them, so `keras.saving.load_model` reads such a file.
New networks never use them, and `nasty_tf.models.as_plain_keras` (which every save of the
project goes through) replaces them by built-in layers and ops computing the same values:
`keras.layers.Normalization`, and `channel_split` / `channel_shuffle` of `channel_shuffle.py`.
"""

import keras
import numpy as np
from keras import ops

from nasty_tf.errors import InputError
from nasty_tf.models.normalization import check_statistics


@keras.saving.register_keras_serializable(package="nasty_tf")
class PixelNormalization(keras.layers.Layer):
    """Legacy: maps pixel values in [0, 255] to `(x / 255 - mean) / std`, per channel.

    New networks use `keras.layers.Normalization` (`nasty_tf.models.pixel_normalization`).
    The constants are config values, not weights.

    Args:
        mean: Per-channel mean in [0, 1] units (torchvision convention), e.g. `CIFAR10_MEAN`.
        std: Per-channel standard deviation in [0, 1] units, all positive.
        **kwargs: Standard `keras.layers.Layer` arguments (`name`, `dtype`, ...).
    """

    def __init__(self, mean, std, **kwargs):
        # Autocasting would round float pixel inputs to the compute dtype (bfloat16 under mixed
        # precision) before we get to normalise them in float32.
        kwargs.setdefault("autocast", False)
        super().__init__(**kwargs)
        self.mean, self.std = check_statistics(mean, std)

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


@keras.saving.register_keras_serializable(package="nasty_tf")
class ChannelSplit(keras.layers.Layer):
    """Legacy: splits the channel axis into two equal halves (now `channel_split`)."""

    def build(self, input_shape):
        if input_shape[-1] is not None and input_shape[-1] % 2:
            raise ValueError(
                "ChannelSplit needs an even number of channels. "
                f"Received: input_shape={input_shape}"
            )
        self.built = True

    def call(self, inputs):
        half = inputs.shape[-1] // 2
        return [inputs[..., :half], inputs[..., half:]]

    def compute_output_shape(self, input_shape):
        half = tuple(input_shape[:-1]) + (input_shape[-1] // 2,)
        return [half, half]


@keras.saving.register_keras_serializable(package="nasty_tf")
class ChannelShuffle(keras.layers.Layer):
    """Legacy: interleaves `groups` channel groups (now `channel_shuffle`).

    Args:
        groups: Number of channel groups; must divide the channel count.
        **kwargs: Standard `keras.layers.Layer` arguments.
    """

    def __init__(self, groups=2, **kwargs):
        super().__init__(**kwargs)
        self.groups = int(groups)

    def build(self, input_shape):
        if input_shape[-1] is not None and input_shape[-1] % self.groups:
            raise ValueError(
                f"ChannelShuffle with groups={self.groups} needs a channel count divisible by "
                f"it. Received: input_shape={input_shape}"
            )
        self.built = True

    def call(self, inputs):
        shape = ops.shape(inputs)
        channels = inputs.shape[-1]
        grouped = ops.reshape(
            inputs, (-1, shape[1], shape[2], self.groups, channels // self.groups)
        )
        shuffled = ops.transpose(grouped, (0, 1, 2, 4, 3))
        return ops.reshape(shuffled, (-1, shape[1], shape[2], channels))

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config["groups"] = self.groups
        return config
