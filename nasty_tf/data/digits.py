"""scikit-learn's bundled handwritten digits, served as 32x32 RGB so every model runs on them.

The UCI digits ship inside scikit-learn's wheel (1,797 8x8 grey images, values 0..16), so
they are the one real dataset available with no download and no TensorFlow: the demo
protocol and the fast tests run on them. Upsampling to 32x32 lets the CIFAR-shaped zoo
(the paper's plain CNN has a dense layer sized for 32x32 inputs) run unchanged.
"""

from __future__ import annotations

import functools

import numpy as np

from nasty_tf.data.dataset import Dataset, channel_mean_std

_SIZE = 32
_TEST_SIZE = 0.25
_SPLIT_SEED = 0


def _bilinear_matrix(src: int, dst: int) -> np.ndarray:
    """A `(dst, src)` matrix that linearly resamples a length-`src` signal to `dst` samples.

    Half-pixel centres with edge clamping, the convention of Pillow's bilinear resize and of
    `tf.image.resize`, so the 8x8 strokes grow evenly without shifting by half a pixel.
    """
    coords = np.clip((np.arange(dst) + 0.5) * src / dst - 0.5, 0, src - 1)
    low = np.floor(coords).astype(int)
    high = np.minimum(low + 1, src - 1)
    frac = coords - low
    weights = np.zeros((dst, src))
    weights[np.arange(dst), low] += 1.0 - frac
    weights[np.arange(dst), high] += frac
    return weights


def upsample_digits(images: np.ndarray, size: int = _SIZE) -> np.ndarray:
    """Turns `(N, 8, 8)` digit images with values 0..16 into `(N, size, size, 3)` uint8.

    Args:
        images: float array of 8x8 grey digits, values in [0, 16].
        size: output height and width.

    Returns:
        uint8 RGB images (the grey value replicated to three channels), values 0..255.
    """
    rows = _bilinear_matrix(images.shape[1], size)
    cols = _bilinear_matrix(images.shape[2], size)
    # Bilinear resampling is separable: resample rows, then columns (two batched matrix
    # products; an unoptimised einsum of the same sum took six times as long).
    grey = rows @ (images.astype(np.float64) * (255.0 / 16.0)) @ cols.T
    grey = np.clip(np.rint(grey), 0, 255).astype(np.uint8)
    return np.repeat(grey[..., None], 3, axis=-1)


def load_digits() -> Dataset:
    """Loads the digits as a `Dataset` with a fixed stratified 75/25 train/test split.

    The split is deterministic (`random_state=0`), so every run and every test sees the same
    1,347 training and 450 test images.

    Returns:
        A `Dataset` named `"digits"`: 32x32x3 uint8 images, 10 classes named `"0"`..`"9"`,
        train-split mean/std, augmentation `"crop"` (no flip: digits are not
        mirror-symmetric).

    Example:
        >>> ds = load_digits()
        >>> ds.x_train.shape
        (1347, 32, 32, 3)
    """
    x_train, y_train, x_test, y_test, mean, std = _decoded_split()
    return Dataset(
        name="digits",
        # Copies: the decoded split is kept for this process's later calls, and a caller may
        # change its own arrays in place.
        x_train=x_train.copy(),
        y_train=y_train.copy(),
        x_test=x_test.copy(),
        y_test=y_test.copy(),
        num_classes=10,
        class_names=tuple(str(i) for i in range(10)),
        mean=mean,
        std=std,
        augmentation="crop",
    )


@functools.cache
def _decoded_split():
    """The upsampled split and its training statistics, computed once per process (a protocol
    loads the digits for every stage; the upsampling and statistics cost about 0.2 s a call)."""
    # Imported here so that importing nasty_tf.data stays cheap.
    from sklearn.datasets import load_digits as sk_load_digits
    from sklearn.model_selection import train_test_split

    bunch = sk_load_digits()
    images = upsample_digits(bunch.images)
    labels = bunch.target.astype(np.int32)
    train_idx, test_idx = train_test_split(
        np.arange(len(labels)),
        test_size=_TEST_SIZE,
        stratify=labels,
        random_state=_SPLIT_SEED,
    )
    # Sorted so the arrays keep the original file order within each split.
    train_idx, test_idx = np.sort(train_idx), np.sort(test_idx)
    x_train = images[train_idx]
    mean, std = channel_mean_std(x_train)
    return x_train, labels[train_idx], images[test_idx], labels[test_idx], mean, std
