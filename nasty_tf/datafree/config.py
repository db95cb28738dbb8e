"""`DataFreeConfig`: the settings of one data-free KD attack, validated once, stored in metrics.

Defaults are the authors' CIFAR settings (DAFL's README commands and `DAFL_train.py`;
DeepInversion's `deepinversion_cifar10.py` "paper parameters"); every one can be scaled down
for short runs. Fields left `None` take the method's own default (`METHOD_DEFAULTS`) or the
dataset's (`dafl_loss_weights`), resolved when the config is made, so `metrics.json` always
records the values that ran.
"""

import dataclasses

from nasty_tf.errors import InputError
from nasty_tf.models._common import check_init
from nasty_tf.training.checkpoints import model_file_sha256

METHODS = ("dafl", "deepinversion")

# epochs: DAFL's n_epochs (of `steps_per_epoch` generator/student steps each); DeepInversion:
# epochs of KD over the synthesised set (our choice: the authors' CIFAR-10 script only
# synthesises). batch_size: DAFL 1024; DeepInversion 256 (synthesis and KD).
METHOD_DEFAULTS = {
    "dafl": {"epochs": 2000, "batch_size": 1024},
    "deepinversion": {"epochs": 200, "batch_size": 256},
}

# DAFL's loss weights (oh, a, ie) in the authors' README commands: CIFAR-10 and CIFAR-100.
DAFL_CIFAR10_WEIGHTS = {"one_hot_weight": 0.05, "activation_weight": 0.01, "entropy_weight": 5.0}
DAFL_CIFAR100_WEIGHTS = {"one_hot_weight": 0.5, "activation_weight": 0.1, "entropy_weight": 20.0}
# Datasets of 100 classes and more; the others (10 classes, or an image folder) take CIFAR-10's.
_MANY_CLASS_DATASETS = ("cifar100", "tiny_imagenet")


def dafl_loss_weights(dataset):
    """DAFL's default loss weights for `dataset`: `{one_hot_weight, activation_weight,
    entropy_weight}`.

    CIFAR-100: the authors' 0.5, 0.1, 20. Tiny-ImageNet (200 classes; the authors give no
    setting): CIFAR-100's, the published setting nearest in number of classes (our choice).
    Every other dataset (CIFAR-10, digits, an image folder): CIFAR-10's 0.05, 0.01, 5.

    Example:
        >>> dafl_loss_weights("cifar100")["entropy_weight"]
        20.0
    """
    weights = DAFL_CIFAR100_WEIGHTS if dataset in _MANY_CLASS_DATASETS else DAFL_CIFAR10_WEIGHTS
    return dict(weights)


