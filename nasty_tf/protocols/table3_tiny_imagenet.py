"""The paper's Table 3: a ResNet-18 teacher on Tiny-ImageNet and its students, released configs.

As CIFAR-100 (`table2_cifar100`): every network trains 200 epochs of SGD (0.1, momentum 0.9,
weight decay 5e-4, PyTorch-style), x0.2 at epochs 60, 120 and 160, batch 128; tau_A = tau_s
= 20, alpha 0.9; but omega 0.01. Students: ShuffleNetV2, MobileNetV2, ResNet-18 and
"Teacher Self" (with the default ResNet-18 teacher, the ResNet-18 student, trained once).
The paper's other teacher rows are `--arch=resnet50` and `--arch=resnext29`. Data:
`--dataset=tiny_imagenet --data_dir=tiny-imagenet-200.zip` (64x64; the val split is the
test split), normalised with the reference's Tiny-ImageNet mean/std and augmented by
rotation up to 20 degrees and horizontal flip, no crop.

Paper text vs released configs (VITA-Group/Nasty-Teacher, `experiments/TinyImageNet`):
they agree on omega 0.01, tau 20 and the schedule. The released configs have no separate
ResNet-18 student under the nasty ResNet-18 teacher, only "Teacher Self", which is the same
run. As everywhere, the reference distils from the epoch with the best *test* accuracy; we
use the last epoch.

Weights start from the reference's initialisers (`init="reference"`: PyTorch's defaults, and
the PreResNet and ResNeXt schemes; `--init=keras` for Keras' own; docs/reference_differences.md).

Only the full-length settings reproduce the paper; `--epochs_scale` shortens every stage.
"""

from nasty_tf.protocols import teacher_student
from nasty_tf.protocols.table2_cifar100 import STUDENT_ARCHS, sgd_stage
from nasty_tf.protocols.teacher_student import TeacherStudentSettings

NAME = "table3_tiny_imagenet"
DESCRIPTION = "Paper Table 3: ResNet-18 teachers on Tiny-ImageNet; ShuffleNetV2, MobileNetV2, ResNet-18 students."


def default_settings():
    return TeacherStudentSettings(
        dataset="tiny_imagenet",
        teacher=sgd_stage("resnet18"),
        students=tuple(sgd_stage(arch) for arch in STUDENT_ARCHS),
        omega=0.01,
        temperature=20.0,
        alpha=0.9,
        kd_temperature=20.0,
        # The reference's initialisers (PyTorch's defaults and its models' own schemes).
        init="reference",
    )


def run(settings, output_dir, on_finished="reuse"):
    return teacher_student.run(NAME, settings, output_dir, on_finished)
