"""Measures a saved network's accuracy on a dataset split.

python -m tools.evaluate --model=runs/nasty/model.keras --dataset=digits
"""

import os

from absl import flags as absl_flags

from flags import data, evaluate
from tools import common

data.define_data_flags()
evaluate.define_evaluate_flags()
FLAGS = absl_flags.FLAGS


def main():
    from nasty_tf import data as data_lib
    from nasty_tf import training
    from nasty_tf.atomic_io import atomic_write_json

    dataset = data_lib.load_dataset(
        FLAGS.dataset,
        data_dir=FLAGS.data_dir,
        train_fraction=FLAGS.train_fraction,
        seed=FLAGS.seed,
        cache_dir=FLAGS.data_cache_dir,
    )
    result = training.evaluate(FLAGS.model, dataset, FLAGS.split)
    print(
        f"{FLAGS.model}: {result['split']} accuracy {result['accuracy']:.2f}% on {result['images']} images"
    )
    if FLAGS.output_dir:
        atomic_write_json(os.path.join(FLAGS.output_dir, "evaluation.json"), result)


def console_main():
    """Console script `nasty-tf-evaluate`: what `python -m tools.evaluate` runs."""
    absl_flags.mark_flag_as_required("model")
    common.run(main)


if __name__ == "__main__":
    console_main()