@dataclasses.dataclass(frozen=True)
class DataFreeConfig:
    """One data-free attack on a released teacher.

    Attributes:
        method: "dafl" or "deepinversion".
        teacher: the teacher's `.keras` file (the only thing the stealer has).
        arch: the student's architecture (Table 5: resnet18).
        dataset, data_dir: the dataset whose *test split* measures the student and the
            teacher; its training split is never used.
        data_cache_dir: where file sources keep their decoded images (`TrainConfig`).
        epochs: DAFL: epochs of `steps_per_epoch` steps (authors 2000); DeepInversion: KD
            epochs over the synthesised images (default 200). None: the method's default.
        batch_size: DAFL: generated images per step (authors 1024); DeepInversion: images
            optimised together and the KD batch (authors 256). None: the method's default.
        seed: seeds the student, the generator or noise, and the jitter.
        student_learning_rate: SGD (momentum 0.9) rate of the student (authors 0.1), times
            0.1 at 40% and 80% of the run (DAFL's 800/1600-of-2000 schedule).
        student_weight_decay: the student's PyTorch-style L2 weight decay (authors 5e-4).
        temperature: tau of the student's KD loss (DAFL's `kdloss`: 1).
        alpha: DeepInversion's KD weight against CE to the synthesis targets (1: pure KD).
        latent_dim, steps_per_epoch, generator_learning_rate: DAFL (authors 1000, 120, 0.02
            with Adam).
        one_hot_weight, activation_weight, entropy_weight: DAFL's oh, a, ie. None: the
            dataset's (`dafl_loss_weights`: CIFAR-10 0.05, 0.01, 5; CIFAR-100 0.5, 0.1, 20).
        num_images: DeepInversion: images to synthesise (default 50,000, CIFAR-10's
            training-set size; our choice).
        inversion_steps, inversion_learning_rate: DeepInversion: Adam steps per batch and
            rate (authors 2000, 0.05; 0.1 in their "better quality" setting).
        bn_weight, tv_weight, l2_weight: DeepInversion's loss weights (10, 2.5e-5, 0).
        jitter, flip: DeepInversion's random roll (pixels, authors 2) and random horizontal
            flips (off: the authors' CIFAR script only rolls; their ImageNet code flips).
        grid_rows: images per class in `inversion_grid.png`.
        init: how the student's weights start (`nasty_tf.models.INITS`): "keras" (Keras'
            defaults) or "reference" (the reference PyTorch model's), as `TrainConfig.init`.
        output_dir, verbose: where it writes and how loudly (Keras verbosity).
    """

    method: str
    teacher: str
    arch: str = "resnet18"
    dataset: str = "cifar10"
    data_dir: str | None = None
    data_cache_dir: str | None = None
    epochs: int | None = None
    batch_size: int | None = None
    seed: int = 0
    student_learning_rate: float = 0.1
    student_weight_decay: float = 5e-4
    temperature: float = 1.0
    alpha: float = 1.0
    latent_dim: int = 1000
    steps_per_epoch: int = 120
    generator_learning_rate: float = 0.02
    one_hot_weight: float | None = None
    activation_weight: float | None = None
    entropy_weight: float | None = None
    num_images: int = 50000
    inversion_steps: int = 2000
    inversion_learning_rate: float = 0.05
    bn_weight: float = 10.0
    tv_weight: float = 2.5e-5
    l2_weight: float = 0.0
    jitter: int = 2
    flip: bool = False
    grid_rows: int = 8
    init: str = "keras"
    output_dir: str = "runs/datafree"
    verbose: int = 2

    def __post_init__(self):
        if self.method not in METHODS:
            raise InputError(
                f"method must be one of {', '.join(METHODS)}. Received: method={self.method!r}"
            )
        defaults = {**METHOD_DEFAULTS[self.method], **dafl_loss_weights(self.dataset)}
        for name, value in defaults.items():
            if getattr(self, name) is None:
                object.__setattr__(self, name, value)
        for name in (
            "epochs",
            "batch_size",
            "latent_dim",
            "steps_per_epoch",
            "num_images",
            "inversion_steps",
            "grid_rows",
        ):
            if getattr(self, name) < 1:
                raise InputError(f"{name} must be >= 1. Received: {name}={getattr(self, name)}")
        for name in (
            "student_learning_rate",
            "generator_learning_rate",
            "inversion_learning_rate",
            "temperature",
        ):
            if not getattr(self, name) > 0:
                raise InputError(f"{name} must be > 0. Received: {name}={getattr(self, name)}")
        for name in (
            "student_weight_decay",
            "one_hot_weight",
            "activation_weight",
            "entropy_weight",
            "bn_weight",
            "tv_weight",
            "l2_weight",
            "jitter",
        ):
            if getattr(self, name) < 0:
                raise InputError(f"{name} must be >= 0. Received: {name}={getattr(self, name)}")
        if not 0 <= self.alpha <= 1:
            raise InputError(f"alpha must be in [0, 1]. Received: alpha={self.alpha}")
        check_init(self.init)

    def replace(self, **changes):
        return dataclasses.replace(self, **changes)

    def identity(self):
        """The fields that decide the attack's result (`TrainConfig.identity`): all but where it
        writes, how loudly, and where the decoded images are cached; the teacher is its file's
        contents, not its path (`model_file_sha256`)."""
        fields = dataclasses.asdict(self)
        for name in ("output_dir", "verbose", "data_cache_dir", "teacher"):
            fields.pop(name)
        fields["teacher_sha256"] = model_file_sha256(self.teacher, "teacher")
        if fields["init"] == "keras":
            fields.pop("init")  # runs made before the option keep their keys
        return fields
