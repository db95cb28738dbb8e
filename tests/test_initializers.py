"""`init="reference"`: every zoo network starts as the reference PyTorch model does (issue 19).

The expected rules are written here from the reference code (VITA-Group/Nasty-Teacher,
`model/*.py`, PyTorch 1.4), independently of `nasty_tf.models._common`:

* PyTorch's default for `nn.Conv2d` and `nn.Linear` (`reset_parameters`):
  `kaiming_uniform_(w, a=sqrt(5))`, a uniform of bound `gain * sqrt(3 / fan_in)` with
  `gain = sqrt(2 / (1 + a^2))`, and a bias uniform in +-1/sqrt(fan_in);
* PreResNet's `__init__`: every `Conv2d` weight `normal_(0, sqrt(2 / n))`,
  n = k * k * out_channels; its `nn.Linear` keeps the default;
* ResNeXt's `__init__`: `kaiming_normal(mode='fan_out')` for every conv weight,
  `kaiming_normal` (fan-in) for the classifier's weight, every bias 0.

PyTorch's fans come from its weight shapes: `(out, in / groups, k, k)` for a convolution, so a
depthwise convolution (groups = channels) has fan-in `k * k`. Networks are only built, never
trained; the statistics are on the freshly drawn weights.
"""

import json
import math
import zipfile

import keras
import numpy as np
import pytest

from nasty_tf import models, protocols
from nasty_tf.atomic_io import atomic_save_model
from nasty_tf.errors import InputError
from nasty_tf.protocols import teacher_student
from nasty_tf.training import TrainConfig

# Keras' TensorFlow backend converts tensors with a bare `np.array(x)` that NumPy 2 warns about.
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")

UNIFORM = "kaiming_uniform_a_sqrt5"  # PyTorch's default, with its uniform bias
NORMAL_FAN_OUT = "normal_fan_out"  # N(0, sqrt(2 / fan_out)), bias 0
NORMAL_FAN_IN = "normal_fan_in"  # N(0, sqrt(2 / fan_in)), bias 0
# arch -> (rule of its convolutions, rule of its dense layers)
REFERENCE_RULES = {
    "cnn": (UNIFORM, UNIFORM),
    "mobilenetv2": (UNIFORM, UNIFORM),  # its classifier is a 1x1 conv with bias: a Dense here
    "shufflenetv2": (UNIFORM, UNIFORM),
    "resnet18": (UNIFORM, UNIFORM),
    "resnet34": (UNIFORM, UNIFORM),
    "resnet50": (UNIFORM, UNIFORM),
    "preresnet20": (NORMAL_FAN_OUT, UNIFORM),
    "preresnet32": (NORMAL_FAN_OUT, UNIFORM),
    "resnext29": (NORMAL_FAN_OUT, NORMAL_FAN_IN),
}
# The archs whose convolutions have biases (PyTorch's default); the ResNets turn them off.
CONV_BIASES = ("cnn", "mobilenetv2", "shufflenetv2")
# Layers with at least this many weights get their spread checked, not only their bound.
MANY = 1000


def test_the_rules_cover_the_whole_zoo():
    assert sorted(REFERENCE_RULES) == models.available_models()
    assert models.INITS == ("keras", "reference")


def _pytorch_fans(layer, kernel):
    """(fan_in, fan_out) as PyTorch computes them for the same layer's weight."""
    if isinstance(layer, keras.layers.DepthwiseConv2D):
        kh, kw, channels, multiplier = kernel.shape
        return kh * kw * 1, kh * kw * channels * multiplier  # weight (C * m, 1, kh, kw)
    if isinstance(layer, keras.layers.Conv2D):
        kh, kw, in_per_group, out = kernel.shape
        return kh * kw * in_per_group, kh * kw * out
    fan_in, fan_out = kernel.shape
    return fan_in, fan_out


def _kaiming_uniform_bound(fan_in):
    a = math.sqrt(5)  # PyTorch's `reset_parameters`
    gain = math.sqrt(2.0 / (1 + a * a))
    return gain * math.sqrt(3.0 / fan_in)


def _check_uniform(values, bound, what):
    assert np.abs(values).max() <= bound * (1 + 1e-6), what
    if values.size >= MANY:
        # A uniform on [-b, b] has std b / sqrt(3) and reaches near its bounds.
        assert abs(values.std() / (bound / math.sqrt(3)) - 1) < 0.1, what
        assert np.abs(values).max() > 0.9 * bound, what
        assert abs(values.mean()) < 0.1 * bound, what


