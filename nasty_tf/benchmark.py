"""Training-step throughput of the real training path (issue 7): `benchmark(config)`.

What is timed is what `nasty_tf.training` runs: the same trainer classes (`AugmentedClassifier`
for `normal`, `NastyTeacher` for `nasty`, `KnowledgeDistiller` for `kd`), the same optimizer
(`ReferenceSGD`, momentum 0.9, PyTorch-style L2 5e-4, built by `make_optimizer`), the dataset's
augmenter inside the step, and `fit` on in-memory uint8 images reshuffled every epoch, fed as
`training.jobs` feeds it (on TensorFlow, `training.input_pipeline`). Only the data are
synthetic (uniform random pixels and labels).

Timing: each case is built, compiled and warmed up once (tracing and compilation excluded);
then every repeat is one `fit` call of `steps` steps, timed with the wall clock. The cases of
one call are interleaved (normal, nasty, normal, nasty...), so that load from other processes
hits them alike, and the median repeat is reported. A `fit` call's own setup (iterator, epoch
end) is inside the timed span, as it is once per epoch in real training: take `steps` large
enough that it does not matter (10 ResNet-18 steps on a CPU, a few hundred on a GPU).
Beside the wall clock, `cpu_seconds_per_step` is the process' CPU time (all threads) per step:
the work done, which idle waits (such as the tf.data teardown wait that `input_pipeline`
avoids) and a host descheduling the VM do not inflate; spin-waiting thread pools count in it.
"""

import dataclasses
import datetime
import os
import platform
import statistics
import time

import keras
import numpy as np

from nasty_tf import models
from nasty_tf.data.augment import RECIPES, make_augmenter
from nasty_tf.errors import InputError, check_count
from nasty_tf.knowledge_distiller import KnowledgeDistiller
from nasty_tf.models.fused_batch_norm import BATCH_NORM_LAYERS
from nasty_tf.nasty_teacher import NastyTeacher
from nasty_tf.training import input_pipeline
from nasty_tf.training.augmented_classifier import AugmentedClassifier
from nasty_tf.training.config import TrainConfig
from nasty_tf.training.optimizers import make_optimizer
from nasty_tf.training.precision import check_precision, dtype_policy

MODES = ("normal", "nasty", "kd")
JIT_COMPILE = ("auto", "true", "false")


def _check_list(name, values, choices, item):
    """A list argument's values: non-empty, each one of `choices`, none twice."""
    shown = ",".join(values)
    if not values or any(value not in choices for value in values):
        raise InputError(
            f"{name} must be a comma-separated list of {', '.join(choices)}. "
            f"Received: {name}={shown}"
        )
    if len(set(values)) != len(values):
        raise InputError(f"{name} lists a {item} twice. Received: {name}={shown}")


