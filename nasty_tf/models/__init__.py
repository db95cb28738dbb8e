"""The model zoo: every architecture of the paper, behind one small registry.

Every network is a Functional `keras.Model` named after its architecture that takes
`images` as pixel values in [0, 255] (uint8 accepted), starts with a float32
`keras.layers.Normalization` named `pixel_normalization` holding the dataset statistics,
exposes its pre-logit feature vector as the layer `"features"` and ends in the float32 Dense
`"logits"`. Trainable-parameter counts equal those of the reference PyTorch models (DESIGN.md
section 2).

Networks are built from Keras' own layers and ops, except that their BatchNorm layers are
`FusedBatchNormalization` (TensorFlow's fused kernel, same variables) unless
`batch_norm="keras"` is asked for. `as_plain_keras` swaps those for
`keras.layers.BatchNormalization`, and every `.keras` file the project writes goes through it,
so a released network loads with `keras.saving.load_model` alone, without nasty_tf. Importing
this package also registers the layers of files written before that (`legacy_layers`).

Example:

```python
from nasty_tf import models

model = models.get_model("resnet18", num_classes=10)
features = keras.Model(model.input, model.get_layer("features").output)
```
"""

import keras

from nasty_tf.errors import InputError

# Builders are reached through their modules so `nasty_tf.models.cnn` stays the module.
from nasty_tf.models import cnn, mobilenetv2, preresnet, resnet, resnext, shufflenetv2
from nasty_tf.models._common import INITS, check_init
from nasty_tf.models.channel_shuffle import channel_shuffle, channel_split
from nasty_tf.models.fused_batch_norm import BATCH_NORM_LAYERS, FusedBatchNormalization
from nasty_tf.models.legacy_layers import ChannelShuffle, ChannelSplit, PixelNormalization
from nasty_tf.models.normalization import (
    CIFAR10_MEAN,
    CIFAR10_STD,
    pixel_normalization,
    pixel_statistics,
)
from nasty_tf.models.plain_keras import as_plain_keras

_REGISTRY = {
    "cnn": cnn.cnn,
    "mobilenetv2": mobilenetv2.mobilenetv2,
    "preresnet20": preresnet.preresnet20,
    "preresnet32": preresnet.preresnet32,
    "resnet18": resnet.resnet18,
    "resnet34": resnet.resnet34,
    "resnet50": resnet.resnet50,
    "resnext29": resnext.resnext29,
    "shufflenetv2": shufflenetv2.shufflenetv2,
}


def available_models():
    """Returns the registered architecture names, sorted."""
    return sorted(_REGISTRY)


def get_model(
    name,
    num_classes,
    input_shape=(32, 32, 3),
    mean=CIFAR10_MEAN,
    std=CIFAR10_STD,
    batch_norm="fused",
    init="keras",
):
    """Builds a fresh, randomly initialised network of a registered architecture.

    Args:
        name: Architecture name, one of `available_models()`.
        num_classes: Number of classes (at least 2).
        input_shape: `(height, width, channels)` of one image; 32x32 and 64x64 work for every
            architecture but `cnn`, which is 32x32 only.
        mean: Per-channel pixel mean in [0, 1] units, stored in the network.
        std: Per-channel pixel standard deviation in [0, 1] units.
        batch_norm: The BatchNormalization layer to build with: "fused"
            (`FusedBatchNormalization`, TensorFlow's fused kernel; Keras' own layer on other
            backends) or "keras" (`keras.layers.BatchNormalization`). Same variables and
            results either way; saved files hold Keras' layer either way (`as_plain_keras`).
        init: How weights start (`INITS`): "keras" (Keras' defaults: glorot-uniform kernels,
            zero biases) or "reference" (the reference PyTorch model's: PyTorch's defaults,
            kaiming-uniform(a=sqrt(5)) kernels and U(+-1/sqrt(fan_in)) biases, except where
            the reference model re-initialises: normal(0, sqrt(2/fan_out)) convolutions in
            PreResNet and ResNeXt, kaiming-normal classifier with zero bias in ResNeXt). Either
            way the initialisers are built-in Keras ones, so saved files load with Keras alone.

    Returns:
        A Functional `keras.Model` named `name`.

    Raises:
        InputError: For an unknown name, `num_classes < 2`, a malformed `input_shape` or
            statistics, or an unknown `batch_norm` or `init`.

    Example:

    ```python
    model = get_model("preresnet20", num_classes=100, input_shape=(64, 64, 3))
    faithful = get_model("resnet18", num_classes=10, init="reference")
    ```
    """
    builder = _REGISTRY.get(name) if isinstance(name, str) else None
    if builder is None:
        raise InputError(
            f"Unknown architecture {name!r}. Available: {', '.join(available_models())}"
        )
    return builder(
        num_classes, input_shape=input_shape, mean=mean, std=std, batch_norm=batch_norm, init=init
    )


def new_network(config, dataset, *, mean, std):
    """A fresh `get_model` network for a run: `config.arch`, initialisers `config.init`,
    seeded by `config.seed` (so a run rebuilds the same weights), shaped for `dataset`
    (`num_classes`, `input_shape`), normalising by `mean` and `std`."""
    keras.utils.set_random_seed(config.seed)
    return get_model(
        config.arch,
        dataset.num_classes,
        dataset.input_shape,
        mean=mean,
        std=std,
        init=config.init,
    )


__all__ = [
    "BATCH_NORM_LAYERS",
    "CIFAR10_MEAN",
    "CIFAR10_STD",
    "ChannelShuffle",
    "ChannelSplit",
    "FusedBatchNormalization",
    "INITS",
    "InputError",
    "PixelNormalization",
    "as_plain_keras",
    "available_models",
    "check_init",
    "channel_shuffle",
    "channel_split",
    "get_model",
    "new_network",
    "pixel_normalization",
    "pixel_statistics",
]
