"""Optimizers and learning-rate schedules with the reference's semantics."""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="nasty_tf")
class ReferenceSGD(keras.optimizers.SGD):
    """SGD whose weight decay is PyTorch's: `g += weight_decay * w` before momentum.

    Keras' own `weight_decay` is decoupled (`w -= lr * wd * w`), a much weaker decay with
    momentum 0.9 (DESIGN.md section 3). This one applies to every parameter, BatchNorm
    gamma/beta and biases included, as `torch.optim.SGD` does.

    Example:
        >>> optimizer = ReferenceSGD(learning_rate=0.1, momentum=0.9, l2=5e-4)
    """

    def __init__(self, learning_rate=0.1, momentum=0.9, l2=5e-4, **kwargs):
        super().__init__(learning_rate=learning_rate, momentum=momentum, **kwargs)
        self.l2 = float(l2)

    def update_step(self, gradient, variable, learning_rate):
        if self.l2:
            gradient = gradient + ops.cast(self.l2, variable.dtype) * variable
        super().update_step(gradient, variable, learning_rate)

    def get_config(self):
        return {**super().get_config(), "l2": self.l2}


# PyTorch's `torch.optim.Adam` default; Keras' is 1e-7.
ADAM_EPSILON = 1e-8


@keras.saving.register_keras_serializable(package="nasty_tf")
class ReferenceAdam(keras.optimizers.Adam):
    """Adam with PyTorch's update and epsilon (1e-8), as `torch.optim.Adam` computes it.

    Keras adds epsilon to `sqrt(v)` before the bias correction (`lr * sqrt(1 - b2^t) /
    (1 - b1^t) * m / (sqrt(v) + eps)`), PyTorch after it (`lr / (1 - b1^t) * m /
    (sqrt(v) / sqrt(1 - b2^t) + eps)`): the same step only once `1 - b2^t` is near 1, thousands
    of steps in. This one takes PyTorch's form, so that its epsilon means what the reference's
    does: the Adam of the reference's plain-CNN runs, DAFL's generator and DeepInversion's
    images.

    Example:
        >>> optimizer = ReferenceAdam(learning_rate=1e-3)
    """

    def __init__(self, learning_rate=1e-3, epsilon=ADAM_EPSILON, **kwargs):
        super().__init__(learning_rate=learning_rate, epsilon=epsilon, **kwargs)

    def update_step(self, gradient, variable, learning_rate):
        lr = ops.cast(learning_rate, variable.dtype)
        gradient = ops.cast(gradient, variable.dtype)
        step = ops.cast(self.iterations + 1, variable.dtype)
        correction_1 = 1 - ops.power(ops.cast(self.beta_1, variable.dtype), step)
        correction_2 = 1 - ops.power(ops.cast(self.beta_2, variable.dtype), step)
        m = self._momentums[self._get_variable_index(variable)]
        v = self._velocities[self._get_variable_index(variable)]
        self.assign_add(m, ops.multiply(ops.subtract(gradient, m), 1 - self.beta_1))
        self.assign_add(v, ops.multiply(ops.subtract(ops.square(gradient), v), 1 - self.beta_2))
        if self.amsgrad:
            v_hat = self._velocity_hats[self._get_variable_index(variable)]
            self.assign(v_hat, ops.maximum(v_hat, v))
            v = v_hat
        denominator = ops.sqrt(v) / ops.sqrt(correction_2) + self.epsilon
        self.assign_sub(variable, ops.divide(ops.multiply(m, lr / correction_1), denominator))


# Share of a "warmup_cosine" run spent ramping the rate up from zero.
WARMUP_FRACTION = 0.1
# "step": the reference's x0.1 at epochs 80 and 120 of 160, as fractions of the run.
STEP_MILESTONES = (0.5, 0.75)
STEP_DECAY = 0.1


def learning_rate_schedule(config, steps_per_epoch):
    """The learning rate (a float or a Keras schedule) that `config` asks for."""
    total_steps = max(1, config.epochs * steps_per_epoch)
    if config.lr_schedule == "cosine":
        return keras.optimizers.schedules.CosineDecay(config.learning_rate, total_steps)
    if config.lr_schedule == "step":
        return multistep_schedule(
            config.learning_rate, STEP_MILESTONES, STEP_DECAY, config.epochs, steps_per_epoch
        )
    if config.lr_schedule == "multistep":
        return multistep_schedule(
            config.learning_rate,
            config.lr_milestones,
            config.lr_decay,
            config.epochs,
            steps_per_epoch,
        )
    if config.lr_schedule == "warmup_cosine":
        # Large batches at a high rate diverge in the first steps without the ramp.
        warmup_steps = max(1, round(WARMUP_FRACTION * total_steps))
        return keras.optimizers.schedules.CosineDecay(
            0.0,
            max(1, total_steps - warmup_steps),
            warmup_target=config.learning_rate,
            warmup_steps=warmup_steps,
        )
    return config.learning_rate


def multistep_schedule(learning_rate, milestones, decay, epochs, steps_per_epoch):
    """PyTorch's `MultiStepLR` stepped once per epoch, with milestones as fractions of the run.

    The rate is `learning_rate * decay**i` after the i-th milestone; "step" is this with
    milestones (0.5, 0.75) and decay 0.1, so both drop on the same step. At full length the
    drops land on epoch boundaries (0.3 of 200 epochs: the first step of epoch 60, counting
    from 0, runs at the lowered rate, as with `scheduler.step()` after each epoch). A
    shortened run keeps the fractions, so a drop may fall inside an epoch.
    """
    # Keras keeps values[i] while step <= boundaries[i], so a drop at step s needs boundary s-1.
    # round(): 0.3 * 200 * 391 is 23460.000000000004 in floating point, not 23460.
    boundaries = [max(0, round(fraction * epochs * steps_per_epoch) - 1) for fraction in milestones]
    values = [learning_rate * decay**i for i in range(len(boundaries) + 1)]
    return keras.optimizers.schedules.PiecewiseConstantDecay(boundaries, values)


def make_optimizer(config, steps_per_epoch):
    """A fresh optimizer for `config` (`TrainConfig`).

    SGD (momentum 0.9) decays weights the PyTorch way (`ReferenceSGD`) unless
    `config.weight_decay_mode` is "decoupled", which selects Keras' own
    `SGD(weight_decay=...)`: `w -= lr * wd * w` before the momentum step. Adam is PyTorch's
    (`ReferenceAdam`, epsilon 1e-8) and takes no decay.
    """
    learning_rate = learning_rate_schedule(config, steps_per_epoch)
    if config.optimizer == "sgd":
        if config.weight_decay_mode == "decoupled":
            # Keras takes weight_decay=None (not 0) to mean "none".
            return keras.optimizers.SGD(
                learning_rate=learning_rate, momentum=0.9, weight_decay=config.weight_decay or None
            )
        return ReferenceSGD(learning_rate=learning_rate, momentum=0.9, l2=config.weight_decay)
    return ReferenceAdam(learning_rate=learning_rate)
