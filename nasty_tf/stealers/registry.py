"""The stealer registry: every attack of the audit and the protocols by name (issue 20).

Like the model zoo's `get_model`, `get_stealer(name, **params)` checks the name and the
parameters at once, before anything trains, and returns a `Stealer`: the name, the full
parameters (defaults filled in) and how to build its training wrapper around a student.

Two kinds of stealer: `served` ones learn from what a release serves (`build` wraps a student
around the release, `steal` trains it), and the `datafree` ones (`dafl`, `deepinversion`,
`nasty_tf.stealers.data_free`) need the released network itself and run as a
`nasty_tf.datafree.run_datafree` job (`Stealer.datafree_config`).
"""

from nasty_tf.errors import InputError
from nasty_tf.stealers import (
    data_free,
    hard_label,
    high_temperature,
    kd,
    label_smoothing,
    skeptical,
    standardized,
    topk,
)

SERVED = "served"
DATAFREE = data_free.KIND
KINDS = (SERVED, DATAFREE)

# name -> (wrapper class, whether it reads the release, kind)
_REGISTRY = {
    hard_label.NAME: (hard_label.HardLabelStealer, True, SERVED),
    high_temperature.NAME: (high_temperature.HighTemperatureStealer, True, SERVED),
    kd.NAME: (kd.KDStealer, True, SERVED),
    label_smoothing.NAME: (label_smoothing.LabelSmoothingStudent, False, SERVED),
    skeptical.NAME: (skeptical.SkepticalStudent, True, SERVED),
    standardized.NAME: (standardized.StandardizedStealer, True, SERVED),
    topk.NAME: (topk.TopKStealer, True, SERVED),
    **{name: (attack, True, DATAFREE) for name, attack in data_free.ATTACKS.items()},
}


class Stealer:
    """A named stealer and its parameters; `build` wraps a student for training.

    Attributes:
        name: the registry name.
        params: every parameter, defaults filled in (a copy; what a run cache should key on).
        needs_teacher: False only for `label_smoothing`, which never reads a release.
        kind: "served" (learns from what a release serves: `build`, `steal`) or "datafree"
            (needs the released network itself: `datafree_config`, `run_datafree`).
        wrapper_class: the training wrapper's class; for a data-free stealer, its
            `nasty_tf.stealers.data_free.DataFreeAttack` class.
    """

    def __init__(self, name, wrapper_class, params, needs_teacher, kind=SERVED):
        self.name = name
        self.wrapper_class = wrapper_class
        self.params = dict(params)
        self.needs_teacher = needs_teacher
        self.kind = kind

    def build(self, student, served=None, augmenter=None):
        """The Keras training wrapper (`compute_loss` holds the objective) around `student`.

        Args:
            student: the network to train; the wrapper's `student` is this same object.
            served: what the release serves (a Keras layer or model returning `logits`
                and/or `probabilities`, e.g. from `nasty_tf.releases`); ignored, never
                called, when `needs_teacher` is False.
            augmenter: optional Keras layer applied once per step before both.

        Raises:
            InputError: `served` is missing for a stealer that needs it, or unusable; or the
                stealer is data-free (it attacks the network, not a release).
        """
        if self.kind == DATAFREE:
            raise InputError(
                f"The {self.name} stealer needs the released network itself, not what a release "
                "serves: run it with nasty_tf.datafree.run_datafree(stealer.datafree_config(...)). "
                f"Received: stealer={self.name!r}"
            )
        if not self.needs_teacher:
            return self.wrapper_class(student, augmenter=augmenter, **self.params)
        if served is None:
            raise InputError(
                f"The {self.name} stealer learns from a release: served is required. Received: served=None"
            )
        return self.wrapper_class(student, served, augmenter=augmenter, **self.params)

    def datafree_config(self, teacher, **settings):
        """A data-free stealer's `nasty_tf.datafree.DataFreeConfig` for one run.

        Args:
            teacher: the released network's `.keras` file.
            **settings: the run's other `DataFreeConfig` fields (`arch`, `dataset`,
                `data_dir`, `seed`, `output_dir`, `verbose`, ...), not the stealer's
                parameters.

        Raises:
            InputError: the stealer is not data-free, or a setting is bad.
        """
        if self.kind != DATAFREE:
            raise InputError(
                f"datafree_config is for the data-free stealers "
                f"({', '.join(available_stealers(DATAFREE))}). Received: stealer={self.name!r}"
            )
        clash = sorted(set(settings) & set(self.params))
        if clash:
            raise InputError(
                f"settings must not repeat the {self.name} stealer's parameters "
                f"(get_stealer sets them). Received: {', '.join(clash)}"
            )
        return self.wrapper_class.datafree_config(self.params, teacher, **settings)

    def config(self):
        """`{"name": ..., **params}`, JSON-ready."""
        return {
            "name": self.name,
            **{k: list(v) if isinstance(v, tuple) else v for k, v in self.params.items()},
        }

    def __repr__(self):
        params = ", ".join(f"{key}={value!r}" for key, value in self.params.items())
        return f"Stealer({self.name!r}{', ' if params else ''}{params})"


def available_stealers(kind=None):
    """The registered stealer names, sorted (`label_smoothing`, the teacher-free baseline, included).

    Args:
        kind: None for every stealer, or "served" or "datafree" for that kind only.
    """
    if kind is not None and kind not in KINDS:
        raise InputError(f"kind must be one of {', '.join(KINDS)} or None. Received: kind={kind!r}")
    return sorted(name for name, entry in _REGISTRY.items() if kind in (None, entry[2]))


def get_stealer(name, **params):
    """The stealer `name` with `params` checked and defaults filled in.

    Args:
        name: one of `available_stealers()`.
        **params: that stealer's parameters: `alpha`, `temperature` (kd, high_temperature,
            standardized, topk, skeptical), `k` (topk), `loc`, `kd_delay`, `tap_layers`
            (skeptical), `label_smoothing` (label_smoothing). hard_label takes none. The
            data-free `dafl` and `deepinversion` take the `DataFreeConfig` fields of their
            method (`epochs`, `batch_size`, `latent_dim`, `num_images`, `inversion_steps`, ...;
            defaults at the digits scale, `nasty_tf.stealers.data_free`), checked by
            `DataFreeConfig`'s own validation.

    Returns:
        A `Stealer`.

    Raises:
        InputError: an unknown name, an unknown parameter or a value out of range.

    Example:

    ```python
    stealer = get_stealer("topk", k=3)
    wrapper = stealer.build(student, releases.plain(teacher))
    ```
    """
    entry = _REGISTRY.get(name) if isinstance(name, str) else None
    if entry is None:
        raise InputError(f"Unknown stealer {name!r}. Available: {', '.join(available_stealers())}")
    wrapper_class, needs_teacher, kind = entry
    return Stealer(name, wrapper_class, wrapper_class.check_params(**params), needs_teacher, kind)
