"""Tiny-ImageNet (200 classes, 64x64) from the official archive or its extracted folder.

Users download `tiny-imagenet-200.zip` themselves (nothing is downloaded here); `--data_dir`
is that zip, or the extracted `tiny-imagenet-200/` folder (or a folder holding it)::

    wnids.txt                          one wnid a line: the label order
    train/<wnid>/images/<name>.JPEG    500 a class (train/<wnid>/<wnid>_boxes.txt is ignored)
    val/images/<name>.JPEG             10,000 images
    val/val_annotations.txt            <name> TAB <wnid> TAB <box...>, one line an image

The labelled `val` split serves as the test split, as in the reference; the unlabelled
`test/` folder is ignored. Images are decoded with Pillow (no TensorFlow, so the JAX backend
can use them too); the few greyscale JPEGs are converted to RGB. Every way the input can be
wrong ends in one `InputError` line naming the file.
"""

from __future__ import annotations

import os
from collections.abc import Callable

import numpy as np

from nasty_tf.data.dataset import Dataset
from nasty_tf.data.image_folder import decode_image, in_memory, is_junk, list_entries
from nasty_tf.errors import InputError

# The reference's normalisation for Tiny-ImageNet (DESIGN.md section 2), not computed here:
# numbers stay comparable with the paper's even on a training subset.
TINY_IMAGENET_MEAN = (0.4802, 0.4481, 0.3975)
TINY_IMAGENET_STD = (0.2302, 0.2265, 0.2262)
IMAGE_SHAPE = (64, 64, 3)
_LAYOUT = (
    "expected the tiny-imagenet-200 layout: wnids.txt, train/<wnid>/images/*.JPEG, "
    "val/images/*.JPEG, val/val_annotations.txt"
)

_Parts = tuple[str, ...]


def _find_root(path: str, files: dict[_Parts, tuple]) -> _Parts:
    """The folder that holds `wnids.txt` (the archive's `tiny-imagenet-200/`, or the top)."""
    roots = sorted((parts[:-1] for parts in files if parts[-1] == "wnids.txt"), key=len)
    if not roots:
        raise InputError(f"data_dir: no wnids.txt in '{path}' ({_LAYOUT})")
    if len(roots) > 1 and len(roots[0]) == len(roots[1]):
        found = ", ".join("/".join(root + ("wnids.txt",)) for root in roots[:3])
        raise InputError(f"data_dir: several wnids.txt in '{path}' ({found}); point at one dataset")
    return roots[0]


def _text(entry: tuple) -> list[str]:
    _, shown, read = entry
    try:
        return read().decode("utf-8").splitlines()
    except UnicodeDecodeError as e:
        raise InputError(f"data_dir: {shown} is not UTF-8 text: {e.reason}") from e


def _read_wnids(entry: tuple) -> tuple[str, ...]:
    wnids = [line.strip() for line in _text(entry) if line.strip()]
    if not wnids:
        raise InputError(f"data_dir: {entry[1]} lists no wnids")
    if len(set(wnids)) != len(wnids):
        repeated = sorted({w for w in wnids if wnids.count(w) > 1})
        raise InputError(f"data_dir: {entry[1]} lists a wnid twice: {repeated[:5]}")
    return tuple(wnids)


def _train_entries(path, files, root, wnids) -> list[tuple[tuple, int]]:
    """(file entry, label) of every training image, by wnid order, then file name."""
    by_wnid: dict[str, list[tuple]] = {wnid: [] for wnid in wnids}
    depth = len(root)
    for parts, entry in files.items():
        rel = parts[depth:]
        if parts[:depth] != root or len(rel) < 3 or rel[0] != "train":
            continue
        wnid = rel[1]
        if wnid not in by_wnid:
            raise InputError(
                f"data_dir: {entry[1]} is under train/{wnid}, a wnid that wnids.txt does not list"
            )
        # train/<wnid>/<wnid>_boxes.txt holds bounding boxes, not an image.
        if len(rel) == 4 and rel[2] == "images":
            by_wnid[wnid].append(entry)
    entries = []
    for label, wnid in enumerate(wnids):
        if not by_wnid[wnid]:
            raise InputError(
                f"data_dir: no training images for wnid {wnid} in '{path}' "
                f"(expected train/{wnid}/images/*.JPEG)"
            )
        entries.extend((entry, label) for entry in sorted(by_wnid[wnid], key=lambda e: e[0]))
    return entries


