"""How synthesised images reach a teacher that takes pixels in [0, 255].

The authors' DAFL generator and DeepInversion's image batch live in the teacher's *normalised*
input space: DAFL's generator ends in a BatchNorm without affine (about zero mean, unit
variance per channel), DeepInversion starts from `randn`, and both feed the result straight to
a teacher trained on `(x - mean) / std` inputs. Our networks take pixels and normalise
themselves (DESIGN.md section 6), so a synthesised batch `z` is mapped back through the exact
inverse of the teacher's own pixel normalisation layer (`keras.layers.Normalization`, or the
`PixelNormalization` of older files), `pixels = 255 * (z * std + mean)`.
The teacher then sees exactly `z`, as in the reference code, and gradients pass unchanged
(up to a constant factor) through the affine map. Pixels are *not* clipped to [0, 255] for the
teacher or the student (the reference does not clamp either); only the image grid clips.
"""

import numpy as np
from keras import ops

from nasty_tf.errors import InputError
from nasty_tf.models.normalization import pixel_statistics


class PixelSpace:
    """The affine map between a teacher's normalised input space and pixels.

    Args:
        teacher: a network of the zoo, or any model holding a pixel normalisation layer that
            `nasty_tf.models.pixel_statistics` reads.

    Raises:
        InputError: the teacher has no pixel normalisation layer.

    Example:
        >>> space = PixelSpace(teacher)
        >>> pixels = space.to_pixels(keras.random.normal((8, 32, 32, 3)))
    """

    def __init__(self, teacher):
        statistics = pixel_statistics(teacher)
        if statistics is None:
            raise InputError(
                "the teacher has no pixel normalisation layer (keras.layers.Normalization), so "
                f"the data-free attacks cannot tell its input scale. Received: a model named "
                f"{teacher.name!r}"
            )
        self.mean, self.std = statistics

    def to_pixels(self, normalised):
        """`255 * (z * std + mean)`, per channel (a tensor in, a tensor out)."""
        mean = np.asarray(self.mean, dtype="float32")
        std = np.asarray(self.std, dtype="float32")
        return (ops.cast(normalised, "float32") * std + mean) * 255.0

    def to_uint8(self, normalised):
        """Numpy uint8 pixels for display: mapped, then clipped to [0, 255]."""
        pixels = ops.convert_to_numpy(self.to_pixels(normalised))
        return np.clip(np.rint(pixels), 0, 255).astype(np.uint8)
