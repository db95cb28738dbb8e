"""Figures like the paper's: logit responses (Fig. 1), t-SNE of features and logits (Fig. 2),
and student accuracy against a swept KD setting (Figs. 4 and 5).

matplotlib (Agg, no screen) and scikit-learn's t-SNE; every figure has axis labels and a
legend, and is written through a temporary file and a rename.
"""

import os

import keras
import numpy as np

from nasty_tf.atomic_io import atomic_write_bytes


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only: CI machines and GPU hosts have no screen
    import matplotlib.pyplot as plt

    return plt


def _save(figure, path):
    import io

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=120, bbox_inches="tight")
    _pyplot().close(figure)
    atomic_write_bytes(path, buffer.getvalue())


def tempered_softmax(logits, temperature):
    z = np.asarray(logits, dtype=np.float64) / temperature
    z = z - z.max(axis=-1, keepdims=True)
    return np.exp(z) / np.exp(z).sum(axis=-1, keepdims=True)


def one_image_per_class(labels, count=4):
    """Indices of the first test image of each of the first `count` classes."""
    return [int(np.flatnonzero(labels == label)[0]) for label in np.unique(labels)[:count]]


def plot_logit_responses(
    normal_logits, nasty_logits, labels, class_names, temperature, path, count=4
):
    """Fig. 1: softmax(logits / tau) of the normal and the nasty teacher on sample images.

    Args:
        normal_logits, nasty_logits: test-split logits of the two teachers, (N, classes).
        labels: test labels; one image is taken from each of the first `count` classes.
        class_names: names for the x axis.
        temperature: tau used for the softmax (the KD temperature a stealer would use).
        path: the PNG to write.
    """
    plt = _pyplot()
    indices = one_image_per_class(labels, count)
    figure, axes = plt.subplots(
        2, len(indices), figsize=(3.2 * len(indices), 5.8), sharey="row", layout="constrained"
    )
    axes = np.asarray(axes).reshape(2, len(indices))
    positions = np.arange(normal_logits.shape[-1])
    for column, index in enumerate(indices):
        for row, (name, logits, color) in enumerate(
            (
                ("normal teacher", normal_logits, "tab:blue"),
                ("nasty teacher", nasty_logits, "tab:red"),
            )
        ):
            axis = axes[row, column]
            axis.bar(
                positions, tempered_softmax(logits[index], temperature), color=color, label=name
            )
            axis.set_xticks(positions, [str(c)[:6] for c in class_names], rotation=90, fontsize=7)
            axis.set_title(f"true class: {class_names[labels[index]]}", fontsize=9)
            if column == 0:
                axis.set_ylabel(f"softmax(logits / {temperature:g})")
            axis.legend(loc="upper right", fontsize=7)
            if row == 1:
                axis.set_xlabel("class")
    figure.suptitle(f"Logit responses after temperature softmax (tau = {temperature:g})")
    _save(figure, path)


