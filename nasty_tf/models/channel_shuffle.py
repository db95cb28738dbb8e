"""ShuffleNetV2's channel split and channel shuffle, from built-in Keras layers and ops.

Built from what Keras serialises by itself, so a ShuffleNetV2 `.keras` file loads with Keras
alone (safe mode included, which refuses `Lambda` layers): the split is `keras.ops.split`
called on the symbolic tensor (a Functional model records and saves such op calls), and the
shuffle is a `Reshape`-`Permute`-`Reshape` of built-in layers. The legacy `ChannelSplit` and
`ChannelShuffle` layers of older files compute the same (`legacy_layers.py`).
"""

from keras import layers, ops


def channel_split(x):
    """Splits the channel (last) axis of `x` into two equal halves.

    Args:
        x: A symbolic channels-last tensor of a Functional model, with an even, known channel
            count.

    Returns:
        `[first, second]`: the first and the second half of the channels.

    Raises:
        ValueError: for an odd or unknown channel count.

    Example: `shortcut, residual = channel_split(x)` for `x` of shape `(b, h, w, 2c)`.
    """
    channels = x.shape[-1]
    if channels is None or channels % 2:
        raise ValueError(
            f"channel_split needs an even number of channels. Received: shape={x.shape}"
        )
    return ops.split(x, 2, axis=-1)


def channel_shuffle(x, groups, name):
    """Interleaves `groups` channel groups, like PyTorch's `view-transpose-view` shuffle.

    Output channel `j * groups + g` is input channel `g * (channels // groups) + j`, the same
    permutation the reference applies to NCHW tensors, here on channels-last tensors.

    Args:
        x: A symbolic `(b, h, w, c)` tensor of a Functional model, `h`, `w`, `c` known.
        groups: Number of channel groups; must divide `c`.
        name: Name of the layer producing the shuffled tensor; the two layers before it are
            `f"{name}_group"` (reshape to `(h, w, groups, c // groups)`) and
            `f"{name}_transpose"`.

    Returns:
        The shuffled tensor, shape `(b, h, w, c)`.

    Raises:
        ValueError: if `groups` does not divide `c` or a dimension is unknown.
    """
    height, width, channels = x.shape[1:]
    if None in (height, width, channels) or channels % groups:
        raise ValueError(
            f"channel_shuffle with groups={groups} needs known spatial and channel sizes and "
            f"a channel count divisible by groups. Received: shape={x.shape}"
        )
    x = layers.Reshape((height, width, groups, channels // groups), name=f"{name}_group")(x)
    x = layers.Permute((1, 2, 4, 3), name=f"{name}_transpose")(x)
    return layers.Reshape((height, width, channels), name=name)(x)
