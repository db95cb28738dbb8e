"""Trains a student by knowledge distillation from a teacher (paper eq. 1): the stealer.

    python -m tools.distill --teacher=runs/nasty/model.keras --arch=cnn --alpha=0.9 \
        --temperature=4 --output_dir=runs/student
"""

from absl import flags as absl_flags

from flags import data, distribute, kd, model, train
from tools import common

data.define_data_flags()
model.define_model_flags()
model.define_init_flag()
train.define_train_flags("runs/distill")
kd.define_kd_flags()
distribute.define_distribute_flags()
FLAGS = absl_flags.FLAGS


def main():
    from nasty_tf import training

    config = common.train_config(FLAGS, init=FLAGS.init)
    kd_config = training.DistillConfig(FLAGS.teacher, FLAGS.alpha, FLAGS.temperature)
    metrics = training.distill(config, kd_config, on_finished=common.on_finished(FLAGS))
    print(
        f"student {config.arch}: test accuracy {metrics['accuracy']:.2f}% (teacher "
        f"{metrics['teacher_accuracy']:.2f}%) -> {config.output_dir}/model.keras"
    )


def console_main():
    """Console script `nasty-tf-distill`: what `python -m tools.distill` runs."""
    absl_flags.mark_flag_as_required("teacher")
    common.run(main)


if __name__ == "__main__":
    console_main()
