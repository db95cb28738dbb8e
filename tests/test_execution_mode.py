"""The TensorFlow pass's execution mode (tests/conftest.py): in-process functions run eagerly,
traced in the tests marked `graph`."""

import keras
import pytest

pytestmark = [
    pytest.mark.single_pass,
    pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="a TensorFlow setting"),
]


def _runs_traced():
    import tensorflow as tf

    return not bool(tf.function(tf.executing_eagerly)())


def test_an_unmarked_test_runs_its_functions_eagerly():
    assert not _runs_traced()


@pytest.mark.graph
def test_a_graph_test_traces_its_functions():
    assert _runs_traced()


def test_the_mode_is_set_again_for_each_test():
    assert not _runs_traced()
