"""Times training steps over the real training path; one JSON line per mode (issue 7).

    python -m tools.benchmark --arch=resnet18 --batch_size=128 --mode=normal,nasty,kd \
        --steps=10 --warmup_steps=2 --repeats=3 --precision=float32

Set `KERAS_BACKEND=jax` for the JAX backend (GPU hosts).
"""

import json

from absl import flags as absl_flags

from flags import benchmark as benchmark_flags
from tools import common

benchmark_flags.define_benchmark_flags()
FLAGS = absl_flags.FLAGS


def _set_threads():
    if FLAGS.inter_op_threads < 0 or FLAGS.intra_op_threads < 0:
        raise common.InputError(
            "--inter_op_threads and --intra_op_threads must be >= 0. Received: "
            f"{FLAGS.inter_op_threads}, {FLAGS.intra_op_threads}"
        )
    if not (FLAGS.inter_op_threads or FLAGS.intra_op_threads):
        return
    import keras

    if keras.backend.backend() != "tensorflow":
        raise common.InputError(
            "--inter_op_threads and --intra_op_threads apply to the TensorFlow backend only. "
            f"Received: KERAS_BACKEND={keras.backend.backend()}"
        )
    import tensorflow as tf

    # Must run before TensorFlow's runtime starts, i.e. before any model is built.
    if FLAGS.inter_op_threads:
        tf.config.threading.set_inter_op_parallelism_threads(FLAGS.inter_op_threads)
    if FLAGS.intra_op_threads:
        tf.config.threading.set_intra_op_parallelism_threads(FLAGS.intra_op_threads)


def main():
    from nasty_tf.benchmark import BenchmarkConfig, benchmark

    config = BenchmarkConfig(
        arch=FLAGS.arch,
        batch_size=FLAGS.batch_size,
        modes=tuple(FLAGS.mode),
        steps=FLAGS.steps,
        warmup_steps=FLAGS.warmup_steps,
        repeats=FLAGS.repeats,
        precision=FLAGS.precision,
        jit_compile=FLAGS.jit_compile.lower(),
        steps_per_execution=FLAGS.steps_per_execution,
        augmentation=FLAGS.augmentation,
        image_size=FLAGS.image_size,
        num_classes=FLAGS.num_classes,
        teacher_arch=FLAGS.teacher_arch,
        seed=FLAGS.seed,
        batch_norms=tuple(FLAGS.batch_norm),
    )
    _set_threads()
    for result in benchmark(config):
        if FLAGS.inter_op_threads or FLAGS.intra_op_threads:
            result["threads"] = {
                "inter_op": FLAGS.inter_op_threads,
                "intra_op": FLAGS.intra_op_threads,
            }
        print(json.dumps(result), flush=True)


def console_main():
    """Console script `nasty-tf-benchmark`: what `python -m tools.benchmark` runs."""
    common.run(main)


if __name__ == "__main__":
    console_main()
