"""`nasty_tf.audit.twins`: which run keys train the same student."""

from nasty_tf.audit.twins import training_identity

NETWORK = {"kind": "keras", "sha256": "ab" * 32}
PLAIN = {**NETWORK, "release": "plain", "top_k_ratio": None}
STINGY = {**NETWORK, "release": "stingy", "top_k_ratio": 0.2}
DATA = {"dataset": "digits", "arch": "cnn", "epochs": 4, "seed": 0}
KD = {"name": "kd", "alpha": 0.9, "temperature": 4.0}


def _key(name, stealer, release):
    return {**DATA, "name": name, "stealer": stealer, "release": release}


def _same(a, b, num_classes=10):
    return training_identity(a, num_classes) == training_identity(b, num_classes)


def test_the_run_name_is_only_a_label():
    # The reference's KD student keys its network with no release: the plain one.
    assert _same(_key("reference_kd", KD, NETWORK), _key("kd", KD, PLAIN))
    assert not _same(_key("kd", KD, PLAIN), _key("kd", {**KD, "alpha": 0.5}, PLAIN))
    assert not _same(_key("kd", KD, PLAIN), {**_key("kd", KD, PLAIN), "seed": 1})
    other = {**PLAIN, "sha256": "cd" * 32}
    assert not _same(_key("kd", KD, PLAIN), _key("kd", KD, other))


def test_hard_labels_read_only_the_argmax_which_stingy_keeps():
    hard = {"name": "hard_label"}
    assert _same(_key("hard_label", hard, PLAIN), _key("hard_label", hard, STINGY))
    assert _same(
        _key("hard_label", hard, STINGY), _key("hard_label", hard, {**STINGY, "top_k_ratio": 0.5})
    )
    # Soft targets do differ between the releases.
    assert not _same(_key("kd", KD, PLAIN), _key("kd", KD, STINGY))


def test_topk_on_plain_is_kd_on_the_stingy_release_serving_k_classes():
    topk = {**KD, "name": "topk", "k": 2}
    assert _same(_key("topk", topk, PLAIN), _key("kd", KD, STINGY))  # 0.2 x 10 classes = 2
    assert not _same(_key("topk", {**topk, "k": 3}, PLAIN), _key("kd", KD, STINGY))
    assert not _same(_key("topk", topk, PLAIN), _key("kd", KD, STINGY), num_classes=100)
    # Truncating a stingy release further keeps the fewer classes; k beyond it changes nothing.
    assert _same(_key("topk", {**topk, "k": 5}, STINGY), _key("kd", KD, STINGY))
    # A stingy release of every class is the plain release.
    everything = {**STINGY, "top_k_ratio": 1.0}
    assert _same(_key("kd", KD, everything), _key("kd", KD, PLAIN))
    assert _same(_key("topk", {**topk, "k": 10}, PLAIN), _key("kd", KD, PLAIN))


def test_a_saved_model_release_and_the_baselines_stay_as_keyed():
    saved = {"kind": "saved_model", "sha256": "ef" * 32}
    hard = {"name": "hard_label"}
    assert training_identity(_key("hard_label", hard, saved), 10) == {
        **DATA,
        "stealer": hard,
        "release": saved,
    }
    smoothing = {"name": "label_smoothing", "label_smoothing": 0.1}
    assert training_identity(_key("label_smoothing", smoothing, None), 10) == {
        **DATA,
        "stealer": smoothing,
        "release": None,
    }
