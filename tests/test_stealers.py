"""Stealers (issue 20, item 1): each trains a student from what a release serves, and differs
from `kd` where it must. Objectives are checked on fixed logits against numpy; training on a
tiny digits slice, against a stingy release (its `-inf` logits are the hard case)."""

import keras
import numpy as np
import pytest

from nasty_tf import models, releases, stealers
from nasty_tf.audit.twins import training_identity
from nasty_tf.data import load_dataset, make_augmenter
from nasty_tf.errors import InputError
from nasty_tf.losses import KnowledgeDistillationLoss
from nasty_tf.stealers import skeptical
from nasty_tf.stealers.served import standardize_logits

pytestmark = [
    pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning"),
    pytest.mark.graph,  # each stealer's loss, traced as real runs trace it (tests/conftest.py)
]

RNG = np.random.default_rng(0)
LABELS = np.array([0, 3, 1, 2])
STUDENT = RNG.normal(0, 2, (4, 5)).astype("float32")
SERVED = RNG.normal(0, 3, (4, 5)).astype("float32")


def _value(loss, *y_pred, labels=LABELS):
    return float(keras.ops.convert_to_numpy(loss(labels, y_pred)))


def _log_softmax(z):
    z = z - z.max(-1, keepdims=True)
    return z - np.log(np.exp(z).sum(-1, keepdims=True))


def _ce(labels, z):
    return -_log_softmax(z)[np.arange(len(labels)), labels]


def _kl(target, predicted, tau):
    """KL(softmax(target / tau) || softmax(predicted / tau)) per row; -inf targets weigh 0."""
    log_p, log_q = _log_softmax(target / tau), _log_softmax(predicted / tau)
    p = np.exp(log_p)
    return np.where(p > 0, p * (np.where(p > 0, log_p, 0) - log_q), 0).sum(-1)


@pytest.fixture(scope="module")
def digits():
    data = load_dataset("digits", train_fraction=0.2)
    return data.x_train[:128], data.y_train[:128], data


def _cnn(digits, seed):
    keras.utils.set_random_seed(seed)
    return models.get_model("cnn", 10, mean=digits[2].mean, std=digits[2].std)


@pytest.fixture(scope="module")
def stingy_release(digits):
    return releases.stingy(_cnn(digits, 0))  # 2 of 10 classes served, the rest -inf


class _Exploding(keras.layers.Layer):
    """A release that must never be asked: fails when called, even symbolically."""

    def call(self, images):
        raise AssertionError("the label_smoothing baseline called the teacher")


def test_the_registry_names_every_stealer_and_checks_parameters_first():
    assert stealers.available_stealers() == sorted(
        [
            "dafl",
            "deepinversion",
            "hard_label",
            "high_temperature",
            "kd",
            "label_smoothing",
            "skeptical",
            "standardized",
            "topk",
        ]
    )
    assert stealers.get_stealer("high_temperature").params == {"alpha": 0.9, "temperature": 20.0}
    assert stealers.get_stealer("topk", k=3).config() == {
        "name": "topk",
        "alpha": 0.9,
        "temperature": 4.0,
        "k": 3,
    }
    assert not stealers.get_stealer("label_smoothing").needs_teacher
    for name, params, message in (
        ("nope", {}, "Unknown stealer 'nope'"),
        ("kd", {"alpha": 1.5}, r"alpha must be in \[0, 1\]. Received: alpha=1.5"),
        ("kd", {"k": 2}, "Unknown parameter"),
        ("high_temperature", {"temperature": 4.0}, r"temperature must be in \[20, 100\]"),
        ("high_temperature", {"temperature": 101}, r"Received: temperature=101"),
        ("topk", {"k": 0}, "k must be an integer >= 1. Received: k=0"),
        ("skeptical", {"kd_delay": -2}, "kd_delay must be an integer >= -1"),
        ("skeptical", {"loc": -1}, "loc must be an integer >= 0"),
        ("label_smoothing", {"label_smoothing": 1.0}, r"label_smoothing must be in \[0, 1\)"),
        ("dafl", {"num_images": 10}, "Unknown parameter.*num_images for DAFLStealer"),
        ("dafl", {"latent_dim": 0}, "latent_dim must be >= 1. Received: latent_dim=0"),
        ("deepinversion", {"epochs": "3"}, "epochs must be an integer. Received: epochs='3'"),
        ("deepinversion", {"alpha": 2.0}, r"alpha must be in \[0, 1\]. Received: alpha=2.0"),
        ("deepinversion", {"flip": 1}, "flip must be True or False. Received: flip=1"),
    ):
        with pytest.raises(InputError, match=message):
            stealers.get_stealer(name, **params)


