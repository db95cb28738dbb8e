"""Fixtures shared by several test files, the TensorFlow pass's execution mode, and each
worker's JAX compilation cache."""

import os

# Before anything imports JAX: this worker's folder of the suite's compilation caches
# (tests/run_all.sh says why one per worker). Subprocesses inherit it.
if os.environ.get("NASTY_TF_TEST_JAX_CACHE_ROOT"):
    os.environ["JAX_COMPILATION_CACHE_DIR"] = os.path.join(
        os.environ["NASTY_TF_TEST_JAX_CACHE_ROOT"], os.environ.get("PYTEST_XDIST_WORKER", "main")
    )

import keras  # noqa: E402
import pytest  # noqa: E402

from nasty_tf import models  # noqa: E402
from nasty_tf.data import load_dataset  # noqa: E402


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


# The slowest test files of each pass, in worker-seconds (per-file sums of the durations of
# one `tests/run_all.sh --durations=0`, AMD EPYC 2 cores, 2026-12-05, the JAX pass with its
# per-worker compilation caches and the suite's XLA flags); tests/run_all.sh hands files to its
# two workers longest first (`--no-loadscope-reorder` keeps this order), so that no long file
# starts last while the other worker idles. Files not listed follow in collection order; refresh
# the numbers from the CI log's durations when a file's cost changes a lot.
SLOWEST_FILES = {
    "tensorflow": {
        "test_runs.py": 117,
        "test_tools.py": 65,
        "test_audit.py": 64,
        "test_battery.py": 60,
        "test_tune.py": 47,
        "test_matrix.py": 44,
        "test_plain_keras_release.py": 41,
        "test_distribute_jax.py": 39,
        "test_stealers.py": 38,
        "test_multi_worker.py": 36,
        "test_tune_distributed.py": 35,
        "test_jax_without_tensorflow.py": 32,
        "test_training.py": 32,
        "test_distribute.py": 28,
        "test_datafree.py": 23,
        "test_stealer_search.py": 21,
        "test_models.py": 21,
    },
    "jax": {
        "test_training.py": 72,
        "test_models.py": 64,
        "test_runs.py": 58,
        "test_stealers.py": 49,
        "test_precision.py": 34,
        "test_nasty_options.py": 18,
        "test_datafree.py": 14,
        "test_benchmark.py": 10,
        "test_paired_models.py": 10,
    },
}


def pytest_collection_modifyitems(items):
    """Orders the files longest first (a stable sort: tests keep their order within a file)."""
    seconds = SLOWEST_FILES.get(keras.backend.backend(), {})
    items.sort(key=lambda item: -seconds.get(item.path.name, 0))


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