def tsne_embedding(vectors, seed=0):
    """2-D t-SNE (scikit-learn) of row vectors."""
    from sklearn.manifold import TSNE

    vectors = np.asarray(vectors, dtype=np.float32)
    perplexity = float(min(30, max(2, (len(vectors) - 1) // 3)))
    return TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(
        vectors
    )


def plot_tsne(normal_vectors, nasty_vectors, labels, class_names, what, path, seed=0):
    """Fig. 2: t-SNE of the normal and the nasty teacher's `what` ("features" or "logits")."""
    plt = _pyplot()
    figure, axes = plt.subplots(1, 2, figsize=(11, 5), layout="constrained")
    colors = plt.get_cmap("tab10" if len(class_names) <= 10 else "tab20")
    for axis, (name, vectors) in zip(
        axes, (("normal teacher", normal_vectors), ("nasty teacher", nasty_vectors))
    ):
        points = tsne_embedding(vectors, seed)
        for label in np.unique(labels):
            chosen = labels == label
            axis.scatter(
                *points[chosen].T,
                s=6,
                color=colors(int(label) % colors.N),
                label=str(class_names[label]),
            )
        axis.set_title(f"{name}: t-SNE of {what}")
        axis.set_xlabel("t-SNE 1")
        axis.set_ylabel("t-SNE 2")
    axes[1].legend(
        loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=7, markerscale=2, title="class"
    )
    _save(figure, path)


def feature_and_logit_outputs(network, images, batch_size=256):
    """(pre-logit features, logits) of a zoo network, through its `features` layer."""
    probe = keras.Model(network.inputs, [network.get_layer("features").output, network.outputs[0]])
    features, logits = probe.predict(images, batch_size=batch_size, verbose=0)
    return np.asarray(features, np.float32).reshape(len(images), -1), np.asarray(logits, np.float32)


def teacher_figures(normal, nasty, dataset, temperature, output_dir, max_points=1000, seed=0):
    """Writes `logit_responses.png`, `tsne_features.png` and `tsne_logits.png`; returns their names."""
    rng = np.random.default_rng(seed)
    count = min(max_points, len(dataset.x_test))
    chosen = np.sort(rng.choice(len(dataset.x_test), size=count, replace=False))
    images, labels = dataset.x_test[chosen], dataset.y_test[chosen]
    normal_features, normal_logits = feature_and_logit_outputs(normal, images)
    nasty_features, nasty_logits = feature_and_logit_outputs(nasty, images)
    names = list(dataset.class_names)
    written = {
        "logit_responses": "logit_responses.png",
        "tsne_features": "tsne_features.png",
        "tsne_logits": "tsne_logits.png",
    }
    plot_logit_responses(
        normal_logits,
        nasty_logits,
        labels,
        names,
        temperature,
        os.path.join(output_dir, written["logit_responses"]),
    )
    plot_tsne(
        normal_features,
        nasty_features,
        labels,
        names,
        "pre-logit features",
        os.path.join(output_dir, written["tsne_features"]),
        seed,
    )
    plot_tsne(
        normal_logits,
        nasty_logits,
        labels,
        names,
        "logits",
        os.path.join(output_dir, written["tsne_logits"]),
        seed,
    )
    return written


SWEEP_AXES = {
    "kd_temperature": "KD temperature tau_s",
    "alpha": "alpha (weight of the KD term)",
    "train_fraction": "fraction of the training data used by the student",
}
SWEEP_LINES = (
    ("normal", "KD from the normal teacher", "tab:blue", "o"),
    ("nasty", "KD from the nasty teacher", "tab:red", "s"),
    ("none", "student from scratch", "tab:gray", "^"),
)


def plot_sweep(dimension, entries, normal_teacher_accuracy, path, arch=None):
    """Figs. 4/5: student accuracy vs a swept value, one line per route, the teacher dashed.

    Args:
        dimension: the swept setting (`kd_temperature`, `alpha`, `train_fraction`).
        entries: `[{value, route, accuracy}]` (accuracy already averaged over seeds).
        normal_teacher_accuracy: drawn as a dashed horizontal reference line, as in the paper.
        path: the PNG to write.
        arch: the student architecture, for the title.

    Returns:
        The file name written (the base name of `path`).
    """
    plt = _pyplot()
    figure, axis = plt.subplots(figsize=(6, 4.2), layout="constrained")
    for route, label, color, marker in SWEEP_LINES:
        points = sorted((e["value"], e["accuracy"]) for e in entries if e["route"] == route)
        if points:
            xs, ys = zip(*points)
            axis.plot(
                xs,
                ys,
                marker=marker,
                color=color,
                label=label,
                linestyle=":" if route == "none" else "-",
            )
    axis.axhline(
        normal_teacher_accuracy, color="black", linestyle="--", linewidth=1, label="normal teacher"
    )
    axis.set_xlabel(SWEEP_AXES.get(dimension, dimension))
    axis.set_ylabel("student test accuracy (%)")
    axis.set_title(
        f"Student{f' {arch}' if arch else ''} accuracy vs {SWEEP_AXES.get(dimension, dimension)}",
        fontsize=10,
    )
    axis.grid(alpha=0.3)
    axis.legend(loc="best", fontsize=8)
    _save(figure, path)
    return os.path.basename(path)


def plot_omega_sweep(entries, normal_teacher_accuracy, scratch_accuracy, path, arch=None):
    """Fig. 3: nasty teacher ("T") and KD student ("S") accuracy against omega.

    As in the paper, dashed lines mark the normally trained models: the normal teacher and
    the student trained from scratch.

    Args:
        entries: `[{value, teacher: {accuracy}, student: {accuracy}}]` from
            `OwnerAblations.omega_sweep`.
        normal_teacher_accuracy: the normal teacher's accuracy (dashed, "T normal").
        scratch_accuracy: the student from scratch, mean over seeds (dashed, "S scratch").
        path: the PNG to write.
        arch: the student architecture, for the legend.

    Returns:
        The file name written.
    """
    plt = _pyplot()
    figure, axis = plt.subplots(figsize=(6, 4.2), layout="constrained")
    points = sorted(
        (e["value"], e["teacher"]["accuracy"], e["student"]["accuracy"]) for e in entries
    )
    omegas, teachers, students = zip(*points)
    student = f"S ({arch})" if arch else "S"
    axis.plot(omegas, teachers, marker="o", color="tab:blue", label="T: nasty teacher")
    axis.plot(
        omegas, students, marker="s", color="tab:red", label=f"{student}: KD from the nasty teacher"
    )
    axis.axhline(
        normal_teacher_accuracy,
        color="tab:blue",
        linestyle="--",
        linewidth=1,
        label="T: normal teacher",
    )
    axis.axhline(
        scratch_accuracy,
        color="tab:red",
        linestyle="--",
        linewidth=1,
        label=f"{student}: from scratch",
    )
    axis.set_xlabel("omega (weight of the adversarial KL, eq. 2)")
    axis.set_ylabel("test accuracy (%)")
    axis.set_title("Teacher and student accuracy vs omega", fontsize=10)
    axis.grid(alpha=0.3)
    axis.legend(loc="best", fontsize=8)
    _save(figure, path)
    return os.path.basename(path)
