"""Data-free KD attacks (`nasty_tf.datafree`, `tools.datafree`): DAFL and DeepInversion.

Loss terms against numpy references, the BatchNorm taps, the generator's layers, short runs
that lower each attack's own loss, the image grid, the job's outputs and the binary. The loss
terms, taps and the whole DeepInversion job are written with `keras.ops` and `compute_loss`
and run under every backend; DAFL's two-player step and the binary run in the TensorFlow pass
only (`single_pass`), and the JAX pass checks that DAFL is refused there in one clear error.
"""

import json
import os

import keras
import numpy as np
import pytest

from binaries import assert_one_line_error, run_tool, run_tool_in_process
from nasty_tf import models
from nasty_tf.data import load_dataset
from nasty_tf.datafree import (
    DAFL,
    DataFreeConfig,
    DeepInversion,
    PixelSpace,
    batchnorm_input_model,
    dafl_generator,
    losses,
    run_datafree,
    save_image_grid,
    synthesize,
)
from nasty_tf.datafree.image_grid import grid_size
from nasty_tf.datafree.jobs import GRID_FILE, GRID_SCALE
from nasty_tf.errors import InputError

TENSORFLOW_ONLY = pytest.mark.skipif(
    keras.backend.backend() != "tensorflow",
    reason="DAFL's step, the job and the binary need TensorFlow",
)


def to_numpy(x):
    return np.asarray(keras.ops.convert_to_numpy(x), dtype=np.float64)


def np_softmax(logits):
    z = logits - logits.max(axis=-1, keepdims=True)
    return np.exp(z) / np.exp(z).sum(axis=-1, keepdims=True)


@pytest.fixture(scope="module")
def teacher():
    """A random digits CNN (BN moving stats made non-trivial so the BN loss sees them)."""
    digits = load_dataset("digits")
    keras.utils.set_random_seed(3)
    network = models.get_model("cnn", 10, digits.input_shape, mean=digits.mean, std=digits.std)
    rng = np.random.default_rng(0)
    for layer in network.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            size = layer.moving_mean.shape[0]
            layer.moving_mean.assign(rng.normal(0, 0.5, size).astype("float32"))
            layer.moving_variance.assign(rng.uniform(0.5, 2.0, size).astype("float32"))
    return network


# --- loss terms against numpy ---------------------------------------------------------------


def test_one_hot_loss_is_cross_entropy_to_the_argmax():
    logits = np.random.default_rng(0).normal(size=(6, 5)).astype("float32")
    probs = np_softmax(logits.astype(np.float64))
    expected = -np.mean(np.log(probs[np.arange(6), logits.argmax(-1)]))
    assert to_numpy(losses.one_hot_loss(logits)) == pytest.approx(expected, rel=1e-5)


def test_activation_loss_is_minus_mean_absolute_feature():
    features = np.random.default_rng(1).normal(size=(4, 7)).astype("float32")
    assert to_numpy(losses.activation_loss(features)) == pytest.approx(
        -np.abs(features).mean(), rel=1e-6
    )


def test_information_entropy_loss_is_minus_entropy_of_the_mean_softmax_in_log10():
    logits = np.random.default_rng(2).normal(size=(8, 10)).astype("float32") * 3
    mean = np_softmax(logits.astype(np.float64)).mean(axis=0)
    expected = np.sum(mean * np.log10(mean))
    assert to_numpy(losses.information_entropy_loss(logits)) == pytest.approx(expected, rel=1e-5)
    # Balanced predictions reach the minimum, -log10(classes).
    assert to_numpy(
        losses.information_entropy_loss(np.eye(10, dtype="float32") * 50)
    ) == pytest.approx(-1.0, rel=1e-5)


