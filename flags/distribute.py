"""Flags that say where training runs (a `tf.distribute` strategy)."""

from absl import flags


def define_distribute_flags():
    flags.DEFINE_string(
        "strategy",
        "auto",
        "auto (one device), one_device, mirrored (every local GPU; --batch_size is the "
        "global batch, split across them; on JAX, Keras' DataParallel) or multi_worker "
        "(MultiWorkerMirroredStrategy over the hosts in TF_CONFIG: run the same command on "
        "every worker; only the chief writes, so --output_dir must be on a shared filesystem). "
        "one_device and multi_worker are TensorFlow-only.",
    )
