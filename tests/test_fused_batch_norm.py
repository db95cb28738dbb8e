"""FusedBatchNormalization computes what Keras' BatchNormalization does, on either backend,
except its moving variance, which averages the unbiased batch variance as PyTorch's does."""

import keras
import numpy as np
import pytest
from keras import ops

from nasty_tf import models
from nasty_tf.atomic_io import atomic_save_model
from nasty_tf.errors import InputError
from nasty_tf.models.fused_batch_norm import FusedBatchNormalization, batch_norm_class

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
    weights = [
        w for w in (getattr(layer, "gamma", None), getattr(layer, "beta", None)) if w is not None
    ]
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
    # PyTorch's update: running_var = 0.9 * 1 + 0.1 * unbiased batch variance (n = 8*5*5).
    pytorch_variance = 0.9 + 0.1 * images.reshape(-1, SHAPE[-1]).var(axis=0, ddof=1)
    np.testing.assert_allclose(results[1][3], pytorch_variance, rtol=1e-5)
    assert not np.allclose(results[0][3], pytorch_variance, rtol=1e-4)  # Keras': the biased one
    for name, expected, actual in zip(names, *results):
        if name in ("inference output", "moving variance"):
            continue  # they read the moving variance, checked above
        scale_of = max(float(np.abs(expected).max()), 1e-6)
        np.testing.assert_allclose(actual / scale_of, expected / scale_of, atol=2e-6, err_msg=name)
    # The update really moved the statistics (momentum 0.9 from zeros/ones).
    assert np.abs(results[1][2]).max() > 0.1


def test_other_ranks_compute_keras_outputs_and_pytorchs_moving_variance():
    # The plain CNN's BN1d at batch 128: n / (n - 1) = 128 / 127, 0.79% above Keras' update.
    features = np.random.RandomState(0).normal(1.0, 2.0, size=(128, 7)).astype("float32")
    keras_layer = keras.layers.BatchNormalization(momentum=0.9, epsilon=1e-5)
    fused_layer = FusedBatchNormalization(momentum=0.9, epsilon=1e-5)
    np.testing.assert_allclose(
        ops.convert_to_numpy(fused_layer(features, training=True)),
        ops.convert_to_numpy(keras_layer(features, training=True)),
        rtol=1e-5,
        atol=1e-6,
    )
    # By hand, as torch.nn.BatchNorm1d(7, momentum=0.1) updates running_mean / running_var.
    np.testing.assert_allclose(
        ops.convert_to_numpy(fused_layer.moving_mean), 0.1 * features.mean(axis=0), rtol=1e-5
    )
    batch_variance = features.var(axis=0, ddof=1)
    np.testing.assert_allclose(
        ops.convert_to_numpy(fused_layer.moving_variance), 0.9 + 0.1 * batch_variance, rtol=1e-5
    )
    keras_increment = ops.convert_to_numpy(keras_layer.moving_variance) - 0.9
    np.testing.assert_allclose(keras_increment, 0.1 * features.var(axis=0), rtol=1e-4)
    # Inference reads the moving statistics: Keras' layer holding ours computes the same.
    keras_layer.moving_variance.assign(fused_layer.moving_variance)
    np.testing.assert_allclose(
        ops.convert_to_numpy(fused_layer(features, training=False)),
        ops.convert_to_numpy(keras_layer(features, training=False)),
        rtol=1e-5,
        atol=1e-6,
    )


@pytest.mark.parametrize("policy", ["float32", "mixed_bfloat16"])
def test_inference_is_keras_bit_for_bit(policy):
    # What a trained network computes is what its plain-Keras release computes.
    images = _images()
    rng = np.random.RandomState(2)
    layers = [
        FusedBatchNormalization(momentum=0.9, epsilon=1e-5, dtype=policy),
        keras.layers.BatchNormalization(momentum=0.9, epsilon=1e-5, dtype=policy),
    ]
    statistics = [rng.normal(size=SHAPE[-1]), rng.uniform(0.5, 2.0, SHAPE[-1])]
    for layer in layers:
        layer.build(SHAPE)
        _set_affine(layer)
        layer.moving_mean.assign(statistics[0].astype("float32"))
        layer.moving_variance.assign(statistics[1].astype("float32"))
    fused, plain = (ops.convert_to_numpy(layer(images, training=False)) for layer in layers)
    np.testing.assert_array_equal(fused, plain)


def test_masked_calls_keep_keras_update():
    features = np.random.RandomState(0).normal(size=(2, 4, 3)).astype("float32")
    mask = np.ones((2, 4), dtype=bool)
    keras_layer, fused_layer = keras.layers.BatchNormalization(), FusedBatchNormalization()
    for layer in (keras_layer, fused_layer):
        layer(features, training=True, mask=mask)
    np.testing.assert_allclose(
        ops.convert_to_numpy(fused_layer.moving_variance),
        ops.convert_to_numpy(keras_layer.moving_variance),
        rtol=1e-6,
    )


def test_output_follows_the_mixed_precision_policy():
    layer = FusedBatchNormalization(dtype="mixed_bfloat16")
    outputs = layer(_images(), training=True)
    assert keras.backend.standardize_dtype(outputs.dtype) == "bfloat16"
    assert keras.backend.standardize_dtype(layer.moving_mean.dtype) == "float32"


def test_zoo_networks_use_it_and_save_it_as_keras_batch_normalization(tmp_path):
    network = models.get_model("preresnet20", 10, (32, 32, 3))
    norms = [l for l in network.layers if isinstance(l, keras.layers.BatchNormalization)]
    assert norms and all(type(l) is FusedBatchNormalization for l in norms)
    images = np.random.RandomState(0).randint(0, 256, (2, 32, 32, 3)).astype("uint8")
    network(images, training=True)  # moves the statistics away from their initial values
    expected = ops.convert_to_numpy(network(images, training=False))
    # A file written before plain-Keras saving holds the fused class and still loads.
    network.save(str(tmp_path / "fused.keras"))
    loaded = keras.models.load_model(str(tmp_path / "fused.keras"))
    assert type(loaded.get_layer(norms[0].name)) is FusedBatchNormalization
    np.testing.assert_allclose(
        ops.convert_to_numpy(loaded(images, training=False)), expected, rtol=1e-5, atol=1e-5
    )
    # What the project writes: Keras' own layer, same config and variables.
    atomic_save_model(network, str(tmp_path / "plain.keras"))
    plain = keras.models.load_model(str(tmp_path / "plain.keras"))
    for norm in norms:
        saved = plain.get_layer(norm.name)
        assert type(saved) is keras.layers.BatchNormalization
        assert saved.get_config() == norm.get_config()
        for mine, theirs in zip(norm.get_weights(), saved.get_weights()):
            np.testing.assert_array_equal(mine, theirs)
    np.testing.assert_allclose(
        ops.convert_to_numpy(plain(images, training=False)), expected, rtol=1e-5, atol=1e-5
    )
    assert type(network.get_layer(norms[0].name)) is FusedBatchNormalization  # left as it was


def test_batch_norm_kind_is_an_argument():
    assert batch_norm_class("fused") is FusedBatchNormalization
    assert batch_norm_class("keras") is keras.layers.BatchNormalization
    with pytest.raises(
        InputError, match=r"^batch_norm must be one of fused, keras\. Received: batch_norm='sync'$"
    ):
        batch_norm_class("sync")
