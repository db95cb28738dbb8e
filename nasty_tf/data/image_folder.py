"""An "image folder" dataset read from a directory or straight out of an archive.

Layout (the torchvision ImageFolder layout, one folder per split)::

    train/<class_name>/<image>
    test/<class_name>/<image>

optionally wrapped in one top-level folder (`cifar10/train/...`), as archives often are.
Labels are the sorted class folder names. Archives (`.tar.gz`, `.tgz`, `.tar`, `.tar.bz2`,
`.tar.xz`, `.zip`) are read member by member in memory, never extracted: the 60,000-file
CIFAR-10 JPEG copy would otherwise cost a temporary tree of small files and its cleanup.

Every way the input can be wrong ends in one `InputError` line naming the path or member,
because this is the source users point at their own data.
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import os
import tarfile
import zipfile
import zlib
from collections.abc import Callable

import numpy as np

from nasty_tf.data.dataset import Dataset, channel_mean_std
from nasty_tf.errors import InputError

SPLITS = ("train", "test")
TAR_SUFFIXES = (".tar.gz", ".tgz", ".tar", ".tar.bz2", ".tbz2", ".tar.xz", ".txz")
ZIP_SUFFIXES = (".zip",)
# Files that operating systems and archivers leave behind; they are not images.
_JUNK_NAMES = {"__MACOSX", "Thumbs.db", "desktop.ini"}

_Parts = tuple[str, ...]
# (path parts relative to the root, quoted name to show in errors, function returning the bytes)
_File = tuple[_Parts, str, Callable[[], bytes]]


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split()) or type(error).__name__


def _split_parts(name: str) -> _Parts:
    return tuple(p for p in name.replace("\\", "/").split("/") if p not in ("", "."))


def is_junk(parts: _Parts) -> bool:
    """Whether an entry's path parts hold a hidden entry (.DS_Store, ._AppleDouble files) or
    OS litter (__MACOSX, Thumbs.db...) anywhere: such entries are skipped."""
    return any(p.startswith(".") or p in _JUNK_NAMES for p in parts)


def _list_directory(root: str) -> tuple[set[_Parts], list[_File]]:
    dirs: set[_Parts] = set()
    files: list[_File] = []
    for here, dirnames, filenames in os.walk(root, followlinks=True):
        rel = _split_parts(os.path.relpath(here, root))
        for d in dirnames:
            dirs.add(rel + (d,))
        for f in filenames:
            full = os.path.join(here, f)
            # Bind `full` now: the lambda runs after the loop has moved on.
            files.append((rel + (f,), f"'{full}'", lambda full=full: _read_file(full)))
    return dirs, files


def _read_file(path: str) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as e:
        raise InputError(f"data_dir: cannot read image '{path}': {_one_line(e)}") from e


def _open_decompressed(path: str):
    """Opens a possibly compressed tar file as a plain byte stream, chosen by magic bytes.

    tarfile's own stream decompression ("r|*") takes a truncated .tar.gz (a half-finished
    copy) for a shorter, valid archive and silently loads part of the data. The gzip, bz2 and
    lzma readers raise EOFError when the compressed stream ends early, so we use them.
    """
    with open(path, "rb") as f:
        magic = f.read(6)
    if magic.startswith(b"\x1f\x8b"):
        return gzip.open(path, "rb")
    if magic.startswith(b"BZh"):
        return bz2.open(path, "rb")
    if magic.startswith(b"\xfd7zXZ\x00"):
        return lzma.open(path, "rb")
    return open(path, "rb")


def _list_tar(path: str) -> tuple[set[_Parts], list[_File]]:
    dirs: set[_Parts] = set()
    files: list[_File] = []
    try:
        # Stream mode ("r|"): one sequential pass through the (compressed) archive, reading
        # each member as it passes; random access into a .tar.gz would re-decompress.
        with _open_decompressed(path) as raw, tarfile.open(fileobj=raw, mode="r|") as tar:
            for member in tar:
                parts = _split_parts(member.name)
                if not parts:
                    continue
                if member.isdir():
                    dirs.add(parts)
                elif member.isfile():
                    data = tar.extractfile(member).read()
                    shown = f"'{member.name}' in '{path}'"
                    files.append((parts, shown, lambda data=data: data))
            # tarfile also ends quietly at a header cut short, so a copy truncated between
            # members would load with images missing. A complete archive has a zero block
            # (the end-of-archive marker) after its last member: insist on one. Draining the
            # stream also makes the decompressor check the compressed stream's own end.
            while raw.read(1 << 20):
                pass
            if raw.tell() < tar.offset + tarfile.BLOCKSIZE:
                raise tarfile.ReadError(
                    f"truncated: no end-of-archive marker after byte {tar.offset}"
                )
    except (tarfile.TarError, EOFError, zlib.error, lzma.LZMAError, OSError) as e:
        raise InputError(f"data_dir: corrupt or unreadable archive '{path}': {_one_line(e)}") from e
    return dirs, files


def _list_zip(path: str) -> tuple[set[_Parts], list[_File]]:
    dirs: set[_Parts] = set()
    files: list[_File] = []
    try:
        with zipfile.ZipFile(path) as zf:
            for info in zf.infolist():
                parts = _split_parts(info.filename)
                if not parts:
                    continue
                if info.is_dir():
                    dirs.add(parts)
                    continue
                try:
                    data = zf.read(info)
                # RuntimeError: encrypted member; NotImplementedError: unknown compression.
                except (
                    zipfile.BadZipFile,
                    zlib.error,
                    EOFError,
                    OSError,
                    RuntimeError,
                    NotImplementedError,
                ) as e:
                    raise InputError(
                        f"data_dir: corrupt member '{info.filename}' in archive '{path}': "
                        f"{_one_line(e)}"
                    ) from e
                shown = f"'{info.filename}' in '{path}'"
                files.append((parts, shown, lambda data=data: data))
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError) as e:
        raise InputError(f"data_dir: corrupt or unreadable archive '{path}': {_one_line(e)}") from e
    return dirs, files


def list_entries(path: str) -> tuple[set[_Parts], list[_File]]:
    """The folders and files of a directory or a tar/zip archive: `(dirs, files)`, each file a
    `(parts, shown, read)` triple (`read()` returns its bytes; `shown` names it in errors)."""
    if not os.path.exists(path):
        raise InputError(f"data_dir: no such file or directory: '{path}'")
    if os.path.isdir(path):
        return _list_directory(path)
    lower = path.lower()
    if os.path.isfile(path) and lower.endswith(TAR_SUFFIXES):
        return _list_tar(path)
    if os.path.isfile(path) and lower.endswith(ZIP_SUFFIXES):
        return _list_zip(path)
    raise InputError(
        f"data_dir: '{path}' is neither a directory nor a supported archive "
        f"({', '.join(TAR_SUFFIXES + ZIP_SUFFIXES)})"
    )


def _strip_wrapper(dirs: set[_Parts], files: list[_File]) -> tuple[set[_Parts], list[_File]]:
    """Drops one top-level folder that wraps the splits (`cifar10/train/...`), if there is one."""
    tops = {p[0] for p in dirs} | {p[0] for p, _, _ in files if len(p) > 1}
    if len(tops) != 1 or tops & set(SPLITS):
        return dirs, files
    # Files beside the wrapper (a README) are not part of the layout.
    return (
        {p[1:] for p in dirs if len(p) > 1},
        [(p[1:], shown, read) for p, shown, read in files if len(p) > 1],
    )


def _layout(path: str, dirs: set[_Parts], files: list[_File]) -> dict[str, dict[str, list[_File]]]:
    """Groups the files as `{split: {class_name: [files sorted by path]}}` and checks the layout."""
    layout: dict[str, dict[str, list[_File]]] = {}
    tops = sorted({p[0] for p in dirs} | {p[0] for p, _, _ in files})
    for split in SPLITS:
        if split not in tops:
            raise InputError(
                f"data_dir: no '{split}' split in '{path}' (expected "
                f"{split}/<class_name>/<image>); top-level entries found: {tops[:10]}"
            )
        classes: dict[str, list[_File]] = {p[1]: [] for p in dirs if len(p) >= 2 and p[0] == split}
        for entry in files:
            parts = entry[0]
            if parts[0] != split:
                continue
            if len(parts) == 2:
                raise InputError(
                    f"data_dir: file outside a class folder: '{'/'.join(parts)}' in '{path}' "
                    f"(expected {split}/<class_name>/<image>)"
                )
            # Deeper files belong to their class folder, as in torchvision's ImageFolder.
            classes.setdefault(parts[1], []).append(entry)
        if not classes:
            raise InputError(f"data_dir: split '{split}' in '{path}' has no class folders")
        for name, entries in classes.items():
            if not entries:
                raise InputError(
                    f"data_dir: class folder '{split}/{name}' in '{path}' has no images"
                )
            entries.sort(key=lambda entry: entry[0])
        layout[split] = classes
    train, test = set(layout["train"]), set(layout["test"])
    if train != test:
        raise InputError(
            f"data_dir: the train and test splits of '{path}' have different classes: "
            f"only in train: {sorted(train - test)}, only in test: {sorted(test - train)}"
        )
    return layout


def decode_image(data: bytes, shown: str) -> np.ndarray:
    """An image file's bytes as an RGB uint8 array; a file that does not decode is bad input."""
    # Imported here so that importing nasty_tf.data does not need Pillow.
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as image:
            # np.asarray forces the full decode inside this try, so truncated files fail here.
            # Skipping convert() for images already RGB (JPEGs) saves a copy per image.
            if image.mode != "RGB":
                image = image.convert("RGB")
            return np.asarray(image)
    except Exception as e:  # pylint: disable=broad-except
        # Any failure to decode a user's file (unknown format, truncation, decompression
        # bomb, bad header) is bad input, to be reported by name rather than as a traceback.
        raise InputError(f"data_dir: cannot decode image {shown}: {_one_line(e)}") from e


