"""`--data_cache_dir`: decoded images on disk, memory-mapped, streamed through tf.data.

The file sources decode into `.npy` files once; later loads map them without decoding, a
changed source is decoded again, a broken entry is one clear error, and the TensorFlow input
pipeline reads mapped images batch by batch (never the whole split into one tensor).
"""

import json
import os
import time

import numpy as np
import pytest

from nasty_tf.data import image_folder, load_dataset
from nasty_tf.errors import InputError
from tests.test_data import _check_small_folder, _layout, _write_dir, _write_zip
from tests.test_tiny_imagenet import _check as _check_tiny_imagenet
from tests.test_tiny_imagenet import _files as _tiny_imagenet_files
from tests.test_tiny_imagenet import _write_zip as _write_tiny_imagenet_zip

pytestmark = pytest.mark.single_pass  # numpy and Pillow only, but for the tf.data test


def _entry(cache):
    (name,) = os.listdir(cache)
    return os.path.join(cache, name)


def _count_decodes(monkeypatch):
    calls = []
    original = image_folder.decode_image

    def counting(data, shown):
        calls.append(shown)
        return original(data, shown)

    monkeypatch.setattr(image_folder, "decode_image", counting)
    return calls


def test_first_load_decodes_into_mapped_files_later_loads_do_not_decode(tmp_path, monkeypatch):
    source = _write_dir(tmp_path / "folder", _layout())
    cache = tmp_path / "cache"
    decodes = _count_decodes(monkeypatch)
    first = load_dataset("image_folder", data_dir=str(source), cache_dir=str(cache))
    assert len(decodes) == 15  # 3 classes x (3 train + 2 test)
    second = load_dataset("image_folder", data_dir=str(source), cache_dir=str(cache))
    assert len(decodes) == 15  # served from the cache
    in_memory = load_dataset("image_folder", data_dir=str(source))
    for ds in (first, second):
        _check_small_folder(ds)
        assert isinstance(ds.x_train, np.memmap) and isinstance(ds.x_test, np.memmap)
        assert not ds.x_train.flags.writeable  # mapped read-only: training cannot corrupt it
        for name in ("x_train", "y_train", "x_test", "y_test"):
            np.testing.assert_array_equal(getattr(ds, name), getattr(in_memory, name))
        assert (ds.mean, ds.std, ds.class_names) == (
            in_memory.mean,
            in_memory.std,
            in_memory.class_names,
        )
    assert sorted(os.listdir(_entry(cache))) == [
        "dataset.json",
        "x_test.npy",
        "x_train.npy",
        "y_test.npy",
        "y_train.npy",
    ]


def test_a_changed_source_is_decoded_again(tmp_path, monkeypatch):
    files = _layout()
    source = _write_zip(tmp_path / "data.zip", files)
    cache = tmp_path / "cache"
    load_dataset("image_folder", data_dir=str(source), cache_dir=str(cache))
    # One more training image per class: a new file, a new size and modification time.
    more = _layout({"train": 4, "test": 2})
    time.sleep(0.01)
    _write_zip(source, more)
    decodes = _count_decodes(monkeypatch)
    ds = load_dataset("image_folder", data_dir=str(source), cache_dir=str(cache))
    assert len(decodes) == 18
    _check_small_folder(ds, counts=(4, 2))
    assert len(os.listdir(cache)) == 1  # the stale entry was replaced, not kept beside


