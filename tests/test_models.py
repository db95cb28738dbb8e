"""Tests for the model zoo (`nasty_tf.models`); backend-neutral, so they also run under JAX."""

import os
import re

import keras
import numpy as np
import pytest

from nasty_tf import models
from nasty_tf.errors import InputError
from nasty_tf.models import _common, legacy_layers, preresnet

# Trainable-parameter counts of the reference PyTorch models (DESIGN.md section 2), for 10,
# 100 and 200 classes.
REFERENCE_COUNTS = {
    "resnet18": (11_173_962, 11_220_132, 11_271_432),
    "resnet34": (21_282_122, 21_328_292, 21_379_592),
    "resnet50": (23_520_842, 23_705_252, 23_910_152),
    "preresnet20": (272_282, 278_132, 284_632),
    "preresnet32": (466_714, 472_564, 479_064),
    "resnext29": (34_426_698, 34_518_948, 34_621_448),
    "mobilenetv2": (2_254_090, 2_369_380, 2_497_480),
    "shufflenetv2": (1_268_646, 1_360_896, 1_463_396),
    "cnn": (357_514, 369_124, 382_024),
}
CLASS_COUNTS = (10, 100, 200)
FEATURE_DIMS = {
    "resnet18": 512,
    "resnet34": 512,
    "resnet50": 2048,
    "preresnet20": 64,
    "preresnet32": 64,
    "resnext29": 1024,
    "mobilenetv2": 1280,
    "shufflenetv2": 1024,
    "cnn": 128,
}
# Forward passes of these take a few seconds each on a 2-core CPU.
LARGE_ARCHS = {"resnet34", "resnet50", "resnext29"}
# Keras' TensorFlow backend converts tensors with a bare `np.array(x)` that NumPy 2 warns about.
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")
# Names Keras generates for unnamed layers; every layer of the zoo has a chosen name instead.
AUTO_NAME = re.compile(
    r"^(conv2d|depthwise_conv2d|batch_normalization|re_lu|add|dense|zero_padding2d|"
    r"activation|concatenate|dropout|max_pooling2d|flatten|global_average_pooling2d)(_\d+)?$"
)


def _arch_params(archs):
    return [pytest.param(a, marks=pytest.mark.slow) if a in LARGE_ARCHS else a for a in archs]


def _count_trainable(model):
    return sum(int(np.prod(w.shape)) for w in model.trainable_weights)


def _forward(model, images):
    """The network's inference logits as NumPy: compiled whole on JAX, where running it op by
    op compiles each new op (seconds per zoo network on a CPU); eager on TensorFlow, where a
    traced function would cost more than the run."""
    if keras.backend.backend() == "jax":
        return model.predict_on_batch(images)
    return keras.tree.map_structure(keras.ops.convert_to_numpy, model(images, training=False))


def _images(shape, seed=0, dtype="float32"):
    return np.random.default_rng(seed).integers(0, 256, size=(2,) + shape).astype(dtype)


@pytest.fixture(autouse=True)
def _fresh_session():
    yield
    # Without the full garbage collection Keras adds by default: it cost ~0.5 s after every
    # test of this file, and Python's own collector frees the networks anyway.
    keras.backend.clear_session(free_memory=False)


def test_registry_lists_every_reference_arch():
    assert models.available_models() == sorted(REFERENCE_COUNTS)


