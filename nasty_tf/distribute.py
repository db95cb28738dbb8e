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
- `multi_worker`: `MultiWorkerMirroredStrategy` over the hosts that `TF_CONFIG` names (every
  worker runs the same command with its own `TF_CONFIG`); the global `--batch_size` is split
  across all replicas of all workers. Keras 3's `fit` cannot run under it
  (keras-team/keras#20585), so the jobs train through `nasty_tf.training.multi_worker`, a
  loop over the trainers' own `train_step` with `fit`'s callbacks; only the chief writes.

Losses scale correctly across replicas because every objective is a `keras.losses.Loss`
and regularisation is divided by the replica count (`nasty_tf.paired_model`).

On the JAX backend, `mirrored` is Keras' own `keras.distribution.DataParallel` over every
local device (GPUs, else the CPU devices): each batch is sharded across them and the step is
one program over the global batch, so BatchNorm statistics are the global batch's and a run
equals a single-device run even with BatchNorm (up to float summation order). JAX can only
split an array evenly, so every batch, the last included, must divide by the device count:
the jobs drop the last `N mod devices` training and validation images (fewer than the device
count; `shard_evenly`) and evaluate on the whole test split. `auto` is the default placement;
`one_device` and `multi_worker` are TensorFlow-only.
"""

import contextlib
import functools
import json
import os

import keras

from nasty_tf.errors import InputError

STRATEGIES = ("auto", "one_device", "mirrored", "multi_worker")


class _BackendDefault:
    """Stands in for a strategy on JAX: Keras places the computation itself."""

    num_replicas_in_sync = 1
    shards_batches = False

    def scope(self):
        return contextlib.nullcontext()


class _JaxDataParallel:
    """`--strategy=mirrored` on JAX: `keras.distribution.DataParallel` over the local devices."""

    shards_batches = True  # JAX needs every batch to split evenly (module docstring)

    def __init__(self):
        import jax  # only on the JAX backend

        devices = jax.devices()
        self.distribution = keras.distribution.DataParallel(devices=devices)
        self.num_replicas_in_sync = len(devices)

    def scope(self):
        return self.distribution.scope()


def shard_evenly(strategy, *arrays):
    """`arrays` cut to a multiple of the replica count where the strategy shards batches.

    With a global batch that is a multiple of the replicas (the jobs check it), every batch,
    the last included, then splits evenly. Drops fewer images than there are replicas.
    """
    replicas = strategy.num_replicas_in_sync
    if not getattr(strategy, "shards_batches", False) or replicas == 1:
        return arrays
    keep = len(arrays[0]) - len(arrays[0]) % replicas
    return tuple(array[:keep] for array in arrays)


def check_strategy(name):
    """Raises `InputError` unless `name` is a strategy the current backend can run."""
    if name not in STRATEGIES:
        raise InputError(f"strategy must be one of {STRATEGIES}. Received: strategy={name!r}")
    backend = keras.backend.backend()
    if name not in ("auto", "mirrored") and backend != "tensorflow":
        raise InputError(
            f"strategy={name} needs the TensorFlow backend (on JAX use auto or mirrored). "
            f"Received: KERAS_BACKEND={backend!r}"
        )
    if name == "multi_worker":
        _check_tf_config()


def _check_tf_config():
    """`TF_CONFIG` must name a cluster and this process' task in it (TensorFlow's format)."""
    text = os.environ.get("TF_CONFIG")
    example = '{"cluster": {"worker": ["host1:port", "host2:port"]}, "task": {"type": "worker", "index": 0}}'
    if not text:
        raise InputError(
            f"strategy=multi_worker needs TF_CONFIG in the environment, e.g. {example}"
        )
    try:
        tf_config = json.loads(text)
        task = tf_config["task"]
        hosts = tf_config["cluster"][task["type"]]
        if not 0 <= int(task["index"]) < len(hosts):
            raise IndexError(task["index"])
    except (ValueError, KeyError, TypeError, IndexError) as error:
        raise InputError(
            f"TF_CONFIG is not a cluster with this task in it ({type(error).__name__}: {error}); "
            f"expected e.g. {example}"
        ) from None


def make_strategy(name="auto"):
    """The strategy that `name` (one of `STRATEGIES`) stands for, created once per process.

    Made once per name and process (but "auto", which is whatever strategy is current), so
    that the jobs of a protocol share one. Build models, optimizers and metrics inside
    `strategy.scope()`.

    Args:
        name: "auto", "one_device", "mirrored" or "multi_worker" (needs `TF_CONFIG`).

    Returns:
        A `tf.distribute.Strategy`; on JAX an object with the same `scope()` and
        `num_replicas_in_sync`: Keras' `DataParallel` for "mirrored", nothing for "auto".

    Raises:
        InputError: an unknown name, a TensorFlow-only strategy on JAX, or "multi_worker"
            without a valid `TF_CONFIG`.

    Example:
        >>> strategy = make_strategy("mirrored")
        >>> with strategy.scope():
        ...     model = NastyTeacher(network, adversary)  # all created in the scope
        ...     model.compile(optimizer="sgd")
        >>> model.fit(x, y, batch_size=128)  # 128 is the global batch
    """
    check_strategy(name)
    if keras.backend.backend() == "jax" and name == "mirrored":
        return _new_strategy("jax_data_parallel")
    if keras.backend.backend() != "tensorflow":
        return _BackendDefault()
    import tensorflow as tf  # only on the TensorFlow backend: JAX hosts may lack it

    if name == "auto":
        return tf.distribute.get_strategy()
    return _new_strategy(name)


@functools.cache
def _new_strategy(name):
    if name == "jax_data_parallel":
        return _JaxDataParallel()
    import tensorflow as tf

    if name == "multi_worker":
        # Must come before TensorFlow runs its first op (it configures the collectives).
        return tf.distribute.MultiWorkerMirroredStrategy()
    if name == "one_device":
        gpus = tf.config.list_logical_devices("GPU")
        return tf.distribute.OneDeviceStrategy(gpus[0].name if gpus else "/cpu:0")
    # "mirrored". MirroredStrategy() alone takes the GPUs or else only the first CPU; naming
    # the logical CPU devices lets a CPU host configured with several run several replicas.
    devices = tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU")
    return tf.distribute.MirroredStrategy([device.name for device in devices])
