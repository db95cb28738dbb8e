"""`dafl` and `deepinversion`: the data-free stealers of `nasty_tf.datafree`, by name.

Unlike every other stealer they do not learn from what a release serves: they need the
released *network* (white-box), DAFL to back-propagate a generator through it, DeepInversion
to optimise images through it against its BatchNorm statistics. So they take no `served`
release and no training images; `Stealer.build` refuses them, and `datafree_config` turns a
registry entry into the `DataFreeConfig` that `nasty_tf.datafree.run_datafree` runs (the
audit does so for a `.keras` release, and refuses them for a SavedModel, which serves only
its outputs).

Their registry defaults are the digits scale of the digits demo (`datafree_options` in
`nasty_tf/protocols/digits_demo.py`, about 3 minutes a run on 2 cores), not the authors'
full-length CIFAR settings, which are `DataFreeConfig`'s own defaults; pass those as
parameters for a longer attack, e.g. `get_stealer("dafl", epochs=2000, batch_size=1024,
latent_dim=1000, steps_per_epoch=120)`.
"""

import dataclasses

from nasty_tf.errors import InputError

KIND = "datafree"

# The DataFreeConfig fields each method reads; the run's teacher, student architecture,
# dataset, seed and output come from whoever runs it (`datafree_config`).
_STUDENT = ("epochs", "batch_size", "student_learning_rate", "student_weight_decay", "temperature")
_METHOD_FIELDS = {
    "dafl": (
        *_STUDENT,
        "latent_dim",
        "steps_per_epoch",
        "generator_learning_rate",
        "one_hot_weight",
        "activation_weight",
        "entropy_weight",
    ),
    "deepinversion": (
        *_STUDENT,
        "alpha",
        "num_images",
        "inversion_steps",
        "inversion_learning_rate",
        "bn_weight",
        "tv_weight",
        "l2_weight",
        "jitter",
        "flip",
    ),
}
# The digits demo's scale (its `datafree_options`): a few minutes a run on 2 cores.
_DIGITS_SCALE = {
    "dafl": {"latent_dim": 100, "batch_size": 64, "steps_per_epoch": 20, "epochs": 8},
    "deepinversion": {"batch_size": 50, "num_images": 200, "inversion_steps": 200, "epochs": 30},
}


def _field_types():
    from nasty_tf.datafree import DataFreeConfig

    return {field.name: field for field in dataclasses.fields(DataFreeConfig)}


def _check_type(name, value, field):
    """DataFreeConfig checks ranges only; a string or a bool where a number goes is refused here."""
    kind = str(field.type)
    if "bool" in kind:
        ok = isinstance(value, bool)
    elif value is None:
        ok = "None" in kind
    elif "int" in kind:
        ok = isinstance(value, int) and not isinstance(value, bool)
    else:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not ok:
        wanted = (
            "True or False" if "bool" in kind else ("an integer" if "int" in kind else "a number")
        )
        raise InputError(f"{name} must be {wanted}. Received: {name}={value!r}")


class DataFreeAttack:
    """A data-free stealer's parameters (the registry's entry for `dafl` and `deepinversion`).

    Not a training wrapper: `datafree_config` makes the `DataFreeConfig` of one run.
    """

    method = None

    @classmethod
    def parameters(cls):
        """The stealer's parameters and their (digits-scale) defaults."""
        fields = _field_types()
        defaults = {name: fields[name].default for name in _METHOD_FIELDS[cls.method]}
        return {**defaults, **_DIGITS_SCALE[cls.method]}

    @classmethod
    def check_params(cls, **params):
        """All parameters, defaults filled in; raises `InputError` for an unknown or bad one.

        Ranges are `DataFreeConfig`'s own checks (a config is made and dropped).
        """
        from nasty_tf.datafree import DataFreeConfig
        from nasty_tf.stealers.served_distiller import refuse_unknown_parameters

        accepted = cls.parameters()
        refuse_unknown_parameters(cls.__name__, params, accepted)
        fields = _field_types()
        for name, value in params.items():
            _check_type(name, value, fields[name])
        merged = {**accepted, **params}
        DataFreeConfig(method=cls.method, teacher="", **merged)
        return merged

    @classmethod
    def datafree_config(cls, params, teacher, **settings):
        """The `DataFreeConfig` of one run: `params` (checked) plus the run's `settings`
        (`arch`, `dataset`, `data_dir`, `seed`, `output_dir`, `verbose`, ...)."""
        from nasty_tf.datafree import DataFreeConfig

        return DataFreeConfig(method=cls.method, teacher=teacher, **params, **settings)


class DAFLStealer(DataFreeAttack):
    """`dafl`: DAFL (Chen et al., ICCV 2019) on the released network (`nasty_tf.datafree.DAFL`);
    TensorFlow backend only."""

    method = "dafl"


class DeepInversionStealer(DataFreeAttack):
    """`deepinversion`: DeepInversion (Yin et al., CVPR 2020) on the released network's
    BatchNorm statistics (`nasty_tf.datafree.DeepInversion`)."""

    method = "deepinversion"


ATTACKS = {cls.method: cls for cls in (DAFLStealer, DeepInversionStealer)}
