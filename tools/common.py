"""What every binary shares: quiet TensorFlow logs, one-line errors, flags to configs."""

import logging
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before TensorFlow loads
# Retracing notices from predicting with several models are expected here, not actionable.
logging.getLogger("tensorflow").setLevel(logging.ERROR)

from absl import app  # noqa: E402

from nasty_tf.errors import InputError, TrainingDiverged  # noqa: E402


def run(main):
    """`app.run(main)`, with stray arguments refused and bad input reported in one line."""

    def guarded_main(argv):
        if len(argv) > 1:
            raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
        try:
            main()
        except (InputError, TrainingDiverged) as error:
            print(f"error: {error}", file=sys.stderr)
            sys.exit(1)

    app.run(guarded_main)


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
    )
    fields.update(overrides)
    return TrainConfig(**fields)


def parse_floats(values, flag):
    """A comma-separated list flag's values as a tuple of floats, or a one-line InputError."""
    try:
        return tuple(float(value) for value in values or ())
    except ValueError:
        raise InputError(f"--{flag} must be a list of numbers. Received: {','.join(values)}") from None


def on_finished(flag_values):
    return "overwrite" if flag_values.overwrite else "error"

