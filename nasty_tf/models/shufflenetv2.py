"""ShuffleNetV2 (1.0x) for CIFAR, as in the reference code (weiaicunzai/pytorch-cifar100 lineage).

Stage widths 116/232/464, each one stride-2 unit followed by 3, 7 and 3 stride-1 units, and a
1024-channel 1x1 head; every convolution has a bias. Reference details kept on purpose because
they change the network:

* the stem is a 3x3 conv + BN *without* ReLU;
* the stride-1 unit's split sends the *first* half of the channels through unchanged and the
  second half through the branch, then concatenates `[unchanged, branch]` before shuffling.

Layer names: `stem_conv`, `stem_bn`, `stage{s}_unit{u}_{branch}_{conv,bn}{i}` with branch
`residual` or `shortcut`, `head_conv`, `head_bn`.
"""

import keras
from keras import layers

from nasty_tf.models import _common
from nasty_tf.models.channel_shuffle import channel_shuffle, channel_split
from nasty_tf.models.normalization import CIFAR10_MEAN, CIFAR10_STD

_STAGE_WIDTHS = (116, 232, 464)
_STAGE_REPEATS = (3, 7, 3)
_HEAD_CHANNELS = 1024


def _branch(x, channels, out_channels, strides, prefix, pointwise_first, batch_norm, init):
    """[1x1-BN-ReLU] then depthwise 3x3-BN then 1x1-BN-ReLU (all convolutions with bias)."""
    if pointwise_first:
        x = _common.conv2d(x, channels, 1, f"{prefix}_conv1", use_bias=True, init=init)
        x = _common.batch_norm(x, f"{prefix}_bn1", batch_norm)
        x = layers.ReLU(name=f"{prefix}_relu1")(x)
    x = _common.depthwise_conv2d(x, 3, f"{prefix}_conv2", strides=strides, use_bias=True, init=init)
    x = _common.batch_norm(x, f"{prefix}_bn2", batch_norm)
    x = _common.conv2d(x, out_channels, 1, f"{prefix}_conv3", use_bias=True, init=init)
    x = _common.batch_norm(x, f"{prefix}_bn3", batch_norm)
    return layers.ReLU(name=f"{prefix}_relu3")(x)


def shuffle_unit(x, out_channels, strides, prefix, batch_norm="fused", init="keras"):
    """A ShuffleNetV2 unit: split (or duplicate when downsampling), transform, concat, shuffle.

    `init` is the convolutions' scheme (`_common.LAYER_INITS`).
    """
    in_channels = x.shape[-1]
    if strides == 1 and in_channels == out_channels:
        shortcut, residual = channel_split(x)
        residual = _branch(
            residual,
            in_channels // 2,
            in_channels // 2,
            1,
            f"{prefix}_residual",
            True,
            batch_norm,
            init,
        )
    else:
        residual = _branch(
            x, in_channels, out_channels // 2, strides, f"{prefix}_residual", True, batch_norm, init
        )
        shortcut = _branch(
            x,
            in_channels,
            out_channels // 2,
            strides,
            f"{prefix}_shortcut",
            False,
            batch_norm,
            init,
        )
    x = layers.Concatenate(name=f"{prefix}_concat")([shortcut, residual])
    return channel_shuffle(x, 2, name=f"{prefix}_shuffle")


def shufflenetv2(
    num_classes,
    input_shape=(32, 32, 3),
    mean=CIFAR10_MEAN,
    std=CIFAR10_STD,
    batch_norm="fused",
    init="keras",
):
    """ShuffleNetV2 1.0x for CIFAR-sized inputs: a paper student.

    Args:
        num_classes: Number of classes (at least 2).
        input_shape: `(height, width, channels)`; any size, e.g. 32x32 or 64x64.
        mean: Per-channel pixel mean in [0, 1] units, stored in the network.
        std: Per-channel pixel standard deviation in [0, 1] units.
        batch_norm: "fused" (`FusedBatchNormalization`, the default: TensorFlow's fused kernel)
            or "keras" (`keras.layers.BatchNormalization`); saved files hold Keras' layer either way.
        init: "keras" (Keras' default initialisers, the default) or "reference" (the reference
            model's: PyTorch's defaults for every conv and dense layer; `_common.layer_init`).

    Returns:
        A Functional `keras.Model` named `"shufflenetv2"` with 1024-d `"features"`.

    Example:

    ```python
    model = shufflenetv2(num_classes=10)  # 1,268,646 trainable parameters
    ```
    """
    input_shape = _common.check_arguments(
        "shufflenetv2", num_classes, input_shape, batch_norm, init
    )
    scheme = _common.layer_init(init)
    inputs, x = _common.network_input(input_shape, mean, std)
    x = _common.conv2d(x, 24, 3, "stem_conv", use_bias=True, init=scheme)
    x = _common.batch_norm(x, "stem_bn", batch_norm)  # no ReLU: reference quirk
    for stage, (width, repeats) in enumerate(zip(_STAGE_WIDTHS, _STAGE_REPEATS), start=1):
        x = shuffle_unit(x, width, 2, f"stage{stage}_unit0", batch_norm, scheme)
        for index in range(1, repeats + 1):
            x = shuffle_unit(x, width, 1, f"stage{stage}_unit{index}", batch_norm, scheme)
    x = _common.conv2d(x, _HEAD_CHANNELS, 1, "head_conv", use_bias=True, init=scheme)
    x = _common.batch_norm(x, "head_bn", batch_norm)
    x = layers.ReLU(name="head_relu")(x)
    features = layers.GlobalAveragePooling2D(name="features")(x)
    logits = _common.classifier(features, num_classes, init=scheme)
    return keras.Model(inputs, logits, name="shufflenetv2")
