"""Fixtures shared by several test files."""

import keras
import pytest

from nasty_tf import models
from nasty_tf.data import load_dataset


@pytest.fixture(scope="module")
def given_teachers(tmp_path_factory):
    """Two CNNs saved as .keras files, standing for teachers trained elsewhere."""
    root = tmp_path_factory.mktemp("given")
    digits = load_dataset("digits")
    paths = {}
    for seed, route in enumerate(("normal", "nasty")):
        keras.utils.set_random_seed(seed)
        network = models.get_model("cnn", 10, digits.input_shape, mean=digits.mean, std=digits.std)
        paths[route] = str(root / f"{route}.keras")
        network.save(paths[route])
    return paths
