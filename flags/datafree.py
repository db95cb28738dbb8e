"""Flags of the data-free KD attacks (`tools.datafree`): DAFL and DeepInversion.

Defaults are the authors' CIFAR settings (DAFL's loss weights: the dataset's, see
`nasty_tf.datafree.dafl_loss_weights`); the scale-down flags shorten a run.
"""

from absl import flags


def define_datafree_flags():
    flags.DEFINE_string("method", None, "Data-free attack: dafl or deepinversion.")
    flags.DEFINE_string("teacher", None, "The released teacher network (.keras file) to attack.")
    flags.DEFINE_integer(
        "epochs",
        None,
        "dafl: epochs of --steps_per_epoch steps (authors 2000); deepinversion: KD epochs over "
        "the synthesized images (default 200).",
    )
    flags.DEFINE_integer(
        "batch_size",
        None,
        "dafl: generated images per step (authors 1024); deepinversion: images optimised "
        "together, and the KD batch (authors 256).",
    )
    flags.DEFINE_float(
        "student_learning_rate", 0.1, "Student SGD rate (x0.1 at 40% and 80% of the run)."
    )
    flags.DEFINE_float("student_weight_decay", 5e-4, "Student L2 weight decay (PyTorch-style).")
    flags.DEFINE_float("temperature", 1.0, "tau of the student's KD loss (DAFL's kdloss: 1).")
    flags.DEFINE_float(
        "alpha", 1.0, "deepinversion: KD weight vs CE to the synthesis targets (1 = pure KD)."
    )
    flags.DEFINE_integer("latent_dim", 1000, "dafl: size of the generator's latent vector.")
    flags.DEFINE_integer("steps_per_epoch", 120, "dafl: generator/student steps per epoch.")
    flags.DEFINE_float("generator_learning_rate", 0.02, "dafl: Adam rate of the generator.")
    flags.DEFINE_float(
        "one_hot_weight",
        None,
        "dafl: weight oh of the one-hot loss (default: the dataset's, CIFAR-10 0.05, CIFAR-100 0.5).",
    )
    flags.DEFINE_float(
        "activation_weight",
        None,
        "dafl: weight a of the feature-activation loss (default: the dataset's, CIFAR-10 0.01, "
        "CIFAR-100 0.1).",
    )
    flags.DEFINE_float(
        "entropy_weight",
        None,
        "dafl: weight ie of the information-entropy loss (default: the dataset's, CIFAR-10 5, "
        "CIFAR-100 20).",
    )
    flags.DEFINE_integer(
        "num_images", 50000, "deepinversion: images to synthesize (our default: CIFAR-10's 50,000)."
    )
    flags.DEFINE_integer("inversion_steps", 2000, "deepinversion: Adam steps per image batch.")
    flags.DEFINE_float(
        "inversion_learning_rate", 0.05, "deepinversion: Adam rate on the images (0.05 to 0.1)."
    )
    flags.DEFINE_float("bn_weight", 10.0, "deepinversion: weight of the BN-statistics loss.")
    flags.DEFINE_float(
        "tv_weight", 2.5e-5, "deepinversion: weight of the total-variation prior (2.5e-5 to 1e-3)."
    )
    flags.DEFINE_float("l2_weight", 0.0, "deepinversion: weight of the L2 image prior.")
    flags.DEFINE_integer("jitter", 2, "deepinversion: largest random roll, in pixels.")
    flags.DEFINE_bool(
        "flip",
        False,
        "deepinversion: random horizontal flips during synthesis (the authors' CIFAR script "
        "only rolls; their ImageNet code flips).",
    )
    flags.DEFINE_integer("grid_rows", 8, "Images per class (column) in inversion_grid.png.")
    flags.DEFINE_integer("verbose", 2, "Keras verbosity: 2 = one line per epoch.")
