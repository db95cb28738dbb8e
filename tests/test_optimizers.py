"""`make_optimizer`: the weight-decay modes against hand-computed SGD steps, and the
"multistep" learning-rate schedule (milestones as fractions of the run)."""

import keras
import numpy as np
import pytest

from nasty_tf.errors import InputError
from nasty_tf.training import ReferenceSGD, TrainConfig
from nasty_tf.training.optimizers import learning_rate_schedule, make_optimizer


def _two_steps(optimizer):
    variable = keras.Variable(np.array([1.0, -2.0], dtype="float32"))
    gradient = keras.ops.convert_to_tensor(np.array([0.2, 0.4], dtype="float32"))
    for _ in range(2):
        optimizer.apply_gradients([(gradient, variable)])
    return keras.ops.convert_to_numpy(variable)


def test_decoupled_mode_is_keras_sgd_with_decay_beside_momentum():
    config = TrainConfig(
        optimizer="sgd", learning_rate=0.1, weight_decay=0.5, weight_decay_mode="decoupled"
    )
    optimizer = make_optimizer(config, steps_per_epoch=10)
    assert type(optimizer) is keras.optimizers.SGD
    w, velocity, g = np.array([1.0, -2.0]), np.zeros(2), np.array([0.2, 0.4])
    for _ in range(2):  # w -= lr*wd*w; v = m*v - lr*g; w += v  (the decay never enters v)
        w = w - 0.1 * 0.5 * w
        velocity = 0.9 * velocity - 0.1 * g
        w = w + velocity
    np.testing.assert_allclose(_two_steps(optimizer), w, rtol=1e-5)


def test_coupled_mode_is_the_default_and_differs_from_decoupled():
    config = TrainConfig(optimizer="sgd", learning_rate=0.1, weight_decay=0.5)
    assert config.weight_decay_mode == "coupled"
    coupled = make_optimizer(config, steps_per_epoch=10)
    assert isinstance(coupled, ReferenceSGD) and coupled.l2 == 0.5
    decoupled = make_optimizer(config.replace(weight_decay_mode="decoupled"), steps_per_epoch=10)
    assert not np.allclose(_two_steps(coupled), _two_steps(decoupled))


def test_multistep_drops_at_the_milestone_fractions():
    # The reference's CIFAR-100 schedule: 0.1, x0.2 at epochs 60, 120, 160 of 200.
    config = TrainConfig(
        optimizer="sgd",
        learning_rate=0.1,
        epochs=200,
        lr_schedule="multistep",
        lr_milestones=(0.3, 0.6, 0.8),
        lr_decay=0.2,
    )
    schedule = learning_rate_schedule(config, steps_per_epoch=391)

    def rate_in_epoch(epoch):  # the rate of the first step of a 0-based epoch
        return float(schedule(epoch * 391))

    for epoch, expected in (
        (0, 0.1),
        (59, 0.1),
        (60, 0.02),
        (119, 0.02),
        (120, 0.004),
        (159, 0.004),
        (160, 0.0008),
        (199, 0.0008),
    ):
        assert rate_in_epoch(epoch) == pytest.approx(expected), epoch
    assert float(schedule(60 * 391 - 1)) == pytest.approx(0.1)  # last step of epoch 59


def test_milestones_are_validated_and_stored_as_a_tuple():
    config = TrainConfig(lr_schedule="multistep", lr_milestones=[0.5, 0.75])
    assert config.lr_milestones == (0.5, 0.75)
    with pytest.raises(InputError, match="^lr_milestones is required for lr_schedule=multistep"):
        TrainConfig(lr_schedule="multistep")
    with pytest.raises(InputError, match="^lr_milestones must be increasing fractions"):
        TrainConfig(lr_schedule="multistep", lr_milestones=(0.75, 0.5))
    with pytest.raises(InputError, match="^lr_milestones must be increasing fractions"):
        TrainConfig(lr_schedule="multistep", lr_milestones=(0.5, 1.0))
    with pytest.raises(InputError, match=r"^lr_decay must be in \(0, 1\]. Received: lr_decay=0.0"):
        TrainConfig(lr_decay=0.0)
    with pytest.raises(InputError, match="^weight_decay_mode must be one of"):
        TrainConfig(weight_decay_mode="adamw")


def test_warmup_cosine_ramps_linearly_then_follows_a_cosine_to_zero():
    config = TrainConfig(optimizer="sgd", learning_rate=0.4, epochs=10, lr_schedule="warmup_cosine")
    schedule = learning_rate_schedule(config, steps_per_epoch=100)  # 1,000 steps, 100 of warm-up
    rate = lambda step: float(schedule(step))  # noqa: E731
    assert rate(0) == pytest.approx(0.0)
    assert rate(50) == pytest.approx(0.2)
    assert rate(100) == pytest.approx(0.4)
    # Half-way through the 900 decay steps the cosine is at half the peak.
    assert rate(550) == pytest.approx(0.2, rel=1e-5)
    assert rate(1000) == pytest.approx(0.0, abs=1e-7)
