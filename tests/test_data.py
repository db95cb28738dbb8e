"""Tests of nasty_tf.data: sources, bad-input errors, subsets and the augmentation layers.

Fast (tiny generated images), except the one test marked `slow` that loads the full CIFAR-10
JPEG archive. TFDS tests skip themselves where TensorFlow is absent (the JAX-only setup).
"""

import io
import os
import subprocess
import sys
import tarfile
import zipfile

import keras
import numpy as np
import pytest
from PIL import Image

from nasty_tf.data import (
    DATASETS,
    Dataset,
    RandomPaddedCrop,
    load_dataset,
    make_augmenter,
    stratified_fraction,
)
from nasty_tf.data.dataset import channel_mean_std
from nasty_tf.data.image_folder import load_image_folder
from nasty_tf.errors import InputError

CIFAR_JPEG = "/work/shared/data/cifar10-jpeg.tar.gz"
# Tests that do not depend on the Keras backend (numpy/Pillow sources, TF-only TFDS, the
# JAX-only subprocess) run in the default-backend pass only; the augmentation layers run
# under every backend.
SINGLE_PASS = pytest.mark.single_pass
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# ----------------------------------------------------------------------------- helpers

# Deliberately unsorted, mixed-case names: labels must follow Python's sorted() order.
CLASSES = ("zebra", "ant", "Bee")
SIZE = (5, 4)  # (width, height), non-square to catch axis mix-ups


def _pixel_value(split, label, index):
    # Encodes split, label and index in the image so tests can check where each one went.
    return 10 + 60 * label + 5 * index + (3 if split == "test" else 0)


def _png_bytes(value, size=SIZE, mode="RGB", fmt="PNG"):
    image = Image.new(mode, size, value if mode == "L" else (value, value // 2, 255 - value))
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    return buffer.getvalue()


def _layout(counts=None, fmt="PNG"):
    """Returns {relative path: bytes} for a small image folder (labels follow sorted names)."""
    counts = counts or {"train": 3, "test": 2}
    files = {}
    for split, count in counts.items():
        for label, name in enumerate(sorted(CLASSES)):
            for index in range(count):
                files[f"{split}/{name}/{index:03d}.{fmt.lower()}"] = _png_bytes(
                    _pixel_value(split, label, index), fmt=fmt
                )
    return files


def _write_dir(root, files, dirs=()):
    for rel, content in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
    for rel in dirs:
        (root / rel).mkdir(parents=True, exist_ok=True)
    return root


def _write_tar(path, files, prefix="", mode="w:gz"):
    with tarfile.open(path, mode) as tar:
        for rel, content in files.items():
            info = tarfile.TarInfo(prefix + rel)
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))
    return path


def _write_zip(path, files, prefix=""):
    with zipfile.ZipFile(path, "w") as zf:
        for rel, content in files.items():
            zf.writestr(prefix + rel, content)
    return path