@dataclasses.dataclass(frozen=True)
class BenchmarkConfig:
    """What to time.

    Attributes:
        arch: a name from `nasty_tf.models.available_models()` (the trained network; for `kd`
            the student, taught by a `teacher_arch` teacher).
        batch_size: images per step.
        modes: a tuple of "normal", "nasty" and "kd", timed interleaved.
        steps: timed steps per repeat (one `fit` call).
        warmup_steps: untimed steps run first (after compilation), at least 1.
        repeats: timed repeats per mode; the median is reported.
        precision: the Keras dtype policy, one of `nasty_tf.training.precision.PRECISIONS`;
            the global policy is restored afterwards.
        jit_compile: "auto" (what real runs use: XLA on JAX, none on a CPU-only TensorFlow),
            "true" or "false".
        steps_per_execution: `compile(steps_per_execution=...)`.
        augmentation: an augmentation recipe (`nasty_tf.data.augment.RECIPES`) or "none".
        image_size: images are `image_size x image_size x 3`.
        num_classes: classes of the synthetic labels.
        teacher_arch: the `kd` teacher's architecture; `arch` when None.
        seed: seeds weights, data and augmentation.
        batch_norms: the BatchNormalization layers the networks are built with
            (`get_model(..., batch_norm=kind)`), each timed with every mode (interleaved):
            "fused" (the zoo's `FusedBatchNormalization`) and/or "keras" (Keras' own layer),
            to measure what the fused kernel gains.
    """

    arch: str = "resnet18"
    batch_size: int = 128
    modes: tuple = ("normal", "nasty")
    steps: int = 10
    warmup_steps: int = 2
    repeats: int = 3
    precision: str = "float32"
    jit_compile: str = "auto"
    steps_per_execution: int = 1
    augmentation: str = "crop_flip"
    image_size: int = 32
    num_classes: int = 10
    teacher_arch: str | None = None
    seed: int = 0
    batch_norms: tuple = ("fused",)

    def __post_init__(self):
        for name in ("batch_size", "steps", "warmup_steps", "repeats", "steps_per_execution"):
            check_count(name, getattr(self, name))
        _check_list("modes", self.modes, MODES, "mode")
        _check_list("batch_norms", self.batch_norms, tuple(BATCH_NORM_LAYERS), "layer")
        check_precision(self.precision)
        if self.jit_compile not in JIT_COMPILE:
            raise InputError(
                f"jit_compile must be one of {', '.join(JIT_COMPILE)}. "
                f"Received: jit_compile={self.jit_compile!r}"
            )
        if self.augmentation not in RECIPES + ("none",):
            raise InputError(
                f"augmentation must be one of {', '.join(RECIPES + ('none',))}. "
                f"Received: augmentation={self.augmentation!r}"
            )
        if self.image_size < 8 or self.num_classes < 2:
            raise InputError(
                "image_size must be >= 8 and `num_classes` >= 2. "
                f"Received: image_size={self.image_size}, num_classes={self.num_classes}"
            )
        for arch in (self.arch, self.teacher_arch or self.arch):
            if arch not in models.available_models():
                raise InputError(
                    f"Unknown architecture {arch!r}. Available: {', '.join(models.available_models())}"
                )


def machine():
    """The host (CPU model and count) and the accelerators the backend sees."""
    cpu = ""
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((l.split(":", 1)[1].strip() for l in f if l.startswith("model name")), "")
    except OSError:
        pass
    description = {"cpu": cpu or platform.processor(), "cpu_count": os.cpu_count()}
    backend = keras.backend.backend()
    accelerators = []
    if backend == "jax":
        import jax

        accelerators = [d.device_kind for d in jax.devices() if d.platform != "cpu"]
    elif backend == "tensorflow":
        import tensorflow as tf

        accelerators = [
            tf.config.experimental.get_device_details(d).get("device_name", d.name)
            for d in tf.config.list_physical_devices("GPU")
        ]
    if accelerators:
        description["accelerators"] = accelerators
    return description


def _network(arch, config, batch_norm):
    shape = (config.image_size, config.image_size, 3)
    return models.get_model(arch, config.num_classes, shape, batch_norm=batch_norm)


def _train_config(config):
    # The settings of a reference run: SGD 0.1, momentum 0.9, L2 5e-4 applied PyTorch's way.
    return TrainConfig(
        arch=config.arch,
        batch_size=config.batch_size,
        optimizer="sgd",
        learning_rate=0.1,
        weight_decay=5e-4,
        seed=config.seed,
    )


def build_trainer(mode, config, batch_norm="fused"):
    """The compiled trainer of `mode`, built as `nasty_tf.training.jobs` builds it.

    Its networks (trained and frozen) use the BatchNormalization layer `batch_norm` ("fused"
    or "keras"). Call under the precision's dtype policy (see `dtype_policy`).
    """
    augmenter = None
    if config.augmentation != "none":
        augmenter = make_augmenter(config.augmentation, seed=config.seed)
    network = _network(config.arch, config, batch_norm)
    if mode == "normal":
        trainer = AugmentedClassifier(network, augmenter)
    elif mode == "nasty":
        trainer = NastyTeacher(
            network, _network(config.arch, config, batch_norm), augmenter=augmenter
        )
    else:
        teacher = _network(config.teacher_arch or config.arch, config, batch_norm)
        trainer = KnowledgeDistiller(network, teacher, augmenter=augmenter)
    jit_compile = {"auto": "auto", "true": True, "false": False}[config.jit_compile]
    trainer.compile(
        optimizer=make_optimizer(_train_config(config), steps_per_epoch=config.steps),
        jit_compile=jit_compile,
        steps_per_execution=config.steps_per_execution,
    )
    return trainer