def _check_normal(values, std, what):
    if values.size >= MANY:
        assert abs(values.std() / std - 1) < 0.1, what
        assert abs(values.mean()) < 0.1 * std, what
    if values.size >= 10_000:
        # Untruncated, as PyTorch's normal_: Keras' truncated normals stop at about 2.3 std.
        assert np.abs(values).max() > 2.8 * std, what
    else:
        assert values.std() > 0, what


def _weighted_layers(network):
    found = []
    for layer in network.layers:
        if isinstance(layer, (keras.layers.Conv2D, keras.layers.DepthwiseConv2D)):
            found.append((layer, "conv"))
        elif isinstance(layer, keras.layers.Dense):
            found.append((layer, "dense"))
        else:
            # Every other layer holding weights is a BatchNorm or the pixel normalisation.
            assert not layer.trainable_weights or isinstance(
                layer, keras.layers.BatchNormalization
            ), layer.name
    return found


# Every arch on the default backend; on JAX the CNN only: the rules are Keras initialisers'
# configs, which hold on every backend, and JAX compiles a random draw per new weight shape
# (~50 s for the zoo on 2 cores).
@pytest.mark.parametrize(
    "arch",
    [
        a if a == "cnn" else pytest.param(a, marks=pytest.mark.single_pass)
        for a in sorted(REFERENCE_RULES)
    ],
)
def test_reference_init_follows_the_pytorch_rules(arch):
    keras.utils.set_random_seed(0)
    network = models.get_model(arch, 10, (32, 32, 3), init="reference")
    layers = _weighted_layers(network)
    assert layers and layers[-1][0].name == "logits"
    checked = 0
    for layer, kind in layers:
        rule = REFERENCE_RULES[arch][0 if kind == "conv" else 1]
        kernel = keras.ops.convert_to_numpy(layer.weights[0]).astype("float64")
        bias = keras.ops.convert_to_numpy(layer.bias).astype("float64") if layer.use_bias else None
        fan_in, fan_out = _pytorch_fans(layer, kernel)
        what = f"{arch}/{layer.name} ({rule}, fan_in {fan_in}, fan_out {fan_out})"
        # Every classifier has a bias; convolutions only where the reference's have one.
        assert layer.use_bias == (kind == "dense" or arch in CONV_BIASES), what
        if rule == UNIFORM:
            bound = _kaiming_uniform_bound(fan_in)
            # Keras' VarianceScaling(scale=1/3, mode="fan_in", distribution="uniform") has the
            # same bound, sqrt(3 * scale / fan_in), and so has the bias rule, 1/sqrt(fan_in).
            assert math.isclose(bound, math.sqrt(3 * (1 / 3) / fan_in), rel_tol=1e-12)
            assert math.isclose(bound, 1 / math.sqrt(fan_in), rel_tol=1e-12)
            _check_uniform(kernel, bound, what)
            if bias is not None:
                assert np.any(bias != 0), what
                _check_uniform(bias, bound, what + " bias")
        else:
            fan = fan_out if rule == NORMAL_FAN_OUT else fan_in
            _check_normal(kernel, math.sqrt(2.0 / fan), what)
            if bias is not None:
                assert not np.any(bias), what + " bias"
        checked += 1
    assert checked == len(layers)
    keras.backend.clear_session()


@pytest.mark.parametrize("arch", ["cnn", "mobilenetv2"])
def test_default_init_stays_keras_glorot(arch):
    keras.utils.set_random_seed(0)
    default = models.get_model(arch, 10)
    for layer, _ in _weighted_layers(default):
        config = layer.get_config()
        key = (
            "depthwise_initializer"
            if isinstance(layer, keras.layers.DepthwiseConv2D)
            else "kernel_initializer"
        )
        assert config[key]["class_name"] == "GlorotUniform", layer.name
        if layer.use_bias:
            assert config["bias_initializer"]["class_name"] == "Zeros", layer.name
            assert not np.any(keras.ops.convert_to_numpy(layer.bias)), layer.name
    if arch == "cnn":  # init="keras" is the default, weight for weight
        keras.utils.set_random_seed(0)
        explicit = models.get_model(arch, 10, init="keras")
        for a, b in zip(default.get_weights(), explicit.get_weights()):
            np.testing.assert_array_equal(a, b)
    keras.backend.clear_session()


def test_an_unknown_init_is_refused_by_name():
    message = "init must be one of ('keras', 'reference'). Received: init='pytorch'"
    with pytest.raises(InputError) as error:
        models.get_model("cnn", 10, init="pytorch")
    assert str(error.value) == message
    with pytest.raises(InputError) as error:
        TrainConfig(init="pytorch")
    assert str(error.value) == message


