"""`run_datafree`: a data-free KD attack on a released teacher, as a plain job function.

Writes to `config.output_dir` (DESIGN.md section 6): `model.keras` (the bare student),
`metrics.json` (student `accuracy` and `teacher_accuracy` in percent on the test split of
`config.dataset`, used for evaluation only; `epochs`; the full config; history) and
`inversion_grid.png` (Fig. 6 style, one column per class). A finished run is refused, reused
or overwritten through `RunDirectory`, which one process at a time holds (`RunLock`).

An interrupted run resumes exactly where it stopped, as the training jobs do: the student's
(and DAFL's generator's) weights, optimizers and random generator states are backed up every
epoch (`TrainingBackup`), the KD data order is a pure function of (seed, epoch), and each
finished DeepInversion batch is kept (`backup/synthesis/`), each batch a pure function of
(seed, its index). So a resumed run equals an uninterrupted one.
"""

import json
import math
import os
import time

import keras
import numpy as np

from nasty_tf import data as data_lib
from nasty_tf import models
from nasty_tf.atomic_io import atomic_write_bytes, atomic_write_json
from nasty_tf.datafree.dafl import DAFL
from nasty_tf.datafree.deep_inversion import DeepInversion, synthesize
from nasty_tf.datafree.generator import dafl_generator
from nasty_tf.datafree.image_grid import save_image_grid
from nasty_tf.datafree.pixel_space import PixelSpace
from nasty_tf.errors import InputError
from nasty_tf.knowledge_distiller import KnowledgeDistiller
from nasty_tf.training import input_pipeline
from nasty_tf.training.callbacks import TrainingBackup, run_callbacks
from nasty_tf.training.checkpoints import load_network
from nasty_tf.training.evaluation import accuracy_percent, predict_logits
from nasty_tf.training.optimizers import ReferenceAdam, ReferenceSGD
from nasty_tf.training.run_directory import RunDirectory, kill_point

GRID_FILE = "inversion_grid.png"
GRID_SCALE = 2  # each image drawn at twice its size
# DAFL's student schedule: x0.1 at epochs 800 and 1600 of 2000, kept as fractions.
_STUDENT_MILESTONES = (0.4, 0.8)


def check_backend(method):
    """Raises `InputError` for DAFL off TensorFlow (its two-player step uses a GradientTape).

    DeepInversion's synthesis and KD are backend-portable (`compute_loss` hooks only).
    """
    backend = keras.backend.backend()
    if method == "dafl" and backend != "tensorflow":
        raise InputError(
            "the DAFL data-free attack needs the TensorFlow backend for now (deepinversion runs "
            f"on any); unset KERAS_BACKEND. Received: KERAS_BACKEND={backend!r}"
        )


def _run_config(config):
    # The teacher's path for readers; runs are matched on its SHA-256 (`same_run`).
    return {"kind": "datafree", **config.identity(), "teacher": config.teacher}


def generator_optimizer(config):
    """DAFL's generator optimizer: PyTorch's Adam (epsilon 1e-8) at `generator_learning_rate`."""
    return ReferenceAdam(config.generator_learning_rate)


def inversion_optimizer(config):
    """DeepInversion's image optimizer: PyTorch's Adam (epsilon 1e-8), `inversion_learning_rate`."""
    return ReferenceAdam(config.inversion_learning_rate)


def _student_optimizer(config, total_steps):
    boundaries = [max(0, int(total_steps * m) - 1) for m in _STUDENT_MILESTONES]
    rates = [config.student_learning_rate * 0.1**i for i in range(len(boundaries) + 1)]
    schedule = keras.optimizers.schedules.PiecewiseConstantDecay(boundaries, rates)
    return ReferenceSGD(learning_rate=schedule, momentum=0.9, l2=config.student_weight_decay)


def _accuracy(network, images, labels):
    return accuracy_percent(predict_logits(network, images), labels)


class _StudentAccuracy(keras.callbacks.Callback):
    """Adds the student's test accuracy to each epoch's logs (as the authors' loop prints)."""

    def __init__(self, student, dataset):
        super().__init__()
        self.student = student
        self.dataset = dataset

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["student_accuracy"] = _accuracy(
                self.student, self.dataset.x_test, self.dataset.y_test
            )