def _val_entries(path, files, root, wnids) -> list[tuple[tuple, int]]:
    """(file entry, label) of every validation image, in the annotation file's order."""
    annotations = files.get(root + ("val", "val_annotations.txt"))
    if annotations is None:
        raise InputError(
            f"data_dir: no val/val_annotations.txt in '{path}' (the labels of the val split)"
        )
    images = {
        parts[-1]: entry for parts, entry in files.items() if parts[:-1] == root + ("val", "images")
    }
    label_of = {wnid: label for label, wnid in enumerate(wnids)}
    shown = annotations[1]
    entries, seen = [], set()
    for number, line in enumerate(_text(annotations), start=1):
        if not line.strip():
            continue
        fields = line.split("\t") if "\t" in line else line.split()
        if len(fields) < 2:
            raise InputError(
                f"data_dir: {shown} line {number}: expected '<image> TAB <wnid> ...', got {line!r}"
            )
        name, wnid = fields[0].strip(), fields[1].strip()
        if wnid not in label_of:
            raise InputError(
                f"data_dir: {shown} line {number}: unknown wnid {wnid!r} (not in wnids.txt)"
            )
        if name not in images:
            raise InputError(f"data_dir: {shown} line {number}: no image val/images/{name}")
        if name in seen:
            raise InputError(f"data_dir: {shown} line {number}: {name} is annotated twice")
        seen.add(name)
        entries.append((images[name], label_of[wnid]))
    unlabelled = sorted(set(images) - seen)
    if unlabelled:
        raise InputError(
            f"data_dir: val/images/{unlabelled[0]} has no line in {shown} "
            f"({len(unlabelled)} unlabelled images)"
        )
    if not entries:
        raise InputError(f"data_dir: {shown} annotates no images")
    return entries


def _decode_all(
    split: str, entries: list[tuple[tuple, int]], allocate: Callable
) -> tuple[np.ndarray, np.ndarray]:
    # Preallocated: 100,000 images are 1.2 GB as uint8, and a list of arrays stacked at the
    # end would need twice that.
    images = allocate(f"x_{split}", (len(entries),) + IMAGE_SHAPE, np.uint8)
    labels = allocate(f"y_{split}", (len(entries),), np.int32)
    for i, ((_, shown, read), label) in enumerate(entries):
        array = decode_image(read(), shown)
        if array.shape != IMAGE_SHAPE:
            height, width = array.shape[:2]
            raise InputError(
                f"data_dir: image {shown} is {width}x{height}; Tiny-ImageNet images are 64x64"
            )
        images[i] = array
        labels[i] = label
    return images, labels


def load_tiny_imagenet(path, allocate: Callable = in_memory) -> Dataset:
    """Loads Tiny-ImageNet from `tiny-imagenet-200.zip` or the extracted folder.

    Args:
        path: the official zip (tar archives work too), the extracted `tiny-imagenet-200/`
            folder, or a folder that holds it.
        allocate: as in `image_folder.load_image_folder`.

    Returns:
        A `Dataset` named `"tiny_imagenet"`: uint8 64x64x3 images, labels in `wnids.txt`
        order (class names are the wnids), the val split as test split, the reference's
        mean/std and augmentation `"rotate_flip"`.

    Raises:
        InputError: the path is missing or corrupt; `wnids.txt` or `val/val_annotations.txt`
            is missing or malformed; an annotation names an unknown wnid or a missing image;
            a wnid has no training images; an image cannot be decoded or is not 64x64.

    Example:
        >>> ds = load_tiny_imagenet("tiny-imagenet-200.zip")
        >>> ds.x_train.shape, ds.x_test.shape
        ((100000, 64, 64, 3), (10000, 64, 64, 3))
    """
    path = os.fspath(path)
    _, listed = list_entries(path)
    files = {entry[0]: entry for entry in listed if not is_junk(entry[0])}
    root = _find_root(path, files)
    wnids = _read_wnids(files[root + ("wnids.txt",)])
    # Both splits are checked before any decoding: a bad annotation file should not cost a
    # 100,000-image decode first.
    train_entries = _train_entries(path, files, root, wnids)
    val_entries = _val_entries(path, files, root, wnids)
    x_train, y_train = _decode_all("train", train_entries, allocate)
    x_test, y_test = _decode_all("test", val_entries, allocate)
    return Dataset(
        name="tiny_imagenet",
        x_train=x_train,
        y_train=y_train,
        x_test=x_test,
        y_test=y_test,
        num_classes=len(wnids),
        class_names=wnids,
        mean=TINY_IMAGENET_MEAN,
        std=TINY_IMAGENET_STD,
        augmentation="rotate_flip",
    )
