"""Training augmentation as backend-neutral Keras layers, applied on the device.

The nasty teacher's adversary and a KD teacher must see exactly the augmented batch that the
trained network sees (DESIGN.md section 3), so augmentation runs inside the training step, once,
before both networks. These layers therefore use `keras.ops` and `keras.random` only: they
trace into a jitted JAX step and into a TensorFlow graph (tf.distribute included) alike, and
they need no `tf.data`.

Recipes: the reference's CIFAR one ("crop_flip"): pad 4 zero pixels in pixel space (before
normalisation, so the border is black), take a random 32x32 crop, and flip horizontally;
"crop" without the flip (digits); and the reference's Tiny-ImageNet one ("rotate_flip"):
rotate by up to 20 degrees either way, then flip horizontally, no crop.
"""

from __future__ import annotations

import keras
from keras import ops

from nasty_tf.errors import InputError, check_count

RECIPES = ("crop", "crop_flip", "rotate_flip")
# torchvision's RandomRotation(20): an angle uniform in [-20, 20] degrees. Keras takes the
# bound as a fraction of a full turn.
ROTATION_DEGREES = 20


@keras.saving.register_keras_serializable(package="nasty_tf")
class RandomPaddedCrop(keras.layers.Layer):
    """Zero-pads images by `padding` pixels and crops back to the input size at a random offset.

    Each image of the batch gets its own offset, drawn uniformly from the
    `(2 * padding + 1) ** 2` positions, as torchvision's `RandomCrop(size, padding)` does.
    The crop is one gather with per-image flat indices, which compiles to a single XLA
    gather on every backend and keeps static shapes (no per-image slicing loop).

    Args:
        padding: pixels of zero padding on each side; the largest shift of the crop.
        seed: optional integer seed of the layer's `keras.random.SeedGenerator`.
        **kwargs: standard `keras.layers.Layer` arguments (`name`, `dtype`, ...).

    Call arguments:
        inputs: images, shape `(batch, height, width, channels)`, pixel values in [0, 255].
        training: augment when true (the default, as for Keras's own random layers); the
            identity when false.

    Example:
        >>> crop = RandomPaddedCrop(4, seed=0)
        >>> crop(keras.ops.ones((8, 32, 32, 3))).shape
        (8, 32, 32, 3)
    """

    def __init__(self, padding: int = 4, seed=None, **kwargs):
        super().__init__(**kwargs)
        check_count("padding", padding, minimum=0)
        self.padding = padding
        self.seed = seed
        # A layer attribute, so Keras tracks its state as a non-trainable variable and the
        # jitted JAX step threads it through (fresh offsets every step).
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.supports_masking = True

    def call(self, inputs, training=True):
        if not training or self.padding == 0:
            return inputs
        p = self.padding
        shape = ops.shape(inputs)
        # Batch size may be dynamic in a TF graph; height, width, channels are static.
        batch, height, width, channels = shape[0], shape[1], shape[2], shape[3]
        padded = ops.pad(inputs, [[0, 0], [p, p], [p, p], [0, 0]])
        padded_height, padded_width = height + 2 * p, width + 2 * p
        offsets = keras.random.randint(
            (batch, 2), minval=0, maxval=2 * p + 1, seed=self.seed_generator, dtype="int32"
        )
        rows = offsets[:, 0:1] + ops.arange(height, dtype="int32")[None, :]  # (B, H)
        cols = offsets[:, 1:2] + ops.arange(width, dtype="int32")[None, :]  # (B, W)
        image_start = ops.arange(batch, dtype="int32") * (padded_height * padded_width)
        flat_index = (
            image_start[:, None, None] + rows[:, :, None] * padded_width + cols[:, None, :]
        )  # (B, H, W): index of each output pixel in the flattened padded batch
        pixels = ops.reshape(padded, (-1, channels))
        return ops.take(pixels, flat_index, axis=0)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update({"padding": self.padding, "seed": self.seed})
        return config


def make_augmenter(recipe: str, seed=None) -> keras.Sequential:
    """Builds the training augmenter for a dataset's recipe.

    Args:
        recipe: `"crop"` (padded random crop, for data that must not be mirrored, such as
            digits), `"crop_flip"` (padded random crop, then random horizontal flip: CIFAR) or
            `"rotate_flip"` (random rotation up to 20 degrees, then random horizontal flip:
            Tiny-ImageNet).
        seed: optional integer seed; the flip uses `seed + 1` so the two draws differ.

    Returns:
        A `keras.Sequential` named `"augmenter"` taking float32 pixel batches in [0, 255];
        the identity when called with `training=False`.

    Raises:
        InputError: unknown recipe.

    Example:
        >>> augmenter = make_augmenter("crop_flip", seed=0)
        >>> augmented = augmenter(images, training=True)
    """
    if recipe not in RECIPES:
        raise InputError(f"unknown augmentation recipe {recipe!r}. Available: {', '.join(RECIPES)}")
    if recipe == "rotate_flip":
        layers = [_rotation(seed)]
    else:
        layers = [RandomPaddedCrop(4, seed=seed, name="random_padded_crop")]
    if recipe in ("crop_flip", "rotate_flip"):
        flip_seed = None if seed is None else seed + 1
        layers.append(keras.layers.RandomFlip("horizontal", seed=flip_seed, name="random_flip"))
    return keras.Sequential(layers, name="augmenter")


def _rotation(seed):
    # torchvision's RandomRotation defaults: nearest-neighbour sampling and zero fill. Keras
    # defaults to bilinear and reflect, which would blur and mirror the corners. The fill is
    # zero in pixel space (before the network's normalisation): black corners, as in torch.
    return keras.layers.RandomRotation(
        ROTATION_DEGREES / 360,
        fill_mode="constant",
        fill_value=0.0,
        interpolation="nearest",
        seed=seed,
        name="random_rotation",
    )
