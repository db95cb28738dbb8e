"""The training jobs on tiny digits settings: outputs, resumption, refusals, divergence."""

import hashlib
import json
import os
import shutil

import keras
import numpy as np
import pytest

from nasty_tf import InputError, NastyTeacher
from nasty_tf.errors import TrainingDiverged
from nasty_tf.training import (
    DistillConfig,
    NastyConfig,
    TrainConfig,
    distill,
    load_data,
    load_network,
    train,
    train_nasty,
)
from nasty_tf.training.optimizers import ReferenceSGD
from nasty_tf.training.run_directory import same_run


@pytest.fixture(scope="module")
def digits():
    return load_data(TrainConfig(dataset="digits", train_fraction=0.2))


def tiny(tmp_path, name, **changes):
    fields = dict(
        dataset="digits", train_fraction=0.2, arch="cnn", epochs=1, batch_size=64, verbose=0
    )
    fields.update(changes)
    return TrainConfig(output_dir=str(tmp_path / name), **fields)


@pytest.fixture(scope="module")
def normal_run(tmp_path_factory, digits):
    root = tmp_path_factory.mktemp("normal")
    config = tiny(root, "normal", epochs=2)
    return config, train(config, digits)


def test_train_writes_the_bare_network_and_metrics(normal_run, digits):
    config, metrics = normal_run
    files = set(os.listdir(config.output_dir))
    assert {"model.keras", "metrics.json", "config.json", "history.csv"} <= files
    assert "backup" not in files  # removed once the run finished
    saved = json.load(open(os.path.join(config.output_dir, "metrics.json")))
    assert saved["accuracy"] == metrics["accuracy"] and 0 <= saved["accuracy"] <= 100
    assert saved["epochs"] == 2 and len(saved["history"]["loss"]) == 2
    assert saved["config"]["arch"] == "cnn" and saved["config"]["kind"] == "normal"
    network = keras.saving.load_model(os.path.join(config.output_dir, "model.keras"))
    assert network.name == "cnn" and network.output_shape == (None, 10)
    logits = network.predict(digits.x_test, verbose=0)
    assert np.mean(np.argmax(logits, -1) == digits.y_test) * 100 == pytest.approx(
        metrics["accuracy"]
    )


def test_a_finished_run_is_refused_reused_or_overwritten(normal_run, digits):
    config, metrics = normal_run
    with pytest.raises(
        InputError, match="^output_dir .* already holds a finished run; set `overwrite` to replace"
    ):
        train(config, digits)
    assert train(config, digits, on_finished="reuse") == metrics
    with pytest.raises(InputError, match="different config"):
        train(config.replace(epochs=3), digits, on_finished="reuse")


def test_nasty_and_kd_runs_record_their_partner(normal_run, digits, tmp_path):
    normal_config, normal_metrics = normal_run
    adversary = os.path.join(normal_config.output_dir, "model.keras")
    nasty = train_nasty(tiny(tmp_path, "nasty", seed=1), NastyConfig(adversary, 0.05, 4.0), digits)
    assert nasty["adversary_accuracy"] == pytest.approx(normal_metrics["accuracy"])
    assert nasty["adversarial_kl"] > 0 and {"ce", "kl"} <= set(nasty["history"])
    saved = keras.saving.load_model(os.path.join(tmp_path, "nasty", "model.keras"))
    assert not isinstance(saved, NastyTeacher)  # the bare network, never the wrapper
    assert len(saved.weights) == len(load_network(adversary, "--adversary").weights)
    student = distill(
        tiny(tmp_path, "student"),
        DistillConfig(os.path.join(tmp_path, "nasty", "model.keras")),
        digits,
    )
    assert student["teacher_accuracy"] == pytest.approx(nasty["accuracy"])


def test_runs_match_their_partner_by_its_contents_not_its_path(normal_run, digits, tmp_path):
    normal_config, _ = normal_run
    first = tmp_path / "first"
    shutil.copytree(normal_config.output_dir, first / "teacher")

    def kd(root):
        return DistillConfig(str(root / "teacher" / "model.keras"))

    student = distill(tiny(first, "student"), kd(first), digits)
    teacher_bytes = (first / "teacher" / "model.keras").read_bytes()
    assert student["config"]["teacher"] == kd(first).teacher  # the path, for readers
    assert student["config"]["teacher_sha256"] == hashlib.sha256(teacher_bytes).hexdigest()
    # The whole directory moved: the finished student is still this run.
    moved = tmp_path / "moved"
    os.rename(first, moved)
    assert distill(tiny(moved, "student"), kd(moved), digits, on_finished="reuse") == student
    # Another network saved over the teacher's file: not the same run any more.
    keras.utils.set_random_seed(7)
    from nasty_tf import models

    models.get_model("cnn", 10, digits.input_shape).save(kd(moved).teacher)
    with pytest.raises(InputError, match="different config"):
        distill(tiny(moved, "student"), kd(moved), digits, on_finished="reuse")