# One build per architecture for its structure, its parameter counts and its forward pass:
# building is most of the cost, on JAX above all (every new weight shape compiles). The counts
# for 100 and 200 classes follow from this build, whose classifier is the only layer that
# depends on the class count (a Dense on the features); test_forward_64x64 builds with 200.
@pytest.mark.parametrize("arch", _arch_params(sorted(REFERENCE_COUNTS)))
def test_structure_count_and_32x32_forward_with_uint8_input(arch):
    model = models.get_model(arch, 10)
    assert isinstance(model, keras.Model) and model.name == arch
    count = _count_trainable(model)
    assert count == REFERENCE_COUNTS[arch][0]
    for num_classes, reference in zip(CLASS_COUNTS[1:], REFERENCE_COUNTS[arch][1:]):
        assert count + (num_classes - 10) * (FEATURE_DIMS[arch] + 1) == reference, num_classes
    assert model.input.shape == (None, 32, 32, 3) and model.input.dtype == "float32"
    assert model.layers[0].name == "images"
    normalization = model.layers[1]
    assert type(normalization) is keras.layers.Normalization
    assert normalization.name == "pixel_normalization" and not normalization.weights
    assert normalization.compute_dtype == "float32"
    # Built-in layers only, but the BatchNorm the zoo trains with (saved as Keras' own).
    ours = {type(l) for l in model.layers if not type(l).__module__.startswith("keras.")}
    assert ours <= {models.FusedBatchNormalization}, ours
    assert model.get_layer("features").output.shape == (None, FEATURE_DIMS[arch])
    logits = model.get_layer("logits")
    assert isinstance(logits, keras.layers.Dense) and logits.dtype_policy.name == "float32"
    batch_norms = [l for l in model.layers if isinstance(l, keras.layers.BatchNormalization)]
    assert batch_norms
    for layer in batch_norms:
        assert layer.momentum == pytest.approx(0.9) and layer.epsilon == pytest.approx(1e-5)
    unnamed = [l.name for l in model.layers if AUTO_NAME.match(l.name)]
    assert not unnamed, f"layers without a descriptive name: {unnamed}"
    if arch == "mobilenetv2":  # the reference pads its 1x1 stem convolution
        assert model.get_layer("stem_conv").output.shape[1:3] == (34, 34)

    images = _images((32, 32, 3))
    logits = _forward(model, images)
    assert logits.shape == (2, 10) and logits.dtype == np.float32
    assert np.all(np.isfinite(logits))
    from_uint8 = _forward(model, images.astype("uint8"))
    np.testing.assert_allclose(from_uint8, logits, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("arch", _arch_params(sorted(a for a in REFERENCE_COUNTS if a != "cnn")))
def test_forward_64x64(arch):
    model = models.get_model(arch, 200, input_shape=(64, 64, 3))
    assert _count_trainable(model) == REFERENCE_COUNTS[arch][CLASS_COUNTS.index(200)]
    assert model.get_layer("features").output.shape == (None, FEATURE_DIMS[arch])
    assert model.output.shape == (None, 200)
    # On JAX the build above is the check: the JAX forward pass of every layer is the 32x32
    # test's, and compiling each network again at 64x64 costs seconds.
    if keras.backend.backend() != "jax":
        features_model = keras.Model(
            model.input, [model.get_layer("features").output, model.output]
        )
        features, logits = _forward(features_model, _images((64, 64, 3)))
        assert tuple(features.shape) == (2, FEATURE_DIMS[arch])
        assert tuple(logits.shape) == (2, 200)


def test_cnn_rejects_other_input_shapes():
    with pytest.raises(InputError, match="32x32"):
        models.get_model("cnn", 10, input_shape=(64, 64, 3))


def test_unknown_arch_raises_input_error():
    with pytest.raises(InputError, match=r"Unknown architecture 'resnet1000'\. Available: cnn"):
        models.get_model("resnet1000", 10)


@pytest.mark.parametrize("num_classes", [1, 0, -3, 2.5, True, "10"])
def test_bad_num_classes_raises_input_error(num_classes):
    with pytest.raises(InputError, match="num_classes"):
        models.get_model("preresnet20", num_classes)


@pytest.mark.parametrize(
    "input_shape", [(32, 32), (0, 32, 3), (32, 32, None), "32x32", 32, (32.0, 32, 3)]
)
def test_bad_input_shape_raises_input_error(input_shape):
    with pytest.raises(InputError, match="input_shape"):
        models.get_model("preresnet20", 10, input_shape=input_shape)


@pytest.mark.parametrize("depth", [21, 44, 2])
def test_preresnet_rejects_depths_the_reference_builds_differently(depth):
    with pytest.raises(InputError, match="depth"):
        preresnet.preresnet(depth, 10)


def test_mean_std_must_match_channels():
    with pytest.raises(InputError, match="channel"):
        models.get_model("preresnet20", 10, input_shape=(32, 32, 1))
    with pytest.raises(InputError, match="std"):
        models.pixel_normalization((0.5, 0.5, 0.5), (0.2, 0.0, 0.2))
    with pytest.raises(InputError, match="std"):
        models.get_model("cnn", 10, std=(0.2, 0.2))


def test_pixel_normalization_values_config_and_legacy_layer():
    pixels = np.array([[[[0, 128, 255], [3, 77, 254]]]], dtype="uint8")
    expected = (pixels / 255.0 - np.array(models.CIFAR10_MEAN)) / np.array(models.CIFAR10_STD)
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_bfloat16")  # the pixels must still be float32
    try:
        layer = models.pixel_normalization(models.CIFAR10_MEAN, models.CIFAR10_STD)
        legacy = legacy_layers.PixelNormalization(models.CIFAR10_MEAN, models.CIFAR10_STD)
    finally:
        keras.config.set_dtype_policy(previous)
    out = keras.ops.convert_to_numpy(layer(pixels))
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-6)
    clone = keras.layers.Normalization.from_config(layer.get_config())
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(clone(pixels)), out)
    old = keras.ops.convert_to_numpy(keras.ops.cast(legacy(pixels), "float32"))
    np.testing.assert_allclose(out, old, rtol=1e-2, atol=1e-2)  # legacy: bfloat16 output
    model = keras.Sequential([keras.Input((1, 2, 3)), layer])
    assert models.pixel_statistics(model) == (models.CIFAR10_MEAN, models.CIFAR10_STD)


