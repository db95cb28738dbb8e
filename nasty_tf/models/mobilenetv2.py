"""MobileNetV2 for CIFAR, as in the reference code (weiaicunzai/pytorch-cifar100 lineage).

This is the variant whose parameter counts DESIGN.md lists (2,254,090 for 10 classes), not
kuangliu/pytorch-cifar's (3x3 stem, bias-free convolutions, ReLU): every convolution has a
bias, activations are ReLU6, and the stem is a 1x1 convolution with padding 1, so a 32x32
image becomes 34x34 with a zero border (a reference quirk kept on purpose).

Stages (expansion t, channels, blocks, stride): (1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2),
(6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 1), (6, 320, 1, 1); then 1x1 conv to 1280, BN,
ReLU6 and global pooling. The reference's classifier is a 1x1 conv on the pooled map, which is
exactly a Dense layer here.

Layer names: `stem_conv`, `stem_bn`, `stage{s}_block{b}_{expand,depthwise,project}_{conv,bn}`,
`head_conv`, `head_bn`.
"""

import keras
from keras import layers

from nasty_tf.models import _common
from nasty_tf.models.normalization import CIFAR10_MEAN, CIFAR10_STD

# (expansion, output channels, blocks, stride of the first block)
_STAGES = (
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 1),
    (6, 320, 1, 1),
)


def _relu6(x, name):
    return layers.ReLU(max_value=6.0, name=name)(x)


def inverted_residual(
    x, out_channels, strides, expansion, prefix, batch_norm="fused", init="keras"
):
    """Linear bottleneck: 1x1 expand, 3x3 depthwise, 1x1 linear projection (all with bias).

    `init` is the convolutions' scheme (`_common.LAYER_INITS`).
    """
    in_channels = x.shape[-1]
    hidden = in_channels * expansion
    out = _common.conv2d(x, hidden, 1, f"{prefix}_expand_conv", use_bias=True, init=init)
    out = _common.batch_norm(out, f"{prefix}_expand_bn", batch_norm)
    out = _relu6(out, f"{prefix}_expand_relu")
    out = _common.depthwise_conv2d(
        out, 3, f"{prefix}_depthwise_conv", strides=strides, use_bias=True, init=init
    )
    out = _common.batch_norm(out, f"{prefix}_depthwise_bn", batch_norm)
    out = _relu6(out, f"{prefix}_depthwise_relu")
    out = _common.conv2d(out, out_channels, 1, f"{prefix}_project_conv", use_bias=True, init=init)
    out = _common.batch_norm(out, f"{prefix}_project_bn", batch_norm)
    if strides == 1 and in_channels == out_channels:
        out = layers.Add(name=f"{prefix}_add")([out, x])
    return out


def mobilenetv2(
    num_classes,
    input_shape=(32, 32, 3),
    mean=CIFAR10_MEAN,
    std=CIFAR10_STD,
    batch_norm="fused",
    init="keras",
):
    """MobileNetV2 (width 1.0) for CIFAR-sized inputs: a paper student.

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
        A Functional `keras.Model` named `"mobilenetv2"` with 1280-d `"features"`.

    Example:

    ```python
    model = mobilenetv2(num_classes=10)  # 2,254,090 trainable parameters
    ```
    """
    input_shape = _common.check_arguments("mobilenetv2", num_classes, input_shape, batch_norm, init)
    scheme = _common.layer_init(init)
    inputs, x = _common.network_input(input_shape, mean, std)
    # Reference quirk: nn.Conv2d(3, 32, 1, padding=1) grows the image by a zero border.
    x = _common.conv2d(x, 32, 1, "stem_conv", padding=1, use_bias=True, init=scheme)
    x = _common.batch_norm(x, "stem_bn", batch_norm)
    x = _relu6(x, "stem_relu")
    for stage, (expansion, channels, blocks, stage_strides) in enumerate(_STAGES, start=1):
        for index in range(blocks):
            strides = stage_strides if index == 0 else 1
            x = inverted_residual(
                x, channels, strides, expansion, f"stage{stage}_block{index}", batch_norm, scheme
            )
    x = _common.conv2d(x, 1280, 1, "head_conv", use_bias=True, init=scheme)
    x = _common.batch_norm(x, "head_bn", batch_norm)
    x = _relu6(x, "head_relu")
    features = layers.GlobalAveragePooling2D(name="features")(x)
    logits = _common.classifier(features, num_classes, init=scheme)
    return keras.Model(inputs, logits, name="mobilenetv2")
