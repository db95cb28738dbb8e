"""Frozen configs of the training jobs: what a run needs, validated once, stored in its metrics."""

import dataclasses

from nasty_tf.distribute import check_strategy
from nasty_tf.errors import InputError, check_count
from nasty_tf.models import check_init
from nasty_tf.training.checkpoints import model_file_sha256
from nasty_tf.training.precision import check_precision

OPTIMIZERS = ("sgd", "adam")
LR_SCHEDULES = ("constant", "cosine", "step", "multistep", "warmup_cosine")
WEIGHT_DECAY_MODES = ("coupled", "decoupled")


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Settings shared by every training job (normal, nasty, KD).

    Attributes:
        dataset: a name from `nasty_tf.data.DATASETS`.
        data_dir: dataset location (`image_folder`: directory or archive; TFDS: its data_dir).
        data_cache_dir: where `image_folder` and `tiny_imagenet` keep their decoded images
            (memory-mapped, `nasty_tf.data.decoded_cache`); None decodes into memory.
        train_fraction: stratified fraction of the training split to keep, in (0, 1].
        arch: a name from `nasty_tf.models.available_models()`.
        init: how the network's weights start (`nasty_tf.models.INITS`): "keras" (Keras'
            defaults, glorot-uniform kernels and zero biases) or "reference" (the reference
            PyTorch model's initialisers; `nasty_tf.models.get_model`).
        epochs: number of passes over the training split.
        batch_size: global batch size (of training; the test split is evaluated in batches of
            `nasty_tf.training.evaluation.evaluation_batch_size(batch_size)`).
        optimizer: "sgd" (momentum 0.9, PyTorch-style L2 weight decay) or "adam".
        learning_rate: initial learning rate.
        lr_schedule: "constant", "cosine" (to zero), "step" (x0.1 at 50% and 75% of the
            epochs: the reference's 80/120-of-160 schedule, scaled; "multistep" with those
            milestones, step for step), "multistep" (times
            `lr_decay` at each of `lr_milestones`, PyTorch's `MultiStepLR`), or
            "warmup_cosine" (linear from 0 over the first 10% of the steps, then cosine to
            zero: for short large-batch runs such as `fast_cifar10`).
        lr_milestones: for "multistep": increasing fractions of `epochs` in (0, 1) where the
            rate drops, e.g. (0.3, 0.6, 0.8) for the reference's 60/120/160-of-200. Fractions,
            not epochs, so that a shortened run keeps the schedule's shape.
        lr_decay: for "multistep": factor applied at each milestone, in (0, 1].
        weight_decay: weight decay coefficient (reference: 5e-4). Used by "sgd" only.
        weight_decay_mode: "coupled" (the default): L2 added to the gradient before momentum,
            as PyTorch's `SGD(weight_decay=...)` does; "decoupled": Keras' own
            `SGD(weight_decay=...)`, `w -= lr * wd * w` beside the momentum step (much weaker
            with momentum 0.9, DESIGN.md section 3).
        augment: apply the dataset's augmentation (crop and, for natural images, flip).
        seed: seeds weights, shuffling and augmentation.
        output_dir: where `model.keras`, `metrics.json` and the checkpoints go.
        verbose: Keras verbosity; 2 prints one line per epoch without per-batch host syncs.
        strategy: where it runs, one of `nasty_tf.distribute.STRATEGIES` ("auto",
            "one_device", "mirrored", "multi_worker"; TensorFlow only but "auto").
        precision: the Keras dtype policy of the networks, one of
            `nasty_tf.training.precision.PRECISIONS`: "float32" (the reference's),
            "mixed_bfloat16" or "mixed_float16"; the loaded teacher or adversary runs at it too.
        evaluate_every: the test split is evaluated after every this many epochs and after
            the last (history.csv's `val_*` columns; "NA" in the other rows). Reporting only:
            the result does not change.
        backup_every: the resumable backup is written after every this many epochs, so a
            killed run redoes at most this many. Like `evaluate_every`, it changes the run's
            cost, not its result.
    """

    dataset: str = "digits"
    data_dir: str | None = None
    data_cache_dir: str | None = None
    train_fraction: float = 1.0
    arch: str = "cnn"
    init: str = "keras"
    epochs: int = 10
    batch_size: int = 128
    optimizer: str = "adam"
    learning_rate: float = 1e-3
    lr_schedule: str = "constant"
    lr_milestones: tuple = ()
    lr_decay: float = 0.1
    weight_decay: float = 0.0
    weight_decay_mode: str = "coupled"
    augment: bool = True
    seed: int = 0
    output_dir: str = "runs/train"
    verbose: int = 2
    strategy: str = "auto"
    precision: str = "float32"
    evaluate_every: int = 1
    backup_every: int = 1

    def __post_init__(self):
        check_count("evaluate_every", self.evaluate_every)
        check_count("backup_every", self.backup_every)
        if self.epochs < 1:
            raise InputError(f"epochs must be >= 1. Received: epochs={self.epochs}")
        if self.batch_size < 1:
            raise InputError(f"batch_size must be >= 1. Received: batch_size={self.batch_size}")
        if not self.learning_rate > 0:
            raise InputError(
                f"learning_rate must be > 0. Received: learning_rate={self.learning_rate}"
            )
        if self.weight_decay < 0:
            raise InputError(
                f"weight_decay must be >= 0. Received: weight_decay={self.weight_decay}"
            )
        if not 0 < self.train_fraction <= 1:
            raise InputError(
                f"train_fraction must be in (0, 1]. Received: train_fraction={self.train_fraction}"
            )
        if self.optimizer not in OPTIMIZERS:
            raise InputError(
                f"optimizer must be one of {OPTIMIZERS}. Received: optimizer={self.optimizer!r}"
            )
        if self.lr_schedule not in LR_SCHEDULES:
            raise InputError(
                f"lr_schedule must be one of {LR_SCHEDULES}. Received: lr_schedule={self.lr_schedule!r}"
            )
        if self.weight_decay_mode not in WEIGHT_DECAY_MODES:
            raise InputError(
                f"weight_decay_mode must be one of {WEIGHT_DECAY_MODES}. "
                f"Received: weight_decay_mode={self.weight_decay_mode!r}"
            )
        _check_milestones(self)
        check_strategy(self.strategy)
        check_precision(self.precision)
        check_init(self.init)

    def replace(self, **changes):
        return dataclasses.replace(self, **changes)

    def identity(self):
        """The fields that decide a run's result, as a dict: what a finished run is matched on.

        Left out: where it writes and how loudly, how often it evaluates and backs up, where
        the decoded images are cached, and where it runs (for BatchNorm-free networks
        exactly, DESIGN.md section 3: a run may resume under another strategy; metrics.json
        records `strategy` and `replicas`). A float32 run also leaves out its precision, so
        that it keeps the identity it had before runs had one and the runs (and protocol
        caches) made then stay reusable; so does a run with Keras' initialisers
        (`init="keras"`), for the same reason.
        """
        fields = dataclasses.asdict(self)
        for name in (
            "output_dir",
            "verbose",
            "evaluate_every",
            "backup_every",
            "data_cache_dir",
            "strategy",
        ):
            fields.pop(name)
        if fields["precision"] == "float32":
            fields.pop("precision")
        if fields["init"] == "keras":
            fields.pop("init")
        return fields


def _check_milestones(config):
    milestones = config.lr_milestones
    # A tuple, not a list: the config is frozen and hashable, and JSON round-trips compare equal.
    if not isinstance(milestones, tuple):
        object.__setattr__(config, "lr_milestones", tuple(milestones))
        milestones = config.lr_milestones
    shown = ",".join(str(m) for m in milestones)
    if not all(0 < m < 1 for m in milestones) or list(milestones) != sorted(set(milestones)):
        raise InputError(
            f"lr_milestones must be increasing fractions of the epochs in (0, 1). Received: lr_milestones={shown}"
        )
    if config.lr_schedule == "multistep" and not milestones:
        raise InputError("lr_milestones is required for lr_schedule=multistep (e.g. 0.5,0.75)")
    if not 0 < config.lr_decay <= 1:
        raise InputError(f"lr_decay must be in (0, 1]. Received: lr_decay={config.lr_decay}")


@dataclasses.dataclass(frozen=True)
class NastyConfig:
    """Self-undermining settings (eq. 2): the adversary's `.keras` file, omega and tau_A.

    Attributes:
        adversary: the trained normal network's `.keras` file (`f_A` of eq. 2).
        omega: weight of the adversarial KL term, >= 0.
        temperature: tau_A, > 0.
        init_from: optional `.keras` file whose weights the nasty network starts from instead
            of a fresh initialisation: a network of the same architecture and shapes,
            typically the adversary itself (the owner's normal teacher), so that the nasty
            run only has to move away from it. Its weights are copied once, before training;
            a resumed run restores its backup over them. None (the default): a fresh network
            seeded by the run's seed.
        omega_warmup_epochs: omega ramps linearly, step by step, from 0 at the first step to
            `omega` after this many epochs (`NastyTeacher(omega_warmup_steps=...)`), then
            stays there; 0 (the default): `omega` from the first step.
    """

    adversary: str
    omega: float = 0.04
    temperature: float = 4.0
    init_from: str | None = None
    omega_warmup_epochs: int = 0

    def __post_init__(self):
        if not self.omega >= 0:
            raise InputError(f"omega must be >= 0. Received: omega={self.omega}")
        if not self.temperature > 0:
            raise InputError(f"temperature must be > 0. Received: temperature={self.temperature}")
        check_count("omega_warmup_epochs", self.omega_warmup_epochs, minimum=0)
        if self.init_from is not None and not self.init_from:
            raise InputError(
                f"init_from must be a .keras file or None. Received: init_from={self.init_from!r}"
            )

    def replace(self, **changes):
        return dataclasses.replace(self, **changes)

    def settings(self):
        """The settings metrics.json records beside `identity()`: the files' paths for
        readers. The options left at their defaults are left out, so that a run without them
        records (and is matched on) the config it had before they existed."""
        fields = dataclasses.asdict(self)
        if self.init_from is None:
            fields.pop("init_from")
        if not self.omega_warmup_epochs:
            fields.pop("omega_warmup_epochs")
        return fields

    def identity(self):
        """What decides a run against this adversary: its file's contents, not its path.

        `init_from` counts by its file's contents too (`init_from_sha256`), and
        `omega_warmup_epochs` when > 0; both are left out when unset, so that the runs and
        protocol caches made before they existed keep their keys.
        """
        fields = {
            "adversary_sha256": model_file_sha256(self.adversary, "adversary"),
            "omega": self.omega,
            "temperature": self.temperature,
        }
        if self.init_from is not None:
            fields["init_from_sha256"] = model_file_sha256(self.init_from, "init_from")
        if self.omega_warmup_epochs:
            fields["omega_warmup_epochs"] = self.omega_warmup_epochs
        return fields


@dataclasses.dataclass(frozen=True)
class DistillConfig:
    """KD settings (eq. 1): the teacher's `.keras` file, alpha and tau_s."""

    teacher: str
    alpha: float = 0.9
    temperature: float = 4.0

    def __post_init__(self):
        if not 0 <= self.alpha <= 1:
            raise InputError(f"alpha must be in [0, 1]. Received: alpha={self.alpha}")
        if not self.temperature > 0:
            raise InputError(f"temperature must be > 0. Received: temperature={self.temperature}")

    def settings(self):
        """The settings metrics.json records beside `identity()` (the teacher's path)."""
        return dataclasses.asdict(self)

    def identity(self):
        """What decides a run from this teacher: its file's contents, not its path."""
        return {
            "teacher_sha256": model_file_sha256(self.teacher, "teacher"),
            "alpha": self.alpha,
            "temperature": self.temperature,
        }
