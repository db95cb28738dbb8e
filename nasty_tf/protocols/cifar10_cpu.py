"""CIFAR-10 at CPU scale: the effect on real data in about 45 minutes on 2 cores.

The real CIFAR-10 as an image folder, given as `data_dir` (`tools.reproduce` defaults it to
the JPEG copy in `../shared/data`), a stratified 30% subset of its training split (15,000
images; the full 10,000-image test split), and the paper's plain CNN everywhere: teachers 16
epochs of Adam 2e-3 with a cosine decay, students ("Teacher Self") a 20-epoch stealer's
schedule of Adam 1e-3, KD alpha 0.9, tau_s 4, two student seeds; the nasty teacher starts
from the normal teacher's weights (`nasty_init_from_normal`) and trains 16 more epochs at
omega 0.0294, tau_A 10, omega ramping up from 0 over the first 4 (`omega_warmup_epochs`).
Figs. 1 and 2 are drawn on 1,000 test images.

Why these values (the measurements, their dates and commands: docs/protocols.md, "cifar10_cpu"):
short schedules are not nasty at the reference omega 0.04, so the teachers train longer and
the students train to the end of a 20-epoch schedule. At tau_A 4 (the default until
2026-12-03), omega 0.1 was the value the held-out
search (`tools.tune --nasty_init_from_adversary`, omega 0.03-0.2, validation split,
docs/cifar10_cpu/tune_init_from_2026-12-02/) picks when the owner accepts a 3-point validation
cost (its trial at 0.098); under a 1-point budget, without a warm-up, it picks 0.047, a
teacher that protects nothing. The 4-epoch warm-up is what the same rule picks at the 1-point
budget on two seeds (docs/cifar10_cpu/warmup_validation_2026-12-03/): without it omega 0.1
costs more than a point of validation accuracy on both. On the test split it was also the
cheapest of the measured starts (fresh, warm, warm with the warm-up) on both teacher seeds,
for a stealer more than a point below scratch; issue 18's target (at most 1 point of cost for
a stealer 2 below scratch) is not met. Omega just above 0.1 is no safer bet: with the
warm-up, the search found 0.1094 fine and 0.1075 collapsed (warmup_validation_2026-12-03/
omega_search_0.105-0.125/), so training this close to the cliff is unstable. The omega
curve (`--sweep_omega=...`, about 10 more minutes per value) is in
docs/cifar10_cpu/omega_curve_init_from_2026-12-02/.
tau_A 10 at omega 0.0294 (the tau_A 10 search's pick on seed 0's carve,
docs/cifar10_cpu/tau_a10_validation_2026-12-03/) replaced tau_A 4 at omega 0.1 by a rule
written before its result: scored by the mean of three proxy students per trial, it was lower
on the validation carves of both teacher seeds (docs/cifar10_cpu/proxy_students_validation_2026-12-03/). On test it
costs the owner nothing and protects little (docs/cifar10_cpu/student_seeds_2026-12-03/).
A larger omega at tau_A 10, 0.045, keeps the teacher within the budget but did not lower the
proxy students on either carve, so the same kind of rule kept 0.0294
(proxy_students_validation_2026-12-03/seed*_tau10_omega0.045/). Nor did a nasty phase of 32
epochs instead of 16: its proxy students end higher on both carves (.../seed*_tau10_nasty32/).
Two student seeds, since one student's seed moves it by more than a point here (about 45
minutes on 2 cores in all); `--student_seeds=0,1,2` for a figure to rely on.
The defences x stealers matrix (`--matrix_stealers`, off by default) trains its students 160
epochs (`matrix_epochs`): its augmented students, with a validation split held out, were far
from converged at the protocol's 20 (the verdicts changed when doubled), and the audit's
doubling check found 80 too short and 160 long enough. Its validation split
is drawn from the training images outside the 30% subset (`matrix_validation_split`
"unseen"): the teachers trained on the subset, and a split carved from it flattered the
students that copy them (docs/attacks.md).

Every stage is a run directory, so an interrupted run resumes where it stopped
(`python -m tools.reproduce --protocol=cifar10_cpu` again). Other data: `--data_dir`.
"""

from nasty_tf.protocols import teacher_student
from nasty_tf.protocols.teacher_student import Stage, TeacherStudentSettings

NAME = "cifar10_cpu"
DESCRIPTION = (
    "Plain-CNN teachers and students on a 30% CIFAR-10 subset (about 45 minutes on 2 CPU cores)."
)


def default_settings():
    return TeacherStudentSettings(
        dataset="image_folder",
        train_fraction=0.3,
        teacher=Stage(
            arch="cnn", epochs=16, optimizer="adam", learning_rate=2e-3, lr_schedule="cosine"
        ),
        students=(Stage(arch="cnn", epochs=20, optimizer="adam", learning_rate=1e-3),),
        omega=0.0294,
        temperature=10.0,
        alpha=0.9,
        kd_temperature=4.0,
        student_seeds=(0, 1),
        # Keras' initialisers: measured better here than the reference's (docs/protocols.md).
        init="keras",
        nasty_init_from_normal=True,
        omega_warmup_epochs=4,
        # `--datafree=...` or a data-free stealer in `--matrix_stealers`: scaled to about
        # 5 minutes a run on 2 cores (the paper's scale, DAFL's 2000 epochs or DeepInversion's
        # 50,000 images, takes days there).
        datafree_options={
            "dafl": dict(latent_dim=100, batch_size=128, steps_per_epoch=20, epochs=16),
            "deepinversion": dict(batch_size=100, num_images=600, inversion_steps=200, epochs=30),
        },
        # `--matrix_stealers=...`: the matrix's students (augmented, 10% held out) train 160
        # epochs. By rules fixed before their results, 20 and 40 failed (doubling moved a
        # baseline's final validation accuracy by more than half a point), and so did 80 by
        # the audit's doubling check (`nasty_tf.audit.schedule`: label smoothing's tail mean
        # fell 0.80 points from 80 to 160); 160 passed it against 320-epoch baselines (+0.36,
        # +0.46) (docs/protocols.md, "cifar10_cpu: the matrix's students trained longer").
        # About 21 minutes a student on 2 cores: the served matrix's 20 students (the other 7
        # cells are twins, `nasty_tf.audit.twins`) take about 7 hours.
        matrix_epochs=160,
        # The matrix's choices (the Skeptical search) read training images the teachers never
        # saw: on a split carved from their own subset, the students taught with their soft
        # targets scored further above their test accuracy than the others
        # (docs/cifar10_cpu/validation_bias_2026-12-04/).
        matrix_validation_split="unseen",
    )


def run(settings, output_dir, on_finished="reuse"):
    return teacher_student.run(NAME, settings, output_dir, on_finished)
