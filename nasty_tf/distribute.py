"""Where training runs: a `tf.distribute` strategy named by `--strategy`.

- `auto`: TensorFlow's default strategy (one device, TensorFlow's placement; what a run
  without `--strategy` always did). On JAX, Keras' own placement.
- `one_device`: `OneDeviceStrategy` on the first GPU, else the CPU.
- `mirrored`: `MirroredStrategy` over every local GPU (every logical CPU device when there is
  no GPU, which is how tests run two replicas on one CPU). Synchronous data parallelism: the
  global `--batch_size` is split across replicas and the gradients summed, so a run of a
  BatchNorm-free network equals a single-device run with the same global batch. BatchNorm
  layers normalise each replica's own slice of the batch (as PyTorch's DataParallel did for
  the reference), so networks with BatchNorm differ slightly (DESIGN.md section 3).
- `multi_worker`: reserved for `MultiWorkerMirroredStrategy` (hosts from `TF_CONFIG`), and
  refused for now: Keras 3's TensorFlow trainer cannot `fit` under it. Measured here with
  Keras 3.15 / TensorFlow 2.21 on two localhost workers: `fit` first fails reducing the
  (images, labels) batch it uses to build the model, and past that, reducing the scalar
  per-step logs with `axis=0` ("Invalid reduction dimension 0 for input with 0 dimensions";
  keras-team/keras#20585, tensorflow/tensorflow#72388). Patching Keras' private trainer is
  not worth the fragility; use `mirrored` on one host.

Losses scale correctly across replicas because every objective is a `keras.losses.Loss`
and regularisation is divided by the replica count (`nasty_tf.paired_model`). TensorFlow-only
(DESIGN.md section 5, rule 5); on the JAX backend only `auto` is accepted.
"""

import contextlib
import functools

import keras

from nasty_tf.errors import InputError

STRATEGIES = ("auto", "one_device", "mirrored", "multi_worker")


class _BackendDefault:
    """Stands in for a strategy on JAX: Keras places the computation itself."""

    num_replicas_in_sync = 1

    def scope(self):
        return contextlib.nullcontext()


def check_strategy(name):
    """Raises `InputError` unless `name` is a strategy the current backend can run."""
    if name not in STRATEGIES:
        raise InputError(f"--strategy must be one of {STRATEGIES}. Received: {name!r}")
    if name == "multi_worker":
        raise InputError(
            "--strategy=multi_worker is not supported: Keras 3's fit fails under "
            "MultiWorkerMirroredStrategy (keras-team/keras#20585); use --strategy=mirrored"
        )
    backend = keras.backend.backend()
    if name != "auto" and backend != "tensorflow":
        raise InputError(
            f"--strategy={name} needs the TensorFlow backend (on JAX use --strategy=auto). "
            f"Received: KERAS_BACKEND={backend!r}"
        )


def make_strategy(name="auto"):
    """The strategy that `name` (one of `STRATEGIES`) stands for, created once per process.

    Made once per name and process (but "auto", which is whatever strategy is current), so
    that the jobs of a protocol share one. Build models, optimizers and metrics inside
    `strategy.scope()`.

    Args:
        name: "auto", "one_device" or "mirrored" ("multi_worker" is refused, see above).

    Returns:
        A `tf.distribute.Strategy` (on JAX, for "auto", an object with the same `scope()`
        and `num_replicas_in_sync` that does nothing).

    Raises:
        InputError: an unknown name, a strategy other than "auto" on JAX, or "multi_worker".

    Example:
        >>> strategy = make_strategy("mirrored")
        >>> with strategy.scope():
        ...     model = NastyTeacher(network, adversary)  # all created in the scope
        ...     model.compile(optimizer="sgd")
        >>> model.fit(x, y, batch_size=128)  # 128 is the global batch
    """
    check_strategy(name)
    if keras.backend.backend() != "tensorflow":
        return _BackendDefault()
    import tensorflow as tf  # only on the TensorFlow backend: JAX hosts may lack it

    if name == "auto":
        return tf.distribute.get_strategy()
    return _new_strategy(name)


@functools.cache
def _new_strategy(name):
    import tensorflow as tf

    if name == "one_device":
        gpus = tf.config.list_logical_devices("GPU")
        return tf.distribute.OneDeviceStrategy(gpus[0].name if gpus else "/cpu:0")
    # "mirrored". MirroredStrategy() alone takes the GPUs or else only the first CPU; naming
    # the logical CPU devices lets a CPU host configured with several run several replicas.
    devices = tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU")
    return tf.distribute.MirroredStrategy([device.name for device in devices])
