"""`NastyTeacher`: self-undermining knowledge distillation (paper section 3.2, eq. 2)."""

import keras

from nasty_tf.losses import SelfUnderminingLoss, tempered_kl_per_sample
from nasty_tf.paired_model import PairedModel


@keras.saving.register_keras_serializable(package="nasty_tf")
class NastyTeacher(PairedModel):
    """Trains `network` to be accurate yet to disagree with a frozen normal `adversary`.

    Minimises `CE(f_T(x), y) - omega * tau_A^2 * KL(p_T || p_A)` (eq. 2). Logs `ce`, `kl`
    (the adversarial divergence, which should grow) and `accuracy`.

    Args:
        network: the Keras model to train into the nasty teacher (its logits are float32).
        adversary: the trained normal model `f_A`; frozen (inference mode, no gradient).
        omega: weight of the adversarial KL term, >= 0.
        temperature: `tau_A`, > 0.
        augmenter: optional Keras layer applied once per step to the batch both nets see.

    Example:
        >>> nasty = NastyTeacher(network, adversary, omega=0.04, temperature=4.0)
        >>> nasty.compile(optimizer="adam")
        >>> nasty.fit(x_train, y_train, epochs=10)
        >>> nasty.network.save("nasty.keras")  # ship the network, never the wrapper
    """

    def __init__(self, network, adversary, omega=0.04, temperature=4.0, augmenter=None, **kwargs):
        super().__init__(
            network,
            adversary,
            SelfUnderminingLoss(omega=omega, temperature=temperature),
            augmenter=augmenter,
            frozen_role="adversary",
            **kwargs,
        )

    @property
    def adversary(self):
        return self.frozen

    @property
    def omega(self):
        return self.objective.omega

    @property
    def temperature(self):
        return self.objective.temperature

    def kl_term(self, logits, frozen_logits):
        return tempered_kl_per_sample(logits, frozen_logits, self.temperature)

    def get_config(self):
        return {
            **super().get_config(),
            "adversary": keras.saving.serialize_keras_object(self.adversary),
            "omega": self.omega,
            "temperature": self.temperature,
        }

    @classmethod
    def from_config(cls, config):
        return cls(**cls._deserialize_models(config, "network", "adversary", "augmenter"))