def test_kd_is_eq1_on_finite_logits_and_finite_on_withheld_classes():
    kd = stealers.get_stealer("kd").wrapper_class.make_objective(alpha=0.7, temperature=3.0)
    reference = KnowledgeDistillationLoss(alpha=0.7, temperature=3.0)
    assert _value(kd, STUDENT, SERVED) == pytest.approx(
        _value(reference, STUDENT, SERVED), rel=1e-5
    )
    stingy = SERVED.copy()
    stingy[:, 2:] = -np.inf  # a stingy release: two classes served
    expected = np.mean(0.7 * 9.0 * _kl(stingy, STUDENT, 3.0) + 0.3 * _ce(LABELS, STUDENT))
    assert np.isfinite(expected)
    assert _value(kd, STUDENT, stingy) == pytest.approx(expected, rel=1e-5)
    assert np.isnan(_value(reference, STUDENT, stingy))  # what the masking is for


def test_topk_targets_are_zero_beyond_k_and_renormalised():
    loss = stealers.TopKDistillationLoss(k=2, temperature=4.0)
    targets = keras.ops.convert_to_numpy(keras.ops.softmax(loss.teacher_logits(SERVED) / 4.0))
    assert ((targets > 0).sum(-1) == 2).all()
    p = np.exp(_log_softmax(SERVED / 4.0))
    top = np.argsort(-SERVED, -1)[:, :2]
    kept = np.zeros_like(p)
    np.put_along_axis(kept, top, np.take_along_axis(p, top, -1), -1)
    np.testing.assert_allclose(targets, kept / kept.sum(-1, keepdims=True), rtol=1e-5)
    kd = stealers.ServedDistillationLoss(temperature=4.0)
    assert _value(loss, STUDENT, SERVED) != pytest.approx(_value(kd, STUDENT, SERVED), rel=1e-3)


def test_hard_label_targets_are_the_one_hot_teacher_argmax():
    loss = stealers.HardLabelLoss()
    targets = keras.ops.convert_to_numpy(loss.targets(SERVED))
    np.testing.assert_array_equal(targets, np.eye(5)[SERVED.argmax(-1)])
    expected = np.mean(_ce(SERVED.argmax(-1), STUDENT))
    assert _value(loss, STUDENT, SERVED) == pytest.approx(expected, rel=1e-5)
    # The true labels play no part.
    assert _value(loss, STUDENT, SERVED, labels=LABELS[::-1]) == pytest.approx(expected, rel=1e-5)


def test_standardized_is_invariant_to_a_per_sample_affine_change_of_the_teacher():
    scale = np.array([[0.5], [3.0], [10.0], [1.0]], "float32")
    shift = np.array([[-4.0], [2.0], [30.0], [0.0]], "float32")
    changed = SERVED * scale + shift
    loss = stealers.StandardizedDistillationLoss()
    assert _value(loss, STUDENT, changed) == pytest.approx(_value(loss, STUDENT, SERVED), rel=1e-5)
    kd = stealers.ServedDistillationLoss(temperature=2.0)
    assert _value(kd, STUDENT, changed) != pytest.approx(_value(kd, STUDENT, SERVED), rel=1e-2)
    # As Sun et al.'s normalize: unbiased std; withheld classes stay withheld.
    z = keras.ops.convert_to_numpy(standardize_logits(SERVED))
    expected = (SERVED - SERVED.mean(-1, keepdims=True)) / (
        SERVED.std(-1, ddof=1, keepdims=True) + 1e-7
    )
    np.testing.assert_allclose(z, expected, rtol=1e-5, atol=1e-5)
    stingy = SERVED.copy()
    stingy[:, 3:] = -np.inf
    z = keras.ops.convert_to_numpy(standardize_logits(stingy))
    assert np.isfinite(z[:, :3]).all() and (z[:, 3:] == -np.inf).all()


def test_the_skeptical_loss_equals_the_authors_formula_by_hand():
    heads = [RNG.normal(0, 2, (4, 5)).astype("float32") for _ in range(3)]
    alpha, tau = 0.8, 3.0
    loss = stealers.SkepticalLoss(alpha=alpha, temperature=tau, loc=2)
    ce0 = _ce(LABELS, heads[0])
    by_hand = np.mean(
        alpha * tau**2 * _kl(SERVED, heads[2], tau)
        + (1 - alpha) * _ce(LABELS, heads[2])
        + 0.3 * _kl(heads[0], heads[1], tau)
        + 0.7 * _ce(LABELS, heads[1])
        + ce0
    )
    assert _value(loss, tuple(heads), SERVED, 1.0) == pytest.approx(by_hand, rel=1e-5)
    assert _value(loss, tuple(heads), SERVED, 0.0) == pytest.approx(
        np.mean(ce0), rel=1e-5
    )  # kd_delay