def test_predict_logits_are_the_networks_whatever_the_last_batch(digits):
    from nasty_tf import models
    from nasty_tf.training.evaluation import predict_logits

    network = models.get_model("cnn", 10, digits.input_shape)
    images = digits.x_test[:37]  # two batches of 16 and a last one of 5 (padded on JAX)
    logits = predict_logits(network, images, batch_size=16)
    assert logits.shape == (37, 10)
    expected = keras.ops.convert_to_numpy(network(images, training=False))
    np.testing.assert_allclose(logits, expected, rtol=1e-4, atol=1e-4)


def test_a_run_evaluates_in_batches_of_256_or_more_that_its_replicas_divide():
    from nasty_tf.training.evaluation import EVALUATION_BATCH_SIZE, evaluation_batch_size

    assert EVALUATION_BATCH_SIZE == 256
    # The smallest multiple of the training batch holding 256 images.
    cases = {1: 256, 32: 256, 64: 256, 100: 300, 96: 288, 256: 256, 512: 512}
    assert {batch: evaluation_batch_size(batch) for batch in cases} == cases


def test_same_run_compares_partner_digests_not_paths():
    config = {"kind": "distill", "teacher": "/a/t.keras", "teacher_sha256": "d1", "alpha": 0.9}
    assert same_run(dict(config), config)
    assert same_run({**config, "teacher": "/b/t.keras"}, config)  # moved
    assert not same_run({**config, "teacher_sha256": "d2"}, config)  # replaced
    assert not same_run({**config, "alpha": 0.5}, config)
    # No fallback for a config without digests (a format never released).
    assert not same_run({"kind": "distill", "teacher": "/a/t.keras", "alpha": 0.9}, config)
    assert same_run({"kind": "normal", "epochs": 2}, {"kind": "normal", "epochs": 2})
    assert not same_run({"kind": "normal", "epochs": 2}, {"kind": "normal", "epochs": 3})


class _Interrupt(keras.callbacks.Callback):
    def __init__(self, after_epoch):
        super().__init__()
        self.after_epoch = after_epoch

    def on_epoch_end(self, epoch, logs=None):
        if epoch == self.after_epoch:
            raise KeyboardInterrupt