def test_bn_statistics_loss_matches_numpy_for_conv_and_dense_inputs():
    rng = np.random.default_rng(3)
    conv = rng.normal(1.0, 2.0, size=(5, 4, 4, 3)).astype("float32")
    dense = rng.normal(size=(5, 6)).astype("float32")
    means = [rng.normal(size=3).astype("float32"), rng.normal(size=6).astype("float32")]
    variances = [rng.uniform(0.5, 2, 3).astype("float32"), rng.uniform(0.5, 2, 6).astype("float32")]
    expected = 0.0
    for x, mean, variance in zip((conv, dense), means, variances):
        flat = x.reshape(-1, x.shape[-1]).astype(np.float64)
        expected += np.linalg.norm(flat.var(axis=0) - variance) + np.linalg.norm(
            flat.mean(axis=0) - mean
        )
    value = losses.bn_statistics_loss([conv, dense], means, variances)
    assert to_numpy(value) == pytest.approx(expected, rel=1e-5)


def test_total_variation_and_l2_priors_match_numpy():
    x = np.random.default_rng(4).normal(size=(2, 5, 6, 3)).astype("float32")
    x64 = x.astype(np.float64)
    expected = sum(
        np.linalg.norm(d)
        for d in (
            x64[:, :, :-1] - x64[:, :, 1:],
            x64[:, :-1] - x64[:, 1:],
            x64[:, 1:, :-1] - x64[:, :-1, 1:],
            x64[:, :-1, :-1] - x64[:, 1:, 1:],
        )
    )
    assert to_numpy(losses.total_variation_loss(x)) == pytest.approx(expected, rel=1e-5)
    assert to_numpy(losses.image_l2_loss(x)) == pytest.approx(np.linalg.norm(x64), rel=1e-5)


# --- BN taps, pixel space, generator --------------------------------------------------------


def test_bn_inputs_are_read_from_every_batchnorm_layer(teacher):
    taps, bn_layers = batchnorm_input_model(teacher)
    expected = [l.name for l in teacher.layers if isinstance(l, keras.layers.BatchNormalization)]
    assert [l.name for l in bn_layers] == expected == ["bn1", "bn2", "bn3", "fc_bn"]
    assert len(taps.outputs) == 1 + len(expected)
    images = np.random.default_rng(5).integers(0, 256, (4, 32, 32, 3)).astype("float32")
    outputs = taps(images, training=False)
    np.testing.assert_allclose(
        to_numpy(outputs[0]), to_numpy(teacher(images, training=False)), atol=1e-4
    )
    # bn1's input is conv1's output, fc_bn's is fc1's.
    for bn_name, source in (("bn1", "conv1"), ("fc_bn", "fc1")):
        reference = keras.Model(teacher.input, teacher.get_layer(source).output)(images)
        np.testing.assert_allclose(
            to_numpy(outputs[1 + expected.index(bn_name)]),
            to_numpy(reference),
            rtol=1e-4,
            atol=1e-4,
        )


def test_bn_loss_vanishes_when_moving_stats_are_the_batch_stats(teacher):
    inversion = DeepInversion(teacher, batch_size=4, jitter=0, flip=False)
    targets = inversion.targets()
    saved = [(to_numpy(l.moving_mean), to_numpy(l.moving_variance)) for l in inversion.bn_layers]
    try:
        # Layer by layer: changing a layer's statistics changes the inputs of the next ones.
        for index, layer in enumerate(inversion.bn_layers):
            inputs = inversion(targets, training=False)["bn_inputs"][index]
            mean, variance = losses.batch_statistics(inputs)
            layer.moving_mean.assign(mean)
            layer.moving_variance.assign(variance)
        assert inversion.evaluate_objective()["bn"] == pytest.approx(0.0, abs=1e-3)
        # The last layer off by a known amount (nothing after it is tapped): exactly that norm.
        last = inversion.bn_layers[-1]
        last.moving_mean.assign(last.moving_mean + 0.5)
        channels = last.moving_mean.shape[0]
        assert inversion.evaluate_objective()["bn"] == pytest.approx(
            0.5 * np.sqrt(channels), rel=1e-3
        )
    finally:
        for layer, (mean, variance) in zip(inversion.bn_layers, saved):
            layer.moving_mean.assign(mean.astype("float32"))
            layer.moving_variance.assign(variance.astype("float32"))