def test_a_release_serving_only_probabilities_teaches_the_same(stingy_release, digits):
    images = digits[0][:8].astype("float32")
    both = stealers.served_logits_model(stingy_release, (32, 32, 3))
    probabilities_only = keras.Model(stingy_release.input, stingy_release.output["probabilities"])
    only = stealers.served_logits_model(
        keras.Model(probabilities_only.input, {"probabilities": probabilities_only.output}),
        (32, 32, 3),
    )
    served, logged = (
        keras.ops.convert_to_numpy(both(images)),
        keras.ops.convert_to_numpy(only(images)),
    )
    np.testing.assert_array_equal(np.isfinite(served), np.isfinite(logged))
    loss = stealers.ServedDistillationLoss()
    student = RNG.normal(0, 2, (8, 10)).astype("float32")
    labels = digits[1][:8]
    assert _value(loss, student, logged, labels=labels) == pytest.approx(
        _value(loss, student, served, labels=labels), rel=1e-4
    )


# Layer names and variable sets only: the same on every backend (and JAX builds ResNet-18 slowly).
@pytest.mark.single_pass
@pytest.mark.parametrize(
    "arch, taps",
    [
        ("cnn", ["relu3", "relu2", "relu1"]),
        ("preresnet20", ["stage2_block2_add", "stage1_block2_add"]),
        ("resnet18", ["stage3_block1_out", "stage2_block1_out", "stage1_block1_out"]),
    ],
)
def test_skeptical_heads_attach_by_layer_name_and_the_student_stays_plain(
    arch, taps, stingy_release
):
    student = models.get_model(arch, 10)
    assert skeptical.stage_outputs(student) == taps
    wrapper = stealers.get_stealer("skeptical", loc=len(taps)).build(student, stingy_release)
    assert wrapper.student is student and wrapper.tap_layers == taps
    assert len(wrapper.heads.outputs) == len(taps) + 1
    assert [tuple(h.shape) for h in wrapper.heads.outputs] == [(None, 10)] * (len(taps) + 1)
    assert not any(layer.name.startswith("skeptical_head") for layer in student.layers)
    trained = {id(v) for v in wrapper.trainable_variables}
    assert len(trained) == len(wrapper.trainable_variables)  # shared layers counted once
    assert {id(v) for v in student.trainable_variables} < trained
    assert not {id(v) for v in stingy_release.weights} & trained  # the release stays frozen
    # Only the heads the loss reads: z1 and z_loc.
    assert (
        stealers.get_stealer("skeptical", loc=1).build(student, stingy_release).tap_layers
        == taps[:1]
    )
    with pytest.raises(InputError, match=rf"loc must be in \[0, {len(taps)}\]"):
        stealers.get_stealer("skeptical", loc=len(taps) + 1).build(student, stingy_release)


def test_skeptical_switches_kd_on_after_kd_delay(digits, stingy_release):
    wrapper = stealers.get_stealer("skeptical", kd_delay=1).build(_cnn(digits, 1), stingy_release)
    schedule = skeptical.KDDelaySchedule(wrapper)
    active = []
    for epoch in range(4):
        schedule.on_epoch_begin(epoch)
        active.append(float(keras.ops.convert_to_numpy(wrapper.kd_active)))
    assert active == [0.0, 0.0, 1.0, 1.0]  # `epoch > kd_delay`, as train_kd_to_SD.py


def test_stealer_wrappers_round_trip_their_config(digits, stingy_release):
    for name in ("topk", "skeptical"):
        wrapper = stealers.get_stealer(name).build(_cnn(digits, 1), stingy_release)
        revived = wrapper.__class__.from_config(wrapper.get_config())
        assert revived.get_config()["served"] == wrapper.get_config()["served"]
        for key in stealers.get_stealer(name).params:
            assert revived.get_config()[key] == wrapper.get_config()[key]