class _CountEpochs(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.epochs = []

    def on_epoch_begin(self, epoch, logs=None):
        self.epochs.append(epoch)


def _train_with(config, digits, callback):
    """`train(config)` with `callback` after the job's own (its backup included)."""
    original_fit = keras.Model.fit

    def fit(self, *args, callbacks=(), **kwargs):
        return original_fit(self, *args, callbacks=[*callbacks, callback], **kwargs)

    keras.Model.fit = fit
    try:
        return train(config, digits)
    finally:
        keras.Model.fit = original_fit


def _interrupt_then_resume(config, digits, after_epoch):
    """The metrics of `config`'s run interrupted after 0-based `after_epoch`, then resumed, and
    the 0-based epochs the resumed run trained."""
    with pytest.raises(KeyboardInterrupt):
        _train_with(config, digits, _Interrupt(after_epoch))
    assert not os.path.exists(os.path.join(config.output_dir, "metrics.json"))
    counted = _CountEpochs()
    return _train_with(config, digits, counted), counted.epochs


def test_an_interrupted_run_resumes_from_its_last_epoch(tmp_path, digits):
    config = tiny(tmp_path, "resumed", epochs=3)
    metrics, epochs_run = _interrupt_then_resume(config, digits, after_epoch=1)
    assert epochs_run == [2]  # epochs 0 and 1 came back from the checkpoint
    assert len(metrics["history"]["loss"]) == 3


def test_sparser_evaluation_and_backups_change_the_cost_not_the_result(tmp_path, digits):
    every_epoch = train(tiny(tmp_path, "every_epoch", epochs=3), digits)
    config = tiny(tmp_path, "sparse", epochs=3, evaluate_every=2, backup_every=2)
    assert config.identity() == tiny(tmp_path, "every_epoch", epochs=3).identity()
    # Interrupted after its third epoch, whose backup it skipped: it redoes that epoch.
    metrics, epochs_run = _interrupt_then_resume(config, digits, after_epoch=2)
    assert epochs_run == [2]
    assert metrics["accuracy"] == every_epoch["accuracy"]
    assert metrics["history"]["loss"] == every_epoch["history"]["loss"]
    # The test split after epoch 2 (every second) and epoch 3 (the last) only.
    assert metrics["history"]["val_accuracy"][0] is None
    assert metrics["history"]["val_accuracy"][1:] == every_epoch["history"]["val_accuracy"][1:]


@pytest.mark.parametrize("name", ["evaluate_every", "backup_every"])
def test_evaluation_and_backup_intervals_are_counts(name):
    with pytest.raises(InputError, match=f"^{name} must be an integer >= 1. Received: {name}=0$"):
        TrainConfig(**{name: 0})


def test_resuming_with_another_config_is_refused(tmp_path, digits):
    config = tiny(tmp_path, "run")
    os.makedirs(os.path.join(config.output_dir, "backup"))
    json.dump(
        {"kind": "normal", "epochs": 99}, open(os.path.join(config.output_dir, "config.json"), "w")
    )
    with pytest.raises(
        InputError, match="unfinished run with a different config; set `overwrite` to discard it$"
    ):
        train(config, digits)


def test_divergence_stops_with_a_clear_error(tmp_path, digits):
    # Overflows float32 at once on every backend and XLA optimisation level (1e12 can stay
    # finite through the first epoch under JAX with XLA's optimisations off: tests/run_all.sh).
    config = tiny(tmp_path, "diverged", optimizer="sgd", learning_rate=1e30)
    with pytest.raises(TrainingDiverged, match="diverged.*epoch 1; lower `learning_rate`$"):
        train(config, digits)
    assert not os.path.exists(os.path.join(config.output_dir, "metrics.json"))


@pytest.mark.parametrize(
    "changes, message",
    [
        (dict(epochs=0), "epochs must be >= 1"),
        (dict(train_fraction=0.0), r"train_fraction must be in \(0, 1\]"),
        (dict(train_fraction=1.5), r"train_fraction must be in \(0, 1\]"),
        (dict(learning_rate=-1.0), "learning_rate must be > 0"),
        (dict(optimizer="rmsprop"), "optimizer must be one of"),
        (
            dict(precision="float8"),
            "precision must be one of float32, mixed_bfloat16, mixed_float16",
        ),
    ],
)
def test_bad_train_config_is_rejected(changes, message):
    with pytest.raises(InputError, match=message):
        TrainConfig(**changes)


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: NastyConfig("x.keras", omega=-1.0), "omega must be >= 0"),
        (lambda: NastyConfig("x.keras", temperature=0.0), "temperature must be > 0"),
        (lambda: DistillConfig("x.keras", alpha=1.1), r"alpha must be in \[0, 1\]"),
    ],
)
def test_bad_nasty_and_kd_configs_are_rejected(make, message):
    with pytest.raises(InputError, match=message):
        make()


def test_partner_with_other_classes_or_shape_is_rejected(tmp_path, digits):
    from nasty_tf import models

    wrong_classes = models.get_model("cnn", 7, (32, 32, 3))
    wrong_classes.save(str(tmp_path / "seven.keras"))
    with pytest.raises(InputError, match="has 7 classes but dataset 'digits' has 10"):
        distill(tiny(tmp_path, "s"), DistillConfig(str(tmp_path / "seven.keras")), digits)
    wrong_shape = models.get_model("preresnet20", 10, (64, 64, 3))
    wrong_shape.save(str(tmp_path / "big.keras"))
    with pytest.raises(InputError, match="takes images of shape"):
        train_nasty(tiny(tmp_path, "n"), NastyConfig(str(tmp_path / "big.keras")), digits)
    (tmp_path / "corrupt.keras").write_bytes(b"not a zip file")
    with pytest.raises(InputError, match="cannot load"):
        distill(tiny(tmp_path, "s2"), DistillConfig(str(tmp_path / "corrupt.keras")), digits)
    with pytest.raises(InputError, match="no such file"):
        distill(tiny(tmp_path, "s3"), DistillConfig(str(tmp_path / "missing.keras")), digits)


def test_reference_sgd_adds_l2_to_the_gradient_before_momentum():
    variable = keras.Variable(np.array([1.0, -2.0], dtype="float32"))
    optimizer = ReferenceSGD(learning_rate=0.1, momentum=0.9, l2=0.5)
    gradient = np.array([0.2, 0.4], dtype="float32")
    velocity = np.zeros(2)
    w = np.array([1.0, -2.0])
    for _ in range(2):  # torch.optim.SGD: d = g + wd*w; v = m*v + d; w -= lr*v
        optimizer.apply_gradients([(keras.ops.convert_to_tensor(gradient), variable)])
        velocity = 0.9 * velocity + (gradient + 0.5 * w)
        w = w - 0.1 * velocity
    np.testing.assert_allclose(keras.ops.convert_to_numpy(variable), w, rtol=1e-5)
