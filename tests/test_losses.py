"""The objectives against a numpy reference on random logits (paper eq. 1 and 2)."""

import keras
import numpy as np
import pytest

from nasty_tf import (
    InputError,
    KnowledgeDistillationLoss,
    SelfUnderminingLoss,
    TemperedKLDivergence,
)


def _log_softmax(z):
    z = z - z.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


def _kl(p_logits, q_logits, tau):
    """tau^2 KL(softmax(p/tau) || softmax(q/tau)) per row, in float64."""
    log_p, log_q = _log_softmax(p_logits / tau), _log_softmax(q_logits / tau)
    return tau**2 * (np.exp(log_p) * (log_p - log_q)).sum(axis=-1)


def _ce(labels, logits):
    return -_log_softmax(logits)[np.arange(len(labels)), labels]


@pytest.fixture
def batch():
    rng = np.random.default_rng(0)
    student = rng.normal(scale=3.0, size=(16, 10))
    teacher = rng.normal(scale=3.0, size=(16, 10))
    labels = rng.integers(0, 10, size=16)
    return labels, student, teacher


@pytest.mark.parametrize("tau", [1.0, 4.0, 20.0])
def test_tempered_kl_matches_numpy(batch, tau):
    _, student, teacher = batch
    value = keras.ops.convert_to_numpy(TemperedKLDivergence(tau)(teacher, student))
    np.testing.assert_allclose(value, _kl(teacher, student, tau).mean(), rtol=1e-5)


def test_tempered_kl_is_zero_for_equal_logits_and_positive_otherwise(batch):
    _, student, teacher = batch
    kl = TemperedKLDivergence(4.0)
    assert abs(float(keras.ops.convert_to_numpy(kl(student, student)))) < 1e-6
    assert float(keras.ops.convert_to_numpy(kl(teacher, student))) > 0


def test_tempered_kl_is_finite_for_huge_logits():
    big = np.array([[1e4, -1e4, 0.0], [-1e4, 1e4, 0.0]], dtype=np.float32)
    value = keras.ops.convert_to_numpy(TemperedKLDivergence(1.0)(big, big[::-1]))
    assert np.isfinite(value) and value > 1e3


@pytest.mark.parametrize("alpha,tau", [(0.9, 4.0), (0.0, 1.0), (1.0, 20.0), (0.5, 2.0)])
def test_kd_loss_matches_numpy(batch, alpha, tau):
    labels, student, teacher = batch
    value = KnowledgeDistillationLoss(alpha, tau)(labels, (student, teacher))
    expected = alpha * _kl(teacher, student, tau) + (1 - alpha) * _ce(labels, student)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(value), expected.mean(), rtol=1e-5)


@pytest.mark.parametrize("omega,tau", [(0.04, 4.0), (0.0, 4.0), (0.005, 20.0)])
def test_self_undermining_loss_matches_numpy(batch, omega, tau):
    labels, network, adversary = batch
    value = SelfUnderminingLoss(omega, tau)(labels, (network, adversary))
    # KL direction of the released code: KL(p_network || p_adversary).
    expected = _ce(labels, network) - omega * _kl(network, adversary, tau)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(value), expected.mean(), rtol=1e-5)


def test_sample_weight_is_honoured(batch):
    labels, network, adversary = batch
    weights = np.zeros(16)
    weights[:4] = 1.0
    value = SelfUnderminingLoss(0.04, 4.0)(labels, (network, adversary), sample_weight=weights)
    expected = (_ce(labels, network) - 0.04 * _kl(network, adversary, 4.0))[:4].sum() / 16
    np.testing.assert_allclose(keras.ops.convert_to_numpy(value), expected, rtol=1e-5)


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: TemperedKLDivergence(0.0), "temperature must be > 0"),
        (lambda: KnowledgeDistillationLoss(alpha=1.5), "alpha must be in [0, 1]"),
        (lambda: KnowledgeDistillationLoss(alpha=-0.1), "alpha must be in [0, 1]"),
        (lambda: KnowledgeDistillationLoss(temperature=-1.0), "temperature must be > 0"),
        (lambda: SelfUnderminingLoss(omega=-0.01), "omega must be >= 0"),
    ],
)
def test_bad_hyperparameters_are_rejected(make, message):
    with pytest.raises(InputError, match=message.replace("[", r"\[").replace("]", r"\]")):
        make()


@pytest.mark.parametrize(
    "loss",
    [TemperedKLDivergence(3.0), KnowledgeDistillationLoss(0.7, 5.0), SelfUnderminingLoss(0.1, 6.0)],
)
def test_losses_round_trip_through_config(loss):
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(loss))
    assert type(restored) is type(loss)
    assert restored.get_config() == loss.get_config()