def test_the_data_free_stealers_make_datafree_configs_and_never_wrap_a_student(digits):
    assert stealers.available_stealers("datafree") == ["dafl", "deepinversion"]
    assert "dafl" not in stealers.available_stealers("served")
    dafl = stealers.get_stealer("dafl")
    assert dafl.kind == "datafree" and dafl.needs_teacher
    # The digits demo's scale (nasty_tf/protocols/digits_demo.py `datafree_options`).
    assert dafl.params == {
        "epochs": 8,
        "batch_size": 64,
        "student_learning_rate": 0.1,
        "student_weight_decay": 5e-4,
        "temperature": 1.0,
        "latent_dim": 100,
        "steps_per_epoch": 20,
        "generator_learning_rate": 0.02,
        "one_hot_weight": None,
        "activation_weight": None,
        "entropy_weight": None,
    }
    inversion = stealers.get_stealer("deepinversion", num_images=20)
    config = inversion.datafree_config(
        "release.keras", arch="cnn", dataset="digits", seed=3, output_dir="out"
    )
    assert (config.method, config.teacher, config.seed, config.output_dir) == (
        "deepinversion",
        "release.keras",
        3,
        "out",
    )
    assert (config.num_images, config.inversion_steps, config.epochs) == (20, 200, 30)
    assert dafl.datafree_config("t.keras", dataset="cifar100").entropy_weight == 20.0
    with pytest.raises(InputError, match="must not repeat the deepinversion stealer's parameters"):
        inversion.datafree_config("release.keras", epochs=2)
    with pytest.raises(InputError, match="datafree_config is for the data-free stealers"):
        stealers.get_stealer("kd").datafree_config("release.keras")
    with pytest.raises(InputError, match="needs the released network itself.*stealer='dafl'"):
        stealers.steal(dafl, _cnn(digits, 1), None, *digits[:2], epochs=1)


@pytest.mark.parametrize("name", stealers.available_stealers("served"))
def test_every_stealer_trains_its_student_from_a_stingy_release(name, digits, stingy_release):
    x, y, _ = digits
    student = _cnn(digits, 1)
    before = [w.copy() for w in student.get_weights()]
    params = {"kd_delay": 0} if name == "skeptical" else {}  # epoch 0 labels only, epoch 1 KD
    served = _Exploding() if name == "label_smoothing" else stingy_release
    history = keras.callbacks.History()
    trained = stealers.steal(
        stealers.get_stealer(name, **params),
        student,
        served,
        x,
        y,
        epochs=2,
        batch_size=64,
        callbacks=[history],
    )
    assert trained is student
    losses = history.history["loss"]
    assert len(losses) == 2 and np.isfinite(losses).all()
    after = student.get_weights()
    assert all(np.isfinite(w).all() for w in after)
    assert any(not np.array_equal(a, b) for a, b in zip(before, after))
    assert {"ce", "accuracy"} <= set(history.history)
    if name != "label_smoothing":
        assert np.isfinite(history.history["kl"]).all()
    if name == "skeptical":  # labels only in epoch 0 (loss = CE of the final head), KD after
        assert losses[0] == pytest.approx(history.history["ce"][0], rel=1e-4)
        assert losses[1] > history.history["ce"][1] + 1.0


def test_twin_runs_train_the_same_student_to_the_bit(digits):
    """What `nasty_tf.audit.twins` lets one run stand in for: hard labels from the plain and the
    stingy release, topk on the plain release against kd on the stingy one, and a stingy
    release of every class against the plain one."""
    network = _cnn(digits, 0)
    plain, stingy = releases.plain(network), releases.stingy(network)
    every_class = releases.stingy(network, top_k_ratio=1.0)
    twins = [
        (("hard_label", {}, plain, "plain"), ("hard_label", {}, stingy, "stingy")),
        (("topk", {"k": 2}, plain, "plain"), ("kd", {}, stingy, "stingy")),
        (("kd", {}, every_class, "every_class"), ("topk", {"k": 10}, plain, "plain")),
    ]
    not_twins = [(("kd", {}, plain, "plain"), ("kd", {}, stingy, "stingy"))]
    release_keys = {
        "plain": {"kind": "keras", "sha256": "0" * 64, "release": "plain", "top_k_ratio": None},
        "stingy": {"kind": "keras", "sha256": "0" * 64, "release": "stingy", "top_k_ratio": None},
        "every_class": {
            "kind": "keras",
            "sha256": "0" * 64,
            "release": "stingy",
            "top_k_ratio": 1.0,
        },
    }
    for pair in [*twins, *not_twins]:
        weights, identities = [], []
        for name, params, served, release in pair:
            stealer = stealers.get_stealer(name, **params)
            key = {"name": name, "stealer": stealer.config(), "release": release_keys[release]}
            identities.append(training_identity(key, 10))
            # Augmented as the audits train (the release queried on each augmented batch).
            augmenter = make_augmenter(digits[2].augmentation, seed=1)
            student = stealers.steal(
                stealer, _cnn(digits, 1), served, *digits[:2], epochs=1, augmenter=augmenter
            )
            weights.append(student.get_weights())
        same = all(np.array_equal(a, b) for a, b in zip(*weights))
        assert same is (pair in twins) is (identities[0] == identities[1])
