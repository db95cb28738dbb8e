"""Flags of self-undermining training (paper eq. 2)."""

from absl import flags


def define_nasty_flags():
    flags.DEFINE_string("adversary", None, "The normal network (.keras file) to undermine.")
    flags.DEFINE_float("omega", 0.04, "Weight of the adversarial KL term (>= 0).")
    flags.DEFINE_float("temperature", 4.0, "tau_A, the temperature of the adversarial KL (> 0).")
    flags.DEFINE_string(
        "init_from",
        None,
        "Start the nasty network from this .keras file's weights (same architecture and shapes; "
        "typically the --adversary itself) instead of a fresh initialisation. Default: fresh.",
    )
    flags.DEFINE_integer(
        "omega_warmup_epochs",
        0,
        "Ramp omega linearly, step by step, from 0 to --omega over this many epochs (0: none).",
    )
