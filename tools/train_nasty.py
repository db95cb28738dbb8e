"""Trains a nasty teacher against a normal adversary (paper eq. 2).

    python -m tools.train_nasty --adversary=runs/normal/model.keras --omega=0.04 \
        --temperature=4 --output_dir=runs/nasty
    python -m tools.train_nasty --adversary=runs/normal/model.keras \
        --init_from=runs/normal/model.keras --omega_warmup_epochs=2 --output_dir=runs/nasty_warm
"""

from absl import flags as absl_flags

from flags import data, distribute, model, nasty, train
from tools import common

data.define_data_flags()
model.define_model_flags()
model.define_init_flag()
train.define_train_flags("runs/train_nasty")
nasty.define_nasty_flags()
distribute.define_distribute_flags()
FLAGS = absl_flags.FLAGS


def main():
    from nasty_tf import training

    config = common.train_config(FLAGS, init=FLAGS.init)
    nasty_config = training.NastyConfig(
        FLAGS.adversary,
        FLAGS.omega,
        FLAGS.temperature,
        init_from=FLAGS.init_from,
        omega_warmup_epochs=FLAGS.omega_warmup_epochs,
    )
    metrics = training.train_nasty(config, nasty_config, on_finished=common.on_finished(FLAGS))
    print(
        f"nasty {config.arch}: test accuracy {metrics['accuracy']:.2f}% (adversary "
        f"{metrics['adversary_accuracy']:.2f}%, adversarial KL {metrics['adversarial_kl']:.3f}) "
        f"-> {config.output_dir}/model.keras"
    )


def console_main():
    """Console script `nasty-tf-train-nasty`: what `python -m tools.train_nasty` runs."""
    absl_flags.mark_flag_as_required("adversary")
    common.run(main)


if __name__ == "__main__":
    console_main()