def test_pixel_space_inverts_the_teachers_normalisation(teacher):
    z = np.random.default_rng(6).normal(size=(2, 32, 32, 3)).astype("float32")
    pixels = PixelSpace(teacher).to_pixels(z)
    normalised = teacher.get_layer("pixel_normalization")(pixels)
    np.testing.assert_allclose(to_numpy(normalised), z, atol=1e-4)


def test_dafl_generator_keeps_the_reference_layers():
    generator = dafl_generator(latent_dim=16, image_shape=(32, 32, 3))
    assert generator.output_shape == (None, 32, 32, 3)
    assert generator.get_layer("bn1").epsilon == 0.8 and generator.get_layer("bn2").epsilon == 0.8
    final = generator.get_layer("bn_out")
    assert not final.center and not final.scale and not final.trainable_weights
    with pytest.raises(InputError, match="divisible by 4"):
        dafl_generator(16, (30, 30, 3))
    with pytest.raises(InputError, match="^latent_dim must be >= 1. Received: latent_dim=0$"):
        dafl_generator(0)


# --- short runs lower the attacks' own losses -------------------------------------------------


def test_deep_inversion_lowers_its_loss(teacher):
    inversion = DeepInversion(teacher, batch_size=10, seed=0)
    inversion.compile(optimizer=keras.optimizers.Adam(0.1))
    pixels, targets, history = synthesize(inversion, num_images=15, steps=12, seed=0)
    assert pixels.shape == (15, 32, 32, 3) and pixels.dtype == np.float32
    np.testing.assert_array_equal(targets, np.r_[np.arange(10), np.arange(5)])
    assert len(history) == 2
    for batch in history:
        assert batch["final"]["loss"] < batch["initial"]["loss"]
    # The teacher itself was not trained.
    assert not teacher.trainable and [w.name for w in inversion.trainable_weights] == ["images"]


@TENSORFLOW_ONLY
@pytest.mark.single_pass
def test_dafl_lowers_the_generator_loss_and_trains_only_generator_and_student(teacher):
    keras.utils.set_random_seed(0)
    student = models.get_model("cnn", 10)
    teacher_before = [to_numpy(w) for w in teacher.weights]
    dafl = DAFL(dafl_generator(32), teacher, student, seed=0)
    dafl.compile(
        generator_optimizer=keras.optimizers.Adam(0.02),
        student_optimizer=keras.optimizers.SGD(0.1, momentum=0.9),
    )
    dafl.build()
    history = dafl.fit(np.zeros((6 * 16, 1), "float32"), batch_size=16, epochs=3, verbose=0).history
    assert history["loss"][-1] < history["loss"][0]
    assert set(history) >= {"one_hot", "activation", "entropy", "kd", "teacher_agreement"}
    for before, after in zip(teacher_before, teacher.weights):
        np.testing.assert_array_equal(before, to_numpy(after))


# --- the grid ---------------------------------------------------------------------------------


@pytest.mark.single_pass  # numpy and Pillow only
def test_image_grid_has_one_column_per_class_and_the_expected_size(tmp_path):
    from PIL import Image

    images = np.zeros((7, 8, 6, 3), np.uint8)
    labels = np.array([0, 0, 1, 2, 2, 2, 2])
    images[labels == 1] = 255
    path = str(tmp_path / "grid.png")
    size = save_image_grid(images, labels, num_classes=3, path=path, rows=2, scale=2)
    assert size == grid_size((8, 6), 3, 2, scale=2) == (2 + 3 * (12 + 2), 2 + 2 * (16 + 2))
    grid = np.asarray(Image.open(path))
    assert grid.shape == (size[1], size[0], 3)
    assert (grid[2:18, 16:28] == 255).all()  # column 1, row 0: the white image
    assert (grid[20:36, 16:28] == 128).all()  # column 1, row 1: no second image, grey


# --- the job and the binary -----------------------------------------------------------------

