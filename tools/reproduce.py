"""Runs a protocol end to end: teachers, nasty teacher, students, report.

    python -m tools.reproduce                      # the digits demo, a few minutes on a CPU
    python -m tools.reproduce --protocol=digits_demo --epochs=5 --student_epochs=5

Writes `report.md`, `report.json` and one run directory per stage into --output_dir
(default runs/<protocol>); an interrupted run resumes, finished stages are reused.
"""

from absl import flags as absl_flags

from tools import common
from flags import reproduce

reproduce.define_reproduce_flags()
FLAGS = absl_flags.FLAGS


def _parse_ints(values, flag):
    from nasty_tf.errors import InputError

    try:
        return tuple(int(value) for value in values)
    except ValueError:
        raise InputError(f"--{flag} must be a list of integers. Received: {','.join(values)}") from None


def settings_from_flags(protocol):
    """The protocol's default settings with every given flag applied."""
    import dataclasses

    settings = protocol.default_settings()
    top = {
        key: getattr(FLAGS, key)
        for key in (
            "dataset", "data_dir", "train_fraction", "seed", "omega", "temperature", "alpha",
            "kd_temperature", "verbose",
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
    if FLAGS.student_archs:
        students = tuple(dataclasses.replace(students[0], arch=arch) for arch in FLAGS.student_archs)
    student_overrides = dict(stage_overrides)
    if FLAGS.student_epochs is not None:
        student_overrides["epochs"] = FLAGS.student_epochs
    students = tuple(dataclasses.replace(stage, **student_overrides) for stage in students)
    if FLAGS.student_seeds:
        top["student_seeds"] = _parse_ints(FLAGS.student_seeds, "student_seeds")
    return settings.replace(teacher=teacher, students=students, **top)


def main():
    from nasty_tf import protocols

    protocol = protocols.get_protocol(FLAGS.protocol or protocols.DEFAULT_PROTOCOL)
    settings = settings_from_flags(protocol)
    output_dir = FLAGS.output_dir or f"runs/{protocol.NAME}"
    protocol.run(settings, output_dir, on_finished="overwrite" if FLAGS.overwrite else "reuse")
    print(f"report: {output_dir}/report.md, {output_dir}/report.json")


if __name__ == "__main__":
    common.run(main)
