"""Fixtures shared by several test files, and the TensorFlow pass's execution mode."""

import keras
import pytest

from nasty_tf import models
from nasty_tf.data import load_dataset


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    """On TensorFlow, a test's in-process Keras functions run eagerly unless it is marked `graph`.

    Why: tracing a new network's train, test and predict functions costs seconds per job, more
    than the tiny jobs here compute. Traced execution stays covered: every binary a test starts
    as a subprocess runs traced (train, train_nasty, distill and both data-free attacks in
    tests/test_runs.py, the workers and tuners of the distributed tests), the tests marked
    `graph` run traced in process, and the JAX pass compiles everything it runs. Set before any
    fixture of the test is built, so a module fixture is built in the mode of the first test
    that asks for it.
    """
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        tf.config.run_functions_eagerly(item.get_closest_marker("graph") is None)


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
