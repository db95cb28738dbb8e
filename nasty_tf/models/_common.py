"""Building blocks shared by the model zoo: argument checks, PyTorch-equivalent layers, head.

Every network is made of built-in Keras layers (and ops) only, so its `.keras` file loads with
Keras alone, with one exception while it trains: its BatchNorm layers are the zoo's
`FusedBatchNormalization` by default (`batch_norm="fused"`, the fused kernel on TensorFlow),
which saving replaces by Keras' own `BatchNormalization` with the same variables
(`as_plain_keras`). The pixel normalisation is `keras.layers.Normalization`
(`normalization.pixel_normalization`).

The zoo ports the PyTorch reference models layer for layer, so the helpers here encode the
PyTorch defaults that differ from Keras':

* BatchNorm `momentum=0.1, eps=1e-5` in PyTorch is `momentum=0.9, epsilon=1e-5` in Keras.
* PyTorch zero-pads symmetrically (`padding=k // 2`); Keras' `padding="same"` pads only the
  bottom/right for a stride-2 convolution on an even-sized input, which shifts every sampled
  window by one pixel. Stride-1 convolutions with odd kernels pad symmetrically in both, so
  only strided convolutions (and the reference's odd MobileNetV2 stem) get an explicit
  `ZeroPadding2D`. Parameter counts do not see this; ported weights and feature maps would.

Kernels use the Keras default initialisers (glorot-uniform kernels, zero biases, BN gamma 1 and
beta 0), not PyTorch's kaiming-uniform(a=sqrt(5)) nor the per-model schemes some reference
files add (normal(0, sqrt(2/n)) in PreResNet, kaiming-normal in ResNeXt); DESIGN.md accepts
either, and one scheme for the whole zoo keeps the ports simple.
"""

import numbers

import keras
from keras import layers

from nasty_tf.errors import InputError
from nasty_tf.models.fused_batch_norm import batch_norm_class
from nasty_tf.models.normalization import LAYER_NAME, check_statistics, pixel_normalization

BN_MOMENTUM = 0.9
BN_EPSILON = 1e-5


def check_arguments(arch, num_classes, input_shape, batch_norm="fused"):
    """Validates the arguments every builder shares.

    Args:
        arch: Architecture name, used in the error message.
        num_classes: Number of output classes; an int of at least 2.
        input_shape: `(height, width, channels)` of one image, positive ints.
        batch_norm: "fused" or "keras" (`fused_batch_norm.BATCH_NORM_LAYERS`).

    Returns:
        `input_shape` as a tuple of ints.

    Raises:
        InputError: If an argument is out of range or malformed.
    """
    batch_norm_class(batch_norm)
    if (
        isinstance(num_classes, bool)
        or not isinstance(num_classes, numbers.Integral)
        or num_classes < 2
    ):
        raise InputError(
            f"num_classes must be an integer of at least 2 for {arch}. "
            f"Received: num_classes={num_classes!r}"
        )
    try:
        dims = tuple(input_shape)
    except TypeError:
        dims = None
    if (
        dims is None
        or len(dims) != 3
        or not all(
            isinstance(d, numbers.Integral) and not isinstance(d, bool) and d > 0 for d in dims
        )
    ):
        raise InputError(
            f"input_shape must be (height, width, channels) with positive integers for {arch}. "
            f"Received: input_shape={input_shape!r}"
        )
    return tuple(int(d) for d in dims)


def network_input(input_shape, mean, std):
    """Creates the `images` input and the pixel normalisation every network starts with.

    Args:
        input_shape: `(height, width, channels)`, already checked.
        mean: Per-channel mean in [0, 1] units.
        std: Per-channel standard deviation in [0, 1] units.

    Returns:
        `(inputs, x)`: the float32 `keras.Input` named `images` and the output of the float32
        `keras.layers.Normalization` named `pixel_normalization`.

    Raises:
        InputError: for malformed statistics or not one value per input channel.
    """
    mean, std = check_statistics(mean, std)
    if len(mean) != input_shape[-1]:
        raise InputError(
            f"mean and std need one value per input channel ({input_shape[-1]}). "
            f"Received: mean={mean}, input_shape={input_shape}"
        )
    inputs = keras.Input(shape=input_shape, name="images", dtype="float32")
    x = pixel_normalization(mean, std, name=LAYER_NAME)(inputs)
    return inputs, x


def classifier(features, num_classes):
    """Returns the float32 `logits` Dense on top of the pre-logit `features`.

    The logits stay float32 under a mixed-precision policy because the nasty objective's KL
    term depends on small logit differences that bfloat16/float16 would erase (DESIGN.md 3).
    """
    return layers.Dense(num_classes, dtype="float32", name="logits")(features)


def batch_norm(x, name, kind="fused"):
    """BatchNormalization with PyTorch's default statistics settings.

    `kind` is the builder's `batch_norm` argument: "fused" (`FusedBatchNormalization`, the
    fused kernel on TensorFlow) or "keras" (`keras.layers.BatchNormalization`).
    """
    return batch_norm_class(kind)(momentum=BN_MOMENTUM, epsilon=BN_EPSILON, name=name)(x)


def _pad_mode(x, kernel_size, strides, padding, name):
    """Returns `(x, keras_padding)` reproducing PyTorch's symmetric `padding`."""
    if padding is None:
        padding = kernel_size // 2
    if padding == 0:
        return x, "valid"
    if strides == 1 and 2 * padding == kernel_size - 1:
        return x, "same"
    return layers.ZeroPadding2D(padding, name=f"{name}_pad")(x), "valid"


def conv2d(x, filters, kernel_size, name, strides=1, padding=None, groups=1, use_bias=False):
    """A `Conv2D` that pads like PyTorch's `nn.Conv2d(..., padding=padding)`.

    Args:
        x: Input tensor, channels last.
        filters: Output channels.
        kernel_size: Square kernel size.
        name: Layer name; an explicit padding layer gets `f"{name}_pad"`.
        strides: Stride.
        padding: PyTorch's symmetric zero padding; `None` means `kernel_size // 2`.
        groups: Channel groups (ResNeXt's cardinality).
        use_bias: Whether the convolution has a bias (PyTorch's default is True; the ResNets
            turn it off because a BatchNorm follows).

    Returns:
        The convolution's output tensor.
    """
    x, mode = _pad_mode(x, kernel_size, strides, padding, name)
    return layers.Conv2D(
        filters,
        kernel_size,
        strides=strides,
        padding=mode,
        groups=groups,
        use_bias=use_bias,
        name=name,
    )(x)


def depthwise_conv2d(x, kernel_size, name, strides=1, use_bias=False):
    """A depthwise convolution, i.e. PyTorch's `nn.Conv2d(c, c, k, groups=c)`.

    `DepthwiseConv2D` has the same parameters as a `Conv2D` with `groups=channels` but runs a
    dedicated kernel on every backend.
    """
    x, mode = _pad_mode(x, kernel_size, strides, None, name)
    return layers.DepthwiseConv2D(
        kernel_size, strides=strides, padding=mode, use_bias=use_bias, name=name
    )(x)
