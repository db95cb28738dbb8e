"""Protocol fidelity against the reference (issue 19 item 1): the "step" schedule, PyTorch's
Adam, DeepInversion's flips, DAFL's per-dataset loss weights, Table 4's adversary recipe and
Table 5's CIFAR-100 protocol. BatchNorm's moving variance is in test_fused_batch_norm.py."""

import inspect
import types

import keras
import numpy as np
import pytest

from binaries import binary_flags
from nasty_tf import protocols
from nasty_tf.datafree import DataFreeConfig, DeepInversion, dafl_loss_weights
from nasty_tf.datafree.jobs import generator_optimizer, inversion_optimizer
from nasty_tf.protocols import datafree_attacks, owner_ablations, teacher_student
from nasty_tf.protocols.teacher_student import Stage
from nasty_tf.training import ReferenceAdam, TrainConfig
from nasty_tf.training.optimizers import learning_rate_schedule, make_optimizer

CIFAR10 = {"one_hot_weight": 0.05, "activation_weight": 0.01, "entropy_weight": 5.0}
CIFAR100 = {"one_hot_weight": 0.5, "activation_weight": 0.1, "entropy_weight": 20.0}


# (a) "step" is "multistep" at 0.5 and 0.75, x0.1.


@pytest.mark.parametrize("epochs, steps_per_epoch", [(160, 391), (16, 7), (3, 5), (1, 3)])
def test_step_schedule_drops_on_the_same_step_as_multistep(epochs, steps_per_epoch):
    config = TrainConfig(optimizer="sgd", learning_rate=0.1, epochs=epochs, lr_schedule="step")
    step = learning_rate_schedule(config, steps_per_epoch)
    multistep = learning_rate_schedule(
        config.replace(lr_schedule="multistep", lr_milestones=(0.5, 0.75), lr_decay=0.1),
        steps_per_epoch,
    )
    total = epochs * steps_per_epoch
    drops = [round(0.5 * total), round(0.75 * total)]
    around = {s for d in drops for s in range(d - 3, d + 4) if 0 <= s < total} | {0, total - 1}
    for s in sorted(around):
        assert float(step(s)) == float(multistep(s)), s
    if epochs == 160:  # the reference's x0.1 at epochs 80 and 120: first step of each runs lower
        assert float(step(80 * 391 - 1)) == pytest.approx(0.1)
        assert float(step(80 * 391)) == pytest.approx(0.01)
        assert float(step(120 * 391 - 1)) == pytest.approx(0.01)
        assert float(step(120 * 391)) == pytest.approx(0.001)


# (b) Adam is PyTorch's: epsilon 1e-8, added after the bias correction.


def _torch_adam(variable, gradients, lr, eps=1e-8, beta_1=0.9, beta_2=0.999):
    """`torch.optim.Adam.step`, by hand (its `_single_tensor_adam`)."""
    w, m, v = variable.astype("float64"), np.zeros_like(variable), np.zeros_like(variable)
    for t, g in enumerate(gradients, start=1):
        m = beta_1 * m + (1 - beta_1) * g
        v = beta_2 * v + (1 - beta_2) * g * g
        denominator = np.sqrt(v) / np.sqrt(1 - beta_2**t) + eps
        w = w - lr / (1 - beta_1**t) * m / denominator
    return w


def test_adam_is_pytorchs_with_epsilon_1e8():
    optimizer = make_optimizer(TrainConfig(optimizer="adam", learning_rate=1e-3), 10)
    assert isinstance(optimizer, ReferenceAdam) and optimizer.epsilon == 1e-8
    # Gradients near epsilon, where it is added matters.
    initial = np.array([1.0, -2.0, 0.5], dtype="float32")
    gradients = [np.array([3e-8, -1e-7, 2e-9]) * (k + 1) for k in range(4)]
    variable = keras.Variable(initial)
    for g in gradients:
        optimizer.apply_gradients([(keras.ops.convert_to_tensor(g.astype("float32")), variable)])
    expected = _torch_adam(initial, gradients, 1e-3)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(variable) - initial, expected - initial, rtol=2e-3
    )
    # Keras' own Adam (epsilon 1e-7 before the bias correction) is far from it here.
    keras_variable = keras.Variable(initial)
    keras_adam = keras.optimizers.Adam(1e-3)
    for g in gradients:
        keras_adam.apply_gradients(
            [(keras.ops.convert_to_tensor(g.astype("float32")), keras_variable)]
        )
    assert not np.allclose(
        keras.ops.convert_to_numpy(keras_variable) - initial, expected - initial, rtol=0.1
    )


def test_datafree_and_audit_adams_are_pytorchs():
    from nasty_tf.audit import _make_optimizer

    config = DataFreeConfig(method="dafl", teacher="")
    for optimizer, rate in (
        (generator_optimizer(config), 0.02),
        (inversion_optimizer(config), 0.05),
        (_make_optimizer(types.SimpleNamespace(optimizer="adam", learning_rate=1e-3)), 1e-3),
    ):
        assert isinstance(optimizer, ReferenceAdam) and optimizer.epsilon == 1e-8
        assert float(optimizer.learning_rate) == pytest.approx(rate)
    restored = ReferenceAdam.from_config(ReferenceAdam(0.02).get_config())
    assert isinstance(restored, ReferenceAdam) and restored.epsilon == 1e-8


def _datafree_flag_defaults(names):
    """The defaults of `tools.datafree`'s flags `names`."""
    from absl import flags

    with binary_flags("datafree"):
        return {name: flags.FLAGS[name].default for name in names}