def test_a_folder_source_notices_a_replaced_image(tmp_path, monkeypatch):
    source = _write_dir(tmp_path / "folder", _layout())
    cache = tmp_path / "cache"
    load_dataset("image_folder", data_dir=str(source), cache_dir=str(cache))
    image = source / "train" / "ant" / "000.png"
    stat = image.stat()
    os.utime(image, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    decodes = _count_decodes(monkeypatch)
    load_dataset("image_folder", data_dir=str(source), cache_dir=str(cache))
    assert len(decodes) == 15


def test_a_training_fraction_of_a_cached_dataset_is_an_in_memory_subset(tmp_path):
    source = _write_dir(tmp_path / "folder", _layout({"train": 4, "test": 2}))
    ds = load_dataset(
        "image_folder", data_dir=str(source), train_fraction=0.5, cache_dir=str(tmp_path / "cache")
    )
    assert ds.x_train.shape[0] == 6 and sorted(set(ds.y_train)) == [0, 1, 2]
    assert not isinstance(ds.x_train, np.memmap) and isinstance(ds.x_test, np.memmap)


def test_tiny_imagenet_through_the_cache(tmp_path):
    archive = _write_tiny_imagenet_zip(tmp_path / "tiny-imagenet-200.zip", _tiny_imagenet_files())
    for _ in range(2):  # decoded, then mapped
        ds = load_dataset("tiny_imagenet", data_dir=archive, cache_dir=str(tmp_path / "cache"))
        _check_tiny_imagenet(ds)
        assert isinstance(ds.x_train, np.memmap)


def test_bad_input_leaves_no_entry_and_a_good_entry_survives(tmp_path):
    cache = tmp_path / "cache"
    good = _write_dir(tmp_path / "good", _layout())
    load_dataset("image_folder", data_dir=str(good), cache_dir=str(cache))
    files = _layout()
    files["train/ant/001.png"] = b"not an image"
    bad = _write_dir(tmp_path / "bad", files)
    with pytest.raises(InputError, match=r"cannot decode image .*001\.png"):
        load_dataset("image_folder", data_dir=str(bad), cache_dir=str(cache))
    assert len(os.listdir(cache)) == 1  # only the good source's entry
    _check_small_folder(load_dataset("image_folder", data_dir=str(good), cache_dir=str(cache)))


def test_a_corrupt_entry_is_one_clear_error(tmp_path):
    source = _write_dir(tmp_path / "folder", _layout())
    cache = tmp_path / "cache"
    load_dataset("image_folder", data_dir=str(source), cache_dir=str(cache))
    with open(os.path.join(_entry(cache), "x_train.npy"), "r+b") as f:
        f.truncate(100)
    with pytest.raises(InputError, match=r"cache_dir: corrupt cache entry .*x_train\.npy.*delete"):
        load_dataset("image_folder", data_dir=str(source), cache_dir=str(cache))


def test_an_entry_without_its_manifest_is_decoded_again(tmp_path, monkeypatch):
    # What an interrupted decode leaves: arrays, maybe partial, but no dataset.json.
    source = _write_dir(tmp_path / "folder", _layout())
    cache = tmp_path / "cache"
    load_dataset("image_folder", data_dir=str(source), cache_dir=str(cache))
    os.remove(os.path.join(_entry(cache), "dataset.json"))
    decodes = _count_decodes(monkeypatch)
    _check_small_folder(load_dataset("image_folder", data_dir=str(source), cache_dir=str(cache)))
    assert len(decodes) == 15
    with open(os.path.join(_entry(cache), "dataset.json")) as f:
        assert json.load(f)["shapes"]["x_train"] == [9, 4, 5, 3]


def test_bad_cache_arguments(tmp_path):
    source = _write_dir(tmp_path / "folder", _layout())
    with pytest.raises(InputError, match="^cache_dir applies to the file sources"):
        load_dataset("digits", cache_dir=str(tmp_path / "cache"))
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    with pytest.raises(InputError, match="^cache_dir: cannot write"):
        load_dataset("image_folder", data_dir=str(source), cache_dir=str(blocker))
    with pytest.raises(InputError, match="^data_dir: no such file or directory"):
        load_dataset(
            "image_folder", data_dir=str(tmp_path / "missing"), cache_dir=str(tmp_path / "c")
        )
    os.symlink(tmp_path / "nowhere.png", source / "train" / "ant" / "dangling.png")
    with pytest.raises(InputError, match="^data_dir: cannot read .*dangling.png"):
        load_dataset("image_folder", data_dir=str(source), cache_dir=str(tmp_path / "c"))


def test_the_tf_data_pipeline_reads_mapped_images_batch_by_batch(tmp_path):
    pytest.importorskip("tensorflow")
    from nasty_tf.training import input_pipeline

    images = np.lib.format.open_memmap(
        tmp_path / "x.npy", mode="w+", dtype=np.uint8, shape=(10, 2, 2, 3)
    )
    images[:] = np.arange(10, dtype=np.uint8).reshape(10, 1, 1, 1)
    images.flush()
    mapped = np.load(tmp_path / "x.npy", mmap_mode="r")
    labels = np.arange(10, dtype=np.int32)
    dataset = input_pipeline.batches(mapped, labels, batch_size=4, shuffle_seed=1)
    # Changed on disk after the pipeline was built: a pipeline holding a copy of the images
    # would still serve the old values; one that reads the file per batch serves the new.
    images += 100
    images.flush()
    seen = []
    for x, y in dataset:
        assert x.shape[1:] == (2, 2, 3)
        np.testing.assert_array_equal(np.asarray(x)[:, 0, 0, 0], np.asarray(y) + 100)
        seen.extend(np.asarray(y))
    assert sorted(seen) == list(range(10)) and seen != list(range(10))
    in_order = np.concatenate([np.asarray(b) for b in input_pipeline.batches(mapped, batch_size=3)])
    np.testing.assert_array_equal(in_order, np.asarray(images))


def test_train_and_evaluate_binaries_feed_on_the_cache(tmp_path):
    from binaries import run_tool_in_process

    rng = np.random.default_rng(0)
    source = _write_dir(
        tmp_path / "folder",
        {
            f"{split}/{name}/{index}.png": _random_png(rng)
            for split, count in (("train", 12), ("test", 4))
            for name in ("cat", "dog")
            for index in range(count)
        },
    )
    cache = tmp_path / "cache"
    data = ["--dataset=image_folder", f"--data_dir={source}", f"--data_cache_dir={cache}"]
    trained = run_tool_in_process(
        "train",
        *data,
        "--arch=cnn",
        "--epochs=1",
        "--batch_size=8",
        "--verbose=0",
        f"--output_dir={tmp_path}/run",
    )
    assert trained.returncode == 0, trained.stderr[-3000:]
    assert os.path.isfile(os.path.join(_entry(cache), "dataset.json"))
    metrics = json.load(open(tmp_path / "run" / "metrics.json"))
    assert metrics["train_images"] == 24
    evaluated = run_tool_in_process(
        "evaluate", *data, f"--model={tmp_path}/run/model.keras", f"--output_dir={tmp_path}/eval"
    )
    assert evaluated.returncode == 0, evaluated.stderr[-3000:]
    assert json.load(open(tmp_path / "eval" / "evaluation.json"))["accuracy"] == pytest.approx(
        metrics["accuracy"]
    )


def _random_png(rng):
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()
