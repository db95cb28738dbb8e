"""Decoded images kept on disk as memory-mapped `.npy` files (`--data_cache_dir`).

The file sources (`image_folder`, `tiny_imagenet`) decode every image at every load (12 s for
CIFAR-10's 60,000 JPEGs on two cores) and a dataset must fit in memory. With a cache
directory, the first load decodes straight into `.npy` files there (never holding the decoded
split in memory) and later loads memory-map them (`np.load(mmap_mode="r")`): no decode, and the
operating system pages images in as batches need them, so a dataset needs disk rather than RAM.
On the TensorFlow backend `training.input_pipeline` then gathers each batch from the mapped file
inside `tf.data`, instead of copying the split into one tensor.

Layout: `<cache_dir>/<source>-<key>/` holding `x_train.npy`, `y_train.npy`, `x_test.npy`,
`y_test.npy` and `dataset.json` (the `Dataset`'s other fields and the source's fingerprint).
`key` hashes the source's absolute path; the fingerprint (size and modification time of the
archive, or of every file in a folder) decides whether the entry is still current, and a stale
entry is decoded again. Each file is written under a temporary name and renamed when complete,
`dataset.json` last, so an interrupted decode leaves no entry that looks usable.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import shutil
from collections.abc import Callable

import numpy as np

from nasty_tf.data.dataset import Dataset
from nasty_tf.errors import InputError

# Bumped when the stored layout or the decoders' output changes.
FORMAT_VERSION = 1
ARRAYS = ("x_train", "y_train", "x_test", "y_test")
_MANIFEST = "dataset.json"


def fingerprint(path: str) -> str:
    """Size and modification time of a file, or of every file under a folder (hashed)."""
    digest = hashlib.sha256()
    if os.path.isdir(path):
        for here, dirnames, filenames in os.walk(path, followlinks=True):
            dirnames.sort()
            for name in sorted(filenames):
                full = os.path.join(here, name)
                stat = os.stat(full)
                digest.update(
                    f"{os.path.relpath(full, path)}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode()
                )
    else:
        stat = os.stat(path)
        digest.update(f"{stat.st_size}\0{stat.st_mtime_ns}".encode())
    return digest.hexdigest()


def entry_dir(cache_dir: str, source: str, path: str) -> str:
    key = hashlib.sha256(os.path.abspath(path).encode()).hexdigest()[:16]
    return os.path.join(cache_dir, f"{source}-{key}")


class ArrayWriter:
    """Hands the decoders `.npy` files to fill in place (`allocate`), renamed when `commit`ted."""

    def __init__(self, directory: str):
        self.directory = directory
        self._pending: dict[str, np.memmap] = {}

    def allocate(self, name: str, shape, dtype) -> np.ndarray:
        temporary = os.path.join(self.directory, f"{name}.npy.partial")
        array = np.lib.format.open_memmap(temporary, mode="w+", dtype=dtype, shape=tuple(shape))
        self._pending[name] = array
        return array

    def commit(self):
        for name, array in self._pending.items():
            array.flush()
            os.replace(array.filename, os.path.join(self.directory, f"{name}.npy"))
        self._pending.clear()


def _load_entry(directory: str, manifest: dict, source_path: str) -> Dataset:
    arrays = {}
    for name in ARRAYS:
        file = os.path.join(directory, f"{name}.npy")
        try:
            # Labels are small: read them whole; images stay mapped.
            arrays[name] = np.load(file, mmap_mode="r" if name.startswith("x_") else None)
        except (OSError, ValueError) as e:
            raise InputError(
                f"cache_dir: corrupt cache entry '{directory}' for '{source_path}' "
                f"({name}.npy: {' '.join(str(e).split())}); delete that folder to decode again"
            ) from e
        if arrays[name].shape != tuple(manifest["shapes"][name]):
            raise InputError(
                f"cache_dir: corrupt cache entry '{directory}' for '{source_path}' "
                f"({name}.npy has shape {arrays[name].shape}, expected "
                f"{tuple(manifest['shapes'][name])}); delete that folder to decode again"
            )
    fields = manifest["dataset"]
    return Dataset(
        **arrays,
        name=fields["name"],
        num_classes=fields["num_classes"],
        class_names=tuple(fields["class_names"]),
        mean=tuple(fields["mean"]),
        std=tuple(fields["std"]),
        augmentation=fields["augmentation"],
    )


def _read_manifest(directory: str):
    try:
        with open(os.path.join(directory, _MANIFEST)) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None  # absent or unreadable: the entry is decoded again


def cached_load(
    cache_dir: str, source: str, path: str, decode: Callable[[Callable], Dataset]
) -> Dataset:
    """The dataset at `path`, from `cache_dir` when current, else decoded into it.

    Args:
        cache_dir: the cache directory (created if missing).
        source: the source's name, e.g. `"image_folder"`.
        path: the source's file or folder.
        decode: the source's loader, called as `decode(allocate)` where
            `allocate(name, shape, dtype)` returns the array to fill for `name` (one of
            `ARRAYS`); it returns the `Dataset` built on those arrays.

    Returns:
        A `Dataset` whose images are read-only memory-mapped arrays.

    Raises:
        InputError: `path` is missing or unreadable, the cache directory cannot be written,
            or an entry is corrupt.
    """
    if not os.path.exists(path):
        raise InputError(f"data_dir: no such file or directory: '{path}'")
    try:
        current_fingerprint = fingerprint(path)
    except OSError as e:  # e.g. a dangling link inside the folder
        raise InputError(f"data_dir: cannot read '{path}': {' '.join(str(e).split())}") from e
    directory = entry_dir(cache_dir, source, path)
    current = {
        "format": FORMAT_VERSION,
        "source": source,
        "path": os.path.abspath(path),
        "fingerprint": current_fingerprint,
    }
    manifest = _read_manifest(directory)
    if manifest is not None and all(manifest.get(k) == v for k, v in current.items()):
        return _load_entry(directory, manifest, path)
    try:
        # A stale or interrupted entry: start afresh, so no old array survives beside new ones.
        shutil.rmtree(directory, ignore_errors=True)
        os.makedirs(directory)
    except OSError as e:
        raise InputError(
            f"cache_dir: cannot write '{directory}': {' '.join(str(e).split())}"
        ) from e
    writer = ArrayWriter(directory)
    with _removed_on_error(directory):
        dataset = decode(writer.allocate)
        writer.commit()
        fields = {f.name: getattr(dataset, f.name) for f in dataclasses.fields(dataset)}
        manifest = {
            **current,
            "shapes": {name: list(fields.pop(name).shape) for name in ARRAYS},
            "dataset": fields,
        }
        temporary = os.path.join(directory, _MANIFEST + ".partial")
        with open(temporary, "w") as f:
            json.dump(manifest, f, indent=1)
        os.replace(temporary, os.path.join(directory, _MANIFEST))
    return _load_entry(directory, manifest, path)


@contextlib.contextmanager
def _removed_on_error(directory):
    """Removes a half-written entry when decoding fails (bad input, Ctrl-C, a full disk)."""
    try:
        yield
    except OSError as e:  # the loaders report their own read errors as InputError
        shutil.rmtree(directory, ignore_errors=True)
        raise InputError(
            f"cache_dir: cannot write '{directory}': {' '.join(str(e).split())}"
        ) from e
    except BaseException:
        shutil.rmtree(directory, ignore_errors=True)
        raise
