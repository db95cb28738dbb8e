"""Optimizers with the reference's semantics."""

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


def learning_rate_schedule(config, steps_per_epoch):
    """The learning rate (a float or a Keras schedule) that `config` asks for."""
    total_steps = max(1, config.epochs * steps_per_epoch)
    if config.lr_schedule == "cosine":
        return keras.optimizers.schedules.CosineDecay(config.learning_rate, total_steps)
    if config.lr_schedule == "step":
        boundaries = [int(total_steps * 0.5), int(total_steps * 0.75)]
        values = [config.learning_rate * factor for factor in (1.0, 0.1, 0.01)]
        return keras.optimizers.schedules.PiecewiseConstantDecay(boundaries, values)
    return config.learning_rate


def make_optimizer(config, steps_per_epoch):
    """A fresh optimizer for `config` (`TrainConfig`)."""
    learning_rate = learning_rate_schedule(config, steps_per_epoch)
    if config.optimizer == "sgd":
        return ReferenceSGD(learning_rate=learning_rate, momentum=0.9, l2=config.weight_decay)
    return keras.optimizers.Adam(learning_rate=learning_rate)
