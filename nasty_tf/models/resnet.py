"""CIFAR-style ResNet-18/34/50, ported from kuangliu/pytorch-cifar (the reference teachers).

Unlike the ImageNet ResNet, the stem is a single 3x3 stride-1 convolution without max-pool,
so a 32x32 image keeps its resolution into the first stage. Like the Nasty Teacher code (which
replaced kuangliu's `avg_pool2d(4)`), it ends in global average pooling, so 32x32 CIFAR and
64x64 Tiny-ImageNet inputs both work.

Layer names: `stem_conv`, `stem_bn`, then `stage{s}_block{b}_{conv,bn}{i}` with
`stage{s}_block{b}_shortcut_{conv,bn}` for projection shortcuts (stages 1-4, blocks from 0).
"""

import keras
from keras import layers

from nasty_tf.models import _common
from nasty_tf.models.normalization import CIFAR10_MEAN, CIFAR10_STD

# Blocks per stage.
_DEPTHS = {"resnet18": (2, 2, 2, 2), "resnet34": (3, 4, 6, 3), "resnet50": (3, 4, 6, 3)}
_STAGE_WIDTHS = (64, 128, 256, 512)
_STAGE_STRIDES = (1, 2, 2, 2)


def _shortcut(x, out_channels, strides, prefix, batch_norm, init):
    # kuangliu projects with a 1x1 conv + BN only when the shape changes; identity otherwise.
    if strides == 1 and x.shape[-1] == out_channels:
        return x
    shortcut = _common.conv2d(
        x, out_channels, 1, f"{prefix}_shortcut_conv", strides=strides, init=init
    )
    return _common.batch_norm(shortcut, f"{prefix}_shortcut_bn", batch_norm)


def basic_block(x, planes, strides, prefix, batch_norm="fused", init="keras"):
    """Two 3x3 conv-BN layers plus shortcut, ReLU after the sum (expansion 1).

    `init` is the convolutions' scheme (`_common.LAYER_INITS`).
    """
    out = _common.conv2d(x, planes, 3, f"{prefix}_conv1", strides=strides, init=init)
    out = _common.batch_norm(out, f"{prefix}_bn1", batch_norm)
    out = layers.ReLU(name=f"{prefix}_relu1")(out)
    out = _common.conv2d(out, planes, 3, f"{prefix}_conv2", init=init)
    out = _common.batch_norm(out, f"{prefix}_bn2", batch_norm)
    out = layers.Add(name=f"{prefix}_add")(
        [out, _shortcut(x, planes, strides, prefix, batch_norm, init)]
    )
    return layers.ReLU(name=f"{prefix}_out")(out)


def bottleneck_block(x, planes, strides, prefix, batch_norm="fused", init="keras"):
    """1x1 reduce, 3x3 (strided), 1x1 expand to `4 * planes`, plus shortcut.

    `init` is the convolutions' scheme (`_common.LAYER_INITS`).
    """
    out = _common.conv2d(x, planes, 1, f"{prefix}_conv1", init=init)
    out = _common.batch_norm(out, f"{prefix}_bn1", batch_norm)
    out = layers.ReLU(name=f"{prefix}_relu1")(out)
    out = _common.conv2d(out, planes, 3, f"{prefix}_conv2", strides=strides, init=init)
    out = _common.batch_norm(out, f"{prefix}_bn2", batch_norm)
    out = layers.ReLU(name=f"{prefix}_relu2")(out)
    out = _common.conv2d(out, 4 * planes, 1, f"{prefix}_conv3", init=init)
    out = _common.batch_norm(out, f"{prefix}_bn3", batch_norm)
    out = layers.Add(name=f"{prefix}_add")(
        [out, _shortcut(x, 4 * planes, strides, prefix, batch_norm, init)]
    )
    return layers.ReLU(name=f"{prefix}_out")(out)


def _resnet(arch, block, num_classes, input_shape, mean, std, batch_norm, init):
    input_shape = _common.check_arguments(arch, num_classes, input_shape, batch_norm, init)
    # kuangliu's ResNets keep PyTorch's defaults (no re-initialisation in __init__).
    scheme = _common.layer_init(init)
    inputs, x = _common.network_input(input_shape, mean, std)
    x = _common.conv2d(x, 64, 3, "stem_conv", init=scheme)
    x = _common.batch_norm(x, "stem_bn", batch_norm)
    x = layers.ReLU(name="stem_relu")(x)
    for stage, (depth, planes, stage_strides) in enumerate(
        zip(_DEPTHS[arch], _STAGE_WIDTHS, _STAGE_STRIDES), start=1
    ):
        for index in range(depth):
            strides = stage_strides if index == 0 else 1
            x = block(x, planes, strides, f"stage{stage}_block{index}", batch_norm, scheme)
    features = layers.GlobalAveragePooling2D(name="features")(x)
    logits = _common.classifier(features, num_classes, init=scheme)
    return keras.Model(inputs, logits, name=arch)


def resnet18(
    num_classes,
    input_shape=(32, 32, 3),
    mean=CIFAR10_MEAN,
    std=CIFAR10_STD,
    batch_norm="fused",
    init="keras",
):
    """ResNet-18 for CIFAR (BasicBlock, 2-2-2-2): the paper's main teacher.

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
        A Functional `keras.Model` named `"resnet18"` mapping [0, 255] pixels to float32
        logits; its `"features"` layer is the 512-d pooled feature vector.

    Example:

    ```python
    model = resnet18(num_classes=10)
    logits = model(np.zeros((2, 32, 32, 3), "uint8"))  # shape (2, 10)
    ```
    """
    return _resnet("resnet18", basic_block, num_classes, input_shape, mean, std, batch_norm, init)


def resnet34(
    num_classes,
    input_shape=(32, 32, 3),
    mean=CIFAR10_MEAN,
    std=CIFAR10_STD,
    batch_norm="fused",
    init="keras",
):
    """ResNet-34 for CIFAR (BasicBlock, 3-4-6-3); the data-free (DAFL) teacher.

    Arguments and return value as `resnet18` (model name `"resnet34"`, 512-d features).
    """
    return _resnet("resnet34", basic_block, num_classes, input_shape, mean, std, batch_norm, init)


def resnet50(
    num_classes,
    input_shape=(32, 32, 3),
    mean=CIFAR10_MEAN,
    std=CIFAR10_STD,
    batch_norm="fused",
    init="keras",
):
    """ResNet-50 for CIFAR (Bottleneck, 3-4-6-3).

    Arguments and return value as `resnet18` (model name `"resnet50"`, 2048-d features).
    """
    return _resnet(
        "resnet50", bottleneck_block, num_classes, input_shape, mean, std, batch_norm, init
    )
