"""DAFL's generator (Chen et al., ICCV 2019; the authors' `DAFL_train.py`, CIFAR setting).

latent -> dense(128 * (H/4) * (W/4)) -> reshape -> BN -> upsample x2 -> conv3x3(128) ->
BN(eps 0.8) -> LeakyReLU(0.2) -> upsample x2 -> conv3x3(64) -> BN(eps 0.8) -> LeakyReLU(0.2)
-> conv3x3(channels) -> tanh -> BN without affine (no gamma, no beta).

Quirk kept on purpose (DESIGN.md section 2): the authors write `nn.BatchNorm2d(128, 0.8)`,
whose second positional argument is *eps*, not momentum, so those two BNs have epsilon 0.8.
PyTorch's BN momentum 0.1 is Keras' 0.9; the other BNs keep PyTorch's eps 1e-5. Upsampling is
nearest-neighbour (`F.interpolate`'s default). Kernels use Keras' glorot-uniform default
(PyTorch: kaiming-uniform(a=sqrt(5))), as in the rest of the zoo.

The output lives in the teacher's normalised input space (the final BN makes it about zero
mean, unit variance per channel); `PixelSpace.to_pixels` maps it to the pixels our networks take.
"""

import keras
from keras import layers

from nasty_tf.errors import InputError

_MOMENTUM = 0.9  # PyTorch's default momentum 0.1


def dafl_generator(latent_dim=1000, image_shape=(32, 32, 3), name="dafl_generator"):
    """Builds DAFL's generator as a Functional model.

    Args:
        latent_dim: size of the Gaussian latent vector (the authors: 1000 for CIFAR).
        image_shape: `(H, W, C)` of the images to make; H and W divisible by 4.
        name: the model's name.

    Returns:
        A `keras.Model` from `(batch, latent_dim)` to `(batch, H, W, C)` normalised images.

    Example:
        >>> generator = dafl_generator(latent_dim=100)
        >>> generator(keras.random.normal((4, 100))).shape
        (4, 32, 32, 3)
    """
    if int(latent_dim) < 1:
        raise InputError(f"latent_dim must be >= 1. Received: latent_dim={latent_dim}")
    height, width, channels = (int(d) for d in image_shape)
    if height % 4 or width % 4:
        raise InputError(
            f"DAFL's generator needs image sides divisible by 4. Received: image_shape={tuple(image_shape)}"
        )
    latent = keras.Input(shape=(int(latent_dim),), name="latent")
    x = layers.Dense(128 * (height // 4) * (width // 4), name="l1")(latent)
    x = layers.Reshape((height // 4, width // 4, 128), name="l1_reshape")(x)
    x = layers.BatchNormalization(momentum=_MOMENTUM, epsilon=1e-5, name="bn0")(x)
    x = layers.UpSampling2D(2, interpolation="nearest", name="up1")(x)
    x = layers.Conv2D(128, 3, padding="same", name="conv1")(x)
    x = layers.BatchNormalization(momentum=_MOMENTUM, epsilon=0.8, name="bn1")(x)
    x = layers.LeakyReLU(0.2, name="lrelu1")(x)
    x = layers.UpSampling2D(2, interpolation="nearest", name="up2")(x)
    x = layers.Conv2D(64, 3, padding="same", name="conv2")(x)
    x = layers.BatchNormalization(momentum=_MOMENTUM, epsilon=0.8, name="bn2")(x)
    x = layers.LeakyReLU(0.2, name="lrelu2")(x)
    x = layers.Conv2D(channels, 3, padding="same", name="conv3")(x)
    x = layers.Activation("tanh", name="tanh")(x)
    images = layers.BatchNormalization(
        momentum=_MOMENTUM, epsilon=1e-5, center=False, scale=False, name="bn_out"
    )(x)
    return keras.Model(latent, images, name=name)