def _check_small_folder(ds, counts=(3, 2)):
    assert isinstance(ds, Dataset)
    assert ds.name == "image_folder"
    assert ds.class_names == ("Bee", "ant", "zebra")
    assert ds.num_classes == 3
    assert ds.augmentation == "crop_flip"
    assert ds.x_train.shape == (3 * counts[0], SIZE[1], SIZE[0], 3)
    assert ds.x_test.shape == (3 * counts[1], SIZE[1], SIZE[0], 3)
    assert ds.input_shape == (SIZE[1], SIZE[0], 3)
    assert ds.x_train.dtype == np.uint8 and ds.y_train.dtype == np.int32
    for split, x, y, count in (
        ("train", ds.x_train, ds.y_train, counts[0]),
        ("test", ds.x_test, ds.y_test, counts[1]),
    ):
        np.testing.assert_array_equal(y, np.repeat(np.arange(3), count))
        for i, label in enumerate(y):
            value = _pixel_value(split, label, i % count)
            np.testing.assert_array_equal(x[i, 0, 0], [value, value // 2, 255 - value])
    mean, std = channel_mean_std(ds.x_train)
    assert ds.mean == mean and ds.std == std


# ----------------------------------------------------------------------------- digits


@SINGLE_PASS
def test_digits_shapes_range_split_and_determinism():
    ds = load_dataset("digits")
    assert ds.name == "digits" and ds.augmentation == "crop"
    assert ds.x_train.shape == (1347, 32, 32, 3) and ds.x_test.shape == (450, 32, 32, 3)
    assert ds.x_train.dtype == np.uint8 and ds.y_train.dtype == np.int32
    assert ds.x_train.min() == 0 and ds.x_train.max() == 255
    # Grey replicated to three channels.
    np.testing.assert_array_equal(ds.x_train[..., 0], ds.x_train[..., 2])
    assert ds.num_classes == 10 and ds.class_names == tuple("0123456789")
    # Stratified: every class holds about a quarter of its images in the test split.
    train_counts, test_counts = np.bincount(ds.y_train), np.bincount(ds.y_test)
    share = test_counts / (train_counts + test_counts)
    assert np.all(np.abs(share - 0.25) < 0.02)
    assert ds.mean == channel_mean_std(ds.x_train)[0]
    assert all(0 < m < 1 for m in ds.mean) and all(0 < s < 1 for s in ds.std)
    again = load_dataset("digits")
    np.testing.assert_array_equal(ds.x_train, again.x_train)
    np.testing.assert_array_equal(ds.y_test, again.y_test)
    # The process decodes the digits once, but every call's arrays are the caller's own.
    for name in ("x_train", "y_train", "x_test", "y_test"):
        assert not np.shares_memory(getattr(ds, name), getattr(again, name)), name
    ds.x_train[:] = 0
    assert load_dataset("digits").x_train.max() == 255


@SINGLE_PASS
def test_digits_upsampling_is_smooth():
    from nasty_tf.data.digits import upsample_digits

    # A single lit pixel spreads into a smooth bump, not a 4x4 block (nearest-neighbour).
    image = np.zeros((1, 8, 8))
    image[0, 3, 3] = 16
    out = upsample_digits(image)[0, :, :, 0].astype(int)
    assert 150 < out.max() < 255
    assert len(np.unique(out)) > 4
    np.testing.assert_array_equal(out[12:16, 12:16], out[12:16, 12:16].T)  # no half-pixel shift


@SINGLE_PASS
def test_train_fraction_through_load_dataset():
    ds = load_dataset("digits", train_fraction=0.5, seed=3)
    full = load_dataset("digits")
    assert abs(len(ds.y_train) - len(full.y_train) / 2) <= 10
    assert len(ds.y_test) == len(full.y_test)
    assert set(np.unique(ds.y_train)) == set(range(10))
    assert ds.mean == full.mean  # normalisation of the full split, whatever the fraction


# ----------------------------------------------------------------------------- image_folder


@SINGLE_PASS
def test_image_folder_directory(tmp_path):
    _write_dir(tmp_path / "data", _layout())
    _check_small_folder(load_dataset("image_folder", data_dir=tmp_path / "data"))


@SINGLE_PASS
@pytest.mark.parametrize("suffix,mode", [(".tar.gz", "w:gz"), (".tgz", "w:gz"), (".tar", "w")])
def test_image_folder_tar(tmp_path, suffix, mode):
    path = _write_tar(tmp_path / f"data{suffix}", _layout(), mode=mode)
    _check_small_folder(load_image_folder(path))


@SINGLE_PASS
def test_image_folder_zip_with_wrapper_and_junk(tmp_path):
    files = _layout()
    files["train/ant/.DS_Store"] = b"not an image"
    path = _write_zip(tmp_path / "data.zip", files, prefix="wrapped/")
    with zipfile.ZipFile(path, "a") as zf:
        zf.writestr("__MACOSX/wrapped/._junk", b"resource fork")
    _check_small_folder(load_image_folder(str(path)))


@SINGLE_PASS
def test_image_folder_tar_with_wrapper_and_readme(tmp_path):
    files = {"cifar/" + rel: content for rel, content in _layout().items()}
    files["README.txt"] = b"a note beside the wrapping folder"
    _check_small_folder(load_image_folder(_write_tar(tmp_path / "d.tar.gz", files)))


@SINGLE_PASS
def test_image_folder_jpeg_grey_and_rgba_become_rgb(tmp_path):
    files = _layout(fmt="JPEG")
    files["train/ant/grey.png"] = _png_bytes(200, mode="L")
    files["test/ant/rgba.png"] = _png_bytes(200, mode="RGBA")
    ds = load_image_folder(_write_dir(tmp_path / "d", files))
    assert ds.x_train.shape == (10, SIZE[1], SIZE[0], 3) and ds.x_train.dtype == np.uint8
    assert ds.x_test.shape == (7, SIZE[1], SIZE[0], 3)
    grey = ds.x_train[np.flatnonzero(ds.y_train == 1)[-1]]  # "ant" is label 1; grey.png sorts last
    np.testing.assert_array_equal(grey, 200)


# ----------------------------------------------------------------------------- bad input


def _assert_input_error(match, fn, *args, **kwargs):
    with pytest.raises(InputError, match=match) as info:
        fn(*args, **kwargs)
    message = str(info.value)
    assert "\n" not in message
    return message


@SINGLE_PASS
def test_missing_path(tmp_path):
    missing = tmp_path / "nope"
    msg = _assert_input_error(
        "no such file or directory", load_dataset, "image_folder", data_dir=missing
    )
    assert msg.startswith("data_dir: ") and str(missing) in msg


@SINGLE_PASS
def test_not_a_directory_or_archive(tmp_path):
    path = tmp_path / "data.txt"
    path.write_text("hello")
    _assert_input_error("neither a directory nor a supported archive", load_image_folder, path)


@SINGLE_PASS
@pytest.mark.parametrize("name", ["bad.tar.gz", "bad.tar", "bad.zip"])
def test_corrupt_archive(tmp_path, name):
    path = tmp_path / name
    path.write_bytes(b"\x1f\x8b\x08 definitely not an archive" * 10)
    msg = _assert_input_error("corrupt or unreadable archive", load_image_folder, path)
    assert name in msg


@SINGLE_PASS
def test_truncated_archive(tmp_path):
    good = _write_tar(tmp_path / "good.tar.gz", _layout()).read_bytes()
    (tmp_path / "cut.tar.gz").write_bytes(good[: len(good) // 2])
    _assert_input_error("corrupt or unreadable archive", load_image_folder, tmp_path / "cut.tar.gz")
    # A plain tar cut inside a member header: tarfile alone would end there quietly and
    # load the members before it.
    plain = _write_tar(tmp_path / "good.tar", _layout(), mode="w")
    with tarfile.open(plain) as tar:
        cut = tar.getmembers()[-2].offset + 100
    (tmp_path / "cut.tar").write_bytes(plain.read_bytes()[:cut])
    _assert_input_error("truncated", load_image_folder, tmp_path / "cut.tar")


@SINGLE_PASS
def test_missing_split(tmp_path):
    files = {rel: c for rel, c in _layout().items() if rel.startswith("train/")}
    msg = _assert_input_error(
        "no 'test' split", load_image_folder, _write_dir(tmp_path / "d", files)
    )
    assert "'train'" in msg  # what was found


@SINGLE_PASS
def test_empty_split(tmp_path):
    root = _write_dir(
        tmp_path / "d",
        {rel: c for rel, c in _layout().items() if rel.startswith("train/")},
        dirs=["test"],
    )
    _assert_input_error("split 'test' .* has no class folders", load_image_folder, root)


@SINGLE_PASS
def test_empty_class(tmp_path):
    root = _write_dir(tmp_path / "d", _layout(), dirs=["train/yak", "test/yak"])
    _assert_input_error("'train/yak' .* has no images", load_image_folder, root)


@SINGLE_PASS
def test_empty_folder(tmp_path):
    (tmp_path / "empty").mkdir()
    _assert_input_error("no 'train' split", load_image_folder, tmp_path / "empty")


@SINGLE_PASS
def test_mismatched_classes(tmp_path):
    files = _layout()
    files["train/yak/000.png"] = _png_bytes(1)
    files["test/emu/000.png"] = _png_bytes(1)
    msg = _assert_input_error(
        "different classes", load_image_folder, _write_zip(tmp_path / "d.zip", files)
    )
    assert "only in train: ['yak']" in msg and "only in test: ['emu']" in msg


@SINGLE_PASS
def test_corrupt_image_names_the_member(tmp_path):
    files = _layout()
    files["train/ant/001.png"] = files["train/ant/001.png"][:20]  # truncated PNG
    msg = _assert_input_error(
        "cannot decode image", load_image_folder, _write_tar(tmp_path / "d.tar.gz", files)
    )
    assert "train/ant/001.png" in msg and "d.tar.gz" in msg
    files["train/ant/001.png"] = b"garbage bytes"
    msg = _assert_input_error(
        "cannot decode image", load_image_folder, _write_dir(tmp_path / "dir", files)
    )
    assert "001.png" in msg


@SINGLE_PASS
def test_images_of_different_sizes(tmp_path):
    files = _layout()
    files["test/zebra/009.png"] = _png_bytes(1, size=(6, 6))
    msg = _assert_input_error(
        "images differ in size", load_image_folder, _write_dir(tmp_path / "d", files)
    )
    assert "test/zebra/009.png" in msg and "6x6" in msg and "5x4" in msg


@SINGLE_PASS
def test_file_outside_class_folder(tmp_path):
    files = _layout()
    files["train/stray.png"] = _png_bytes(1)
    _assert_input_error(
        "outside a class folder", load_image_folder, _write_dir(tmp_path / "d", files)
    )


@SINGLE_PASS
def test_load_dataset_bad_arguments(tmp_path):
    msg = _assert_input_error("unknown dataset 'mnist'", load_dataset, "mnist")
    assert all(name in msg for name in DATASETS)
    _assert_input_error(
        "data_dir is required for dataset=image_folder", load_dataset, "image_folder"
    )
    # The fraction is checked before any loading.
    _assert_input_error(
        r"train_fraction must be in \(0, 1\]. Received: train_fraction=0",
        load_dataset,
        "image_folder",
        data_dir=tmp_path / "missing",
        train_fraction=0,
    )


# ----------------------------------------------------------------------------- TFDS


def _require_tfds():
    pytest.importorskip("tensorflow")
    return pytest.importorskip("tensorflow_datasets")


@SINGLE_PASS
def test_tfds_cifar10_with_mock_data():
    tfds = _require_tfds()
    with tfds.testing.mock_data(num_examples=6):
        ds = load_dataset("cifar10")
    assert ds.name == "cifar10" and ds.augmentation == "crop_flip"
    assert ds.x_train.shape == (6, 32, 32, 3) and ds.x_test.shape == (6, 32, 32, 3)
    assert ds.x_train.dtype == np.uint8 and ds.y_train.dtype == np.int32
    # The mock builds info from code, where CIFAR-10's label names are still "0".."9"; a
    # prepared directory supplies the real names from its label file.
    assert ds.num_classes == 10 and len(ds.class_names) == 10
    assert np.all((ds.y_train >= 0) & (ds.y_train < 10))
    assert ds.mean == (0.4914, 0.4822, 0.4465) and ds.std == (0.247, 0.243, 0.261)


@SINGLE_PASS
def test_tfds_not_prepared_raises_input_error(tmp_path):
    _require_tfds()
    msg = _assert_input_error("not prepared", load_dataset, "cifar100", data_dir=tmp_path)
    assert str(tmp_path) in msg and "cannot be downloaded" in msg and "image_folder" in msg
    _assert_input_error("no such directory", load_dataset, "cifar10", data_dir=tmp_path / "missing")


# ----------------------------------------------------------------------------- subsets


@SINGLE_PASS
def test_stratified_fraction_keeps_balance():
    y = np.repeat(np.arange(3), [10, 20, 40]).astype(np.int32)
    x = np.arange(len(y))
    xs, ys = stratified_fraction(x, y, 0.5, seed=1)
    np.testing.assert_array_equal(np.bincount(ys), [5, 10, 20])
    np.testing.assert_array_equal(y[xs], ys)  # rows stay paired
    assert np.all(np.diff(xs) > 0)  # original order kept
    again, _ = stratified_fraction(x, y, 0.5, seed=1)
    other, _ = stratified_fraction(x, y, 0.5, seed=2)
    np.testing.assert_array_equal(xs, again)
    assert not np.array_equal(xs, other)
    _, tiny = stratified_fraction(x, y, 0.01, seed=0)
    np.testing.assert_array_equal(np.bincount(tiny), [1, 1, 1])  # at least one per class
    same_x, same_y = stratified_fraction(x, y, 1.0, seed=0)
    assert same_x is x and same_y is y


@SINGLE_PASS
@pytest.mark.parametrize("fraction", [0, 0.0, -0.5, 1.01, float("nan"), "0.5", True, None])
def test_stratified_fraction_rejects_bad_fractions(fraction):
    y = np.zeros(4, np.int32)
    msg = _assert_input_error(
        r"train_fraction must be in \(0, 1\]. Received: train_fraction=",
        stratified_fraction,
        y,
        y,
        fraction,
        0,
    )
    assert repr(fraction) in msg


# ----------------------------------------------------------------------------- augmentation


def _windows(x, out, padding):
    """For each output image, the (dy, dx) offsets whose padded window equals it exactly."""
    padded = np.pad(x, [(0, 0), (padding, padding), (padding, padding), (0, 0)])
    h, w = x.shape[1:3]
    found = []
    for i in range(len(x)):
        found.append(
            [
                (dy, dx)
                for dy in range(2 * padding + 1)
                for dx in range(2 * padding + 1)
                if np.array_equal(padded[i, dy : dy + h, dx : dx + w], out[i])
            ]
        )
    return found


def _random_pixels(shape, seed=0):
    # Values 1..255, so no image region can be mistaken for the zero padding.
    return np.random.default_rng(seed).integers(1, 256, shape).astype("float32")


def test_random_padded_crop_is_an_exact_shifted_window():
    x = _random_pixels((24, 6, 7, 3))
    layer = RandomPaddedCrop(padding=2, seed=0)
    out = keras.ops.convert_to_numpy(layer(x, training=True))
    assert out.shape == x.shape and out.dtype == np.float32
    found = _windows(x, out, 2)
    assert all(len(f) == 1 for f in found), found
    offsets = {f[0] for f in found}
    assert len(offsets) > 5  # a different offset per image, not one per batch
    # The next call draws new offsets (the seed generator advances).
    out2 = keras.ops.convert_to_numpy(layer(x, training=True))
    assert not np.array_equal(out, out2)


def test_random_padded_crop_reaches_every_offset():
    x = _random_pixels((300, 3, 3, 1), seed=1)
    out = keras.ops.convert_to_numpy(RandomPaddedCrop(padding=1, seed=3)(x))
    found = _windows(x, out, 1)
    assert all(len(f) == 1 for f in found)
    assert {f[0] for f in found} == {(dy, dx) for dy in range(3) for dx in range(3)}


def test_augmenters_are_identity_when_not_training():
    x = _random_pixels((4, 8, 8, 3))
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(RandomPaddedCrop(4)(x, training=False)), x
    )
    for recipe in ("crop", "crop_flip"):
        augmenter = make_augmenter(recipe, seed=0)
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(augmenter(x, training=False)), x)


def test_make_augmenter_recipes():
    crop = make_augmenter("crop")
    flip = make_augmenter("crop_flip", seed=7)
    assert crop.name == "augmenter" and flip.name == "augmenter"
    assert [type(layer) for layer in crop.layers] == [RandomPaddedCrop]
    assert [type(layer) for layer in flip.layers] == [RandomPaddedCrop, keras.layers.RandomFlip]
    assert flip.layers[0].padding == 4
    _assert_input_error("unknown augmentation recipe 'rotate'", make_augmenter, "rotate")
    _assert_input_error("padding must be an integer >= 0", RandomPaddedCrop, -1)


def test_augmenter_trains_inside_compiled_fit_and_round_trips(tmp_path):
    inputs = keras.Input((8, 8, 3))
    augmenter = make_augmenter("crop_flip", seed=1)
    outputs = keras.layers.Dense(3)(keras.layers.Flatten()(augmenter(inputs)))
    model = keras.Model(inputs, outputs)
    model.compile(
        optimizer="sgd", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    )
    crop = augmenter.layers[0]
    state_before = keras.ops.convert_to_numpy(crop.seed_generator.state).copy()
    x = _random_pixels((16, 8, 8, 3))
    y = np.arange(16) % 3
    history = model.fit(x, y, batch_size=4, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][-1])
    # Each compiled step drew fresh offsets: the generator state moved on.
    state_after = keras.ops.convert_to_numpy(crop.seed_generator.state)
    assert not np.array_equal(state_before, state_after)

    path = tmp_path / "model.keras"
    model.save(path)
    restored = keras.saving.load_model(path)
    restored_crop = restored.get_layer("augmenter").layers[0]
    assert isinstance(restored_crop, RandomPaddedCrop)
    assert restored_crop.get_config()["padding"] == 4 and restored_crop.get_config()["seed"] == 1
    # Inference is deterministic and unaffected by the augmenter.
    np.testing.assert_allclose(
        model.predict(x, verbose=0), restored.predict(x, verbose=0), rtol=1e-6, atol=1e-6
    )


# ----------------------------------------------------------------------------- portability


@SINGLE_PASS
def test_data_module_runs_without_tensorflow():
    pytest.importorskip("jax")
    code = (
        # A finder that refuses TF, as on a JAX-only host (a None entry in sys.modules would
        # not do: Keras reads `"tensorflow" in sys.modules` as "TF is loaded").
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in ('tensorflow', 'tensorflow_datasets'):\n"
        "            raise ModuleNotFoundError(name)\n"
        "sys.meta_path.insert(0, Block())\n"
        "import numpy as np, keras\n"
        "from nasty_tf.data import load_dataset, make_augmenter\n"
        "from nasty_tf.errors import InputError\n"
        "assert keras.backend.backend() == 'jax'\n"
        "assert 'tensorflow' not in sys.modules\n"
        "ds = load_dataset('digits', train_fraction=0.1)\n"
        "out = make_augmenter(ds.augmentation, seed=0)(ds.x_train[:4].astype('float32'))\n"
        "assert out.shape == (4, 32, 32, 3)\n"
        "x = ds.x_test[:2].astype('float32')\n"
        "assert np.array_equal(np.asarray(make_augmenter('crop_flip')(x, training=False)), x)\n"
        "try:\n"
        "    load_dataset('cifar10')\n"
        "except InputError as e:\n"
        "    assert 'tensorflow_datasets' in str(e), e\n"
        "else:\n"
        "    raise SystemExit('cifar10 loaded without TFDS?')\n"
        "print('ok')\n"
    )
    env = dict(os.environ, KERAS_BACKEND="jax", PYTHONPATH=REPO_ROOT)
    result = subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0 and "ok" in result.stdout, result.stderr[-3000:]


@SINGLE_PASS
@pytest.mark.slow
@pytest.mark.skipif(not os.path.exists(CIFAR_JPEG), reason="CIFAR-10 JPEG archive absent")
def test_cifar10_jpeg_archive():
    ds = load_dataset("image_folder", data_dir=CIFAR_JPEG)
    assert ds.x_train.shape == (50000, 32, 32, 3) and ds.x_train.dtype == np.uint8
    assert ds.x_test.shape == (10000, 32, 32, 3)
    assert ds.class_names == (
        "airplane",
        "automobile",
        "bird",
        "cat",
        "deer",
        "dog",
        "frog",
        "horse",
        "ship",
        "truck",
    )
    np.testing.assert_array_equal(np.bincount(ds.y_train), [5000] * 10)
    np.testing.assert_allclose(ds.mean, (0.4913, 0.4821, 0.4465), atol=2e-4)
    np.testing.assert_allclose(ds.std, (0.2452, 0.2428, 0.2606), atol=2e-4)