def test_batch_norm_argument_chooses_the_layer_and_names_itself_when_wrong():
    def kinds(network):
        return {type(l) for l in network.layers if isinstance(l, keras.layers.BatchNormalization)}

    assert kinds(models.get_model("cnn", 10)) == {models.FusedBatchNormalization}
    assert kinds(models.get_model("cnn", 10, batch_norm="keras")) == {
        keras.layers.BatchNormalization
    }
    with pytest.raises(InputError) as error:
        models.get_model("cnn", 10, batch_norm="sync")
    assert str(error.value) == "batch_norm must be one of fused, keras. Received: batch_norm='sync'"


def test_logits_stay_float32_under_mixed_precision():
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_bfloat16")
    try:
        model = models.get_model("preresnet20", 10)
    finally:
        keras.config.set_dtype_policy(previous)
    logits = model(_images((32, 32, 3), dtype="uint8"), training=False)
    assert keras.backend.standardize_dtype(logits.dtype) == "float32"
    assert model.get_layer("stage1_block0_conv1").compute_dtype == "bfloat16"


def test_strided_convolutions_pad_like_pytorch():
    # PyTorch pads a stride-2 3x3 conv by 1 on every side, so the first output window is
    # centred on pixel (0, 0); Keras' "same" would centre it on (1, 1).
    inputs = keras.Input((4, 4, 1))
    outputs = _common.conv2d(inputs, 1, 3, "probe", strides=2)
    model = keras.Model(inputs, outputs)
    model.get_layer("probe").set_weights([np.ones((3, 3, 1, 1), "float32")])
    image = np.arange(16, dtype="float32").reshape(1, 4, 4, 1)
    out = keras.ops.convert_to_numpy(model(image))[0, :, :, 0]
    padded = np.pad(image[0, :, :, 0], 1)
    expected = [[padded[r : r + 3, c : c + 3].sum() for c in (0, 2)] for r in (0, 2)]
    np.testing.assert_array_equal(out, expected)


def test_channel_split_and_shuffle_match_the_reference_and_the_legacy_layers():
    x = np.arange(2 * 3 * 3 * 8, dtype="float32").reshape(2, 3, 3, 8)
    inputs = keras.Input((3, 3, 8))
    first, second = models.channel_split(inputs)
    shuffled = models.channel_shuffle(inputs, 2, name="probe_shuffle")
    probe = keras.Model(inputs, [first, second, shuffled])
    assert {type(l).__module__.split(".")[0] for l in probe.layers} == {"keras"}
    first, second, shuffled = (keras.ops.convert_to_numpy(t) for t in probe(x))
    np.testing.assert_array_equal(first, x[..., :4])
    np.testing.assert_array_equal(second, x[..., 4:])
    # PyTorch: view(b, groups, c // groups, h, w).transpose(1, 2) on NCHW.
    nchw = x.transpose(0, 3, 1, 2).reshape(2, 2, 4, 3, 3).transpose(0, 2, 1, 3, 4)
    np.testing.assert_array_equal(shuffled, nchw.reshape(2, 8, 3, 3).transpose(0, 2, 3, 1))
    old_first, old_second = legacy_layers.ChannelSplit()(x)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(old_first), first)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(old_second), second)
    old_shuffled = keras.ops.convert_to_numpy(legacy_layers.ChannelShuffle(2)(x))
    np.testing.assert_array_equal(old_shuffled, shuffled)


@pytest.mark.parametrize("arch", ["preresnet20", "shufflenetv2"])
def test_keras_save_load_round_trip(arch, tmp_path):
    model = models.get_model(arch, 10, mean=(0.5, 0.4, 0.3), std=(0.2, 0.25, 0.3))
    images = _images((32, 32, 3))
    expected = keras.ops.convert_to_numpy(model(images, training=False))
    path = os.path.join(tmp_path, "model.keras")
    model.save(path)
    restored = keras.models.load_model(path)
    assert restored.name == arch
    assert models.pixel_statistics(restored) == ((0.5, 0.4, 0.3), (0.2, 0.25, 0.3))
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(restored(images, training=False)), expected
    )


@pytest.mark.parametrize(
    "arch, input_shape",
    [("cnn", (32, 32, 3)), ("preresnet20", (32, 32, 3)), ("preresnet20", (64, 64, 3))],
)
def test_train_step_updates_weights_and_batch_statistics(arch, input_shape):
    model = models.get_model(arch, 10, input_shape=input_shape)
    model.compile(
        optimizer="sgd", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    )
    first_bn = next(l for l in model.layers if isinstance(l, keras.layers.BatchNormalization))
    kernel = model.get_layer("logits").kernel
    kernel_before = keras.ops.convert_to_numpy(kernel).copy()
    moving_mean_before = keras.ops.convert_to_numpy(first_bn.moving_mean).copy()
    loss = model.train_on_batch(_images(input_shape, dtype="uint8"), np.array([3, 7]))
    assert np.isfinite(loss)
    assert not np.array_equal(keras.ops.convert_to_numpy(kernel), kernel_before)
    assert not np.array_equal(keras.ops.convert_to_numpy(first_bn.moving_mean), moving_mean_before)
