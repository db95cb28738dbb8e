"""Attacks a released teacher by data-free KD (paper Section 4.4, Table 5, Fig. 6).

    python -m tools.datafree --method=dafl --teacher=runs/nasty/model.keras --arch=resnet18 \
        --dataset=cifar10 --output_dir=runs/dafl_nasty

Writes the student's `model.keras`, `metrics.json` (student and teacher accuracy on the test
split of --dataset, which is used for evaluation only) and `inversion_grid.png`. Defaults are
the authors' CIFAR settings, DAFL's loss weights those of --dataset (CIFAR-100's for cifar100;
hours on a GPU); scale a run down with --epochs,
--batch_size, --steps_per_epoch, --latent_dim, --num_images and --inversion_steps.
"""

from absl import flags as absl_flags

from flags import data, datafree, model, train
from tools import common

data.define_data_flags()
model.define_model_flags("resnet18")
model.define_init_flag()
train.define_output_flags("runs/datafree")
datafree.define_datafree_flags()
FLAGS = absl_flags.FLAGS


def main():
    from nasty_tf.datafree import DataFreeConfig, run_datafree

    if FLAGS.train_fraction != 1.0:
        from nasty_tf.errors import InputError

        raise InputError(
            "--train_fraction does not apply: a data-free attack never reads the training split. "
            f"Received: {FLAGS.train_fraction}"
        )
    config = DataFreeConfig(
        method=FLAGS.method,
        teacher=FLAGS.teacher,
        arch=FLAGS.arch,
        dataset=FLAGS.dataset,
        data_dir=FLAGS.data_dir,
        data_cache_dir=FLAGS.data_cache_dir,
        epochs=FLAGS.epochs,
        batch_size=FLAGS.batch_size,
        seed=FLAGS.seed,
        student_learning_rate=FLAGS.student_learning_rate,
        student_weight_decay=FLAGS.student_weight_decay,
        temperature=FLAGS.temperature,
        alpha=FLAGS.alpha,
        latent_dim=FLAGS.latent_dim,
        steps_per_epoch=FLAGS.steps_per_epoch,
        generator_learning_rate=FLAGS.generator_learning_rate,
        one_hot_weight=FLAGS.one_hot_weight,
        activation_weight=FLAGS.activation_weight,
        entropy_weight=FLAGS.entropy_weight,
        num_images=FLAGS.num_images,
        inversion_steps=FLAGS.inversion_steps,
        inversion_learning_rate=FLAGS.inversion_learning_rate,
        bn_weight=FLAGS.bn_weight,
        tv_weight=FLAGS.tv_weight,
        l2_weight=FLAGS.l2_weight,
        jitter=FLAGS.jitter,
        flip=FLAGS.flip,
        grid_rows=FLAGS.grid_rows,
        init=FLAGS.init,
        output_dir=FLAGS.output_dir,
        verbose=FLAGS.verbose,
    )
    metrics = run_datafree(config, on_finished=common.on_finished(FLAGS))
    print(
        f"{config.method} student {config.arch}: test accuracy {metrics['accuracy']:.2f}% "
        f"(teacher {metrics['teacher_accuracy']:.2f}%, {metrics['train_seconds']:.0f} s) -> "
        f"{config.output_dir}/model.keras, {config.output_dir}/inversion_grid.png"
    )


def console_main():
    """Console script `nasty-tf-datafree`: what `python -m tools.datafree` runs."""
    absl_flags.mark_flag_as_required("method")
    absl_flags.mark_flag_as_required("teacher")
    common.run(main)


if __name__ == "__main__":
    console_main()
