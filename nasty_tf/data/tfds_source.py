"""CIFAR-10 and CIFAR-100 from a prepared TensorFlow Datasets directory.

TFDS (and so TensorFlow) is imported inside the loader only: this module must import on a
JAX host without TensorFlow, where `image_folder` serves the same data. Nothing is
downloaded (`download=False`): the machines this runs on have no internet, and a silent
multi-minute download attempt is worse than a clear error.
"""

from __future__ import annotations

import os

import numpy as np

from nasty_tf.data.dataset import Dataset
from nasty_tf.errors import InputError

TFDS_DATASETS = ("cifar10", "cifar100")
_CHUNK = 10_000  # examples per batch read from TFDS

# The reference normalises CIFAR-100 with the CIFAR-10 constants too; we follow it so that
# numbers stay comparable (DESIGN.md section 2).
CIFAR_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR_STD = (0.247, 0.243, 0.261)


def _not_prepared_message(name: str, data_dir) -> str:
    where = (
        f"'{data_dir}'"
        if data_dir
        else "the default TFDS data_dir (~/tensorflow_datasets or $TFDS_DATA_DIR)"
    )
    return (
        f"data_dir: dataset '{name}' is not prepared in {where}, and it cannot be downloaded "
        f"here (download=False, no internet); run `tfds build {name} --data_dir=DIR` on a "
        f"machine with internet and copy DIR here, or use dataset=image_folder with a local "
        f"copy (e.g. /work/shared/data/cifar10-jpeg.tar.gz)"
    )


def load_tfds(name: str, data_dir=None) -> Dataset:
    """Loads a prepared TFDS CIFAR dataset into memory as numpy arrays (in file order).

    Args:
        name: `"cifar10"` or `"cifar100"`.
        data_dir: the TFDS data directory holding the prepared dataset; `None` for TFDS's
            default.

    Returns:
        A `Dataset` with uint8 32x32x3 images, int32 labels, TFDS's class names, the
        CIFAR-10 mean/std constants and augmentation `"crop_flip"`.

    Raises:
        InputError: unknown name, `data_dir` missing, TFDS not installed, or the dataset not
            prepared in `data_dir`.

    Example:
        >>> ds = load_tfds("cifar10", data_dir="~/tensorflow_datasets")
        >>> ds.x_train.shape
        (50000, 32, 32, 3)
    """
    if name not in TFDS_DATASETS:
        raise InputError(
            f"dataset: {name!r} is not a TFDS source here. Available: {', '.join(TFDS_DATASETS)}"
        )
    if data_dir is not None:
        data_dir = os.path.expanduser(os.fspath(data_dir))
        # Remote file systems (gs://...) are TFDS's business; a local typo is ours to catch
        # before TFDS creates an empty tree there.
        if "://" not in data_dir and not os.path.isdir(data_dir):
            raise InputError(f"data_dir: no such directory: '{data_dir}'")
    try:
        import tensorflow_datasets as tfds  # pylint: disable=import-outside-toplevel
    except ImportError as e:
        raise InputError(
            f"dataset={name} needs tensorflow_datasets (and TensorFlow), which cannot be "
            f"imported here ({e}); use dataset=image_folder with a local copy instead"
        ) from e

    try:
        (train, test), info = tfds.load(
            name,
            split=["train", "test"],
            data_dir=data_dir,
            as_supervised=True,
            # Not batch_size=-1: TFDS turns that into one batch of `total_num_examples or
            # sys.maxsize`, and where split sizes are unknown (tfds.testing.mock_data) TF then
            # aborts the whole process (std::length_error). Fixed chunks work everywhere.
            batch_size=_CHUNK,
            download=False,
            with_info=True,
        )
    except AssertionError as e:
        # TFDS signals "not prepared" with a bare AssertionError ("could not find data in ...")
        # rather than a typed exception; checking `builder.is_prepared()` first instead would
        # also bypass `tfds.testing.mock_data`, which patches only `as_dataset`.
        raise InputError(_not_prepared_message(name, data_dir)) from e

    def to_numpy(split):
        chunks = list(tfds.as_numpy(split))
        images = np.concatenate([images for images, _ in chunks]).astype(np.uint8, copy=False)
        labels = np.concatenate([labels for _, labels in chunks]).astype(np.int32, copy=False)
        return images, labels

    x_train, y_train = to_numpy(train)
    x_test, y_test = to_numpy(test)
    label = info.features["label"]
    return Dataset(
        name=name,
        x_train=x_train,
        y_train=y_train,
        x_test=x_test,
        y_test=y_test,
        num_classes=int(label.num_classes),
        class_names=tuple(label.names),
        mean=CIFAR_MEAN,
        std=CIFAR_STD,
        augmentation="crop_flip",
    )
