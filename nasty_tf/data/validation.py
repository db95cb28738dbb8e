"""A validation split carved from the training split: what every choice made from results reads.

DESIGN.md section 6, "Selection": a search (the omega tuner, a protocol default found by a
sweep) scores its candidates on images held out of the training split, never on the test
split, which only reports. The carve is stratified like `subset.stratified_fraction`, so a small
validation split still holds every class in its training proportion, and seeded, so a rerun
holds out the same images. `unseen_validation` draws the split from the training images a
`train_fraction` subset left out instead, for students of a teacher trained on that subset.
"""

from __future__ import annotations

import dataclasses
import math
import numbers

import numpy as np

from nasty_tf.data.dataset import Dataset
from nasty_tf.errors import InputError


def check_validation_fraction(validation_fraction) -> float:
    """Returns `validation_fraction` as a float, or raises `InputError` unless it lies in (0, 1)."""
    valid = (
        isinstance(validation_fraction, numbers.Real)
        and not isinstance(validation_fraction, bool)
        and math.isfinite(validation_fraction)
        and 0.0 < validation_fraction < 1.0
    )
    if not valid:
        raise InputError(
            f"validation_fraction must be in (0, 1). Received: validation_fraction={validation_fraction!r}"
        )
    return float(validation_fraction)


def validation_indices(
    y, validation_fraction: float, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """The stratified, seeded partition of `range(len(y))` into training and validation indices.

    Each class of `n >= 2` examples gives `round(validation_fraction * n)` of them to
    validation, at least one and at most `n - 1` (so training keeps every class); a class of
    one example stays in training. Both index arrays are sorted (original order kept).

    Args:
        y: integer labels, shape `(N,)`.
        validation_fraction: the share held out, in (0, 1).
        seed: seed of the random choice within each class.

    Returns:
        `(train_indices, validation_indices)`, disjoint, together `range(N)`.

    Raises:
        InputError: `validation_fraction` outside (0, 1), or no class with two examples.
    """
    validation_fraction = check_validation_fraction(validation_fraction)
    y = np.asarray(y)
    rng = np.random.default_rng(seed)
    held_out = []
    for label in np.unique(y):
        members = np.flatnonzero(y == label)
        if len(members) < 2:
            continue
        count = min(max(1, int(round(validation_fraction * len(members)))), len(members) - 1)
        held_out.append(rng.choice(members, size=count, replace=False))
    if not held_out:
        raise InputError(
            "validation_fraction: no class has two training examples to split. "
            f"Received: {len(y)} training examples"
        )
    held_out = np.sort(np.concatenate(held_out))
    mask = np.ones(len(y), dtype=bool)
    mask[held_out] = False
    return np.flatnonzero(mask), held_out


def carve_validation(
    dataset: Dataset, validation_fraction: float = 0.1, seed: int = 0
) -> tuple[Dataset, tuple[np.ndarray, np.ndarray]]:
    """Splits a validation set off `dataset`'s training split (`validation_indices`).

    The returned dataset trains on the rest; its test split, mean and std are `dataset`'s (the
    normalisation stays that of the training split the dataset was loaded with, as for
    `train_fraction`). Both parts are copies in memory, also of a memory-mapped dataset.

    Args:
        dataset: a loaded `Dataset` (after its `train_fraction`, if any).
        validation_fraction: the share of each class held out, in (0, 1).
        seed: seed of the choice.

    Returns:
        `(dataset_without_validation, (x_validation, y_validation))`.

    Raises:
        InputError: `validation_fraction` outside (0, 1), or nothing to hold out.

    Example:
        >>> train_part, (x_val, y_val) = carve_validation(load_dataset("digits"), 0.1, seed=0)
        >>> len(train_part.x_train) + len(x_val) == len(load_dataset("digits").x_train)
        True
    """
    train_indices, held_out = validation_indices(dataset.y_train, validation_fraction, seed)
    rest = dataclasses.replace(
        dataset, x_train=dataset.x_train[train_indices], y_train=dataset.y_train[train_indices]
    )
    return rest, (dataset.x_train[held_out], dataset.y_train[held_out])


def unseen_validation(
    dataset: Dataset, train_fraction: float, validation_fraction: float = 0.1, seed: int = 0
) -> tuple[Dataset, tuple[np.ndarray, np.ndarray]]:
    """A training subset and a validation split drawn from the training images outside it.

    A teacher trained on `stratified_fraction(..., train_fraction, seed)` of the training
    split never saw the rest; a validation split carved from its own subset
    (`carve_validation`) holds images it fits better than new ones, which flatters every
    student that copies it. Here the students train on the whole subset and each class's
    validation images, `round(validation_fraction * kept)` of them (at least one, at most the
    class's unkept images), are drawn with `seed` from the images the subset left out.

    Args:
        dataset: the whole training split loaded (`train_fraction` 1).
        train_fraction: the subset's share, in (0, 1): the teacher's training fraction.
        validation_fraction: the validation split's size as a share of the subset, in (0, 1).
        seed: the subset's seed (the teacher's) and the validation choice's.

    Returns:
        `(dataset_with_the_subset_as_training_split, (x_validation, y_validation))`.

    Raises:
        InputError: a fraction out of range, `train_fraction` 1 (no image is left out), or a
            class with none left out.
    """
    from nasty_tf.data.subset import check_fraction, stratified_fraction_indices

    if check_fraction(train_fraction) == 1.0:
        raise InputError(
            "train_fraction must be below 1 for a validation split of unseen training images: "
            "the whole training split leaves none out. Received: train_fraction=1.0"
        )
    validation_fraction = check_validation_fraction(validation_fraction)
    y = np.asarray(dataset.y_train)
    kept = stratified_fraction_indices(y, train_fraction, seed)
    left_out = np.ones(len(y), dtype=bool)
    left_out[kept] = False
    rng = np.random.default_rng(seed)
    held_out = []
    for label in np.unique(y):
        members = np.flatnonzero(left_out & (y == label))
        if len(members) == 0:
            raise InputError(
                f"train_fraction: class {label} keeps every training image, none is left for a "
                f"validation split of unseen images. Received: train_fraction={train_fraction}"
            )
        wanted = int(round(validation_fraction * np.count_nonzero(y[kept] == label)))
        count = min(max(1, wanted), len(members))
        held_out.append(rng.choice(members, size=count, replace=False))
    held_out = np.sort(np.concatenate(held_out))
    subset = dataclasses.replace(dataset, x_train=dataset.x_train[kept], y_train=y[kept])
    return subset, (dataset.x_train[held_out], y[held_out])
