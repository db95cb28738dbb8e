"""ResNeXt-29 (8x64d) for CIFAR, as the reference's `CifarResNeXt` (from prlz77/ResNeXt.pytorch).

Cardinality 8, widen factor 4, three stages of 3 bottlenecks with 256/512/1024 output
channels. A bottleneck is 1x1 reduce to `D = cardinality * out / widen` channels, a grouped
3x3 (strided in the first block of stages 2-3), 1x1 expand, plus a shortcut that is a 1x1
conv + BN whenever the channel count changes. Global average pooling, as the reference's
`adaptive_avg_pool2d`, so 32x32 and 64x64 inputs both work.

Layer names: `stem_conv`, `stem_bn`, `stage{s}_block{b}_{conv,bn}{i}` (conv2 is the grouped
one), `stage{s}_block{b}_shortcut_{conv,bn}`.
"""

import keras
from keras import layers

from nasty_tf.models import _common
from nasty_tf.models.normalization import CIFAR10_MEAN, CIFAR10_STD

CARDINALITY = 8
WIDEN_FACTOR = 4
_DEPTH = 29
_STAGE_STRIDES = (1, 2, 2)


def resnext_bottleneck(
    x, out_channels, strides, cardinality, widen_factor, prefix, batch_norm="fused", init="keras"
):
    """The ResNeXt bottleneck with a grouped 3x3 convolution.

    `init` is the convolutions' scheme (`_common.LAYER_INITS`).
    """
    inner = cardinality * out_channels // widen_factor
    out = _common.conv2d(x, inner, 1, f"{prefix}_conv1", init=init)
    out = _common.batch_norm(out, f"{prefix}_bn1", batch_norm)
    out = layers.ReLU(name=f"{prefix}_relu1")(out)
    out = _common.conv2d(
        out, inner, 3, f"{prefix}_conv2", strides=strides, groups=cardinality, init=init
    )
    out = _common.batch_norm(out, f"{prefix}_bn2", batch_norm)
    out = layers.ReLU(name=f"{prefix}_relu2")(out)
    out = _common.conv2d(out, out_channels, 1, f"{prefix}_conv3", init=init)
    out = _common.batch_norm(out, f"{prefix}_bn3", batch_norm)
    shortcut = x
    # The reference projects only on a channel change; every strided block changes channels.
    if x.shape[-1] != out_channels:
        shortcut = _common.conv2d(
            x, out_channels, 1, f"{prefix}_shortcut_conv", strides=strides, init=init
        )
        shortcut = _common.batch_norm(shortcut, f"{prefix}_shortcut_bn", batch_norm)
    out = layers.Add(name=f"{prefix}_add")([shortcut, out])
    return layers.ReLU(name=f"{prefix}_out")(out)


def resnext29(
    num_classes,
    input_shape=(32, 32, 3),
    mean=CIFAR10_MEAN,
    std=CIFAR10_STD,
    batch_norm="fused",
    init="keras",
):
    """ResNeXt-29, 8x64d (cardinality 8, widen factor 4): a paper teacher.

    Args:
        num_classes: Number of classes (at least 2).
        input_shape: `(height, width, channels)`; any size, e.g. 32x32 or 64x64.
        mean: Per-channel pixel mean in [0, 1] units, stored in the network.
        std: Per-channel pixel standard deviation in [0, 1] units.
        batch_norm: "fused" (`FusedBatchNormalization`, the default: TensorFlow's fused kernel)
            or "keras" (`keras.layers.BatchNormalization`); saved files hold Keras' layer either way.
        init: "keras" (Keras' default initialisers, the default) or "reference" (the reference
            model's: its `__init__` draws every convolution from
            kaiming_normal(mode='fan_out') and the classifier's weight from kaiming_normal (fan-in),
            with a zero bias).

    Returns:
        A Functional `keras.Model` named `"resnext29"` with 1024-d `"features"`.

    Example:

    ```python
    model = resnext29(num_classes=100)  # 34,518,948 trainable parameters
    ```
    """
    input_shape = _common.check_arguments("resnext29", num_classes, input_shape, batch_norm, init)
    # The reference's __init__: kaiming_normal(mode="fan_out") for every weight named "conv",
    # kaiming_normal (fan-in) for the classifier's weight, every bias 0, every BN weight 1.
    conv_scheme = _common.layer_init(init, "kaiming_normal_fan_out")
    blocks_per_stage = (_DEPTH - 2) // 9
    widths = (64 * WIDEN_FACTOR, 128 * WIDEN_FACTOR, 256 * WIDEN_FACTOR)
    inputs, x = _common.network_input(input_shape, mean, std)
    x = _common.conv2d(x, 64, 3, "stem_conv", init=conv_scheme)
    x = _common.batch_norm(x, "stem_bn", batch_norm)
    x = layers.ReLU(name="stem_relu")(x)
    for stage, (width, stage_strides) in enumerate(zip(widths, _STAGE_STRIDES), start=1):
        for index in range(blocks_per_stage):
            strides = stage_strides if index == 0 else 1
            x = resnext_bottleneck(
                x,
                width,
                strides,
                CARDINALITY,
                WIDEN_FACTOR,
                f"stage{stage}_block{index}",
                batch_norm,
                conv_scheme,
            )
    features = layers.GlobalAveragePooling2D(name="features")(x)
    logits = _common.classifier(
        features, num_classes, init=_common.layer_init(init, "kaiming_normal_fan_in")
    )
    return keras.Model(inputs, logits, name="resnext29")
