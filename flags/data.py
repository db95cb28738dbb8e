"""Flags that pick the dataset."""

from absl import flags


def define_dataset_flags():
    """`--dataset` and `--data_dir` only: for binaries that read a dataset but train no subset."""
    flags.DEFINE_string(
        "dataset",
        "digits",
        "Dataset: digits (embedded, no download), image_folder, cifar10, cifar100, tiny_imagenet.",
    )
    flags.DEFINE_string(
        "data_dir",
        None,
        "image_folder: a directory or .tar.gz/.zip laid out as split/class/image. "
        "cifar10/cifar100: the TFDS data_dir holding the prepared dataset. "
        "tiny_imagenet: tiny-imagenet-200.zip or its extracted folder.",
    )


def define_subset_flags():
    """`--data_cache_dir` and `--train_fraction`: how much of the dataset a binary trains on."""
    flags.DEFINE_string(
        "data_cache_dir",
        None,
        "image_folder/tiny_imagenet: keep the decoded images here as memory-mapped .npy files: "
        "later runs skip the decode, and datasets larger than memory stream from disk.",
    )
    flags.DEFINE_float(
        "train_fraction", 1.0, "Stratified fraction of the training split to keep, in (0, 1]."
    )


def define_data_flags():
    define_dataset_flags()
    define_subset_flags()
    flags.DEFINE_integer("seed", 0, "Random seed for weights, shuffling, augmentation and subsets.")
