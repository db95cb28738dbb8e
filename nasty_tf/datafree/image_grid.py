"""Fig. 6-style image grids: one column per class, images inverted from a teacher.

A plain mosaic written with Pillow (no axes, like the paper's figure), so its pixel size is
exact: `grid_size(...)` says what it will be.
"""

import io

import numpy as np

from nasty_tf.atomic_io import atomic_write_bytes
from nasty_tf.errors import InputError

PAD = 2  # white pixels between and around the images


def grid_size(image_shape, num_classes, rows, scale=1):
    """`(width, height)` in pixels of the grid `save_image_grid` writes."""
    height, width = int(image_shape[0]) * scale, int(image_shape[1]) * scale
    return PAD + num_classes * (width + PAD), PAD + rows * (height + PAD)


def save_image_grid(images, labels, num_classes, path, rows=8, scale=1):
    """Writes a PNG mosaic with the first `rows` images of each class in that class's column.

    Args:
        images: uint8 `(N, H, W, C)` (C = 1 or 3); classes with fewer images leave grey cells.
        labels: `(N,)` class of each image (the inversion target, or the teacher's argmax).
        num_classes: number of columns.
        path: the PNG file (written atomically).
        rows: images per column.
        scale: integer nearest-neighbour upscaling of each image.

    Returns:
        `(width, height)` of the written image.
    """
    from PIL import Image

    images = np.asarray(images)
    labels = np.asarray(labels)
    if images.ndim != 4 or images.dtype != np.uint8 or len(images) != len(labels):
        raise InputError(
            "save_image_grid needs uint8 images (N, H, W, C) and N labels. "
            f"Received: images {images.dtype} {images.shape}, labels {labels.shape}"
        )
    if rows < 1 or scale < 1:
        raise InputError(f"rows and scale must be >= 1. Received: rows={rows}, scale={scale}")
    if images.shape[-1] == 1:
        images = np.repeat(images, 3, axis=-1)
    if scale > 1:
        images = images.repeat(scale, axis=1).repeat(scale, axis=2)
    height, width = images.shape[1:3]
    grid_width, grid_height = grid_size(images.shape[1:3], num_classes, rows)
    grid = np.full((grid_height, grid_width, 3), 255, dtype=np.uint8)
    for column in range(num_classes):
        chosen = np.flatnonzero(labels == column)[:rows]
        for row in range(rows):
            top, left = PAD + row * (height + PAD), PAD + column * (width + PAD)
            cell = images[chosen[row]] if row < len(chosen) else 128
            grid[top : top + height, left : left + width] = cell
    buffer = io.BytesIO()
    Image.fromarray(grid).save(buffer, format="PNG")
    atomic_write_bytes(path, buffer.getvalue())
    return grid_width, grid_height
