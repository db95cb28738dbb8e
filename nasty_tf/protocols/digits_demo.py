"""The default protocol: the whole method on scikit-learn's digits, in minutes on 2 CPU cores.

Teacher and nasty teacher: the paper's plain CNN; student: the same CNN ("Teacher Self" in
the paper's tables), averaged over three seeds. Short schedules are not nasty with the
reference omega (DESIGN.md section 3: 0.04 cost the teacher 11 points on digits, 0.01 barely
hurt the students), so this protocol uses its own measured omega; see the README.
"""

from nasty_tf.protocols import teacher_student
from nasty_tf.protocols.teacher_student import Stage, TeacherStudentSettings

NAME = "digits_demo"
DESCRIPTION = "CNN teachers and students on the embedded digits data (minutes on a CPU)."


def default_settings():
    return TeacherStudentSettings(
        dataset="digits",
        teacher=Stage(arch="cnn", epochs=20, optimizer="adam", learning_rate=1e-3),
        students=(Stage(arch="cnn", epochs=20, optimizer="adam", learning_rate=1e-3),),
        omega=0.02,
        temperature=4.0,
        alpha=0.9,
        kd_temperature=4.0,
        student_seeds=(0, 1, 2),
    )


def run(settings, output_dir, on_finished="reuse"):
    return teacher_student.run(NAME, settings, output_dir, on_finished)
