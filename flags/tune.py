"""Flags of the omega search (`tools.tune`)."""

from absl import flags


def define_tune_flags():
    flags.DEFINE_integer(
        "max_trials", 8, "Trials of the whole search (a rerun counts finished ones)."
    )
    flags.DEFINE_float("omega_min", 0.02, "Lowest omega tried (> 0; sampled on a log scale).")
    flags.DEFINE_float("omega_max", 0.3, "Highest omega tried (>= --omega_min).")
    flags.DEFINE_list("temperatures", ["4"], "tau_A values to choose from (one value fixes it).")
    flags.DEFINE_float(
        "accuracy_budget",
        1.0,
        "Points of validation accuracy the nasty teacher may lose against the normal one; "
        "trials below that floor score 100 + the shortfall.",
    )
    flags.DEFINE_float(
        "validation_fraction",
        0.1,
        "Share of each class of the training split held out (stratified, seeded by --seed) to "
        "score the trials, in (0, 1); no network of the search trains on it, and the test split "
        "only reports.",
    )
    flags.DEFINE_string(
        "oracle", "bayesian", "keras-tuner oracle: bayesian or random (seeded by --seed)."
    )
    flags.DEFINE_string(
        "adversary", None, "A trained normal network (.keras) to undermine; default: train one."
    )
    flags.DEFINE_bool(
        "nasty_init_from_adversary",
        False,
        "Start every trial's nasty network from the adversary's weights (the normal teacher) "
        "instead of a fresh initialisation.",
    )
    flags.DEFINE_integer(
        "omega_warmup_epochs",
        0,
        "Every trial's omega ramps from 0 over this many epochs (tools.train_nasty's flag); "
        "0: the trial's omega from the first step.",
    )
    flags.DEFINE_string("student_arch", "cnn", "Architecture of the proxy student.")
    flags.DEFINE_integer(
        "student_epochs", 4, "Epochs of the proxy student (KD from each nasty teacher)."
    )
    flags.DEFINE_integer(
        "proxy_students",
        1,
        "Proxy students per trial (seeds --seed, --seed+1, ...), scored on their mean validation "
        "accuracy; several separate settings closer than one student's seed-to-seed spread.",
    )
    flags.DEFINE_float("alpha", 0.9, "alpha of the proxy student's KD, in [0, 1].")
    flags.DEFINE_float("kd_temperature", 4.0, "tau_s of the proxy student's KD (> 0).")
