"""Tiny-ImageNet from a generated miniature in the official layout (zip and folder), its bad
inputs, and the "rotate_flip" augmentation recipe."""

import io
import os
import zipfile

import keras
import numpy as np
import pytest

from nasty_tf.data import load_dataset, make_augmenter
from nasty_tf.data.tiny_imagenet import TINY_IMAGENET_MEAN, TINY_IMAGENET_STD, load_tiny_imagenet
from nasty_tf.errors import InputError
from nasty_tf.training.augmented_classifier import AugmentedClassifier

WNIDS = ("n02", "n01", "n03")  # deliberately unsorted: labels follow wnids.txt, not sort order
# Far apart, so that JPEG's loss cannot blur one class's colour into another's.
COLOURS = {"n02": (220, 30, 30), "n01": (30, 220, 30), "n03": (30, 30, 220)}
VAL = (("val_0.JPEG", "n03"), ("val_1.JPEG", "n02"), ("val_2.JPEG", "n01"))


def _jpeg(colour, mode="RGB", size=(64, 64)):
    from PIL import Image

    buffer = io.BytesIO()
    value = colour if mode == "RGB" else int(np.mean(colour))
    Image.new(mode, size, value).save(buffer, format="JPEG")
    return buffer.getvalue()


def _files():
    """{relative path: bytes} of a miniature tiny-imagenet-200/ (3 wnids, 4+3 images)."""
    files = {"wnids.txt": ("\n".join(WNIDS) + "\n").encode(), "words.txt": b"n01\tsomething\n"}
    for wnid in WNIDS:
        files[f"train/{wnid}/{wnid}_boxes.txt"] = b"0 0 63 63\n"
        for i in range(4):
            # One greyscale JPEG, as the real dataset has: it must come back as RGB.
            mode = "L" if (wnid, i) == ("n01", 3) else "RGB"
            files[f"train/{wnid}/images/{wnid}_{i}.JPEG"] = _jpeg(COLOURS[wnid], mode)
    lines = []
    for name, wnid in VAL:
        files[f"val/images/{name}"] = _jpeg(COLOURS[wnid])
        lines.append(f"{name}\t{wnid}\t0\t0\t63\t63")
    files["val/val_annotations.txt"] = ("\n".join(lines) + "\n").encode()
    files["test/images/test_0.JPEG"] = _jpeg((128, 128, 128))  # unlabelled: ignored
    return files


