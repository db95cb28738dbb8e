"""The in-model pixel normalisation that makes every saved network self-contained.

Networks take raw pixel values in [0, 255] (uint8 accepted) and normalise them themselves, so
a `.keras` file needs no side file with the dataset statistics (DESIGN.md section 6). The layer
is Keras' own `Normalization`, so a released file loads with Keras alone; its constants are
the dataset statistics in pixel units (`mean = 255 * m`, `variance = (255 * s) ** 2` for `m`,
`s` in [0, 1] units), config values rather than weights, so they are never trained nor counted
among the parameters.
"""

import math

import keras
import numpy as np

from nasty_tf.errors import InputError

# The reference code normalises CIFAR-100 with these CIFAR-10 constants too (DESIGN.md 2).
CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.247, 0.243, 0.261)
LAYER_NAME = "pixel_normalization"
# The class that files written before plain-Keras releases hold (`legacy_layers`).
LEGACY_REGISTERED_NAME = "nasty_tf>PixelNormalization"


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


def check_statistics(mean, std):
    """Returns `(mean, std)` as tuples of floats, one per channel, every std positive.

    Raises:
        InputError: for non-numbers, different lengths or a std that is not positive.
    """
    mean, std = _as_floats(mean, "mean"), _as_floats(std, "std")
    if len(mean) != len(std):
        raise InputError(
            f"mean and std must have one value per channel each. Received: mean={mean}, std={std}"
        )
    if not all(s > 0 for s in std):
        raise InputError(f"std values must all be positive. Received: std={std}")
    return mean, std


def pixel_normalization(mean, std, name=LAYER_NAME):
    """A `keras.layers.Normalization` mapping pixels in [0, 255] to `(x / 255 - mean) / std`.

    It computes in float32 whatever the global dtype policy, so uint8 inputs cannot wrap and a
    mixed_bfloat16 network does not round its pixels before normalising them; the first
    convolution casts the result to its compute dtype.

    Args:
        mean: Per-channel mean in [0, 1] units (torchvision convention), e.g. `CIFAR10_MEAN`.
        std: Per-channel standard deviation in [0, 1] units, all positive.
        name: The layer's name; the zoo's networks use `"pixel_normalization"`.

    Returns:
        An unbuilt `keras.layers.Normalization` (float32, no weights).

    Raises:
        InputError: for malformed statistics.

    Example:

    ```python
    layer = pixel_normalization(CIFAR10_MEAN, CIFAR10_STD)
    y = layer(np.full((1, 32, 32, 3), 255, dtype="uint8"))  # float32, about (1 - mean) / std
    ```
    """
    mean, std = check_statistics(mean, std)
    return keras.layers.Normalization(
        mean=[255.0 * m for m in mean],
        variance=[(255.0 * s) ** 2 for s in std],
        dtype="float32",
        name=name,
    )


def _per_channel(values, channels):
    flat = np.asarray(values, dtype="float64").reshape(-1)
    if flat.size == 1 and channels:
        flat = np.repeat(flat, channels)
    # 12 significant digits: what the dataset gave, without the float noise of the round trip.
    return tuple(float(f"{v:.12g}") for v in flat)


def _is_legacy(layer):
    return keras.saving.get_registered_name(type(layer)) == LEGACY_REGISTERED_NAME


def pixel_statistics(network):
    """The `(mean, std)` in [0, 1] units that `network` normalises its pixels with.

    Reads the network's top-level `keras.layers.Normalization` (the one named
    `"pixel_normalization"` first), or the legacy `PixelNormalization` of files written
    before plain-Keras releases (recognised by its registered name, so this module does not import
    `legacy_layers`, which imports it).

    Args:
        network: a network of the zoo, or any model holding such a layer.

    Returns:
        `(mean, std)`, tuples of floats, one per channel; `None` if there is no such layer.
    """
    candidates = [
        layer
        for layer in network.layers
        if _is_legacy(layer)
        or (
            isinstance(layer, keras.layers.Normalization)
            and not layer.invert
            and layer.input_mean is not None
        )
    ]
    candidates.sort(key=lambda layer: layer.name != LAYER_NAME)  # stable: graph order otherwise
    if not candidates:
        return None
    layer = candidates[0]
    if _is_legacy(layer):
        return tuple(layer.mean), tuple(layer.std)
    channels = network.input_shape[-1] if isinstance(network.input_shape, tuple) else None
    mean = np.asarray(layer.input_mean, dtype="float64") / 255.0
    std = np.sqrt(np.asarray(layer.input_variance, dtype="float64")) / 255.0
    return _per_channel(mean, channels), _per_channel(std, channels)
