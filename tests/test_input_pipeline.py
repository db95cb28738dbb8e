"""`training.input_pipeline`: fit's input on TensorFlow, every image once per epoch, no autotuning."""

import numpy as np
import pytest

from nasty_tf.training import input_pipeline

pytestmark = pytest.mark.single_pass  # tf.data is the TensorFlow backend's input path


def _epoch(dataset):
    return [(np.asarray(x), np.asarray(y)) for x, y in dataset]


def test_every_image_once_per_epoch_reshuffled_and_seeded():
    images = np.arange(10, dtype=np.uint8).reshape(10, 1, 1, 1) * np.ones((1, 2, 2, 3), np.uint8)
    labels = np.arange(10, dtype=np.int32)
    dataset = input_pipeline.batches(images, labels, batch_size=4, shuffle_seed=3)
    first, second = _epoch(dataset), _epoch(dataset)
    assert [len(y) for _, y in first] == [4, 4, 2]  # the last batch is partial, not dropped
    for epoch in (first, second):
        order = np.concatenate([y for _, y in epoch])
        assert sorted(order) == list(range(10))
        for x, y in epoch:  # images stay with their labels
            np.testing.assert_array_equal(x[:, 0, 0, 0], y)
    orders = [np.concatenate([y for _, y in epoch]) for epoch in (first, second)]
    assert not np.array_equal(*orders)  # reshuffled every epoch
    again = _epoch(input_pipeline.batches(images, labels, batch_size=4, shuffle_seed=3))
    np.testing.assert_array_equal(np.concatenate([y for _, y in again]), orders[0])  # seeded


def test_in_order_without_a_seed_and_images_only():
    images = np.arange(5, dtype=np.float32).reshape(5, 1)
    dataset = input_pipeline.batches(images, batch_size=2)
    np.testing.assert_array_equal(
        np.concatenate([np.asarray(b) for b in dataset])[:, 0], np.arange(5)
    )


def test_autotuning_is_off():
    # Its optimisation thread makes every iterator's teardown wait out a backoff sleep.
    dataset = input_pipeline.batches(np.zeros((4, 1)), np.zeros(4), batch_size=2)
    assert dataset.options().autotune.enabled is False
