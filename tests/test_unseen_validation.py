"""A validation split of the training images a `train_fraction` subset leaves out
(`unseen_validation`, `AuditConfig.validation_split="unseen"`): what a teacher trained on the
subset never saw, so that its outputs there are no better than on new images."""

import dataclasses
import json
import os

import numpy as np
import pytest

from nasty_tf.audit import audit
from nasty_tf.data import load_dataset
from nasty_tf.data.validation import unseen_validation
from nasty_tf.errors import InputError
from tiny_audit import (  # noqa: F401 (fixtures: `tiny_digits` is autouse)
    TRAINS,
    networks,
    tiny_config,
    tiny_digits,
)


@pytest.fixture
def numbered_digits():
    """The digits data whose training images are their own indices (one pixel each), so that
    which training images a split took can be read off the images."""
    data = load_dataset("digits")
    return dataclasses.replace(data, x_train=np.arange(len(data.y_train)).reshape(-1, 1, 1, 1))


def test_the_subset_is_train_fractions_and_validation_comes_from_the_rest(numbered_digits):
    subset, (x_validation, y_validation) = unseen_validation(numbered_digits, 0.5, 0.2, seed=3)
    ids = numbered_digits.x_train.ravel()
    # The students' training split is exactly what load_dataset keeps for the teacher.
    expected = load_dataset("digits", train_fraction=0.5, seed=3)
    assert np.array_equal(subset.y_train, expected.y_train)
    kept = subset.x_train.ravel()
    assert np.array_equal(
        load_dataset("digits").x_train[kept], expected.x_train
    )  # the same images, in the same order
    held_out = x_validation.ravel()
    assert not set(held_out) & set(kept)
    assert np.array_equal(numbered_digits.y_train[held_out], y_validation)
    assert len(set(held_out)) == len(held_out)
    for label in range(10):
        kept_here = np.count_nonzero(subset.y_train == label)
        assert np.count_nonzero(y_validation == label) == round(0.2 * kept_here)
    # Seeded: the same call draws the same images.
    again = unseen_validation(numbered_digits, 0.5, 0.2, seed=3)[1][0].ravel()
    assert np.array_equal(again, held_out)
    assert set(ids) >= set(held_out)


def test_a_class_with_few_left_out_gives_what_it_has(numbered_digits):
    # 0.9 kept leaves about 10% of each class: fewer than 0.5 x kept, so each gives all of it.
    subset, (_, y_validation) = unseen_validation(numbered_digits, 0.9, 0.5)
    for label in range(10):
        total = np.count_nonzero(numbered_digits.y_train == label)
        kept = np.count_nonzero(subset.y_train == label)
        assert np.count_nonzero(y_validation == label) == total - kept


def test_the_whole_training_split_has_nothing_unseen(numbered_digits):
    with pytest.raises(InputError, match=r"train_fraction must be below 1 .*train_fraction=1.0"):
        unseen_validation(numbered_digits, 1.0)
    with pytest.raises(InputError, match=r"validation_fraction must be in \(0, 1\)"):
        unseen_validation(numbered_digits, 0.5, 0.0)


def test_the_audit_refuses_unseen_without_a_subset_and_unknown_splits(tmp_path):
    model = str(tmp_path / "release.keras")  # never read: a bad config is refused first
    for fields, message in (
        (
            {"validation_split": "unseen"},
            r"validation_split='unseen' needs `train_fraction` below 1",
        ),
        ({"validation_split": "test"}, r"validation_split must be one of carved, unseen"),
    ):
        with pytest.raises(InputError, match=message):
            audit(tiny_config(tmp_path / "bad", model=model, **fields))
    assert not os.path.exists(tmp_path / "bad")


@TRAINS
def test_an_unseen_split_audit_trains_on_the_whole_subset_and_keys_its_runs(
    networks, tmp_path, monkeypatch
):
    import nasty_tf.audit.runs as audit_runs

    trained_on = []
    steal = audit_runs.steal

    def recording_steal(*args, **kwargs):
        trained_on.append(len(args[4]))  # the training labels
        return steal(*args, **kwargs)

    monkeypatch.setattr(audit_runs, "steal", recording_steal)
    config = dataclasses.replace(
        tiny_config(
            tmp_path / "unseen",
            model=networks["teacher"],
            train_fraction=0.5,
            validation_split="unseen",
        ),
        stealers=("kd",),
    )
    scorecard = audit(config)
    # The tiny slice keeps 24 training images a class; half of them is the whole subset.
    assert trained_on and set(trained_on) == {120}
    result = json.load(open(tmp_path / "unseen" / "runs" / "kd_seed0" / "result.json"))
    assert result["config"]["validation_split"] == "unseen"
    assert result["validation_accuracy"] is not None
    assert (
        "drawn from the training images the subset leaves out"
        in open(tmp_path / "unseen" / "scorecard.md").read()
    )
    assert scorecard["config"]["validation_split"] == "unseen"
