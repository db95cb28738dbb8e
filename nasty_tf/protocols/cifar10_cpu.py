"""CIFAR-10 at CPU scale: the effect on real data in about half an hour on 2 cores.

The real CIFAR-10 of `../shared/data` (a JPEG copy, as an image folder), a stratified 30%
subset of its training split (15,000 images; the full 10,000-image test split), and the
paper's plain CNN everywhere: teachers 8 epochs of Adam 2e-3 with a cosine decay, students
("Teacher Self") a 4-epoch stealer's schedule of Adam 1e-3, KD alpha 0.9, tau_s 4. Short
schedules are not nasty at the reference omega (0.04; DESIGN.md: no protection at all after
10 epochs). The main runs use omega 0.08 and the report sweeps omega over 0.04, 0.08, 0.15,
0.2 and 0.3 (Fig. 3; the 0.08 point reuses the main runs), because at this scale the
trade-off *is* the result: measured on 2026-11-26 (README, docs/cifar10_cpu/), 0.04 and 0.08
gave no protection at all (KD from the nasty teacher beat KD from the normal one), 0.15 cost
the teacher 3.6 points and took away KD's gain over scratch, 0.2 cost the teacher 9 points and
the stealer 6.5. Figs. 1 and 2 are drawn on 1,000 test images.

Every stage is a run directory, so an interrupted run resumes where it stopped
(`python -m tools.reproduce --protocol=cifar10_cpu` again). Other data: `--data_dir`.
"""

from nasty_tf.protocols import teacher_student
from nasty_tf.protocols.teacher_student import Stage, TeacherStudentSettings

NAME = "cifar10_cpu"
DESCRIPTION = "Plain-CNN teachers and students on a 30% CIFAR-10 subset (about 30 minutes on 2 CPU cores)."
DEFAULT_DATA_DIR = "../shared/data/cifar10-jpeg.tar.gz"


def default_settings():
    return TeacherStudentSettings(
        dataset="image_folder",
        data_dir=DEFAULT_DATA_DIR,
        train_fraction=0.3,
        teacher=Stage(arch="cnn", epochs=8, optimizer="adam", learning_rate=2e-3, lr_schedule="cosine"),
        students=(Stage(arch="cnn", epochs=4, optimizer="adam", learning_rate=1e-3),),
        omega=0.08,
        temperature=4.0,
        alpha=0.9,
        kd_temperature=4.0,
        student_seeds=(0,),
        sweeps={"omega": (0.04, 0.08, 0.15, 0.2, 0.3)},
    )


def run(settings, output_dir, on_finished="reuse"):
    return teacher_student.run(NAME, settings, output_dir, on_finished)
