"""In-memory arrays as `fit`/`predict` input on the TensorFlow backend, without tf.data autotuning.

Given numpy arrays, Keras' TensorFlow trainer builds a `tf.data` pipeline that prefetches with
`AUTOTUNE`. Autotuning runs an optimisation thread that sleeps with exponential backoff
(10 ms, 20 ms, ... 10.24 s) and tearing the iterator down waits for its current sleep to end,
so every epoch and every `predict` lasts until the next boundary of that series: 0.63, 1.27,
2.55, 5.1, 10.2, 20.5, 41 s... Measured here (Keras 3.15, TensorFlow 2.21, ResNet-18 batch
128 on 2 CPU cores, 2026-11-26): a 5-step `fit` of ~14 s compute returned after 20.53 s in
13 of 18 repeats, ~6 s after its last callback, and the same steps fed by a dataset with
autotuning off took 11-15 s (`benchmarks/RESULTS.md`). An epoch of 22 s cost 41 s.

So the jobs feed `fit` and `predict` these pipelines instead: a seeded per-epoch shuffle of
the indices (the arrays are not copied into a shuffle buffer), batches gathered from the
arrays, `prefetch(1)`, autotuning off. On JAX Keras iterates numpy arrays itself (no tf.data),
so there the arrays are passed as they are.

Exact resume: given the run's `epochs`, `fit_inputs` makes each epoch's order a pure function
of (seed, epoch) (`epoch_order`, the same on both backends) and starts at the epoch a resumed
run restarts from, instead of a shuffle whose sequence would restart at epoch 0's order in a
new process (`tf.data`'s `reshuffle_each_iteration`, Keras' global numpy RNG on JAX).

Memory-mapped images (`--data_cache_dir`, `nasty_tf.data.decoded_cache`) are not copied into a
tensor: each batch is read from the mapped file inside the pipeline (`tf.numpy_function`), so
only the batches in flight are in memory.
"""

import math

import keras
import numpy as np


def _without_autotune(dataset):
    import tensorflow as tf

    options = tf.data.Options()
    options.autotune.enabled = False
    return dataset.with_options(options)


def epoch_order(seed, epoch, count):
    """The order in which epoch `epoch` of a run seeded `seed` visits `count` examples: a pure
    function of (seed, epoch), so a resumed process draws what an uninterrupted one would."""
    return np.random.default_rng([int(seed) % 2**63, int(epoch)]).permutation(count)


def batches(images, labels=None, *, batch_size, shuffle_seed=None, epoch=None):
    """A `tf.data.Dataset` of `(images, labels)` (or images) batches: in order, reshuffled
    every epoch with `shuffle_seed`, or, given `epoch` too, in that epoch's `epoch_order`. The
    last batch may be smaller."""
    import tensorflow as tf

    count = len(images)
    if shuffle_seed is not None and epoch is not None:
        indices = tf.data.Dataset.from_tensor_slices(epoch_order(shuffle_seed, epoch, count))
    else:
        indices = tf.data.Dataset.range(count)
        if shuffle_seed is not None:
            indices = indices.shuffle(count, seed=shuffle_seed, reshuffle_each_iteration=True)
    dataset = indices.batch(batch_size).map(_gather(images, labels)).prefetch(1)
    return _without_autotune(dataset)


def _gather(images, labels):
    return (
        _gather_mapped(images, labels)
        if isinstance(images, np.memmap)
        else _gather_tensors(images, labels)
    )


def _epochs_of_batches(images, labels, batch_size, seed, first_epoch, epochs):
    """Epochs `first_epoch`..`epochs - 1` of batches in `epoch_order`, as one `tf.data` stream."""
    import tensorflow as tf

    count = len(images)

    def order(epoch):
        return epoch_order(seed, epoch, count).astype(np.int64)

    def one_epoch(epoch):
        indices = tf.numpy_function(order, [epoch], tf.int64, stateful=False)
        return tf.data.Dataset.from_tensor_slices(tf.ensure_shape(indices, [count])).batch(
            batch_size
        )

    dataset = tf.data.Dataset.range(first_epoch, epochs).flat_map(one_epoch)
    return _without_autotune(dataset.map(_gather(images, labels)).prefetch(1))


def _numpy_epochs_of_batches(images, labels, batch_size, seed, first_epoch, epochs):
    for epoch in range(first_epoch, epochs):
        order = epoch_order(seed, epoch, len(images))
        for start in range(0, len(order), batch_size):
            batch = order[start : start + batch_size]
            yield (images[batch], labels[batch]) if labels is not None else images[batch]


def _gather_tensors(images, labels):
    import tensorflow as tf

    images = tf.convert_to_tensor(images)
    labels = None if labels is None else tf.convert_to_tensor(labels)

    def gather(batch_indices):
        if labels is None:
            return tf.gather(images, batch_indices)
        return tf.gather(images, batch_indices), tf.gather(labels, batch_indices)

    return gather


def _gather_mapped(images, labels):
    """Reads each batch from the memory-mapped file (the labels are small: gathered in TF)."""
    import tensorflow as tf

    labels = None if labels is None else tf.convert_to_tensor(labels)
    batch_shape = (None,) + images.shape[1:]

    def read(batch_indices):
        # Ascending offsets read the file forwards; `order` restores the shuffled order.
        order = np.argsort(batch_indices)
        batch = np.empty((len(batch_indices),) + images.shape[1:], images.dtype)
        batch[order] = images[batch_indices[order]]
        return batch

    def gather(batch_indices):
        batch = tf.numpy_function(read, [batch_indices], tf.as_dtype(images.dtype), stateful=False)
        batch = tf.ensure_shape(batch, batch_shape)
        if labels is None:
            return batch
        return batch, tf.gather(labels, batch_indices)

    return gather


def uses_tf_data():
    return keras.backend.backend() == "tensorflow"


def fit_inputs(images, labels=None, *, batch_size, shuffle_seed=None, epochs=None, initial_epoch=0):
    """`fit` keyword arguments for in-memory arrays, reshuffled every epoch if `shuffle_seed`
    is given: `batches` on TensorFlow (with `shuffle=False`, as the dataset shuffles itself;
    `fit` would only warn), the arrays themselves elsewhere.

    Given the run's `epochs` too, epoch e is served in `epoch_order(shuffle_seed, e)`, starting
    at `initial_epoch` (where a resumed `fit` starts), on either backend: one stream of batches
    over the remaining epochs with `steps_per_epoch`, so that a resumed run equals an
    uninterrupted one.
    """
    if shuffle_seed is not None and epochs is not None:
        steps = math.ceil(len(images) / batch_size)
        # Never empty (a generator must yield a first batch): a run resumed after its last
        # epoch trains no more, so what the stream would hold does not matter.
        first = min(initial_epoch, epochs - 1)
        make = _epochs_of_batches if uses_tf_data() else _numpy_epochs_of_batches
        stream = make(images, labels, batch_size, shuffle_seed, first, epochs)
        return dict(x=stream, steps_per_epoch=steps, shuffle=False)
    if uses_tf_data():
        dataset = batches(images, labels, batch_size=batch_size, shuffle_seed=shuffle_seed)
        return dict(x=dataset, shuffle=False)
    return dict(x=images, y=labels, batch_size=batch_size, shuffle=shuffle_seed is not None)
