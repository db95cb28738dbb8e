"""NastyTeacher and KnowledgeDistiller: frozen partner, shared batch, logging, saving."""

import keras
import numpy as np
import pytest

from nasty_tf import InputError, KnowledgeDistiller, NastyTeacher, SelfUnderminingLoss
from nasty_tf.data import make_augmenter
from nasty_tf.losses import KnowledgeDistillationLoss


def dense_net(seed, classes=5, regularise=False, batch_norm=True):
    """A tiny 8x8x3 classifier; BatchNorm makes inference vs training mode observable."""
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Rescaling(1 / 255.0)(inputs)
    x = keras.layers.Flatten()(x)
    regulariser = keras.regularizers.L2(1e-2) if regularise else None
    x = keras.layers.Dense(16, kernel_regularizer=regulariser)(x)
    if batch_norm:
        x = keras.layers.BatchNormalization()(x)
    x = keras.layers.ReLU()(x)
    return keras.Model(inputs, keras.layers.Dense(classes, dtype="float32")(x))


def data(n=64, classes=5, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, size=(n, 8, 8, 3)).astype("uint8"), rng.integers(0, classes, n)


WRAPPERS = [
    lambda net, frozen, **kw: NastyTeacher(net, frozen, omega=0.1, temperature=4.0, **kw),
    lambda net, frozen, **kw: KnowledgeDistiller(net, frozen, alpha=0.9, temperature=4.0, **kw),
]


@pytest.mark.parametrize("make", WRAPPERS)
def test_frozen_partner_is_untouched_by_fit(make):
    frozen = dense_net(1)
    before = [
        keras.ops.convert_to_numpy(w) for w in frozen.weights
    ]  # BN moving statistics included
    net = dense_net(2)
    model = make(net, frozen, augmenter=make_augmenter("crop_flip", seed=3))
    model.compile(optimizer=keras.optimizers.SGD(0.1))
    x, y = data()
    net_before = [keras.ops.convert_to_numpy(w) for w in net.trainable_weights]
    model.fit(x, y, epochs=2, batch_size=16, verbose=0)
    for old, new in zip(before, frozen.weights):
        np.testing.assert_array_equal(old, keras.ops.convert_to_numpy(new))
    assert any(
        not np.array_equal(a, keras.ops.convert_to_numpy(b))
        for a, b in zip(net_before, net.trainable_weights)
    )
    frozen_ids = {id(v) for v in frozen.weights}
    assert model.trainable_weights and not any(id(v) in frozen_ids for v in model.trainable_weights)


@pytest.mark.parametrize("make", WRAPPERS)
def test_both_nets_see_the_same_augmented_batch(make):
    # Two BN-free nets with identical weights give identical logits if and only if they
    # received identical images: a second, independent augmentation would break equality.
    net, frozen = dense_net(7, batch_norm=False), dense_net(7, batch_norm=False)
    model = make(net, frozen, augmenter=make_augmenter("crop_flip", seed=1))
    x, _ = data(32)
    out = model(x, training=True)
    logits, frozen_logits = (
        keras.ops.convert_to_numpy(out[k]) for k in ("logits", "frozen_logits")
    )
    np.testing.assert_array_equal(logits, frozen_logits)
    unaugmented = keras.ops.convert_to_numpy(net(x.astype("float32")))
    assert not np.allclose(logits, unaugmented), "the augmenter did not change the batch"
    # Inference mode: no augmentation at all.
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(model(x, training=False)["logits"]), unaugmented, rtol=1e-5
    )


def test_compute_loss_is_the_objective_plus_the_networks_regularisation():
    net, adversary = dense_net(2, regularise=True), dense_net(1, regularise=True)
    model = NastyTeacher(net, adversary, omega=0.2, temperature=3.0)
    x, y = data(16)
    out = model(x, training=False)
    loss = model.compute_loss(x=x, y=y, y_pred=out, training=False)
    objective = SelfUnderminingLoss(0.2, 3.0)(y, (out["logits"], out["frozen_logits"]))
    regularisation = sum(keras.ops.convert_to_numpy(l) for l in net.losses)
    assert regularisation > 0
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(loss),
        keras.ops.convert_to_numpy(objective) + regularisation,
        rtol=1e-5,
    )


def test_kd_compute_loss_matches_eq1():
    student, teacher = dense_net(2), dense_net(1)
    model = KnowledgeDistiller(student, teacher, alpha=0.7, temperature=5.0)
    x, y = data(16)
    out = model(x, training=False)
    loss = model.compute_loss(x=x, y=y, y_pred=out, training=False)
    expected = KnowledgeDistillationLoss(0.7, 5.0)(y, (out["logits"], out["frozen_logits"]))
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(loss), keras.ops.convert_to_numpy(expected), rtol=1e-5
    )


@pytest.mark.parametrize("make", WRAPPERS)
def test_history_logs_ce_kl_and_accuracy_separately(make):
    model = make(dense_net(2), dense_net(1))
    model.compile(optimizer="adam")
    x, y = data()
    history = model.fit(x, y, epochs=1, batch_size=32, validation_data=(x, y), verbose=0).history
    for key in ("loss", "ce", "kl", "accuracy", "val_ce", "val_kl", "val_accuracy"):
        assert key in history and np.isfinite(history[key][0]), key
    assert history["kl"][0] > 0


def test_nasty_training_grows_the_adversarial_kl():
    adversary = dense_net(1)
    model = NastyTeacher(dense_net(2), adversary, omega=0.5, temperature=4.0)
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    x, y = data(128)
    history = model.fit(x, y, epochs=8, batch_size=32, verbose=0).history
    assert history["kl"][-1] > 2 * history["kl"][0]


@pytest.mark.parametrize("make", WRAPPERS)
def test_keras_file_round_trip(make, tmp_path):
    model = make(dense_net(2), dense_net(1), augmenter=make_augmenter("crop", seed=0))
    model.compile(optimizer="adam")
    x, y = data()
    model.fit(x, y, epochs=1, batch_size=32, verbose=0)
    path = str(tmp_path / "wrapper.keras")
    model.save(path)
    restored = keras.saving.load_model(path)
    assert type(restored) is type(model)
    assert restored.objective.get_config() == model.objective.get_config()
    assert restored.augmenter is not None
    for key in ("logits", "frozen_logits"):
        np.testing.assert_allclose(
            keras.ops.convert_to_numpy(restored(x)[key]),
            keras.ops.convert_to_numpy(model(x)[key]),
            rtol=1e-6,
        )


def test_mismatched_partner_is_rejected():
    with pytest.raises(InputError, match="number of classes"):
        NastyTeacher(dense_net(2, classes=5), dense_net(1, classes=7))
    with pytest.raises(InputError, match="alpha must be in"):
        KnowledgeDistiller(dense_net(2), dense_net(1), alpha=2.0)


@pytest.mark.parametrize("make", WRAPPERS)
def test_no_gradient_reaches_the_frozen_partner(make):
    if keras.backend.backend() != "tensorflow":
        pytest.skip("GradientTape check; the JAX trainer only differentiates trainable_weights")
    import tensorflow as tf

    frozen = dense_net(1)
    model = make(dense_net(2), frozen)
    x, y = data(16)
    with tf.GradientTape(persistent=True) as tape:
        loss = model.compute_loss(x=x, y=y, y_pred=model(x, training=True))
    frozen_grads = tape.gradient(loss, [v.value for v in frozen.weights])
    assert all(g is None for g in frozen_grads)
    network_grads = tape.gradient(loss, [v.value for v in model.network.trainable_weights])
    assert all(g is not None for g in network_grads)
