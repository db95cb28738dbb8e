"""CIFAR-10 at CPU scale: the effect on real data in about half an hour on 2 cores.

The real CIFAR-10 of `../shared/data` (a JPEG copy, as an image folder), a stratified 30%
subset of its training split (15,000 images; the full 10,000-image test split), and the
paper's plain CNN everywhere: teachers 8 epochs of Adam 2e-3 with a cosine decay, students
("Teacher Self") a 4-epoch stealer's schedule of Adam 1e-3, KD alpha 0.9, tau_s 4. Short
schedules are not nasty at the reference omega (0.04; DESIGN.md: no protection at all after
10 epochs), so this protocol's omega is 0.08 and its report sweeps omega over 0.04, 0.08 and
0.15 (Fig. 3): the 0.08 runs are the main ones, reused, so the sweep costs two more nasty
teachers and their students. Figs. 1 and 2 are drawn on 1,000 test images.

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
        sweeps={"omega": (0.04, 0.08, 0.15)},
    )


def run(settings, output_dir, on_finished="reuse"):
    return teacher_student.run(NAME, settings, output_dir, on_finished)
