"""Trains a normal classifier (the future adversary, or a scratch baseline).

python -m tools.train --dataset=digits --arch=cnn --epochs=10 --output_dir=runs/normal
"""

from absl import flags as absl_flags

from flags import data, distribute, model, train
from tools import common

data.define_data_flags()
model.define_model_flags()
model.define_init_flag()
train.define_train_flags("runs/train")
distribute.define_distribute_flags()
FLAGS = absl_flags.FLAGS


def main():
    from nasty_tf import training

    config = common.train_config(FLAGS, init=FLAGS.init)
    metrics = training.train(config, on_finished=common.on_finished(FLAGS))
    print(
        f"normal {config.arch}: test accuracy {metrics['accuracy']:.2f}% -> {config.output_dir}/model.keras"
    )


def console_main():
    """Console script `nasty-tf-train`: what `python -m tools.train` runs."""
    common.run(main)


if __name__ == "__main__":
    console_main()
