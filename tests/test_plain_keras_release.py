"""Released networks are plain Keras: they load and predict in a process without nasty_tf.

Every `.keras` file the project writes for a network goes through `atomic_save_model`, which
saves `as_plain_keras(network)` (issue 16). Here the nine architectures of the zoo (written by
that function), the networks that the real jobs write (normal and nasty teachers, a KD student
under mixed_bfloat16, a DeepInversion student) and a converted legacy network are all loaded by
fresh Python processes in which any import of nasty_tf fails, run from a directory outside the
checkout: one on TensorFlow that loads them all, and one on JAX (a customer's backend need not be
the owner's) that loads what the jobs wrote; building a network op by op costs JAX seconds per
new shape on a CPU, too much for the whole zoo. Their logits are compared with those of the
networks in memory.

Single pass: the files are written once, on the default backend, and read on both; what
writes them (`clone_model`, `set_weights`, `save`) is backend-neutral Keras, and the JAX pass
of tests/test_training.py and tests/test_datafree.py runs the jobs themselves on JAX.
"""

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest

from nasty_tf import models
from nasty_tf.atomic_io import atomic_save_model
from nasty_tf.data import load_dataset
from nasty_tf.datafree import DataFreeConfig, run_datafree
from nasty_tf.datafree.pixel_space import PixelSpace
from nasty_tf.models import legacy_layers, plain_keras
from nasty_tf.training import DistillConfig, NastyConfig, TrainConfig, distill, train, train_nasty

# Keras' TensorFlow backend converts tensors with a bare `np.array(x)` that NumPy 2 warns about.
pytestmark = [
    pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning"),
    pytest.mark.single_pass,
]
LOADER_BACKENDS = ("tensorflow", "jax")
JOB_OUTPUTS = ("normal", "nasty", "kd_student", "datafree_student")
BFLOAT16_OUTPUTS = ("kd_student",)  # trained and served in mixed_bfloat16

# Run as `python -c <this> <cases.json>` in a directory outside the checkout: loads every file of
# cases.json with Keras alone (safe mode), writes its logits on its images and the loaded layers'
# classes into the working directory.
_LOAD_WITHOUT_NASTY_TF = r"""
import json, sys

class NoNastyTf:
    def find_spec(self, name, path=None, target=None):
        if name == "nasty_tf" or name.startswith("nasty_tf."):
            raise ImportError(f"blocked import of {name}: a release must load with Keras alone")

sys.meta_path.insert(0, NoNastyTf())
import keras
import numpy as np

def layers_of(model):
    for layer in model.layers:
        yield layer
        if isinstance(layer, keras.Model):
            yield from layers_of(layer)

cases = json.load(open(sys.argv[1]))
logits, classes = {}, {}
for name, (path, images) in cases.items():
    model = keras.saving.load_model(path, safe_mode=True)
    images = np.load(images)
    logits[name] = keras.ops.convert_to_numpy(model(images, training=False)).astype("float32")
    classes[name] = sorted({f"{type(l).__module__}.{type(l).__name__}" for l in layers_of(model)})
np.savez("logits.npz", **logits)
json.dump({"classes": classes, "nasty_tf_loaded": sorted(m for m in sys.modules if m.startswith("nasty_tf"))},
          open("classes.json", "w"))
"""


def _trained_statistics(network, seed):
    """Non-trivial BatchNorm statistics and affine weights, as training would leave them."""
    rng = np.random.default_rng(seed)
    for layer in network.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            n = layer.moving_mean.shape[0]
            layer.moving_mean.assign(rng.normal(0, 0.5, n).astype("float32"))
            layer.moving_variance.assign(rng.uniform(0.5, 2.0, n).astype("float32"))
            layer.gamma.assign(rng.uniform(0.5, 1.5, n).astype("float32"))
            layer.beta.assign(rng.normal(0, 0.3, n).astype("float32"))
    return network


def _logits(network, images):
    return keras.ops.convert_to_numpy(network(images, training=False)).astype("float32")


def legacy_network(mean, std):
    """A small network written the way files were before issue 16: every custom layer of ours."""
    inputs = keras.Input((32, 32, 3), name="images")
    x = legacy_layers.PixelNormalization(mean, std, name="pixel_normalization")(inputs)
    x = keras.layers.Conv2D(8, 3, strides=2, name="conv")(x)
    x = models.FusedBatchNormalization(momentum=0.9, epsilon=1e-5, name="bn")(x)
    shortcut, residual = legacy_layers.ChannelSplit(name="unit_split")(x)
    residual = keras.layers.ReLU(name="unit_relu")(residual)
    x = keras.layers.Concatenate(name="unit_concat")([shortcut, residual])
    x = legacy_layers.ChannelShuffle(2, name="unit_shuffle")(x)
    features = keras.layers.GlobalAveragePooling2D(name="features")(x)
    logits = keras.layers.Dense(10, dtype="float32", name="logits")(features)
    return keras.Model(inputs, logits, name="legacy")


