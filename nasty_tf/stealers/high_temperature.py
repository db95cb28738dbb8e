"""`high_temperature`: KD at a temperature of 20 or more (issue 20).

A very soft target flattens the nasty teacher's misleading peaks (its extra modes sit far below
the top class in logit space) and leaves mostly the ranking of the classes. Paper eq. 1 with
`tau_s` in [20, 100]; lower temperatures are the `kd` stealer's.
"""

import keras

from nasty_tf.stealers.served_distiller import (
    ServedDistillationLoss,
    ServedDistiller,
    check_temperature,
)

NAME = "high_temperature"
MIN_TEMPERATURE = 20.0
MAX_TEMPERATURE = 100.0


@keras.saving.register_keras_serializable(package="nasty_tf")
class HighTemperatureLoss(ServedDistillationLoss):
    """Paper eq. 1 with `tau_s` in [20, 100] (default 20)."""

    def __init__(self, alpha=0.9, temperature=20.0, name="high_temperature_distillation", **kwargs):
        check_temperature(temperature, MIN_TEMPERATURE, MAX_TEMPERATURE, low_inclusive=True)
        super().__init__(alpha=alpha, temperature=temperature, name=name, **kwargs)


@keras.saving.register_keras_serializable(package="nasty_tf")
class HighTemperatureStealer(ServedDistiller):
    """The `high_temperature` stealer: KD with `temperature` in [20, 100] (default 20).

    Arguments as `KDStealer`.
    """

    loss_class = HighTemperatureLoss