TINY_DAFL = [
    "--method=dafl",
    "--arch=cnn",
    "--dataset=digits",
    "--epochs=1",
    "--batch_size=16",
    "--steps_per_epoch=3",
    "--latent_dim=16",
    "--grid_rows=2",
    "--verbose=0",
]


def test_deepinversion_job_writes_student_metrics_and_grid(given_teachers, tmp_path):
    config = DataFreeConfig(
        method="deepinversion",
        teacher=given_teachers["nasty"],
        arch="cnn",
        dataset="digits",
        epochs=1,
        batch_size=20,
        num_images=20,
        inversion_steps=5,
        grid_rows=2,
        output_dir=str(tmp_path / "di"),
        verbose=0,
    )
    metrics = run_datafree(config)
    written = json.load(open(tmp_path / "di" / "metrics.json"))
    assert written["accuracy"] == pytest.approx(metrics["accuracy"])
    assert 0 <= written["accuracy"] <= 100 and 0 <= written["teacher_accuracy"] <= 100
    assert written["config"]["method"] == "deepinversion" and written["epochs"] == 1
    assert written["images_synthesized"] == 20
    assert written["inversion"]["final_loss"] < written["inversion"]["initial_loss"]
    student = keras.saving.load_model(str(tmp_path / "di" / "model.keras"))
    assert student.name == "cnn"
    # The student took the teacher's own normalisation (a data-free stealer knows no dataset).
    teacher = keras.saving.load_model(given_teachers["nasty"])
    assert PixelSpace(student).mean == PixelSpace(teacher).mean
    from PIL import Image

    assert Image.open(tmp_path / "di" / GRID_FILE).size == grid_size((32, 32), 10, 2, GRID_SCALE)
    with pytest.raises(
        InputError, match="already holds a finished run; set `overwrite` to replace it"
    ):
        run_datafree(config)
    assert run_datafree(config, on_finished="reuse") == written


@pytest.mark.skipif(
    keras.backend.backend() == "tensorflow", reason="the refusal is for other backends"
)
def test_dafl_off_tensorflow_is_refused_in_one_clear_error(given_teachers, tmp_path):
    config = DataFreeConfig(
        method="dafl", teacher=given_teachers["normal"], output_dir=str(tmp_path)
    )
    with pytest.raises(InputError, match="TensorFlow backend"):
        run_datafree(config)
    assert not os.listdir(tmp_path)


@pytest.mark.single_pass
def test_binary_runs_dafl_on_tiny_settings(given_teachers, tmp_path):
    result = run_tool_in_process(
        "datafree", *TINY_DAFL, f"--teacher={given_teachers['normal']}", f"--output_dir={tmp_path}"
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "dafl student cnn: test accuracy" in result.stdout
    metrics = json.load(open(tmp_path / "metrics.json"))
    assert metrics["method"] == "dafl" and metrics["config"]["latent_dim"] == 16
    assert set(metrics["history"]) >= {"loss", "kd", "student_accuracy"}
    assert os.path.isfile(tmp_path / "model.keras") and os.path.isfile(tmp_path / GRID_FILE)


@pytest.mark.single_pass
def test_binary_missing_teacher_is_one_clear_line(tmp_path):
    result = run_tool(
        "datafree", *TINY_DAFL, "--teacher=/nonexistent/teacher.keras", f"--output_dir={tmp_path}"
    )
    assert_one_line_error(result, "--teacher", "no such file")
    assert not os.path.exists(tmp_path / "metrics.json")


@pytest.mark.single_pass
def test_config_refuses_bad_settings():
    with pytest.raises(InputError, match="^method must be one of"):
        DataFreeConfig(method="gan", teacher="t.keras")
    with pytest.raises(
        InputError, match="^inversion_steps must be >= 1. Received: inversion_steps=0"
    ):
        DataFreeConfig(method="deepinversion", teacher="t.keras", inversion_steps=0)
    config = DataFreeConfig(method="deepinversion", teacher="t.keras")
    assert (config.epochs, config.batch_size) == (200, 256)  # the method's defaults, resolved
    assert DataFreeConfig(method="dafl", teacher="t.keras").batch_size == 1024
