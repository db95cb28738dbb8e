"""FusedBatchNormalization computes what Keras' BatchNormalization does, on either backend."""

import keras
import numpy as np
import pytest
from keras import ops

from nasty_tf import models
from nasty_tf.errors import InputError
from nasty_tf.models.fused_batch_norm import FusedBatchNormalization, zoo_batch_norm

SHAPE = (8, 5, 5, 6)


def _images(seed=0):
    return np.random.RandomState(seed).normal(2.0, 3.0, SHAPE).astype("float32")


def _set_affine(layer):
    channels = SHAPE[-1]
    if layer.scale:
        layer.gamma.assign(np.linspace(0.5, 2.0, channels).astype("float32"))
    if layer.center:
        layer.beta.assign(np.linspace(-1.0, 1.0, channels).astype("float32"))


def _training_pass(layer, images, upstream):
    """Training-mode output, gradients wrt input/gamma/beta, then inference output and stats."""
    weights = [w for w in (getattr(layer, "gamma", None), getattr(layer, "beta", None)) if w is not None]
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        x = tf.constant(images)
        with tf.GradientTape() as tape:
            tape.watch(x)
            outputs = layer(x, training=True)
            loss = tf.reduce_sum(outputs * upstream)
        gradients = tape.gradient(loss, [x] + weights)
    else:
        import jax

        values = [w.value for w in weights]

        def loss_fn(x, values):
            # Stateless so that jax can differentiate; the moving statistics are updated below.
            outputs, _ = layer.stateless_call(
                values, [v.value for v in layer.non_trainable_variables], x, training=True
            )
            return ops.sum(outputs * upstream), outputs

        (_, outputs), (grad_x, grad_w) = jax.value_and_grad(loss_fn, argnums=(0, 1), has_aux=True)(
            images, values
        )
        gradients = [grad_x] + list(grad_w)
        layer(images, training=True)  # the moving-statistics update
    inference = layer(images, training=False)
    stats = [layer.moving_mean, layer.moving_variance]
    return [ops.convert_to_numpy(t) for t in [outputs, inference, *stats, *gradients]]


@pytest.mark.parametrize("center,scale", [(True, True), (False, True), (True, False)])
def test_matches_keras_batch_normalization(center, scale):
    images = _images()
    upstream = np.random.RandomState(1).normal(size=SHAPE).astype("float32")
    results = []
    for layer_class in (keras.layers.BatchNormalization, FusedBatchNormalization):
        layer = layer_class(momentum=0.9, epsilon=1e-5, center=center, scale=scale)
        layer.build(SHAPE)
        _set_affine(layer)
        results.append(_training_pass(layer, images, upstream))
    names = ["training output", "inference output", "moving mean", "moving variance"]
    names += ["grad input"] + ["grad gamma"] * scale + ["grad beta"] * center
    assert len(results[1]) == len(names)
    for name, expected, actual in zip(names, *results):
        scale_of = max(float(np.abs(expected).max()), 1e-6)
        np.testing.assert_allclose(actual / scale_of, expected / scale_of, atol=2e-6, err_msg=name)
    # The update really moved the statistics (momentum 0.9 from zeros/ones).
    assert np.abs(results[1][2]).max() > 0.1


def test_other_ranks_fall_back_to_keras():
    features = np.random.RandomState(0).normal(size=(16, 7)).astype("float32")
    keras_layer, fused_layer = keras.layers.BatchNormalization(), FusedBatchNormalization()
    for training in (True, False):
        np.testing.assert_allclose(
            ops.convert_to_numpy(fused_layer(features, training=training)),
            ops.convert_to_numpy(keras_layer(features, training=training)),
            rtol=1e-5,
            atol=1e-6,
        )


def test_output_follows_the_mixed_precision_policy():
    layer = FusedBatchNormalization(dtype="mixed_bfloat16")
    outputs = layer(_images(), training=True)
    assert keras.backend.standardize_dtype(outputs.dtype) == "bfloat16"
    assert keras.backend.standardize_dtype(layer.moving_mean.dtype) == "float32"


def test_zoo_networks_use_it_and_it_survives_a_keras_file(tmp_path):
    network = models.get_model("resnet18", 10, (32, 32, 3))
    norms = [l for l in network.layers if isinstance(l, keras.layers.BatchNormalization)]
    assert norms and all(isinstance(l, FusedBatchNormalization) for l in norms)
    images = np.random.RandomState(0).randint(0, 256, (2, 32, 32, 3)).astype("uint8")
    network(images, training=True)  # moves the statistics away from their initial values
    path = str(tmp_path / "resnet18.keras")
    network.save(path)
    loaded = keras.models.load_model(path)
    assert isinstance(loaded.get_layer(norms[0].name), FusedBatchNormalization)
    np.testing.assert_allclose(
        ops.convert_to_numpy(loaded(images, training=False)),
        ops.convert_to_numpy(network(images, training=False)),
        rtol=1e-5,
        atol=1e-5,
    )


def test_zoo_batch_norm_builds_with_keras_layer_inside_only():
    with zoo_batch_norm("keras"):
        plain = models.get_model("cnn", 10, (32, 32, 3))
    fused = models.get_model("cnn", 10, (32, 32, 3))
    norm_types = lambda network: {type(l) for l in network.layers if isinstance(l, keras.layers.BatchNormalization)}
    assert norm_types(plain) == {keras.layers.BatchNormalization}
    assert norm_types(fused) == {FusedBatchNormalization}
    with pytest.raises(InputError, match="--batch_norm"):
        with zoo_batch_norm("sync"):
            pass