def in_memory(name: str, shape, dtype) -> np.ndarray:
    """The default `allocate` of the loaders: a plain array (`decoded_cache` passes files)."""
    del name
    return np.empty(shape, dtype)


def _decode_split(
    split: str,
    classes: dict[str, list[_File]],
    class_names: tuple[str, ...],
    reference: list,
    allocate: Callable = in_memory,
) -> tuple[np.ndarray, np.ndarray]:
    """Decodes one split into a preallocated uint8 array; `reference` holds the first image's
    shape and name, shared across splits so that train and test must agree too."""
    count = sum(len(classes[name]) for name in class_names)
    images = None
    labels = allocate(f"y_{split}", (count,), np.int32)
    i = 0
    for label, name in enumerate(class_names):
        for _, shown, read in classes[name]:
            array = decode_image(read(), shown)
            if not reference:
                reference.extend([array.shape, shown])
            if array.shape != reference[0]:
                (h, w, _), (rh, rw, _) = array.shape, reference[0]
                raise InputError(
                    f"data_dir: images differ in size: {shown} is {w}x{h} but "
                    f"{reference[1]} is {rw}x{rh}; all images must share one size"
                )
            if images is None:
                images = allocate(f"x_{split}", (count,) + reference[0], np.uint8)
            images[i] = array
            labels[i] = label
            i += 1
    return images, labels


