"""The model zoo: every architecture of the paper, behind one small registry.

Every network is a Functional `keras.Model` named after its architecture that takes
`images` as pixel values in [0, 255] (uint8 accepted), starts with a `pixel_normalization`
layer holding the dataset statistics, exposes its pre-logit feature vector as the layer
`"features"` and ends in the float32 Dense `"logits"`. Trainable-parameter counts equal those
of the reference PyTorch models (DESIGN.md section 2).

Example:

```python
from nasty_tf import models

model = models.get_model("resnet18", num_classes=10)
features = keras.Model(model.input, model.get_layer("features").output)
```
"""

from nasty_tf.errors import InputError
# Builders are reached through their modules so `nasty_tf.models.cnn` stays the module.
from nasty_tf.models import cnn, mobilenetv2, preresnet, resnet, resnext, shufflenetv2
from nasty_tf.models.channel_shuffle import ChannelShuffle, ChannelSplit
from nasty_tf.models.normalization import CIFAR10_MEAN, CIFAR10_STD, PixelNormalization

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


def get_model(name, num_classes, input_shape=(32, 32, 3), mean=CIFAR10_MEAN, std=CIFAR10_STD):
    """Builds a fresh, randomly initialised network of a registered architecture.

    Args:
        name: Architecture name, one of `available_models()`.
        num_classes: Number of classes (at least 2).
        input_shape: `(height, width, channels)` of one image; 32x32 and 64x64 work for every
            architecture but `cnn`, which is 32x32 only.
        mean: Per-channel pixel mean in [0, 1] units, stored in the network.
        std: Per-channel pixel standard deviation in [0, 1] units.

    Returns:
        A Functional `keras.Model` named `name`.

    Raises:
        InputError: For an unknown name, `num_classes < 2` or a malformed `input_shape`.

    Example:

    ```python
    model = get_model("preresnet20", num_classes=100, input_shape=(64, 64, 3))
    ```
    """
    builder = _REGISTRY.get(name) if isinstance(name, str) else None
    if builder is None:
        raise InputError(
            f"Unknown architecture {name!r}. Available: {', '.join(available_models())}"
        )
    return builder(num_classes, input_shape=input_shape, mean=mean, std=std)


__all__ = [
    "CIFAR10_MEAN",
    "CIFAR10_STD",
    "ChannelShuffle",
    "ChannelSplit",
    "InputError",
    "PixelNormalization",
    "available_models",
    "get_model",
]