@pytest.fixture(scope="module")
def released(tmp_path_factory):
    """Writes every kind of released network, loads them all without nasty_tf, once."""
    root = tmp_path_factory.mktemp("released")
    digits = load_dataset("digits", train_fraction=0.2)
    noise = np.random.default_rng(0).integers(0, 256, (4, 32, 32, 3), dtype=np.uint8)
    images = {"digits": np.concatenate([digits.x_test[:12], noise])}
    # Few images for the zoo: a ResNeXt-29 forward pass costs seconds per image on a CPU.
    images["zoo"] = np.concatenate([digits.x_test[:2], noise[:2]])
    cases, expected = {}, {}

    # The zoo: one build per architecture, BN statistics made non-trivial, written as the jobs
    # write (atomic_save_model), with the fused BatchNorm the zoo trains with, and the reference's
    # initialisers, whose configs the files hold (the jobs' networks below hold Keras' own).
    for index, arch in enumerate(models.available_models()):
        keras.utils.set_random_seed(index)
        network = _trained_statistics(
            models.get_model(arch, 10, (32, 32, 3), init="reference"), seed=index
        )
        cases[arch] = (str(root / f"{arch}.keras"), "zoo")
        atomic_save_model(network, cases[arch][0])
        expected[arch] = _logits(network, images["zoo"])
        del network
        keras.backend.clear_session()

    # The jobs, on tiny digits settings; what `finish` saves is recorded in memory first.
    saved_by_jobs = []
    convert = plain_keras.as_plain_keras

    def recording(network):
        saved_by_jobs.append(_logits(network, images["digits"]))
        return convert(network)

    tiny = dict(
        dataset="digits", train_fraction=0.2, arch="cnn", epochs=1, batch_size=64, verbose=0
    )
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(plain_keras, "as_plain_keras", recording)
        metrics = {
            "normal": train(TrainConfig(output_dir=str(root / "normal"), **tiny), digits),
            "nasty": train_nasty(
                TrainConfig(output_dir=str(root / "nasty"), seed=1, **tiny),
                NastyConfig(str(root / "normal" / "model.keras"), 0.05, 4.0),
                digits,
            ),
            "kd_student": distill(
                TrainConfig(
                    output_dir=str(root / "kd_student"), precision="mixed_bfloat16", **tiny
                ),
                DistillConfig(str(root / "nasty" / "model.keras")),
                digits,
            ),
            "datafree_student": run_datafree(
                DataFreeConfig(
                    method="deepinversion",
                    teacher=str(root / "nasty" / "model.keras"),
                    arch="cnn",
                    dataset="digits",
                    epochs=1,
                    batch_size=20,
                    num_images=20,
                    inversion_steps=5,
                    grid_rows=2,
                    output_dir=str(root / "datafree_student"),
                    verbose=0,
                ),
                dataset=digits,
            ),
        }
    assert len(saved_by_jobs) == len(metrics)
    for name, logits in zip(metrics, saved_by_jobs):
        cases[name] = (str(root / name / "model.keras"), "digits")
        expected[name] = logits

    # A network of the old format, loaded with nasty_tf and written again as the jobs write.
    keras.utils.set_random_seed(0)
    legacy = _trained_statistics(legacy_network(digits.mean, digits.std), seed=0)
    legacy.save(str(root / "legacy_format.keras"))  # holds nasty_tf's classes
    atomic_save_model(
        keras.saving.load_model(str(root / "legacy_format.keras")), str(root / "legacy.keras")
    )
    cases["legacy"] = (str(root / "legacy.keras"), "digits")
    expected["legacy"] = _logits(legacy, images["digits"])

    outside = tmp_path_factory.mktemp("outside")  # not the checkout: nasty_tf is not on the path
    for kind, batch in images.items():
        np.save(outside / f"{kind}.npy", batch)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    loaders = {}
    for backend in LOADER_BACKENDS:
        (outside / backend).mkdir()
        json.dump(
            {
                name: (path, str(outside / f"{kind}.npy"))
                for name, (path, kind) in cases.items()
                if backend == "tensorflow" or name in JOB_OUTPUTS
            },
            open(outside / backend / "cases.json", "w"),
        )
        log = open(outside / backend / "log.txt", "w")
        loaders[backend] = subprocess.Popen(
            [sys.executable, "-c", _LOAD_WITHOUT_NASTY_TF, "cases.json"],
            cwd=outside / backend,
            env={**env, "KERAS_BACKEND": backend},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    for backend, loader in loaders.items():
        assert loader.wait(timeout=600) == 0, (outside / backend / "log.txt").read_text()[-3000:]
    loaded = {b: dict(np.load(outside / b / "logits.npz")) for b in LOADER_BACKENDS}
    report = {b: json.load(open(outside / b / "classes.json")) for b in LOADER_BACKENDS}
    return {
        "root": root,
        "cases": {name: path for name, (path, _) in cases.items()},
        "images": images,
        "digits": digits,
        "metrics": metrics,
        "expected": expected,
        "loaded": loaded,
        "report": report,
    }


def _assert_same_predictions(released, name):
    expected = released["expected"][name]
    for backend in LOADER_BACKENDS if name in JOB_OUTPUTS else ("tensorflow",):
        loaded = released["loaded"][backend][name]
        assert loaded.shape == expected.shape and expected.shape[-1] == 10, backend
        # The fused and Keras' BatchNorm kernels, and the backends, round differently: by
        # ~1e-6 of the logits' scale in float32, by up to a bfloat16 step (2^-8) in bfloat16.
        scale = max(float(np.abs(expected).max()), 1.0)
        tolerance = 4e-3 if name in BFLOAT16_OUTPUTS and backend != "tensorflow" else 1e-5
        np.testing.assert_allclose(
            loaded / scale, expected / scale, atol=tolerance, err_msg=backend
        )
        np.testing.assert_array_equal(np.argmax(loaded, -1), np.argmax(expected, -1), backend)


def test_nasty_tf_was_never_imported_by_the_loaders(released):
    for backend in LOADER_BACKENDS:
        assert released["report"][backend]["nasty_tf_loaded"] == [], backend


@pytest.mark.parametrize("arch", models.available_models())
def test_every_architecture_loads_and_predicts_without_nasty_tf(released, arch):
    _assert_same_predictions(released, arch)


@pytest.mark.parametrize("name", JOB_OUTPUTS)
def test_every_job_output_loads_and_predicts_without_nasty_tf(released, name):
    _assert_same_predictions(released, name)
    assert released["metrics"][name]["accuracy"] >= 0


def test_saved_networks_hold_built_in_layers_only(released):
    classes = released["report"]["tensorflow"]["classes"]
    assert set(classes) == set(models.available_models()) | set(JOB_OUTPUTS) | {"legacy"}
    for name, names in classes.items():
        assert all(c.startswith("keras.") for c in names), (name, names)
        assert any(c.endswith(".Normalization") for c in names), (name, names)
        assert any(c.endswith(".BatchNormalization") for c in names), (name, names)


def test_the_pixel_normalization_keeps_its_name_and_the_statistics(released):
    digits = released["digits"]
    for name in ("nasty", "datafree_student", "legacy"):
        network = keras.saving.load_model(released["cases"][name])
        layer = network.get_layer("pixel_normalization")
        assert isinstance(layer, keras.layers.Normalization) and not layer.weights
        assert layer.compute_dtype == "float32"
        mean, std = PixelSpace(network).mean, PixelSpace(network).std
        np.testing.assert_allclose(mean, digits.mean, rtol=1e-9)
        np.testing.assert_allclose(std, digits.std, rtol=1e-9)
    # The mixed-precision student still normalises in float32 and ends in float32 logits.
    student = keras.saving.load_model(released["cases"]["kd_student"])
    assert student.get_layer("conv1").compute_dtype == "bfloat16"
    assert student.get_layer("logits").compute_dtype == "float32"


def test_files_of_the_old_format_still_load_with_nasty_tf(released):
    old = keras.saving.load_model(released["root"] / "legacy_format.keras")
    kinds = {type(layer) for layer in old.layers}
    assert {
        legacy_layers.PixelNormalization,
        legacy_layers.ChannelSplit,
        legacy_layers.ChannelShuffle,
        models.FusedBatchNormalization,
    } <= kinds
    np.testing.assert_allclose(
        _logits(old, released["images"]["digits"]),
        released["expected"]["legacy"],
        rtol=1e-6,
        atol=1e-6,
    )
    assert PixelSpace(old).mean == tuple(float(m) for m in released["digits"].mean)
    _assert_same_predictions(released, "legacy")  # and, converted, without nasty_tf
