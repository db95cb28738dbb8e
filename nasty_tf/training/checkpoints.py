"""Loading trained networks given by the user, with checks that fail in one clear line."""

import functools
import hashlib
import os

import keras

from nasty_tf.errors import InputError
from nasty_tf.paired_model import PairedModel


def _require_file(path, argument):
    if not path:
        raise InputError(f"{argument} is required")
    if not os.path.isfile(path):
        raise InputError(f"{argument}: no such file: {path!r}")


def model_file_sha256(path, argument):
    """The SHA-256 of a partner's `.keras` file (an adversary, a teacher).

    Runs are matched on it rather than on the file's path: a moved output directory still
    matches its finished runs, and a file replaced in place does not.
    """
    _require_file(path, argument)
    try:
        stat = os.stat(path)
        return _file_sha256(os.path.realpath(path), stat.st_size, stat.st_mtime_ns)
    except OSError as error:
        raise InputError(f"{argument}: cannot read {path!r}: {error.strerror}") from None


@functools.lru_cache(maxsize=64)
def _file_sha256(
    real_path, size, mtime_ns
):  # keyed on the stat too: a rewritten file is read again
    del size, mtime_ns
    with open(real_path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def load_network(path, argument, dataset=None):
    """Loads the bare network saved in a `.keras` file.

    A saved `NastyTeacher` or `KnowledgeDistiller` wrapper is accepted: its trained network
    is returned, never the frozen partner.

    Args:
        path: the `.keras` file.
        argument: the argument that named it (e.g. "teacher"), for error messages.
        dataset: optional `nasty_tf.data.Dataset` the network must fit (classes, image shape).

    Raises:
        InputError: the file is missing, unreadable, or does not fit the dataset.
    """
    _require_file(path, argument)
    try:
        model = keras.saving.load_model(path, compile=False)
    except Exception as error:  # Keras raises many types for a corrupt or foreign file.
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise InputError(
            f"{argument}: cannot load {path!r} as a Keras model: {reason[:200]}"
        ) from None
    if isinstance(model, PairedModel):
        model = model.network
    if dataset is not None:
        classes = model.output_shape[-1]
        if classes != dataset.num_classes:
            raise InputError(
                f"{argument}: {path!r} has {classes} classes but dataset {dataset.name!r} has "
                f"{dataset.num_classes}"
            )
        shape = tuple(model.input_shape[1:])
        if shape != tuple(dataset.input_shape):
            raise InputError(
                f"{argument}: {path!r} takes images of shape {shape} but dataset "
                f"{dataset.name!r} has {tuple(dataset.input_shape)}"
            )
    return model
