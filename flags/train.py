"""Flags of every training binary: schedule, optimizer, output directory."""

from absl import flags


def define_train_flags(default_output_dir, epochs=10, optimizer="adam", learning_rate=1e-3):
    flags.DEFINE_integer("epochs", epochs, "Number of passes over the training split.")
    flags.DEFINE_integer("batch_size", 128, "Global batch size.")
    flags.DEFINE_string(
        "optimizer", optimizer, "sgd (momentum 0.9, PyTorch-style L2 weight decay) or adam."
    )
    flags.DEFINE_float("learning_rate", learning_rate, "Initial learning rate.")
    flags.DEFINE_string(
        "lr_schedule",
        "constant",
        "constant, cosine (to zero), step (x0.1 at 50% and 75% of the epochs), multistep "
        "(x--lr_decay at each of --lr_milestones) or warmup_cosine (linear from 0 over the "
        "first 10% of the steps, then cosine to 0).",
    )
    flags.DEFINE_list(
        "lr_milestones",
        [],
        "multistep: increasing fractions of --epochs where the rate drops, e.g. 0.3,0.6,0.8.",
    )
    flags.DEFINE_float("lr_decay", 0.1, "multistep: factor applied at each milestone, in (0, 1].")
    flags.DEFINE_float("weight_decay", 0.0, "Weight decay of sgd (reference 5e-4).")
    flags.DEFINE_string(
        "weight_decay_mode",
        "coupled",
        "coupled: L2 added to the gradient before momentum (PyTorch, the reference); "
        "decoupled: Keras' SGD(weight_decay), w -= lr*wd*w.",
    )
    flags.DEFINE_string(
        "precision",
        "float32",
        "Keras dtype policy: float32 (the reference's), mixed_bfloat16 (GPUs, CPUs with AMX) or "
        "mixed_float16; logits and losses stay float32.",
    )
    flags.DEFINE_bool(
        "augment", True, "Apply the dataset's augmentation (crop, and flip for photos)."
    )
    define_output_flags(default_output_dir)
    flags.DEFINE_integer("verbose", 2, "Keras verbosity: 2 = one line per epoch, 1 = progress bar.")
    flags.DEFINE_integer(
        "evaluate_every",
        1,
        "Evaluate the test split after every this many epochs and after the last "
        "(history.csv's val_* columns).",
    )
    flags.DEFINE_integer(
        "backup_every",
        1,
        "Write the resumable backup after every this many epochs (a killed run redoes at "
        "most this many).",
    )


def define_output_flags(default_output_dir):
    flags.DEFINE_string(
        "output_dir", default_output_dir, "Where model.keras, metrics.json and checkpoints go."
    )
    flags.DEFINE_bool("overwrite", False, "Replace a finished run in --output_dir.")
