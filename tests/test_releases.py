"""Releases (issue 20, item 2): what a plain and a stingy release serve, and that they load and
serve the same with Keras alone, in a process where any import of nasty_tf fails."""

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest

from nasty_tf import models, releases
from nasty_tf.errors import InputError

pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")

# Run as `python -c` in a directory outside the checkout: loads each release with Keras alone
# (safe mode) and writes what it serves on images.npy.
_SERVE_WITHOUT_NASTY_TF = r"""
import json, sys

class NoNastyTf:
    def find_spec(self, name, path=None, target=None):
        if name == "nasty_tf" or name.startswith("nasty_tf."):
            raise ImportError(f"blocked import of {name}: a release must load with Keras alone")

sys.meta_path.insert(0, NoNastyTf())
import keras
import numpy as np

images = np.load("images.npy")
served = {}
for name in json.load(open("cases.json")):
    outputs = keras.saving.load_model(f"{name}.keras", safe_mode=True)(images)
    for key, value in outputs.items():
        served[f"{name}/{key}"] = keras.ops.convert_to_numpy(value)
np.savez("served.npz", **served)
json.dump(sorted(m for m in sys.modules if m.startswith("nasty_tf")), open("nasty_tf.json", "w"))
"""


def _numpy(outputs):
    return {key: keras.ops.convert_to_numpy(value) for key, value in outputs.items()}


@pytest.fixture(scope="module")
def network():
    keras.utils.set_random_seed(0)
    # The zoo's fused BatchNorm: the release must swap it for Keras' own (as_plain_keras).
    return models.get_model("cnn", 10)


@pytest.fixture(scope="module")
def images():
    return np.random.default_rng(0).integers(0, 256, (6, 32, 32, 3)).astype("float32")


def test_top_k_count_and_its_default_ratio():
    assert releases.top_k_count(10) == 2 and releases.top_k_count(100) == 10
    assert releases.top_k_count(200) == 20 and releases.top_k_count(2) == 1
    assert releases.top_k_count(10, 0.05) == 1  # at least one class is always served
    assert releases.top_k_count(10, 0.15) == 2  # halves round up, despite 0.15 * 10 < 1.5
    assert releases.top_k_count(10, 1) == 10
    for bad in (2, 0, -0.1, True, "0.2"):
        with pytest.raises(InputError) as raised:
            releases.stingy(keras.Sequential(), top_k_ratio=bad)
        assert str(raised.value) == f"top_k_ratio must be in (0, 1]. Received: top_k_ratio={bad!r}"
    with pytest.raises(InputError, match="Unknown release 'nope'"):
        releases.get_release("nope", None)
    with pytest.raises(InputError, match="takes no parameters"):
        releases.get_release("plain", None, top_k_ratio=0.2)


def test_plain_serves_the_logits_and_their_softmax(network, images):
    served = _numpy(releases.get_release("plain", network)(images))
    logits = keras.ops.convert_to_numpy(network(images, training=False))
    np.testing.assert_allclose(served["logits"], logits, rtol=1e-5, atol=1e-5)
    expected = np.exp(logits - logits.max(-1, keepdims=True))
    np.testing.assert_allclose(
        served["probabilities"], expected / expected.sum(-1, keepdims=True), atol=1e-6
    )


def test_stingy_serves_exactly_k_classes_and_the_same_argmax(network, images):
    plain = _numpy(releases.plain(network)(images))
    for ratio, k in ((None, 2), (0.3, 3), (1.0, 10)):
        served = _numpy(releases.stingy(network, top_k_ratio=ratio)(images))
        assert ((served["probabilities"] > 0).sum(-1) == k).all()
        assert (np.isfinite(served["logits"]).sum(-1) == k).all()
        assert (served["logits"][~np.isfinite(served["logits"])] == -np.inf).all()
        np.testing.assert_array_equal(served["logits"].argmax(-1), plain["logits"].argmax(-1))
        np.testing.assert_array_equal(
            served["probabilities"].argmax(-1), plain["logits"].argmax(-1)
        )
        kept = np.isfinite(served["logits"])
        np.testing.assert_allclose(served["logits"][kept], plain["logits"][kept], rtol=1e-6)
        # The served classes are the top k of the plain logits.
        top = np.argsort(-plain["logits"], axis=-1)[:, :k]
        assert (np.take_along_axis(kept, top, axis=-1)).all()
        np.testing.assert_allclose(served["probabilities"].sum(-1), 1.0, rtol=1e-6)


def test_stingy_serves_exactly_k_classes_when_logits_tie():
    inputs = keras.Input((4,), name="images")
    tied = keras.Model(
        inputs, keras.layers.Dense(10, kernel_initializer="zeros", name="logits")(inputs)
    )
    served = _numpy(releases.stingy(tied, top_k_ratio=0.3)(np.ones((3, 4), "float32")))
    assert ((served["probabilities"] > 0).sum(-1) == 3).all()
    np.testing.assert_allclose(
        served["probabilities"][served["probabilities"] > 0], 1 / 3, rtol=1e-6
    )


def test_releases_load_and_serve_the_same_without_nasty_tf(network, images, tmp_path):
    outside = tmp_path / "outside"  # not the checkout: nasty_tf is not on the path
    outside.mkdir()
    expected = {}
    for name, release in (("plain", releases.plain(network)), ("stingy", releases.stingy(network))):
        release.save(str(outside / f"{name}.keras"))
        expected[name] = _numpy(release(images))
    np.save(outside / "images.npy", images)
    json.dump(sorted(expected), open(outside / "cases.json", "w"))
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    result = subprocess.run(
        [sys.executable, "-c", _SERVE_WITHOUT_NASTY_TF],
        cwd=outside,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert json.load(open(outside / "nasty_tf.json")) == []
    loaded = dict(np.load(outside / "served.npz"))
    for name, outputs in expected.items():
        for key, value in outputs.items():
            got = loaded[f"{name}/{key}"]
            np.testing.assert_array_equal(np.isfinite(got), np.isfinite(value))
            finite = np.isfinite(value)
            # The fused and Keras' BatchNorm kernels round differently: equal to float rounding.
            np.testing.assert_allclose(got[finite], value[finite], rtol=1e-4, atol=1e-5)
            assert (got[~finite] == value[~finite]).all()
    assert ((loaded["stingy/probabilities"] > 0).sum(-1) == 2).all()
