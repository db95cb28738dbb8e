"""Flags that say where training runs (a `tf.distribute` strategy)."""

from absl import flags


def define_distribute_flags():
    flags.DEFINE_string(
        "strategy",
        "auto",
        "auto (one device), one_device or mirrored (every local GPU; --batch_size is the "
        "global batch, split across them; on JAX, Keras' DataParallel). one_device is "
        "TensorFlow-only. multi_worker is reserved and refused: Keras 3's fit fails under "
        "MultiWorkerMirroredStrategy.",
    )