def _fit(model, run_dir, config, hint, dataset, student, inputs):
    """`model.fit` under the run directory's callbacks (history, TensorBoard, backup), resumed
    from the backup; `inputs(initial_epoch)` gives `fit`'s data arguments."""
    backup = TrainingBackup(run_dir.backup_dir)
    initial_epoch = backup.completed_epochs()
    run_dir.restart_history(initial_epoch)
    model.fit(
        **inputs(initial_epoch),
        epochs=config.epochs,
        verbose=config.verbose,
        callbacks=run_callbacks(
            run_dir, hint, backup, log_adders=[_StudentAccuracy(student, dataset)]
        ),
    )
    return run_dir.history()


def _run_dafl(config, teacher, student, dataset, space, run_dir):
    generator = dafl_generator(config.latent_dim, dataset.input_shape)
    dafl = DAFL(
        generator,
        teacher,
        student,
        one_hot_weight=config.one_hot_weight,
        activation_weight=config.activation_weight,
        entropy_weight=config.entropy_weight,
        temperature=config.temperature,
        seed=config.seed,
    )
    dafl.compile(
        generator_optimizer=generator_optimizer(config),
        student_optimizer=_student_optimizer(config, config.epochs * config.steps_per_epoch),
    )
    dafl.build()
    # Each row only sets the batch size: the images come from the generator.
    rows = np.zeros((config.steps_per_epoch * config.batch_size, 1), dtype="float32")
    started = time.time()
    history = _fit(
        dafl,
        run_dir,
        config,
        "lower `generator_learning_rate` or `student_learning_rate`",
        dataset,
        student,
        lambda initial_epoch: input_pipeline.fit_inputs(rows, batch_size=config.batch_size),
    )
    seconds = time.time() - started
    # The grid: generated images sorted into columns by the teacher's own prediction.
    count = 4 * config.grid_rows * dataset.num_classes
    latent = keras.random.normal((count, config.latent_dim), seed=config.seed + 1)
    normalised = predict_logits(generator, latent)  # images, not logits: the same batched predict
    labels = np.argmax(predict_logits(teacher, space.to_pixels(normalised)), axis=-1)
    extra = {"train_seconds": round(seconds, 1), "history": history}
    return extra, space.to_uint8(normalised), labels


class _SynthesisStore:
    """DeepInversion's finished batches in the run's backup, so that a resumed run redoes only
    the batch it was killed in (each batch a pure function of (seed, its index))."""

    def __init__(self, run_dir):
        self.directory = os.path.join(run_dir.backup_dir, "synthesis")

    def _path(self, index, suffix):
        return os.path.join(self.directory, f"batch-{index}{suffix}")

    def load(self, index):
        if not os.path.exists(self._path(index, ".json")):
            return None
        with open(self._path(index, ".json")) as f:
            history = json.load(f)
        with np.load(self._path(index, ".npz")) as arrays:
            return arrays["pixels"], arrays["targets"], history

    def save(self, index, pixels, targets, history):
        import io

        buffer = io.BytesIO()
        np.savez(buffer, pixels=pixels, targets=targets)
        atomic_write_bytes(self._path(index, ".npz"), buffer.getvalue())
        atomic_write_json(self._path(index, ".json"), history)  # written last: the batch is done
        kill_point(f"synthesis:{index}")


