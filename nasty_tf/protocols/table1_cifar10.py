"""The paper's Table 1: a ResNet-18 teacher on CIFAR-10 and four students, released configs.

Teachers (normal and nasty): ResNet-18, 160 epochs of SGD (0.1, momentum 0.9, weight decay
5e-4, PyTorch-style), x0.1 at epochs 80 and 120, batch 128; nasty omega 0.04, tau_A 4.
Students: the plain CNN (Adam 1e-3, constant, 100 epochs), ResNetC-20 and ResNetC-32
(`preresnet20`, `preresnet32`) and ResNet-18 ("Teacher Self"), those three on the teachers'
schedule; KD alpha 0.9, tau_s 4. The paper's student baselines are the same students
trained from scratch, which the protocol trains too.

Where the paper's text and the released configs differ, this ships the released values
(VITA-Group/Nasty-Teacher, `experiments/CIFAR10/.../params.json`; DESIGN.md section 2):

- omega: the text says 0.004 for CIFAR-10; the released nasty ResNet-18 config says 0.04.
- student schedule: the text gives every SGD student 200 epochs with x0.2 at 60, 120 and
  160; the released CIFAR-10 configs use the 160-epoch x0.1-at-80/120 schedule above.
- checkpoint: the reference distils from the epoch with the best *test* accuracy; we use
  the last epoch (selecting on the test set flatters every number).

Weights start from the reference's initialisers (`init="reference"`: PyTorch's defaults, and
the PreResNet and ResNeXt schemes; `--init=keras` for Keras' own; docs/reference_differences.md).

Only the full-length settings reproduce the paper; `--epochs_scale` shortens every stage
for a smoke run, and short schedules are not nasty at this omega (README).
"""

from nasty_tf.protocols import teacher_student
from nasty_tf.protocols.teacher_student import TEACHER_SELF, Stage, TeacherStudentSettings

NAME = "table1_cifar10"
DESCRIPTION = (
    "Paper Table 1: ResNet-18 teachers on CIFAR-10; CNN, ResNetC-20/32, ResNet-18 students."
)


def _sgd(arch):
    return Stage(
        arch=arch,
        epochs=160,
        optimizer="sgd",
        learning_rate=0.1,
        lr_schedule="multistep",
        lr_milestones=(0.5, 0.75),
        lr_decay=0.1,
        weight_decay=5e-4,
        batch_size=128,
    )


def default_settings():
    return TeacherStudentSettings(
        dataset="cifar10",
        teacher=_sgd("resnet18"),
        students=(
            Stage(arch="cnn", epochs=100, optimizer="adam", learning_rate=1e-3, batch_size=128),
            _sgd("preresnet20"),
            _sgd("preresnet32"),
            _sgd(TEACHER_SELF),
        ),
        omega=0.04,
        temperature=4.0,
        alpha=0.9,
        kd_temperature=4.0,
        # The reference's initialisers (PyTorch's defaults and its models' own schemes).
        init="reference",
    )


def run(settings, output_dir, on_finished="reuse"):
    return teacher_student.run(NAME, settings, output_dir, on_finished)
