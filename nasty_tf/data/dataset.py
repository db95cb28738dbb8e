"""The in-memory `Dataset` every source returns, and the channel statistics it carries.

Images stay uint8 in host memory (a quarter of float32's size, and what a device-side
augmenter and the network's normalisation layer expect to receive); nothing here needs
TensorFlow, so the same arrays feed the TensorFlow and the JAX backends.
"""

from __future__ import annotations

import dataclasses

import numpy as np


@dataclasses.dataclass(frozen=True, eq=False)
class Dataset:
    """A labelled image dataset held in memory.

    `eq=False` because numpy arrays have no single truth value; compare fields by hand.

    Attributes:
        name: the source it came from (`"digits"`, `"image_folder"`, `"cifar10"`, ...).
        x_train: uint8 images, shape `(N, H, W, C)`.
        y_train: int32 labels in `[0, num_classes)`, shape `(N,)`.
        x_test: uint8 images, shape `(M, H, W, C)`.
        y_test: int32 labels, shape `(M,)`.
        num_classes: number of classes.
        class_names: the class names, in label order.
        mean: per-channel mean in [0, 1] units, the value the network's normalisation
            layer subtracts (after dividing pixels by 255).
        std: per-channel standard deviation in [0, 1] units.
        augmentation: the training augmentation recipe for `make_augmenter`:
            `"crop"` (4-pixel padded random crop), `"crop_flip"` (plus horizontal flip) or
            `"rotate_flip"` (rotation up to 20 degrees and horizontal flip: Tiny-ImageNet).

    Example:
        >>> ds = nasty_tf.data.load_dataset("digits")
        >>> ds.input_shape
        (32, 32, 3)
    """

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    num_classes: int
    class_names: tuple[str, ...]
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    augmentation: str

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """The shape of one image, `(H, W, C)`."""
        return tuple(int(d) for d in self.x_train.shape[1:])


def channel_mean_std(images: np.ndarray, chunk: int = 4096) -> tuple[tuple, tuple]:
    """Per-channel mean and (population) standard deviation of uint8 images, in [0, 1] units.

    Accumulates float64 sums over chunks of images, so that 50,000 CIFAR images need a few
    MB of scratch instead of a 1.2 GB float64 copy, and the result does not drift as a float32
    running sum would.

    Args:
        images: uint8 array, shape `(N, H, W, C)`.
        chunk: images per accumulation step.

    Returns:
        `(mean, std)`, each a tuple of `C` Python floats.
    """
    channels = images.shape[-1]
    total = np.zeros(channels, np.float64)
    total_sq = np.zeros(channels, np.float64)
    count = 0
    for start in range(0, len(images), chunk):
        block = images[start : start + chunk].reshape(-1, channels).astype(np.float64) / 255.0
        total += block.sum(axis=0)
        total_sq += np.square(block).sum(axis=0)
        count += block.shape[0]
    mean = total / count
    # Clamp: E[x^2] - E[x]^2 can dip a hair below zero for a constant channel.
    std = np.sqrt(np.maximum(total_sq / count - np.square(mean), 0.0))
    return tuple(float(m) for m in mean), tuple(float(s) for s in std)