def _images(config, count, rng):
    shape = (count, config.image_size, config.image_size, 3)
    images = rng.integers(0, 256, size=shape, dtype=np.uint8)
    labels = rng.integers(0, config.num_classes, size=(count,), dtype=np.int32)
    return images, labels


def benchmark(config):
    """Times every mode of `config`: one result dict per mode and BatchNorm layer, modes innermost.

    Each dict holds `images_per_second` (median over repeats), `seconds_per_step`, every
    repeat's throughput, the configuration, the backend, the machine, the load average at the
    end and the date.

    Example:
        >>> results = benchmark(BenchmarkConfig(arch="cnn", batch_size=8, steps=2, repeats=1))
        >>> results[0]["images_per_second"] > 0
        True
    """
    keras.utils.set_random_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    images, labels = _images(config, config.steps * config.batch_size, rng)
    warmup_images, warmup_labels = _images(config, config.warmup_steps * config.batch_size, rng)

    cases = [(mode, kind) for kind in config.batch_norms for mode in config.modes]
    cpu_seconds = {case: [] for case in cases}

    def run(trainer, x, y, case=None):
        started, cpu_started = time.perf_counter(), time.process_time()
        # As training.jobs feeds fit.
        data = input_pipeline.fit_inputs(
            x, y, batch_size=config.batch_size, shuffle_seed=config.seed
        )
        trainer.fit(**data, epochs=1, verbose=0)
        if case is not None:
            cpu_seconds[case].append(time.process_time() - cpu_started)
        return time.perf_counter() - started

    with dtype_policy(config.precision):
        trainers = {}
        for mode, kind in cases:
            trainers[mode, kind] = build_trainer(mode, config, batch_norm=kind)
        for trainer in trainers.values():  # tracing, compilation, first-step costs
            run(trainer, warmup_images, warmup_labels)
        seconds = {case: [] for case in cases}
        for _ in range(config.repeats):  # interleaved, so that outside load hits all alike
            for case, trainer in trainers.items():
                seconds[case].append(run(trainer, images, labels, case))

    description = machine()
    load = [round(v, 2) for v in os.getloadavg()]
    date = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    results = []
    for (mode, kind), trainer in trainers.items():
        per_step = statistics.median(seconds[mode, kind]) / config.steps
        results.append(
            {
                "framework": "keras",
                "backend": keras.backend.backend(),
                "keras_version": keras.__version__,
                "mode": mode,
                "arch": config.arch,
                "teacher_arch": (config.teacher_arch or config.arch) if mode == "kd" else None,
                "batch_size": config.batch_size,
                "precision": config.precision,
                "jit_compile": bool(trainer.jit_compile),
                "steps_per_execution": config.steps_per_execution,
                "images_per_second": round(config.batch_size / per_step, 2),
                "seconds_per_step": round(per_step, 5),
                "repeat_images_per_second": [
                    round(config.batch_size * config.steps / s, 2) for s in seconds[mode, kind]
                ],
                "cpu_seconds_per_step": round(
                    statistics.median(cpu_seconds[mode, kind]) / config.steps, 5
                ),
                "batch_norm": kind,
                "steps": config.steps,
                "warmup_steps": config.warmup_steps,
                "repeats": config.repeats,
                "augmentation": config.augmentation,
                "image_size": config.image_size,
                "input": "in-memory uint8 images reshuffled per epoch (training.input_pipeline on TF), "
                "augmentation in the step",
                "machine": description,
                "load_average": load,
                "nice": os.nice(0),
                "date": date,
            }
        )
    return results