def _write_folder(root, files):
    for rel, data in files.items():
        path = os.path.join(root, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(data)
    return str(root)


def _write_zip(path, files):
    # Wrapped in tiny-imagenet-200/, as the official archive is.
    with zipfile.ZipFile(path, "w") as zf:
        for rel, data in files.items():
            zf.writestr(f"tiny-imagenet-200/{rel}", data)
    return str(path)


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return _write_folder(tmp_path_factory.mktemp("tin") / "tiny-imagenet-200", _files())


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    return _write_zip(tmp_path_factory.mktemp("tinzip") / "tiny-imagenet-200.zip", _files())


def _check(ds):
    assert ds.name == "tiny_imagenet" and ds.class_names == WNIDS and ds.num_classes == 3
    assert ds.x_train.shape == (12, 64, 64, 3) and ds.x_train.dtype == np.uint8
    assert ds.x_test.shape == (3, 64, 64, 3) and ds.y_test.dtype == np.int32
    assert list(ds.y_train) == [0] * 4 + [1] * 4 + [2] * 4
    assert list(ds.y_test) == [2, 0, 1]  # val_annotations.txt order, labels by wnids.txt
    assert ds.mean == TINY_IMAGENET_MEAN and ds.std == TINY_IMAGENET_STD
    assert ds.augmentation == "rotate_flip"
    for images, labels in ((ds.x_train, ds.y_train), (ds.x_test, ds.y_test)):
        for image, label in zip(images, labels):
            colour = image.reshape(-1, 3).mean(axis=0)
            # The greyscale image has equal channels; every other one is its class's colour.
            if np.ptp(colour) > 10:
                assert np.argmax(colour) == np.argmax(COLOURS[WNIDS[label]])


def test_folder_and_zip_load_the_same_miniature(folder, archive):
    from_folder, from_zip = load_tiny_imagenet(folder), load_tiny_imagenet(archive)
    _check(from_folder)
    _check(from_zip)
    np.testing.assert_array_equal(from_folder.x_train, from_zip.x_train)
    np.testing.assert_array_equal(from_folder.x_test, from_zip.x_test)


def test_load_dataset_serves_it_from_the_parent_folder_with_a_fraction(folder):
    ds = load_dataset("tiny_imagenet", data_dir=os.path.dirname(folder), train_fraction=0.5)
    assert ds.x_train.shape == (6, 64, 64, 3) and sorted(set(ds.y_train)) == [0, 1, 2]
    with pytest.raises(InputError, match="^data_dir is required for dataset=tiny_imagenet"):
        load_dataset("tiny_imagenet")


def _broken(tmp_path, change):
    files = _files()
    change(files)
    return _write_folder(tmp_path / "tiny-imagenet-200", files)


def _corrupt(files):
    files["train/n03/images/n03_2.JPEG"] = b"\xff\xd8 not really a jpeg"


@pytest.mark.parametrize(
    "change, fragments",
    [
        (lambda f: f.pop("wnids.txt"), ["no wnids.txt"]),
        (lambda f: f.update({"wnids.txt": b"\n"}), ["lists no wnids"]),
        (lambda f: f.pop("val/val_annotations.txt"), ["no val/val_annotations.txt"]),
        (
            lambda f: f.update({"val/val_annotations.txt": b"val_0.JPEG\tn09\t0\t0\t1\t1\n"}),
            ["val_annotations.txt", "line 1", "unknown wnid 'n09'"],
        ),
        (
            lambda f: f.update({"val/val_annotations.txt": b"val_0.JPEG\n"}),
            ["line 1", "expected '<image> TAB <wnid>"],
        ),
        (
            lambda f: f.update({"val/val_annotations.txt": b"val_9.JPEG\tn01\n"}),
            ["no image val/images/val_9.JPEG"],
        ),
        (lambda f: f.pop("val/images/val_1.JPEG"), ["no image val/images/val_1.JPEG"]),
        (
            lambda f: f.update({"val/images/extra.JPEG": _jpeg((1, 2, 3))}),
            ["val/images/extra.JPEG has no line"],
        ),
        (
            lambda f: [f.pop(k) for k in list(f) if k.startswith("train/n01/images/")],
            ["no training images for wnid n01"],
        ),
        (
            lambda f: f.update({"train/n77/images/x.JPEG": _jpeg((1, 2, 3))}),
            ["train/n77", "wnids.txt does not list"],
        ),
        (_corrupt, ["cannot decode image", "n03_2.JPEG"]),
        (
            lambda f: f.update({"val/images/val_2.JPEG": _jpeg((1, 2, 3), size=(32, 32))}),
            ["val_2.JPEG", "is 32x32", "64x64"],
        ),
    ],
)
def test_bad_input_is_one_clear_line(tmp_path, change, fragments):
    path = _broken(tmp_path, change)
    with pytest.raises(InputError) as raised:
        load_tiny_imagenet(path)
    message = str(raised.value)
    assert "\n" not in message and message.startswith("data_dir: ")
    for fragment in fragments:
        assert fragment in message, message


def test_missing_path_and_corrupt_zip_are_one_line(tmp_path):
    with pytest.raises(InputError, match="no such file or directory"):
        load_tiny_imagenet(str(tmp_path / "nowhere"))
    (tmp_path / "broken.zip").write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(InputError, match="corrupt or unreadable archive"):
        load_tiny_imagenet(str(tmp_path / "broken.zip"))


def test_rotate_flip_rotates_with_nearest_pixels_and_black_corners():
    augmenter = make_augmenter("rotate_flip", seed=3)
    assert [layer.name for layer in augmenter.layers] == ["random_rotation", "random_flip"]
    rotation = augmenter.layers[0]
    assert rotation.interpolation == "nearest" and rotation.fill_mode == "constant"
    assert rotation.fill_value == 0
    white = np.full((16, 64, 64, 3), 255.0, np.float32)
    out = keras.ops.convert_to_numpy(augmenter(white, training=True))
    # Nearest-neighbour sampling never blends: only the image's value and the zero fill.
    assert set(np.unique(out)) <= {0.0, 255.0}
    assert (out == 0).any()  # some corner came from outside the image
    # At most 20 degrees: the centre stays in the picture, so it stays white.
    assert (out[:, 24:40, 24:40] == 255).all()
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(augmenter(white, training=False)), white
    )


def test_rotate_flip_runs_in_a_fit_step(archive):
    ds = load_tiny_imagenet(archive)
    inputs = keras.Input((64, 64, 3))
    pooled = keras.layers.GlobalAveragePooling2D()(keras.layers.Rescaling(1 / 255)(inputs))
    network = keras.Model(inputs, keras.layers.Dense(3)(pooled))
    trainer = AugmentedClassifier(network, make_augmenter(ds.augmentation, seed=0))
    trainer.compile(optimizer="adam")
    history = trainer.fit(ds.x_train, ds.y_train, batch_size=4, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
