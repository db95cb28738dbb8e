"""SavedModel export: served outputs equal the Keras model's, and the adversary never ships.

The exports are read back in a fresh Python process (as a server would), with
`tf.saved_model.load` and with `saved_model_cli`; the binary's runs share one process
(`run_tool_cases`), but for the refusal of JAX, which a real `python -m tools.export` gives.
"""

import os
import subprocess
import sys

import keras
import numpy as np
import pytest

from binaries import ROOT, assert_one_line_error, run_tool, run_tool_cases
from nasty_tf import InputError, NastyTeacher, models
from nasty_tf.atomic_io import atomic_save_model
from nasty_tf.data import load_dataset

pytestmark = pytest.mark.single_pass  # SavedModel export is TensorFlow-only

# Run in a fresh interpreter: loads each export given on the command line and dumps what
# its signatures return on `images.npy`, its revived variables and its checkpoint's keys.
_READ_BACK = """
import json, sys
import numpy as np
import tensorflow as tf
root = sys.argv[1]
images = tf.constant(np.load(root + "/images.npy"))
for name in sys.argv[2:]:
    served = tf.saved_model.load(root + "/" + name)
    dump = {k: v.numpy() for k, v in served.signatures["serving_default"](images=images).items()}
    if "top_k" in served.signatures:
        dump.update({"top_k_" + k: v.numpy() for k, v in served.signatures["top_k"](images=images).items()})
    for i, variable in enumerate(served.variables):
        dump[f"variable_{i}"] = variable.numpy()
    keys = [k for k, _ in tf.train.list_variables(root + "/" + name + "/variables/variables")]
    dump["checkpoint_keys"] = np.array(keys)
    dump["signatures"] = np.array(sorted(served.signatures))
    np.savez(root + "/" + name + ".npz", **dump)
"""


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """A digits CNN trained for one epoch, saved bare and inside a NastyTeacher wrapper.

    The bare network is written as the jobs write it (`atomic_save_model`: plain Keras layers),
    the wrapper with `save` (it holds the zoo's `FusedBatchNormalization`): export takes both.

    The wrapper's adversary gets constant weights that no trained tensor can equal, so any
    adversary variable in an export would be recognisable.
    """
    root = tmp_path_factory.mktemp("export")
    digits = load_dataset("digits", train_fraction=0.15)
    keras.utils.set_random_seed(0)
    network = models.get_model("cnn", 10, (32, 32, 3), mean=digits.mean, std=digits.std)
    network.compile(
        optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    )
    network.fit(digits.x_train, digits.y_train, epochs=1, batch_size=64, verbose=0)
    atomic_save_model(network, str(root / "network.keras"))

    adversary = models.get_model("cnn", 10, (32, 32, 3), mean=digits.mean, std=digits.std)
    adversary.set_weights(
        [np.full(w.shape, 0.25 + 0.01 * i, w.dtype) for i, w in enumerate(adversary.get_weights())]
    )
    wrapper = NastyTeacher(network, adversary, omega=0.04, temperature=4.0)
    wrapper(digits.x_test[:1])
    wrapper.save(str(root / "wrapper.keras"))

    # Real digits plus random pixels, so every uint8 value from 0 to 255 is served.
    noise = np.random.default_rng(0).integers(0, 256, (16, 32, 32, 3), dtype=np.uint8)
    images = np.concatenate([digits.x_test[:48], noise])
    assert images.dtype == np.uint8
    np.save(root / "images.npy", images)
    return root, network, adversary, images


