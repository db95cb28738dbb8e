"""A stratified fraction of a training split (the paper's Fig. 5b "fraction of data" attack).

The reference draws its subsets uniformly at random (seed 230). We stratify instead, so that a
small fraction still holds every class in its original proportion and a student's accuracy
measures the teacher, not an unlucky class imbalance (DESIGN.md section 2 allows this).
"""

from __future__ import annotations

import math
import numbers

import numpy as np

from nasty_tf.errors import InputError


def check_fraction(fraction) -> float:
    """Returns `fraction` as a float, or raises `InputError` unless it lies in (0, 1]."""
    valid = (
        isinstance(fraction, numbers.Real)
        and not isinstance(fraction, bool)
        and math.isfinite(fraction)
        and 0.0 < fraction <= 1.0
    )
    if not valid:
        raise InputError(f"train_fraction must be in (0, 1]. Received: train_fraction={fraction!r}")
    return float(fraction)


def stratified_fraction(
    x: np.ndarray, y: np.ndarray, fraction: float, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Keeps about `fraction` of each class, and at least one example of every class.

    Each class keeps `max(1, round(fraction * count))` examples chosen at random with
    `seed`; the kept examples stay in their original order. `fraction=1` returns the inputs
    themselves (no copy).

    Args:
        x: examples, first axis aligned with `y`.
        y: integer labels, shape `(N,)`.
        fraction: the share to keep, in (0, 1].
        seed: seed of the random choice within each class.

    Returns:
        `(x_subset, y_subset)`.

    Raises:
        InputError: `fraction` outside (0, 1].

    Example:
        >>> x_small, y_small = stratified_fraction(ds.x_train, ds.y_train, 0.1, seed=0)
    """
    fraction = check_fraction(fraction)
    if fraction == 1.0:
        return x, y
    keep = stratified_fraction_indices(y, fraction, seed)
    return x[keep], y[keep]


def stratified_fraction_indices(y, fraction: float, seed: int = 0) -> np.ndarray:
    """The sorted indices into `y` that `stratified_fraction(x, y, fraction, seed)` keeps.

    Raises:
        InputError: `fraction` outside (0, 1].
    """
    fraction = check_fraction(fraction)
    y = np.asarray(y)
    if fraction == 1.0:
        return np.arange(len(y))
    rng = np.random.default_rng(seed)
    keep = []
    for label in np.unique(y):
        members = np.flatnonzero(y == label)
        count = max(1, int(round(fraction * len(members))))
        keep.append(rng.choice(members, size=count, replace=False))
    return np.sort(np.concatenate(keep))