# (d) DeepInversion on CIFAR: rolls only, no flips.


def test_deepinversion_does_not_flip_by_default():
    assert inspect.signature(DeepInversion).parameters["flip"].default is False
    for dataset in ("cifar10", "cifar100"):
        assert DataFreeConfig(method="deepinversion", teacher="", dataset=dataset).flip is False
    assert _datafree_flag_defaults(["flip"]) == {"flip": False}
    assert DataFreeConfig(method="deepinversion", teacher="", flip=True).flip is True
    for name in ("table1_cifar10", "table2_cifar100", "table5_cifar100", "cifar10_cpu"):
        settings = protocols.get_protocol(name).default_settings()
        config = datafree_attacks.attack_config(settings, "deepinversion", "", "resnet18")
        assert config.flip is False and config.jitter == 2, name


# (e) DAFL's loss weights follow the dataset.


def test_dafl_loss_weights_depend_on_the_dataset():
    assert dafl_loss_weights("cifar100") == CIFAR100
    assert dafl_loss_weights("tiny_imagenet") == CIFAR100
    for dataset in ("cifar10", "digits", "image_folder"):
        assert dafl_loss_weights(dataset) == CIFAR10
    config = DataFreeConfig(method="dafl", teacher="", dataset="cifar100")
    assert {name: getattr(config, name) for name in CIFAR100} == CIFAR100
    # A given weight is kept; the others still come from the dataset.
    config = DataFreeConfig(method="dafl", teacher="", dataset="cifar100", entropy_weight=3.0)
    assert (config.one_hot_weight, config.entropy_weight) == (0.5, 3.0)
    with pytest.raises(
        ValueError, match=r"^entropy_weight must be >= 0\. Received: entropy_weight=-1"
    ):
        DataFreeConfig(method="dafl", teacher="", entropy_weight=-1.0)
    # The protocols pass their dataset; the binary's flags default to "the dataset's".
    for name, expected in (("table1_cifar10", CIFAR10), ("table5_cifar100", CIFAR100)):
        settings = protocols.get_protocol(name).default_settings()
        config = datafree_attacks.attack_config(settings, "dafl", "", "resnet18")
        assert {key: getattr(config, key) for key in expected} == expected, name
    assert _datafree_flag_defaults(list(CIFAR10)) == {name: None for name in CIFAR10}


# (f) Table 4's adversaries train with their own baseline recipe.


def test_table4_adversaries_train_with_their_baseline_recipe():
    settings = protocols.get_protocol("table1_cifar10").default_settings()
    teacher = teacher_student._train_config(settings, settings.teacher, "", settings.seed)
    stages = teacher_student.resolved_students(settings)
    cnn = owner_ablations.adversary_config(teacher, stages, "cnn")
    # The reference's experiments/CIFAR10/baseline/cnn/params.json, with train_scratch.py's Adam.
    assert (cnn.arch, cnn.optimizer, cnn.learning_rate, cnn.lr_schedule) == (
        "cnn",
        "adam",
        1e-3,
        "constant",
    )
    assert (cnn.epochs, cnn.weight_decay, cnn.batch_size) == (100, 0.0, 128)
    assert (cnn.dataset, cnn.seed) == (teacher.dataset, teacher.seed)
    # No student stage of its own: the teacher's SGD schedule (baseline/resnext29: 160 epochs,
    # x0.1 at 80 and 120).
    resnext = owner_ablations.adversary_config(teacher, stages, "resnext29")
    assert resnext == teacher.replace(arch="resnext29")
    assert (resnext.optimizer, resnext.epochs, resnext.lr_milestones) == ("sgd", 160, (0.5, 0.75))
    assert (
        owner_ablations.adversary_config(teacher, (Stage("preresnet20", 3),), "preresnet20").epochs
        == 3
    )


# (g) Table 5 on CIFAR-100 as a protocol (its settings only; never run here).


def test_table5_cifar100_protocol_settings():
    module = protocols.get_protocol("table5_cifar100")
    assert module.NAME == "table5_cifar100" and module.DESCRIPTION
    assert "released" in module.__doc__ and "last epoch" in module.__doc__
    settings = module.default_settings()
    sgd = dict(
        optimizer="sgd",
        learning_rate=0.1,
        lr_schedule="multistep",
        lr_milestones=(0.3, 0.6, 0.8),
        lr_decay=0.2,
        weight_decay=5e-4,
        batch_size=128,
    )
    assert settings.dataset == "cifar100"
    assert settings.teacher == Stage("resnet34", 200, **sgd)
    assert settings.students == (Stage("resnet18", 200, **sgd),)
    assert (settings.omega, settings.temperature) == (0.04, 4.0)
    assert (settings.alpha, settings.kd_temperature) == (0.9, 4.0)
    assert settings.datafree == ("dafl",) and settings.datafree_options == {}
    assert settings.init == "reference"  # as the other paper tables
    assert datafree_attacks.check_methods(settings.datafree, settings.datafree_options) == ("dafl",)
    student_arch = teacher_student.resolved_students(settings)[0].arch
    config = datafree_attacks.attack_config(settings, "dafl", "", student_arch)
    # DAFL's README command for CIFAR-100.
    assert (config.arch, config.dataset, config.epochs, config.batch_size) == (
        "resnet18",
        "cifar100",
        2000,
        1024,
    )
    assert (config.latent_dim, config.generator_learning_rate, config.student_learning_rate) == (
        1000,
        0.02,
        0.1,
    )
    assert {key: getattr(config, key) for key in CIFAR100} == CIFAR100