def test_train_config_carries_init_into_the_network_and_the_run_identity():
    assert TrainConfig().init == "keras"
    # Keras' init stays out of the identity, so runs made before the option keep their keys.
    assert "init" not in TrainConfig().identity()
    assert TrainConfig(init="reference").identity()["init"] == "reference"

    class Data:
        num_classes, input_shape = 10, (32, 32, 3)
        mean, std = models.CIFAR10_MEAN, models.CIFAR10_STD

    network = models.new_network(
        TrainConfig(init="reference", seed=3), Data, mean=Data.mean, std=Data.std
    )
    config = network.get_layer("fc1").get_config()
    assert config["kernel_initializer"]["class_name"] == "RandomUniform"
    assert math.isclose(config["kernel_initializer"]["config"]["maxval"], 1 / math.sqrt(2048))
    keras.backend.clear_session()


def test_paper_protocols_default_to_the_reference_init():
    for name, module in protocols.PROTOCOLS.items():
        settings = module.default_settings()
        expected = "reference" if name.startswith("table") else "keras"
        assert settings.init == expected, f"{name} must set init={expected!r}"
        config = teacher_student._train_config(settings, settings.teacher, "", 0)
        assert config.init == expected, name


def test_data_free_students_take_the_protocols_init(tmp_path):
    """DAFL's and DeepInversion's students start as the protocol's other students do: a paper
    protocol's data-free attack builds a reference-initialised student, weight for weight the
    network `get_model(init="reference")` gives with the same seed."""
    from nasty_tf.datafree import DataFreeConfig
    from nasty_tf.protocols import datafree_attacks, table5_cifar100

    teacher = tmp_path / "teacher.keras"
    models.get_model("cnn", 10).save(teacher)
    settings = table5_cifar100.default_settings()
    config = datafree_attacks.attack_config(settings, "dafl", str(teacher), "cnn")
    assert config.init == "reference" == settings.init
    assert config.identity()["init"] == "reference"
    # Keras' init stays out of the identity, so data-free runs made before the option match.
    assert "init" not in DataFreeConfig("dafl", str(teacher)).identity()

    class Data:
        num_classes, input_shape = 10, (32, 32, 3)

    class Space:
        mean, std = models.CIFAR10_MEAN, models.CIFAR10_STD

    student = models.new_network(config.replace(seed=4), Data, mean=Space.mean, std=Space.std)
    keras.utils.set_random_seed(4)
    expected = models.get_model(
        "cnn", 10, (32, 32, 3), mean=Space.mean, std=Space.std, init="reference"
    )
    for got, want in zip(student.get_weights(), expected.get_weights(), strict=True):
        np.testing.assert_array_equal(got, want)
    with pytest.raises(InputError, match="init must be one of .* Received: init='pytorch'"):
        DataFreeConfig("dafl", str(teacher), init="pytorch")
    keras.backend.clear_session()


def _initializer_configs(value, key=""):
    """Every serialized initialiser in a saved model's config, as (key, config) pairs."""
    if isinstance(value, dict):
        if key.endswith("_initializer") and "class_name" in value:
            yield key, value
        for child_key, child in value.items():
            yield from _initializer_configs(child, child_key)
    elif isinstance(value, list):
        for child in value:
            yield from _initializer_configs(child, key)


def test_reference_init_is_saved_as_built_in_keras_initializers(tmp_path):
    """A layer's config holds its initialisers, so a released `model.keras` must name Keras' own
    classes only. PreResNet-20 holds both kinds (normal convolutions, a uniform classifier).
    Loading with Keras alone, in a process that cannot import nasty_tf, is tested for the
    whole zoo at init="reference" in tests/test_plain_keras_release.py."""
    arch = "preresnet20"
    keras.utils.set_random_seed(1)
    network = models.get_model(arch, 10, init="reference")
    path = tmp_path / f"{arch}.keras"
    atomic_save_model(network, str(path))
    with zipfile.ZipFile(path) as archive:
        saved = json.loads(archive.read("config.json"))
    initializers = list(_initializer_configs(saved))
    assert initializers
    for key, config in initializers:
        assert config["module"] == "keras.initializers", (key, config)
        assert config["registered_name"] is None, (key, config)
    classes = {config["class_name"] for _, config in initializers}
    # BatchNorm's own Ones and Zeros beside the reference's two.
    assert (
        {"RandomUniform", "RandomNormal"}
        <= classes
        <= {
            "RandomUniform",
            "RandomNormal",
            "Ones",
            "Zeros",
        }
    ), classes
    loaded = keras.saving.load_model(str(path), safe_mode=True)
    for a, b in zip(network.get_weights(), loaded.get_weights()):
        np.testing.assert_array_equal(a, b)
    keras.backend.clear_session()