def _run_deepinversion(config, teacher, student, dataset, space, run_dir):
    inversion = DeepInversion(
        teacher,
        batch_size=config.batch_size,
        bn_weight=config.bn_weight,
        tv_weight=config.tv_weight,
        l2_weight=config.l2_weight,
        jitter=config.jitter,
        flip=config.flip,
        seed=config.seed,
    )
    inversion.compile(optimizer=inversion_optimizer(config))
    started = time.time()
    pixels, targets, synthesis = synthesize(
        inversion,
        config.num_images,
        config.inversion_steps,
        seed=config.seed,
        verbose=1 if config.verbose == 1 else 0,
        store=_SynthesisStore(run_dir),
    )
    inversion_seconds = time.time() - started
    distiller = KnowledgeDistiller(
        student, teacher, alpha=config.alpha, temperature=config.temperature
    )
    steps_per_epoch = math.ceil(len(pixels) / config.batch_size)
    distiller.compile(optimizer=_student_optimizer(config, config.epochs * steps_per_epoch))
    distiller(pixels[:1])  # the backup can only be restored into a built model
    started = time.time()
    history = _fit(
        distiller,
        run_dir,
        config,
        "lower `student_learning_rate`",
        dataset,
        student,
        lambda initial_epoch: input_pipeline.fit_inputs(
            pixels,
            targets,
            batch_size=config.batch_size,
            shuffle_seed=config.seed,
            epochs=config.epochs,
            initial_epoch=initial_epoch,
        ),
    )
    student_seconds = time.time() - started
    teacher_on_synthesised = _accuracy(teacher, pixels, targets)
    extra = {
        "train_seconds": round(inversion_seconds + student_seconds, 1),
        "inversion_seconds": round(inversion_seconds, 1),
        "student_seconds": round(student_seconds, 1),
        "images_synthesized": int(len(pixels)),
        # Share of the synthesised images the teacher assigns to their target class.
        "teacher_accuracy_on_synthesized": teacher_on_synthesised,
        "inversion": {
            "initial_loss": float(np.mean([b["initial"]["loss"] for b in synthesis])),
            "final_loss": float(np.mean([b["final"]["loss"] for b in synthesis])),
            "batches": synthesis,
        },
        "history": history,
    }
    return extra, np.clip(np.rint(pixels), 0, 255).astype(np.uint8), targets


def run_datafree(config, dataset=None, on_finished="error"):
    """Runs a data-free KD attack (DAFL or DeepInversion) on `config.teacher`.

    The student gets the teacher's own input normalisation (read from its
    `pixel_normalization` layer): a data-free stealer knows no dataset statistics.

    Args:
        config: a `DataFreeConfig`.
        dataset: an already loaded `Dataset` for evaluation; loaded from `config` when None.
            Only its test split (and its image shape and classes) is used.
        on_finished: "error", "reuse" or "overwrite" (see `RunDirectory`).

    Returns:
        The metrics dict written to `metrics.json`: `accuracy` (student, percent, test split),
        `teacher_accuracy`, `method`, `arch`, `teacher`, `dataset`, `epochs`, `batch_size`,
        `train_seconds`, `history`, `config`, and method-specific entries.

    Raises:
        InputError: a bad teacher file, dataset or config, or DAFL on a backend other than
            TensorFlow.

    Example:
        >>> metrics = run_datafree(DataFreeConfig(method="dafl", teacher="runs/nasty/model.keras",
        ...                                       arch="cnn", dataset="digits", epochs=5,
        ...                                       batch_size=64, output_dir="runs/dafl"))
    """
    check_backend(config.method)
    # Held for the run's whole life: one writer per directory (`RunLock`).
    with RunDirectory(config.output_dir, _run_config(config), on_finished) as run_dir:
        return _run(config, dataset, run_dir)


def _run(config, dataset, run_dir):
    if (metrics := run_dir.finished_metrics()) is not None:
        return metrics
    if dataset is None:
        dataset = data_lib.load_dataset(
            config.dataset,
            data_dir=config.data_dir,
            seed=config.seed,
            cache_dir=config.data_cache_dir,
        )
    teacher = load_network(config.teacher, "teacher", dataset)
    space = PixelSpace(teacher)
    # Built before anything is written: an unknown arch fails first.
    student = models.new_network(config, dataset, mean=space.mean, std=space.std)
    run_dir.prepare()
    runner = _run_dafl if config.method == "dafl" else _run_deepinversion
    extra, grid_images, grid_labels = runner(config, teacher, student, dataset, space, run_dir)
    save_image_grid(
        grid_images,
        grid_labels,
        dataset.num_classes,
        os.path.join(config.output_dir, GRID_FILE),
        rows=config.grid_rows,
        scale=GRID_SCALE,
    )
    metrics = {
        "accuracy": _accuracy(student, dataset.x_test, dataset.y_test),
        "teacher_accuracy": _accuracy(teacher, dataset.x_test, dataset.y_test),
        "method": config.method,
        "arch": config.arch,
        "teacher": config.teacher,
        "dataset": dataset.name,
        "epochs": config.epochs,
        "batch_size": config.batch_size,
        "grid": GRID_FILE,
        "backend": keras.backend.backend(),
        **extra,
        "config": run_dir.config,
    }
    run_dir.finish(student, metrics)
    return metrics
