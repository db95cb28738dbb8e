"""Datasets in memory and their on-device augmentation.

`load_dataset(name, ...)` returns a `Dataset` of uint8 numpy arrays from one of five sources:

- `digits`: scikit-learn's bundled 8x8 digits, served as 32x32 RGB (no download, no TF);
- `image_folder`: `train/<class>/<image>` and `test/<class>/<image>` in a directory or an
  archive, e.g. the CIFAR-10 JPEG copy in `/work/shared/data` (no TF);
- `cifar10`, `cifar100`: a prepared TensorFlow Datasets directory (needs TF; never downloads);
- `tiny_imagenet`: the official `tiny-imagenet-200.zip` or its extracted folder (no TF).

With `cache_dir` (`--data_cache_dir`), the two file sources decode once into memory-mapped
`.npy` files and later loads map them (`decoded_cache`): no second decode, and datasets larger
than memory, streamed batch by batch.

Numpy arrays serve the TensorFlow and the JAX backends alike (DESIGN.md section 4);
`make_augmenter(dataset.augmentation)` builds the matching Keras augmentation layers.
"""

from __future__ import annotations

import dataclasses
import os

from nasty_tf.data.augment import RandomPaddedCrop, make_augmenter
from nasty_tf.data.dataset import Dataset
from nasty_tf.data.decoded_cache import cached_load
from nasty_tf.data.digits import load_digits
from nasty_tf.data.image_folder import load_image_folder
from nasty_tf.data.subset import check_fraction, stratified_fraction
from nasty_tf.data.tfds_source import load_tfds
from nasty_tf.data.tiny_imagenet import load_tiny_imagenet
from nasty_tf.data.validation import carve_validation
from nasty_tf.errors import InputError

DATASETS = ("digits", "image_folder", "cifar10", "cifar100", "tiny_imagenet")
# Sources that read a user's files and so cannot do without --data_dir.
_NEEDS_DATA_DIR = ("image_folder", "tiny_imagenet")

__all__ = [
    "DATASETS",
    "Dataset",
    "RandomPaddedCrop",
    "carve_validation",
    "load_dataset",
    "make_augmenter",
    "stratified_fraction",
]


def load_dataset(
    name: str, data_dir=None, train_fraction: float = 1.0, seed: int = 0, cache_dir=None
) -> Dataset:
    """Loads a dataset by name, optionally keeping a stratified fraction of its training split.

    Args:
        name: one of `DATASETS`.
        data_dir: for `image_folder` (required) a directory or archive; for `tiny_imagenet`
            (required) `tiny-imagenet-200.zip` or its extracted folder; for `cifar10` and
            `cifar100` the TFDS data directory (`None`: TFDS's default); unused by `digits`.
        train_fraction: share of the training split to keep, in (0, 1]; the test split is
            always whole. The dataset's mean/std stay those of the full training split, so
            every fraction feeds the network the same normalisation.
        seed: seed of the training-subset choice.
        cache_dir: for `image_folder` and `tiny_imagenet`, a directory where the decoded
            images are kept as memory-mapped files (`decoded_cache`); None decodes into memory.
            A training fraction below 1 is then copied into memory.

    Returns:
        The `Dataset`.

    Raises:
        InputError: unknown name, missing or bad `data_dir`, bad `train_fraction`, a
            `cache_dir` for a source that has no files to decode, or any problem the source
            reports.

    Example:
        >>> ds = load_dataset("digits", train_fraction=0.5)
        >>> ds.x_train.shape, ds.num_classes
        ((674, 32, 32, 3), 10)
    """
    if name not in DATASETS:
        raise InputError(f"dataset: unknown dataset {name!r}. Available: {', '.join(DATASETS)}")
    # Checked before loading: a typo should not cost a 60,000-image decode first.
    check_fraction(train_fraction)
    if name in _NEEDS_DATA_DIR and (data_dir is None or not os.fspath(data_dir)):
        raise InputError(f"data_dir is required for dataset={name}")
    if cache_dir and name not in _NEEDS_DATA_DIR:
        raise InputError(
            f"cache_dir applies to the file sources ({', '.join(_NEEDS_DATA_DIR)}), "
            f"not to dataset={name}"
        )
    if name == "digits":
        dataset = load_digits()
    elif name in _NEEDS_DATA_DIR:
        loader = load_image_folder if name == "image_folder" else load_tiny_imagenet
        data_dir = os.fspath(data_dir)
        if cache_dir:
            dataset = cached_load(
                os.fspath(cache_dir), name, data_dir, lambda allocate: loader(data_dir, allocate)
            )
        else:
            dataset = loader(data_dir)
    else:
        dataset = load_tfds(name, data_dir)
    if train_fraction < 1.0:
        x_train, y_train = stratified_fraction(
            dataset.x_train, dataset.y_train, train_fraction, seed
        )
        dataset = dataclasses.replace(dataset, x_train=x_train, y_train=y_train)
    return dataset
