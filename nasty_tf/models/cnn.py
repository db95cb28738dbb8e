"""The paper's plain CNN student (the `Net` of the reference code, 32 base channels).

Three conv(3x3, bias)-BN-maxpool-ReLU stages (32, 64, 128 channels), then
dense(2048 -> 128, bias)-BN-ReLU-dropout and the logits. The dense layer's 2048 inputs are
4 x 4 x 128, i.e. the net is defined for 32x32 images only.

The flatten is channels-last (H, W, C order) where PyTorch flattens C, H, W: the parameter
count is the same, only a weight port would have to permute `fc1`'s rows.

Layer names: `conv{i}`, `bn{i}`, `pool{i}`, `relu{i}` (i = 1..3), `fc_flatten`, `fc1`, `fc_bn`,
`features` (the ReLU after `fc_bn`, before dropout), `fc_dropout`, `logits`.
"""

import keras
from keras import layers

from nasty_tf.errors import InputError
from nasty_tf.models import _common
from nasty_tf.models.normalization import CIFAR10_MEAN, CIFAR10_STD

# Every released reference CNN config (baseline and KD students) sets dropout_rate 0.0; the
# layer stays in the graph so a run can turn it on without changing the layer names.
DEFAULT_DROPOUT_RATE = 0.0


def cnn(
    num_classes,
    input_shape=(32, 32, 3),
    mean=CIFAR10_MEAN,
    std=CIFAR10_STD,
    dropout_rate=DEFAULT_DROPOUT_RATE,
    batch_norm="fused",
    init="keras",
):
    """Builds the plain 3-conv CNN of the paper's CIFAR-10 student experiments.

    Args:
        num_classes: Number of classes (at least 2).
        input_shape: Must be `(32, 32, 3)`: the first dense layer expects 4 x 4 x 128 inputs.
        mean: Per-channel pixel mean in [0, 1] units, stored in the network.
        std: Per-channel pixel standard deviation in [0, 1] units.
        dropout_rate: Dropout before the logits, in [0, 1); the reference configs use 0.
        batch_norm: "fused" (`FusedBatchNormalization`, the default: TensorFlow's fused kernel)
            or "keras" (`keras.layers.BatchNormalization`); saved files hold Keras' layer either way.
        init: "keras" (Keras' default initialisers, the default) or "reference" (the reference
            model's: PyTorch's defaults for every conv and dense layer; `_common.layer_init`).

    Returns:
        A Functional `keras.Model` named `"cnn"` with 128-d `"features"`.

    Raises:
        InputError: If `input_shape` is not 32x32 RGB or an argument is out of range.

    Example:

    ```python
    model = cnn(num_classes=10)  # 357,514 trainable parameters
    ```
    """
    input_shape = _common.check_arguments("cnn", num_classes, input_shape, batch_norm, init)
    scheme = _common.layer_init(init)
    if input_shape != (32, 32, 3):
        raise InputError(
            "The plain CNN is defined for 32x32 RGB images only: its dense layer expects "
            f"4 x 4 x 128 = 2048 inputs. Received: input_shape={input_shape}"
        )
    if (
        isinstance(dropout_rate, bool)
        or not isinstance(dropout_rate, (int, float))
        or not (0.0 <= dropout_rate < 1.0)
    ):
        raise InputError(f"dropout_rate must be in [0, 1). Received: dropout_rate={dropout_rate!r}")
    inputs, x = _common.network_input(input_shape, mean, std)
    for index, filters in enumerate((32, 64, 128), start=1):
        x = _common.conv2d(x, filters, 3, f"conv{index}", use_bias=True, init=scheme)
        x = _common.batch_norm(x, f"bn{index}", batch_norm)
        # Pool before ReLU, as the reference does (the two commute; the order is kept for
        # feature taps).
        x = layers.MaxPooling2D(2, name=f"pool{index}")(x)
        x = layers.ReLU(name=f"relu{index}")(x)
    x = layers.Flatten(name="fc_flatten")(x)
    x = _common.dense(x, 128, "fc1", init=scheme)
    x = _common.batch_norm(x, "fc_bn", batch_norm)
    features = layers.ReLU(name="features")(x)
    x = layers.Dropout(dropout_rate, name="fc_dropout")(features)
    logits = _common.classifier(x, num_classes, init=scheme)
    return keras.Model(inputs, logits, name="cnn")
