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

Initialisation is the builders' `init` argument (`INITS`). "keras" keeps Keras' defaults
(glorot-uniform kernels, zero biases). "reference" gives every convolution and dense layer the
initialiser the reference gives it under PyTorch 1.4 (`LAYER_INITS`, chosen per architecture
by `layer_init`): PyTorch's own default for `nn.Conv2d` and `nn.Linear`, kaiming-uniform with
a=sqrt(5), i.e. U(+-1/sqrt(fan_in)), and U(+-1/sqrt(fan_in)) biases; or the schemes PreResNet
and ResNeXt apply in their `__init__` (normal with std sqrt(2/fan_out) for their convolutions,
sqrt(2/fan_in) and a zero bias for ResNeXt's classifier). BatchNorm starts at gamma 1, beta 0
under both, as in PyTorch.

The reference's initialisers are written as `RandomUniform` / `RandomNormal` with the bound or
std computed per layer, not as `VarianceScaling`, for two reasons: Keras counts a depthwise
kernel's fan-in as `channels * k * k` where PyTorch counts `k * k`; and `VarianceScaling`'s
config gained `input_axes` / `output_axes` keys in recent Keras that older Keras 3 releases
refuse, while a released `model.keras` (whose layer configs hold their initialisers) must load
with Keras alone.
"""

import math
import numbers

import keras
from keras import layers

from nasty_tf.errors import InputError
from nasty_tf.models.fused_batch_norm import batch_norm_class
from nasty_tf.models.normalization import LAYER_NAME, check_statistics, pixel_normalization

BN_MOMENTUM = 0.9
BN_EPSILON = 1e-5

# The builders' `init` argument: Keras' default initialisers or the reference's.
INITS = ("keras", "reference")
# How one layer is initialised (`layer_init` maps `init` to one of these per architecture):
# "keras": Keras' defaults (glorot-uniform kernel, zero bias).
# "pytorch": PyTorch's `reset_parameters` of nn.Conv2d / nn.Linear: kaiming_uniform_(a=sqrt(5)),
#     i.e. U(-1/sqrt(fan_in), 1/sqrt(fan_in)), and the bias U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
# "kaiming_normal_fan_out": N(0, sqrt(2 / fan_out)), bias 0 (PreResNet's and ResNeXt's convs).
# "kaiming_normal_fan_in": N(0, sqrt(2 / fan_in)), bias 0 (ResNeXt's classifier).
LAYER_INITS = ("keras", "pytorch", "kaiming_normal_fan_out", "kaiming_normal_fan_in")


def check_arguments(arch, num_classes, input_shape, batch_norm="fused", init="keras"):
    """Validates the arguments every builder shares.

    Args:
        arch: Architecture name, used in the error message.
        num_classes: Number of output classes; an int of at least 2.
        input_shape: `(height, width, channels)` of one image, positive ints.
        batch_norm: "fused" or "keras" (`fused_batch_norm.BATCH_NORM_LAYERS`).
        init: "keras" or "reference" (`INITS`).

    Returns:
        `input_shape` as a tuple of ints.

    Raises:
        InputError: If an argument is out of range or malformed.
    """
    batch_norm_class(batch_norm)
    check_init(init)
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


def check_init(init):
    """Returns `init` if it is one of `INITS`.

    Raises:
        InputError: For any other value.
    """
    if not isinstance(init, str) or init not in INITS:
        raise InputError(f"init must be one of {INITS}. Received: init={init!r}")
    return init


def layer_init(init, reference="pytorch"):
    """The per-layer scheme (`LAYER_INITS`) for a builder's `init`.

    Args:
        init: The builder's `init`, "keras" or "reference".
        reference: The scheme the reference uses for these layers; its PyTorch default
            ("pytorch") unless the reference model re-initialises them.

    Returns:
        "keras" for `init="keras"`, else `reference`.
    """
    check_init(init)
    return "keras" if init == "keras" else reference


def initializer_arguments(init, fan_in, fan_out, use_bias, kernel_argument="kernel_initializer"):
    """The initialiser arguments of one convolution or dense layer under the scheme `init`.

    Args:
        init: One of `LAYER_INITS`.
        fan_in: The layer's fan-in as PyTorch counts it: input channels per group times the
            kernel's spatial size (`k * k` for a depthwise convolution), or a dense layer's inputs.
        fan_out: Output channels times the kernel's spatial size (a dense layer's units).
        use_bias: Whether the layer has a bias.
        kernel_argument: The layer's kernel-initialiser argument (`"depthwise_initializer"`
            for `DepthwiseConv2D`).

    Returns:
        A dict of keyword arguments for the layer: empty for "keras" (the layer's own defaults),
        built-in `keras.initializers` otherwise, so a saved network still loads with Keras alone.
    """
    if init not in LAYER_INITS:
        raise InputError(f"init must be one of {LAYER_INITS}. Received: init={init!r}")
    if init == "keras":
        return {}
    if init == "pytorch":
        # kaiming_uniform_(a=sqrt(5)): gain sqrt(2 / (1 + 5)), bound gain * sqrt(3 / fan_in).
        bound = 1.0 / math.sqrt(fan_in)
        kernel = keras.initializers.RandomUniform(-bound, bound)
        bias = keras.initializers.RandomUniform(-bound, bound)
    else:
        fan = fan_out if init == "kaiming_normal_fan_out" else fan_in
        # PyTorch's kaiming_normal_ draws from an untruncated normal (Keras' HeNormal truncates).
        kernel = keras.initializers.RandomNormal(0.0, math.sqrt(2.0 / fan))
        bias = keras.initializers.Zeros()
    arguments = {kernel_argument: kernel}
    if use_bias:
        arguments["bias_initializer"] = bias
    return arguments


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


def classifier(features, num_classes, init="keras"):
    """Returns the float32 `logits` Dense on top of the pre-logit `features`.

    The logits stay float32 under a mixed-precision policy because the nasty objective's KL
    term depends on small logit differences that bfloat16/float16 would erase (DESIGN.md 3).
    `init` is the layer's scheme (`LAYER_INITS`).
    """
    return dense(features, num_classes, "logits", init=init, dtype="float32")


def dense(x, units, name, init="keras", dtype=None):
    """A `Dense` layer with a bias, as PyTorch's `nn.Linear`; `init` is its `LAYER_INITS` scheme."""
    arguments = initializer_arguments(init, x.shape[-1], units, use_bias=True)
    return layers.Dense(units, dtype=dtype, name=name, **arguments)(x)


def batch_norm(x, name, kind="fused"):
    """BatchNormalization with PyTorch's default statistics settings.

    `kind` is the builder's `batch_norm` argument: "fused" (`FusedBatchNormalization`, the
    fused kernel on TensorFlow; its moving variance averages the unbiased batch variance, as
    PyTorch's does) or "keras" (`keras.layers.BatchNormalization`, the biased one).
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


def conv2d(
    x, filters, kernel_size, name, strides=1, padding=None, groups=1, use_bias=False, init="keras"
):
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
        init: The layer's initialisation scheme, one of `LAYER_INITS`.

    Returns:
        The convolution's output tensor.
    """
    window = kernel_size * kernel_size
    arguments = initializer_arguments(
        init, x.shape[-1] // groups * window, filters * window, use_bias
    )
    x, mode = _pad_mode(x, kernel_size, strides, padding, name)
    return layers.Conv2D(
        filters,
        kernel_size,
        strides=strides,
        padding=mode,
        groups=groups,
        use_bias=use_bias,
        name=name,
        **arguments,
    )(x)


def depthwise_conv2d(x, kernel_size, name, strides=1, use_bias=False, init="keras"):
    """A depthwise convolution, i.e. PyTorch's `nn.Conv2d(c, c, k, groups=c)`.

    `DepthwiseConv2D` has the same parameters as a `Conv2D` with `groups=channels` but runs a
    dedicated kernel on every backend. `init` is its scheme (`LAYER_INITS`); its fan-in is
    PyTorch's `k * k` (one input channel per group).
    """
    window = kernel_size * kernel_size
    arguments = initializer_arguments(
        init, window, x.shape[-1] * window, use_bias, kernel_argument="depthwise_initializer"
    )
    x, mode = _pad_mode(x, kernel_size, strides, None, name)
    return layers.DepthwiseConv2D(
        kernel_size, strides=strides, padding=mode, use_bias=use_bias, name=name, **arguments
    )(x)
