"""`as_plain_keras`: the network rebuilt from Keras' own layers, to save and release.

A model owner's customers must be able to load a released `model.keras` with Keras alone
(DESIGN.md section 6). The zoo trains with one layer of ours, `FusedBatchNormalization`
(faster on TensorFlow), and networks saved before releases became plain Keras hold three more
(`legacy_layers.py`). This converter swaps each of them for built-in layers or ops that
compute the same values from the same weights; every `.keras` file the project writes for a
network goes through it (`nasty_tf.atomic_io.atomic_save_model`).
"""

import keras

from nasty_tf.models.channel_shuffle import channel_shuffle, channel_split
from nasty_tf.models.fused_batch_norm import FusedBatchNormalization
from nasty_tf.models.legacy_layers import ChannelShuffle, ChannelSplit, PixelNormalization
from nasty_tf.models.normalization import pixel_normalization

_OURS = (FusedBatchNormalization, PixelNormalization, ChannelSplit, ChannelShuffle)


def _layers(model):
    for layer in model.layers:
        yield layer
        if isinstance(layer, keras.Model):
            yield from _layers(layer)


def needs_conversion(network):
    """Whether `network` (nested models included) holds a layer that `as_plain_keras` swaps."""
    return any(isinstance(layer, _OURS) for layer in _layers(network))


def _plain_layer(layer):
    if isinstance(layer, FusedBatchNormalization):
        # Same config keys; the weights are copied after the graph is rebuilt.
        return keras.layers.BatchNormalization.from_config(layer.get_config())
    if isinstance(layer, PixelNormalization):
        return pixel_normalization(layer.mean, layer.std, name=layer.name)
    return layer.__class__.from_config(layer.get_config())  # Keras' own clone


def as_plain_keras(network):
    """Returns `network` made of built-in Keras layers and ops only, with the same weights.

    Swaps `FusedBatchNormalization` for `keras.layers.BatchNormalization` (same config and
    variables), and the legacy `PixelNormalization`, `ChannelSplit` and `ChannelShuffle` for
    `keras.layers.Normalization`, `keras.ops.split` and `Reshape`-`Permute`-`Reshape`. Every
    layer keeps its name, so `images`, `pixel_normalization`, `features` and `logits` are
    where they were. The result computes the same logits (to float rounding: the fused and
    Keras' BatchNorm kernels round differently) and loads with `keras.saving.load_model` in
    a process that never imports nasty_tf. Layers of other packages are left as they are.

    Args:
        network: a Functional (or Sequential) `keras.Model`, e.g. from `get_model`; nested
            models are converted too.

    Returns:
        `network` itself when it holds none of these layers; otherwise a new model (new
        variables holding copies of the weights; `network` is left unchanged). It is not
        compiled unless `network` was.

    Example:

    ```python
    plain = as_plain_keras(models.get_model("resnet18", 10))
    plain.save("resnet18.keras")  # loads with Keras alone
    ```
    """
    if not needs_conversion(network):
        return network
    pairs = []

    def clone(layer):
        if not isinstance(layer, keras.layers.Layer):
            return layer.__class__.from_config(layer.get_config())  # an op node of the graph
        if isinstance(layer, (ChannelSplit, ChannelShuffle)):
            return layer  # replaced where it is called, below
        plain = _plain_layer(layer)
        pairs.append((layer, plain))
        return plain

    def call(layer, *args, **kwargs):
        if isinstance(layer, ChannelSplit):
            return channel_split(*args)
        if isinstance(layer, ChannelShuffle):
            return channel_shuffle(*args, groups=layer.groups, name=layer.name)
        return layer(*args, **kwargs)

    # Keras refuses a call_function for a Sequential model (nothing is called while it is built).
    call_function = None if isinstance(network, keras.Sequential) else call
    plain = keras.models.clone_model(
        network, clone_function=clone, call_function=call_function, recursive=True
    )
    for layer, copy in pairs:
        if layer.weights:
            copy.set_weights(layer.get_weights())
    return plain
