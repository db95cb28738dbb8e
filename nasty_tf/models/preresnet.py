"""Pre-activation CIFAR ResNets ("ResNetC-20/32" in the paper), as in the reference code.

A port of the reference's `PreResNet` (bearpaw/pytorch-classification). Three stages of
16/32/64 channels with `(depth - 2) / 6` BasicBlocks each. A block is BN-ReLU-conv-BN-ReLU-conv
added to its input; the shortcut is identity or, when the shape changes, a bare 1x1 strided
convolution (no BN) applied to the block's *un-activated* input, as in the reference. The
stem is a lone 3x3 convolution; one BN-ReLU closes the last stage.

Deviation: the reference pools with `AvgPool2d(8)`, which only fits 32x32 inputs; we use
global average pooling (identical at 32x32) so 64x64 inputs work too.

Layer names: `stem_conv`, `stage{s}_block{b}_{bn,conv}{i}`, `stage{s}_block{b}_shortcut_conv`,
`final_bn`.
"""

import keras
from keras import layers

from nasty_tf.errors import InputError
from nasty_tf.models import _common
from nasty_tf.models.normalization import CIFAR10_MEAN, CIFAR10_STD

_STAGE_WIDTHS = (16, 32, 64)
_STAGE_STRIDES = (1, 2, 2)


def preact_block(x, planes, strides, prefix, batch_norm="fused", init="keras"):
    """Pre-activation BasicBlock: BN-ReLU-conv3x3-BN-ReLU-conv3x3 plus shortcut.

    `init` is the convolutions' scheme (`_common.LAYER_INITS`).
    """
    out = _common.batch_norm(x, f"{prefix}_bn1", batch_norm)
    out = layers.ReLU(name=f"{prefix}_relu1")(out)
    out = _common.conv2d(out, planes, 3, f"{prefix}_conv1", strides=strides, init=init)
    out = _common.batch_norm(out, f"{prefix}_bn2", batch_norm)
    out = layers.ReLU(name=f"{prefix}_relu2")(out)
    out = _common.conv2d(out, planes, 3, f"{prefix}_conv2", init=init)
    shortcut = x
    if strides != 1 or x.shape[-1] != planes:
        shortcut = _common.conv2d(
            x, planes, 1, f"{prefix}_shortcut_conv", strides=strides, init=init
        )
    return layers.Add(name=f"{prefix}_add")([out, shortcut])


def preresnet(
    depth,
    num_classes,
    input_shape=(32, 32, 3),
    mean=CIFAR10_MEAN,
    std=CIFAR10_STD,
    batch_norm="fused",
    init="keras",
):
    """Builds a pre-activation CIFAR ResNet of the given depth (6n + 2).

    Args:
        depth: Total depth `6n + 2` below 44 (20, 32, 38, ...); the reference switches to
            Bottleneck blocks from depth 44 on, which this port does not build.
        num_classes: Number of classes (at least 2).
        input_shape: `(height, width, channels)`; any size, e.g. 32x32 or 64x64.
        mean: Per-channel pixel mean in [0, 1] units, stored in the network.
        std: Per-channel pixel standard deviation in [0, 1] units.
        batch_norm: "fused" (`FusedBatchNormalization`, the default: TensorFlow's fused kernel)
            or "keras" (`keras.layers.BatchNormalization`); saved files hold Keras' layer either way.
        init: "keras" (Keras' default initialisers, the default) or "reference" (the reference
            model's: its `__init__` draws every convolution from
            N(0, sqrt(2 / (k * k * out_channels))); the classifier keeps PyTorch's default).

    Returns:
        A Functional `keras.Model` named `f"preresnet{depth}"` with 64-d `"features"`.
    """
    arch = f"preresnet{depth}"
    if (
        isinstance(depth, bool)
        or not isinstance(depth, int)
        or not 8 <= depth < 44
        or (depth - 2) % 6
    ):
        raise InputError(
            f"depth must be 6n + 2 between 8 and 38 (BasicBlock depths, e.g. 20 or 32). "
            f"Received: depth={depth!r}"
        )
    input_shape = _common.check_arguments(arch, num_classes, input_shape, batch_norm, init)
    # The reference's __init__: `m.weight.data.normal_(0, math.sqrt(2. / n))` for every Conv2d,
    # n = k * k * out_channels (the fan-out); its nn.Linear keeps PyTorch's default.
    conv_scheme = _common.layer_init(init, "kaiming_normal_fan_out")
    blocks_per_stage = (depth - 2) // 6
    inputs, x = _common.network_input(input_shape, mean, std)
    x = _common.conv2d(x, _STAGE_WIDTHS[0], 3, "stem_conv", init=conv_scheme)
    for stage, (planes, stage_strides) in enumerate(zip(_STAGE_WIDTHS, _STAGE_STRIDES), start=1):
        for index in range(blocks_per_stage):
            strides = stage_strides if index == 0 else 1
            x = preact_block(
                x, planes, strides, f"stage{stage}_block{index}", batch_norm, conv_scheme
            )
    x = _common.batch_norm(x, "final_bn", batch_norm)
    x = layers.ReLU(name="final_relu")(x)
    features = layers.GlobalAveragePooling2D(name="features")(x)
    logits = _common.classifier(features, num_classes, init=_common.layer_init(init))
    return keras.Model(inputs, logits, name=arch)


def preresnet20(
    num_classes,
    input_shape=(32, 32, 3),
    mean=CIFAR10_MEAN,
    std=CIFAR10_STD,
    batch_norm="fused",
    init="keras",
):
    """ResNetC-20: pre-activation ResNet with 3 blocks per stage (a paper student).

    Arguments as `preresnet`. Example: `preresnet20(num_classes=100)`.
    """
    return preresnet(20, num_classes, input_shape, mean, std, batch_norm, init)


def preresnet32(
    num_classes,
    input_shape=(32, 32, 3),
    mean=CIFAR10_MEAN,
    std=CIFAR10_STD,
    batch_norm="fused",
    init="keras",
):
    """ResNetC-32: pre-activation ResNet with 5 blocks per stage (a paper student).

    Arguments as `preresnet`. Example: `preresnet32(num_classes=10, input_shape=(64, 64, 3))`.
    """
    return preresnet(32, num_classes, input_shape, mean, std, batch_norm, init)
