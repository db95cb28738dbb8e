"""Flags of self-undermining training (paper eq. 2)."""

from absl import flags


def define_nasty_flags():
    flags.DEFINE_string("adversary", None, "The normal network (.keras file) to undermine.")
    flags.DEFINE_float("omega", 0.04, "Weight of the adversarial KL term (>= 0).")
    flags.DEFINE_float("temperature", 4.0, "tau_A, the temperature of the adversarial KL (> 0).")
