"""The stealer registry: every attack of the audit and the protocols by name (issue 20).

Like the model zoo's `get_model`, `get_stealer(name, **params)` checks the name and the
parameters at once, before anything trains, and returns a `Stealer`: the name, the full
parameters (defaults filled in) and how to build its training wrapper around a student.
"""

from nasty_tf.errors import InputError
from nasty_tf.stealers import (
    hard_label,
    high_temperature,
    kd,
    label_smoothing,
    skeptical,
    standardized,
    topk,
)

# name -> (wrapper class, whether it reads the release)
_REGISTRY = {
    hard_label.NAME: (hard_label.HardLabelStealer, True),
    high_temperature.NAME: (high_temperature.HighTemperatureStealer, True),
    kd.NAME: (kd.KDStealer, True),
    label_smoothing.NAME: (label_smoothing.LabelSmoothingStudent, False),
    skeptical.NAME: (skeptical.SkepticalStudent, True),
    standardized.NAME: (standardized.StandardizedStealer, True),
    topk.NAME: (topk.TopKStealer, True),
}


class Stealer:
    """A named stealer and its parameters; `build` wraps a student for training.

    Attributes:
        name: the registry name.
        params: every parameter, defaults filled in (a copy; what a run cache should key on).
        needs_teacher: False only for `label_smoothing`, which never reads a release.
    """

    def __init__(self, name, wrapper_class, params, needs_teacher):
        self.name = name
        self.wrapper_class = wrapper_class
        self.params = dict(params)
        self.needs_teacher = needs_teacher

    def build(self, student, served=None, augmenter=None):
        """The Keras training wrapper (`compute_loss` holds the objective) around `student`.

        Args:
            student: the network to train; the wrapper's `student` is this same object.
            served: what the release serves (a Keras layer or model returning `logits`
                and/or `probabilities`, e.g. from `nasty_tf.releases`); ignored, never
                called, when `needs_teacher` is False.
            augmenter: optional Keras layer applied once per step before both.

        Raises:
            InputError: `served` is missing for a stealer that needs it, or unusable.
        """
        if not self.needs_teacher:
            return self.wrapper_class(student, augmenter=augmenter, **self.params)
        if served is None:
            raise InputError(
                f"The {self.name} stealer learns from a release: served is required. Received: served=None"
            )
        return self.wrapper_class(student, served, augmenter=augmenter, **self.params)

    def config(self):
        """`{"name": ..., **params}`, JSON-ready."""
        return {
            "name": self.name,
            **{k: list(v) if isinstance(v, tuple) else v for k, v in self.params.items()},
        }

    def __repr__(self):
        params = ", ".join(f"{key}={value!r}" for key, value in self.params.items())
        return f"Stealer({self.name!r}{', ' if params else ''}{params})"


def available_stealers():
    """The registered stealer names, sorted (`label_smoothing`, the teacher-free baseline, included)."""
    return sorted(_REGISTRY)


def get_stealer(name, **params):
    """The stealer `name` with `params` checked and defaults filled in.

    Args:
        name: one of `available_stealers()`.
        **params: that stealer's parameters: `alpha`, `temperature` (kd, high_temperature,
            standardized, topk, skeptical), `k` (topk), `loc`, `kd_delay`, `tap_layers`
            (skeptical), `label_smoothing` (label_smoothing). hard_label takes none.

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
    wrapper_class, needs_teacher = entry
    return Stealer(name, wrapper_class, wrapper_class.check_params(**params), needs_teacher)
