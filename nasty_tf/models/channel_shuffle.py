"""The channel split and shuffle operations of ShuffleNetV2, as serialisable layers.

They are layers (not `keras.ops` calls on symbolic tensors) so a ShuffleNetV2 `.keras` file
reloads with nothing but `nasty_tf.models` imported.
"""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="nasty_tf")
class ChannelSplit(keras.layers.Layer):
    """Splits the last (channel) axis into two equal halves and returns both.

    Example: `first, second = ChannelSplit()(x)` for `x` of shape `(b, h, w, 2c)`.
    """

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
    """Interleaves `groups` channel groups, like PyTorch's `view-transpose-view` shuffle.

    Output channel `j * groups + g` is input channel `g * (channels // groups) + j`, the same
    permutation the reference applies to NCHW tensors, here on channels-last tensors.

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
