"""Runs a protocol end to end: teachers, nasty teacher, students, report.

    python -m tools.reproduce                      # the digits demo, a few minutes on a CPU
    python -m tools.reproduce --protocol=digits_demo --epochs=5 --student_epochs=5
    python -m tools.reproduce --sweep_alpha=0.1,0.5,0.9 --sweep_train_fraction=0.3,0.6
    python -m tools.reproduce --sweep_omega=0.06,0.12,0.2 --adversary_archs=cnn,preresnet20
    python -m tools.reproduce --datafree=dafl,deepinversion
    python -m tools.reproduce --nasty_init_from_normal --omega_warmup_epochs=2
    python -m tools.reproduce --matrix_stealers=served    # + plain/nasty/stingy x stealers
    python -m tools.reproduce --protocol=table1_cifar10 --dataset=image_folder \
        --data_dir=../shared/data/cifar10-jpeg.tar.gz --epochs_scale=0.01 --train_fraction=0.1

Writes `report.md`, `report.json` and one run directory per stage into --output_dir
(default runs/<protocol>); an interrupted run resumes, finished stages are reused.
"""

from absl import flags as absl_flags

from flags import distribute, reproduce
from tools import common

reproduce.define_reproduce_flags()
distribute.define_distribute_flags()
FLAGS = absl_flags.FLAGS


# The protocols that read the real CIFAR-10 take it from here unless --data_dir is given: the
# JPEG copy shared by this checkout's sessions. The library holds no data path.
SHARED_CIFAR10 = "../shared/data/cifar10-jpeg.tar.gz"
PROTOCOL_DATA_DIRS = {"cifar10_cpu": SHARED_CIFAR10, "fast_cifar10": SHARED_CIFAR10}


def _parse_ints(values, name):
    from nasty_tf.errors import InputError

    try:
        return tuple(int(value) for value in values)
    except ValueError:
        shown = ",".join(values)
        raise InputError(f"{name} must be a list of integers. Received: {name}={shown}") from None


def settings_from_flags(protocol):
    """The protocol's default settings with every given flag applied.

    `--epochs_scale` scales the protocol's epochs first; `--epochs` and `--student_epochs`
    are then taken as given.
    """
    import dataclasses

    from nasty_tf.errors import InputError
    from nasty_tf.protocols import teacher_student

    settings = protocol.default_settings()
    if settings.data_dir is None and protocol.NAME in PROTOCOL_DATA_DIRS:
        settings = settings.replace(data_dir=PROTOCOL_DATA_DIRS[protocol.NAME])
    if FLAGS.epochs_scale is not None:
        settings = teacher_student.scale_epochs(settings, FLAGS.epochs_scale)
    top = {
        key: getattr(FLAGS, key)
        for key in (
            "dataset",
            "data_dir",
            "data_cache_dir",
            "train_fraction",
            "seed",
            "omega",
            "temperature",
            "nasty_init_from_normal",
            "omega_warmup_epochs",
            "alpha",
            "kd_temperature",
            "verbose",
            "normal_teacher",
            "nasty_teacher",
            "figures",
            "weight_decay_mode",
            "strategy",
            "evaluate_every",
            "backup_every",
            "precision",
            "init",
            "matrix_search_skeptical",
            "matrix_epochs",
            "matrix_validation_split",
        )
        if getattr(FLAGS, key) is not None
    }
    stage_overrides = {
        key: getattr(FLAGS, key)
        for key in ("batch_size", "learning_rate")
        if getattr(FLAGS, key) is not None
    }
    teacher = dataclasses.replace(settings.teacher, **stage_overrides)
    if FLAGS.arch:
        teacher = dataclasses.replace(teacher, arch=FLAGS.arch)
    if FLAGS.epochs is not None:
        teacher = dataclasses.replace(teacher, epochs=FLAGS.epochs)
    students = settings.students
    if FLAGS.student_archs is not None:
        students = teacher_student.with_student_archs(settings, FLAGS.student_archs).students
    student_overrides = dict(stage_overrides)
    if FLAGS.student_epochs is not None:
        student_overrides["epochs"] = FLAGS.student_epochs
    students = tuple(dataclasses.replace(stage, **student_overrides) for stage in students)
    if FLAGS.student_seeds:
        top["student_seeds"] = _parse_ints(FLAGS.student_seeds, "student_seeds")
    sweeps = dict(settings.sweeps)
    for dimension in ("kd_temperature", "alpha", "train_fraction", "omega"):
        values = getattr(FLAGS, f"sweep_{dimension}")
        if values is not None:
            sweeps.pop(dimension, None)
            if values:
                sweeps[dimension] = common.parse_floats(values, f"sweep_{dimension}")
    top["sweeps"] = sweeps
    if FLAGS.adversary_archs is not None:
        top["adversary_archs"] = tuple(FLAGS.adversary_archs)
    if FLAGS.datafree is not None:
        top["datafree"] = tuple(FLAGS.datafree)
    if FLAGS.matrix_stealers is not None:
        top["matrix_stealers"] = tuple(FLAGS.matrix_stealers)
    settings = settings.replace(teacher=teacher, students=students, **top)
    if FLAGS.matrix_epochs is not None and not settings.matrix_stealers:
        raise InputError(
            "matrix_epochs is the matrix students' schedule, but no matrix runs without "
            f"matrix_stealers. Received: matrix_epochs={FLAGS.matrix_epochs}"
        )
    if FLAGS.matrix_validation_split is not None and not settings.matrix_stealers:
        raise InputError(
            "matrix_validation_split is the matrix's validation split, but no matrix runs "
            f"without matrix_stealers. Received: matrix_validation_split={FLAGS.matrix_validation_split}"
        )
    return settings


def main():
    from nasty_tf import protocols

    protocol = protocols.get_protocol(FLAGS.protocol or protocols.DEFAULT_PROTOCOL)
    settings = settings_from_flags(protocol)
    output_dir = FLAGS.output_dir or f"runs/{protocol.NAME}"
    protocol.run(settings, output_dir, on_finished="overwrite" if FLAGS.overwrite else "reuse")
    print(f"report: {output_dir}/report.md, {output_dir}/report.json")


def console_main():
    """Console script `nasty-tf-reproduce`: what `python -m tools.reproduce` runs."""
    common.run(main)


if __name__ == "__main__":
    console_main()
