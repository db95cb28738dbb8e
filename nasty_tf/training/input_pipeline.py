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

Memory-mapped images (`--data_cache_dir`, `nasty_tf.data.decoded_cache`) are not copied into a
tensor: each batch is read from the mapped file inside the pipeline (`tf.numpy_function`), so
only the batches in flight are in memory.
"""

import keras
import numpy as np


def _without_autotune(dataset):
    import tensorflow as tf

    options = tf.data.Options()
    options.autotune.enabled = False
    return dataset.with_options(options)


def batches(images, labels=None, *, batch_size, shuffle_seed=None):
    """A `tf.data.Dataset` of `(images, labels)` (or images) batches, in order or reshuffled
    every epoch with `shuffle_seed`; the last batch may be smaller."""
    import tensorflow as tf

    count = len(images)
    indices = tf.data.Dataset.range(count)
    if shuffle_seed is not None:
        indices = indices.shuffle(count, seed=shuffle_seed, reshuffle_each_iteration=True)
    gather = _gather_mapped(images, labels) if isinstance(images, np.memmap) else _gather_tensors(images, labels)
    dataset = indices.batch(batch_size).map(gather).prefetch(1)
    return _without_autotune(dataset)


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


def fit_inputs(images, labels=None, *, batch_size, shuffle_seed=None):
    """`fit` keyword arguments for in-memory arrays, reshuffled every epoch if `shuffle_seed`
    is given: `batches` on TensorFlow (with `shuffle=False`, as the dataset shuffles itself;
    `fit` would only warn), the arrays themselves elsewhere."""
    if uses_tf_data():
        dataset = batches(images, labels, batch_size=batch_size, shuffle_seed=shuffle_seed)
        return dict(x=dataset, shuffle=False)
    return dict(x=images, y=labels, batch_size=batch_size, shuffle=shuffle_seed is not None)