def load_image_folder(path, allocate: Callable = in_memory) -> Dataset:
    """Loads an image-folder dataset from a directory or an archive.

    Args:
        path: a directory, or a `.tar.gz`/`.tgz`/`.tar`/`.tar.bz2`/`.tar.xz`/`.zip` archive,
            laid out as `train/<class>/<image>` and `test/<class>/<image>` (optionally inside
            one wrapping folder). Entries outside `train/` and `test/` (e.g. a `val/` split or
            a README) and hidden files are ignored.
        allocate: `allocate(name, shape, dtype)` returns the array that `name`
            ("x_train", "y_train", "x_test", "y_test") is decoded into; `decoded_cache`
            passes memory-mapped files.

    Returns:
        A `Dataset` named `"image_folder"`: RGB uint8 images, labels from the sorted class
        folder names, train-split mean/std, augmentation `"crop_flip"`.

    Raises:
        InputError: the path is missing, not a directory or supported archive, or corrupt;
            a split is missing or empty; a class folder is empty; the splits have different
            classes; an image cannot be decoded; or images differ in size.

    Example:
        >>> ds = load_image_folder("/work/shared/data/cifar10-jpeg.tar.gz")
        >>> ds.x_train.shape, ds.class_names[:2]
        ((50000, 32, 32, 3), ('airplane', 'automobile'))
    """
    path = os.fspath(path)
    dirs, files = list_entries(path)
    # Junk goes first, so that a zip's __MACOSX/ folder does not hide the wrapping folder.
    files = [entry for entry in files if not is_junk(entry[0])]
    dirs = {p for p in dirs if not is_junk(p)}
    dirs, files = _strip_wrapper(dirs, files)
    layout = _layout(path, dirs, files)
    class_names = tuple(sorted(layout["train"]))
    reference: list = []
    x_train, y_train = _decode_split("train", layout["train"], class_names, reference, allocate)
    x_test, y_test = _decode_split("test", layout["test"], class_names, reference, allocate)
    mean, std = channel_mean_std(x_train)
    return Dataset(
        name="image_folder",
        x_train=x_train,
        y_train=y_train,
        x_test=x_test,
        y_test=y_test,
        num_classes=len(class_names),
        class_names=class_names,
        mean=mean,
        std=std,
        augmentation="crop_flip",
    )
