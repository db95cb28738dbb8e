"""Flags of knowledge distillation (paper eq. 1)."""

from absl import flags


def define_kd_flags():
    flags.DEFINE_string("teacher", None, "The teacher network (.keras file) to distil from.")
    flags.DEFINE_float("alpha", 0.9, "Weight of the KD term, in [0, 1].")
    flags.DEFINE_float("temperature", 4.0, "tau_s, the KD temperature (> 0).")
