"""`NastyTeacher`: self-undermining knowledge distillation (paper section 3.2, eq. 2)."""

import keras
from keras import ops

from nasty_tf.errors import check_count
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
        omega_warmup_steps: omega ramps linearly from 0 at the first training step to `omega`
            at this step (`omega_warmup_scale`), then stays; 0 (the default): no warm-up.
            The step is counted by the wrapper's own non-trainable variable
            (`omega_warmup_step`, created only when > 0), which training increments inside
            `compute_loss` on every backend (JAX's `compute_loss` cannot see the optimizer's
            variables) and which `save_weights` / `TrainingBackup` save and restore with the
            rest, so a resumed run continues the ramp where it stopped.

    Example:
        >>> nasty = NastyTeacher(network, adversary, omega=0.04, temperature=4.0)
        >>> nasty.compile(optimizer="adam")
        >>> nasty.fit(x_train, y_train, epochs=10)
        >>> nasty.network.save("nasty.keras")  # ship the network, never the wrapper
    """

    def __init__(
        self,
        network,
        adversary,
        omega=0.04,
        temperature=4.0,
        augmenter=None,
        omega_warmup_steps=0,
        **kwargs,
    ):
        super().__init__(
            network,
            adversary,
            SelfUnderminingLoss(omega=omega, temperature=temperature),
            augmenter=augmenter,
            frozen_role="adversary",
            **kwargs,
        )
        check_count("omega_warmup_steps", omega_warmup_steps, minimum=0)
        self.omega_warmup_steps = omega_warmup_steps
        self.omega_warmup_step = None
        if omega_warmup_steps:
            # float32 (exact to 2**24 steps, long past any warm-up) and never autocast: a
            # bfloat16 read of a step count would be off by up to 1/256 of it.
            self.omega_warmup_step = self.add_weight(
                shape=(),
                initializer="zeros",
                dtype="float32",
                trainable=False,
                autocast=False,
                aggregation="only_first_replica",
                name="omega_warmup_step",
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

    def objective_inputs(self, logits, frozen_logits, training):
        """Both logits, plus the warm-up's omega scale of this step when there is a warm-up.

        The scale is read before a training step counts itself, so the first step trains
        at omega 0; evaluation reads it without counting.
        """
        if not self.omega_warmup_steps:
            return (logits, frozen_logits)
        step = self.omega_warmup_step
        scale = omega_warmup_scale(step.value, self.omega_warmup_steps)
        if training:
            step.assign_add(ops.ones((), "float32"))
        return (logits, frozen_logits, scale)

    def get_config(self):
        return {
            **super().get_config(),
            "adversary": keras.saving.serialize_keras_object(self.adversary),
            "omega": self.omega,
            "temperature": self.temperature,
            "omega_warmup_steps": self.omega_warmup_steps,
        }

    @classmethod
    def from_config(cls, config):
        return cls(**cls._deserialize_models(config, "network", "adversary", "augmenter"))


def omega_warmup_scale(step, warmup_steps):
    """The fraction of omega that a warm-up of `warmup_steps` steps applies at `step`.

    `min(step / warmup_steps, 1)`: 0 at the first step (step 0), linear, 1 from step
    `warmup_steps` on; 1 at every step when `warmup_steps` is 0 (no warm-up).

    Args:
        step: the 0-based training step, a number or scalar tensor.
        warmup_steps: the warm-up's length in steps, >= 0.

    Returns:
        A float32 scalar tensor in [0, 1].

    Example:
        >>> [float(omega_warmup_scale(s, 4)) for s in (0, 2, 4, 9)]
        [0.0, 0.5, 1.0, 1.0]
    """
    if not warmup_steps:
        return ops.ones((), "float32")
    step = ops.cast(step, "float32")
    return ops.clip(step / float(warmup_steps), 0.0, 1.0)
