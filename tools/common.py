"""What every binary shares: quiet TensorFlow logs, one-line errors, flags to configs.

(TensorFlow's start-up noise is filtered by `tools/__init__.py`, which runs before any binary's
own imports.)
"""

import logging
import re
import sys

from absl import app
from absl import flags as absl_flags

from nasty_tf.errors import InputError, TrainingDiverged

# Retracing notices from predicting with several models are expected here, not actionable.
logging.getLogger("tensorflow").setLevel(logging.ERROR)

# The library's argument names that are not the name of the binaries' flag for the same input.
ARGUMENT_FLAGS = {
    "batch_norms": "batch_norm",  # nasty_tf.benchmark.BenchmarkConfig(batch_norms=...)
    "cache_dir": "data_cache_dir",  # nasty_tf.data.load_dataset(cache_dir=...)
    "model_path": "model",  # nasty_tf.training.evaluate, nasty_tf.export.export_saved_model
    "modes": "mode",  # nasty_tf.benchmark.BenchmarkConfig(modes=...)
}


def flag_message(message, flag_names=None):
    """A library error message with the argument names it gives written as this binary's flags.

    The library names its arguments (`epochs must be >= 1. Received: epochs=0`); the user of a
    binary typed flags, so the binary says `--epochs must be >= 1. Received: --epochs=0`. A
    name counts as an argument where the message names one: at its start, right before `=`,
    or in backquotes. Only names of this binary's flags (after `ARGUMENT_FLAGS`) change, so
    the words of the rest of the message stay as they are.

    Args:
        message: the error's text.
        flag_names: the flags to recognise; default: every flag this binary defines.
    """
    known = set(absl_flags.FLAGS) if flag_names is None else set(flag_names)

    def as_flag(match):
        flag = ARGUMENT_FLAGS.get(match.group(1), match.group(1))
        return f"--{flag}" if flag in known else match.group(0)

    message = re.sub(r"^(\w+)", as_flag, message)
    message = re.sub(r"(?<![\w./-])(\w+)(?==)", as_flag, message)
    return re.sub(r"`(\w+)`", as_flag, message)


def guarded(main):
    """`main` as absl's `app.run` calls it: stray arguments refused, bad input in one line.

    The one line names flags where the library's message names arguments (`flag_message`);
    it is printed to stderr and the process exits 1.
    """

    def guarded_main(argv):
        if len(argv) > 1:
            raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
        try:
            main()
        except (InputError, TrainingDiverged) as error:
            print(f"error: {flag_message(str(error))}", file=sys.stderr)
            sys.exit(1)

    return guarded_main


def run(main):
    """`app.run(guarded(main))`: what every binary's `console_main` does."""
    # Under a console script `__main__` is the installer's wrapper: absl's usage text (--help)
    # comes from `__main__`'s docstring, so lend it the binary's.
    entry = sys.modules.get("__main__")
    if entry is not None and not entry.__doc__:
        entry.__doc__ = sys.modules[main.__module__].__doc__
    app.run(guarded(main))


def train_config(flag_values, **overrides):
    """The `TrainConfig` that the data, model, train and distribute flags describe."""
    from nasty_tf.training import TrainConfig

    fields = dict(
        dataset=flag_values.dataset,
        data_dir=flag_values.data_dir,
        data_cache_dir=flag_values.data_cache_dir,
        train_fraction=flag_values.train_fraction,
        arch=flag_values.arch,
        epochs=flag_values.epochs,
        batch_size=flag_values.batch_size,
        optimizer=flag_values.optimizer,
        learning_rate=flag_values.learning_rate,
        lr_schedule=flag_values.lr_schedule,
        lr_milestones=parse_floats(flag_values.lr_milestones, "lr_milestones"),
        lr_decay=flag_values.lr_decay,
        weight_decay=flag_values.weight_decay,
        weight_decay_mode=flag_values.weight_decay_mode,
        augment=flag_values.augment,
        seed=flag_values.seed,
        output_dir=flag_values.output_dir,
        verbose=flag_values.verbose,
        strategy=flag_values.strategy,
        precision=flag_values.precision,
        evaluate_every=flag_values.evaluate_every,
        backup_every=flag_values.backup_every,
    )
    fields.update(overrides)
    return TrainConfig(**fields)


def parse_floats(values, name):
    """A comma-separated list flag's values as a tuple of floats, or a one-line InputError."""
    try:
        return tuple(float(value) for value in values or ())
    except ValueError:
        shown = ",".join(values)
        raise InputError(f"{name} must be a list of numbers. Received: {name}={shown}") from None


def on_finished(flag_values):
    return "overwrite" if flag_values.overwrite else "error"