@pytest.fixture(scope="module")
def exported(saved, binary_results):
    """The bare network exported by the library, the wrapper by the binary; read back fresh."""
    from nasty_tf.export import export_saved_model

    root = saved[0]
    export_saved_model(str(root / "network.keras"), str(root / "plain"), top_k=3)
    binary = binary_results["nasty"]
    assert binary.returncode == 0, binary.stderr[-3000:]
    stingy = export_saved_model(str(root / "network.keras"), str(root / "stingy"), release="stingy")
    assert stingy["release"] == "stingy" and stingy["served_classes"] == 2  # 0.2 x 10 classes
    read = subprocess.run(
        [sys.executable, "-c", _READ_BACK, str(root), "plain", "nasty", "stingy"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert read.returncode == 0, read.stderr[-3000:]
    exports = ("plain", "nasty", "stingy")
    return {name: dict(np.load(root / f"{name}.npz")) for name in exports}, binary


def test_served_logits_equal_the_keras_models(saved, exported):
    _, network, _, images = saved
    expected = network.predict(images, verbose=0)
    for name in ("plain", "nasty"):
        served = exported[0][name]
        assert served["logits"].dtype == np.float32
        np.testing.assert_allclose(served["logits"], expected, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(served["probabilities"].sum(axis=-1), 1.0, rtol=1e-5)
        np.testing.assert_array_equal(
            np.argmax(served["probabilities"], -1), np.argmax(expected, -1)
        )


def test_a_stingy_export_serves_exactly_k_probabilities_and_the_same_argmax(saved, exported):
    _, network, _, images = saved
    expected = network.predict(images, verbose=0)
    stingy = exported[0]["stingy"]
    assert np.all(np.count_nonzero(stingy["probabilities"], axis=-1) == 2)
    np.testing.assert_allclose(stingy["probabilities"].sum(axis=-1), 1.0, rtol=1e-5)
    np.testing.assert_array_equal(np.argmax(stingy["probabilities"], -1), np.argmax(expected, -1))
    # The two served logits are the network's two largest, the rest withheld as -inf.
    kept = np.isfinite(stingy["logits"])
    top2 = np.argsort(expected, axis=-1)[:, -2:]
    np.testing.assert_array_equal(np.sort(np.flatnonzero(kept[0])), np.sort(top2[0]))
    np.testing.assert_allclose(stingy["logits"][kept], expected[kept], rtol=1e-5, atol=1e-5)


def test_top_k_signature_is_written_only_when_asked(saved, exported):
    plain, nasty = exported[0]["plain"], exported[0]["nasty"]
    assert set(plain["signatures"]) == {"serving_default", "top_k"}
    assert set(nasty["signatures"]) == {"serving_default"}
    assert plain["top_k_classes"].shape == (len(saved[3]), 3)
    np.testing.assert_array_equal(plain["top_k_classes"][:, 0], np.argmax(plain["logits"], -1))
    expected_scores = np.take_along_axis(plain["probabilities"], plain["top_k_classes"], axis=-1)
    np.testing.assert_allclose(plain["top_k_scores"], expected_scores, rtol=1e-6)
    assert np.all(np.diff(plain["top_k_scores"], axis=-1) <= 0)


def test_export_of_a_nasty_wrapper_holds_exactly_the_network(saved, exported):
    _, network, adversary, _ = saved
    served, binary = exported
    nasty = served["nasty"]
    weights = [np.asarray(v) for v in network.variables]
    revived = [nasty[f"variable_{i}"] for i in range(len(weights))]
    assert f"variable_{len(weights)}" not in nasty  # no extra revived variable
    for mine, theirs in zip(weights, revived):
        assert mine.shape == theirs.shape
        np.testing.assert_array_equal(mine, theirs)
    # The checkpoint itself, not only what the revived object exposes: one entry per network
    # variable (plus TensorFlow's object-graph record), and none holds an adversary tensor.
    keys = [k for k in nasty["checkpoint_keys"] if k != "_CHECKPOINTABLE_OBJECT_GRAPH"]
    assert len(keys) == len(weights)
    for value in revived:
        for adversary_weight in adversary.get_weights():
            assert value.shape != adversary_weight.shape or not np.allclose(value, adversary_weight)
    assert f"{len(weights)} variables" in binary.stdout and "serving_default" in binary.stdout


def test_saved_model_cli_lists_the_serving_signature(saved, exported):
    cli = os.path.join(os.path.dirname(sys.executable), "saved_model_cli")
    result = subprocess.run(
        [cli, "show", "--all", "--dir", str(saved[0] / "plain")],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    serving = result.stdout.split("signature_def['serving_default']")[1].split("signature_def[")[0]
    for fragment in (
        "inputs['images']",
        "DT_UINT8",
        "(-1, 32, 32, 3)",
        "outputs['logits']",
        "outputs['probabilities']",
        "DT_FLOAT",
    ):
        assert fragment in serving, serving
    assert "signature_def['top_k']" in result.stdout


def test_binary_refuses_a_non_empty_export_dir(binary_results):
    result, root = binary_results["non_empty"]
    assert_one_line_error(result, "--export_dir", "not empty; set --overwrite to replace it")
    assert os.listdir(root / "out") == ["keep.txt"]
    assert (root / "out" / "keep.txt").read_text() == "precious"
    assert os.listdir(root) == ["out"]  # no temporary export left beside it


def test_overwrite_replaces_a_saved_model_but_never_other_data(saved, tmp_path):
    from nasty_tf.export import export_saved_model

    model = str(saved[0] / "network.keras")
    target = tmp_path / "served"
    assert export_saved_model(model, str(target))["signatures"] == ["serving_default"]
    result = export_saved_model(model, str(target), overwrite=True, top_k=2)
    assert result["signatures"] == ["serving_default", "top_k"]
    assert sorted(os.listdir(tmp_path)) == ["served"]  # old export and temporaries gone
    with pytest.raises(InputError, match="^export_dir .* is not empty; set `overwrite` to replace"):
        export_saved_model(model, str(target))
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.tex").write_text("years of work")
    with pytest.raises(InputError, match="holds no SavedModel; refusing .* even with `overwrite`"):
        export_saved_model(model, str(tmp_path / "mine"), overwrite=True)
    assert (tmp_path / "mine" / "thesis.tex").read_text() == "years of work"


def test_a_failed_export_leaves_nothing_half_written(saved, tmp_path, monkeypatch):
    import tensorflow as tf

    from nasty_tf.export import export_saved_model

    model = str(saved[0] / "network.keras")
    export_saved_model(model, str(tmp_path / "served"))
    before = sorted(os.listdir(tmp_path / "served"))

    def broken_save(module, export_dir, signatures=None):
        with open(os.path.join(export_dir, "saved_model.pb"), "wb") as f:
            f.write(b"half")
        raise OSError("disk full")

    monkeypatch.setattr(tf.saved_model, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        export_saved_model(model, str(tmp_path / "fresh"))
    with pytest.raises(OSError, match="disk full"):
        export_saved_model(model, str(tmp_path / "served"), overwrite=True)
    assert sorted(os.listdir(tmp_path)) == ["served"]
    assert sorted(os.listdir(tmp_path / "served")) == before
    assert (tmp_path / "served" / "saved_model.pb").read_bytes() != b"half"


@pytest.fixture(scope="module")
def corrupt(tmp_path_factory):
    root = tmp_path_factory.mktemp("bad")
    (root / "corrupt.keras").write_bytes(b"\x00 definitely not a keras archive")
    return root


BAD_INPUTS = {
    "missing": (["--model={bad}/missing.keras"], ["--model", "missing.keras"]),
    "corrupt": (["--model={bad}/corrupt.keras"], ["--model", "corrupt.keras"]),
    "top_k": (["--model={good}/network.keras", "--top_k=11"], ["--top_k", "11"]),
    "ratio_without_stingy": (
        ["--model={good}/network.keras", "--top_k_ratio=0.5"],
        ["--top_k_ratio", "stingy"],
    ),
    "ratio_out_of_range": (
        ["--model={good}/network.keras", "--release=stingy", "--top_k_ratio=1.5"],
        ["--top_k_ratio", "1.5"],
    ),
}


@pytest.fixture(scope="module")
def binary_results(saved, corrupt, tmp_path_factory):
    """The binary's answers, all from one process (`run_tool_cases`): the export of the saved
    wrapper (`nasty`, beside the network), a refusal to write into a non-empty directory, and
    each of BAD_INPUTS (in its own empty directory)."""
    root = tmp_path_factory.mktemp("bad_exports")
    good = saved[0]
    non_empty = tmp_path_factory.mktemp("non_empty")
    (non_empty / "out").mkdir()
    (non_empty / "out" / "keep.txt").write_text("precious")
    cases = [
        [f"--model={good}/wrapper.keras", f"--export_dir={good}/nasty"],
        [f"--model={good}/network.keras", f"--export_dir={non_empty}/out"],
    ]
    for name, (args, _) in BAD_INPUTS.items():
        (root / name).mkdir()
        args = [arg.format(bad=corrupt, good=good) for arg in args]
        cases.append([*args, f"--export_dir={root / name}/out"])
    nasty, refused, *bad = run_tool_cases("export", cases)
    return {
        "nasty": nasty,
        "non_empty": (refused, non_empty),
        "bad": (root, dict(zip(BAD_INPUTS, bad))),
    }


@pytest.mark.parametrize("name", BAD_INPUTS)
def test_bad_input_ends_in_one_clear_line(binary_results, name):
    root, results = binary_results["bad"]
    assert_one_line_error(results[name], *BAD_INPUTS[name][1])
    assert os.listdir(root / name) == []


def test_jax_backend_is_refused_in_one_line(saved, tmp_path):
    result = run_tool(
        "export",
        f"--model={saved[0]}/network.keras",
        f"--export_dir={tmp_path}/out",
        env={"KERAS_BACKEND": "jax"},
    )
    assert_one_line_error(result, "TensorFlow backend", "KERAS_BACKEND")
    assert not (tmp_path / "out").exists()
