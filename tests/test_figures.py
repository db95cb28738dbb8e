"""Figures 1 and 2 are written as readable PNGs from the teachers' real outputs."""

import numpy as np
import pytest
from PIL import Image

from nasty_tf import figures, models
from nasty_tf.data import load_dataset


@pytest.fixture(scope="module")
def teachers_and_data():
    data = load_dataset("digits", train_fraction=0.1)
    normal = models.get_model("cnn", 10, data.input_shape, mean=data.mean, std=data.std)
    nasty = models.get_model("cnn", 10, data.input_shape, mean=data.mean, std=data.std)
    return normal, nasty, data


def test_teacher_figures_are_written(teachers_and_data, tmp_path):
    normal, nasty, data = teachers_and_data
    written = figures.teacher_figures(normal, nasty, data, 4.0, str(tmp_path), max_points=80)
    assert set(written.values()) == {"logit_responses.png", "tsne_features.png", "tsne_logits.png"}
    for name in written.values():
        with Image.open(tmp_path / name) as image:
            assert image.format == "PNG" and image.width > 600 and image.height > 300
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".tmp-")]


def test_one_image_per_class_and_tempered_softmax():
    labels = np.array([3, 1, 1, 0, 2, 3])
    assert figures.one_image_per_class(labels, count=3) == [3, 1, 4]
    probabilities = figures.tempered_softmax(np.array([[4.0, 0.0], [0.0, 0.0]]), 4.0)
    np.testing.assert_allclose(probabilities.sum(-1), 1.0)
    np.testing.assert_allclose(probabilities[0, 0], np.exp(1) / (np.exp(1) + 1))


def test_features_come_from_the_features_layer(teachers_and_data):
    normal, _, data = teachers_and_data
    features, logits = figures.feature_and_logit_outputs(normal, data.x_test[:5])
    assert features.shape == (5, normal.get_layer("features").output.shape[-1])
    np.testing.assert_allclose(
        logits, normal.predict(data.x_test[:5], verbose=0), rtol=1e-5, atol=1e-5
    )
