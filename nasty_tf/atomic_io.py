"""Atomic file writes: a reader sees the old file or the new one, never half of either.

The bottom layer of the package: every other module may import it, and at import time it imports
nothing of ours (`atomic_save_model` reaches the model zoo's converter only when called).
"""

import json
import os
import tempfile


def _current_umask():
    umask = os.umask(0)
    os.umask(umask)
    return umask


def atomic_write_text(path, text):
    """Writes `text` to `path` through a temporary file and a rename: never half-written."""
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_bytes(path, payload):
    """Writes `payload` to `path` through a temporary file and a rename: never half-written."""
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp_path = tempfile.mkstemp(dir=directory, prefix=".tmp-", suffix=os.path.basename(path))
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(payload)
        os.chmod(
            tmp_path, 0o666 & ~_current_umask()
        )  # mkstemp's 0600 would hide reports from others
        os.replace(tmp_path, path)
    except BaseException:
        if os.path.exists(tmp_path):
            os.remove(tmp_path)
        raise


def atomic_write_json(path, payload):
    atomic_write_text(path, json.dumps(payload, indent=2, sort_keys=True) + "\n")


def atomic_save_model(model, path):
    """Saves a network as plain Keras, through a temporary `.keras` file and a rename.

    What is written is `nasty_tf.models.as_plain_keras(model)`: built-in Keras layers and ops
    only, the same weights, so the file loads with `keras.saving.load_model` in a process that
    never imports nasty_tf (DESIGN.md section 6). Every network the project writes goes through
    here, so every worker of a multi-worker run must call it alike (the conversion reads the
    distributed variables).
    """
    # Imported here: this module is the package's bottom layer and must stay import-light.
    from nasty_tf.models.plain_keras import as_plain_keras

    directory = os.path.dirname(os.path.abspath(path))
    tmp_path = os.path.join(directory, ".tmp-" + os.path.basename(path))
    try:
        as_plain_keras(model).save(tmp_path)
        os.replace(tmp_path, path)
    finally:
        if os.path.exists(tmp_path):
            os.remove(tmp_path)
