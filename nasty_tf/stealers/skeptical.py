"""`skeptical`: the Skeptical Student (Kundu et al., "Analyzing the Confidentiality of
Undistillable Teachers in Knowledge Distillation", NeurIPS 2021; code ksouvik52/Skeptical2021).

The student gets auxiliary classifier heads after its intermediate stages. The teacher is
distilled into one head (`loc`), and the final head learns from the labels and, by
self-distillation, from the auxiliary head nearest to it, so the nasty teacher's misleading
soft targets reach the final head only through a shallow, skeptical sub-network. The loss
follows the authors' `loss_fn_kd` in `train_kd_to_SD.py` term for term, with heads indexed as
their `outputs` list (0 the final head, 1 the auxiliary head nearest to it, then shallower):

    epoch > kd_delay:  alpha * tau^2 * KL(p_T || p_loc) + (1 - alpha) * CE(z_loc, y)
                       + 0.3 * KL(softmax(z0 / tau) || softmax(z1 / tau)) + 0.7 * CE(z1, y)
                       + CE(z0, y)
    otherwise:         CE(z0, y)

with `epoch` counted from 0, as in their loop, so the first `kd_delay + 1` epochs train the
final head on labels only (`kd_delay=-1`: every epoch distils). As in their code the
self-distillation KL has no `tau^2` factor and no stop-gradient: both z0 and z1 learn from it.
`p_T` is what the release serves (`-inf`-safe), never the teacher network.

Deviation, on purpose: their heads (ResNet, "Be Your Own Teacher") are stacks of separable
convolutions with attention maps; here each head is global average pooling plus one float32
Dense layer, attached to the network's stage outputs by layer name, so every architecture of the
zoo gets heads without a copy of its builder. The released student is the plain network: the
heads are separate layers that `SkepticalStudent.student` does not hold.

Their code leaves `loc` and `kd_delay` to the user; the defaults here (`loc=1`, the auxiliary head
nearest to the final one, which every supported network has; `kd_delay=0`) are a starting
point. The audit chooses them on its validation split, never on the test split (DESIGN.md
section 6, "Selection"): `tools.audit --search_skeptical`, or `AuditConfig.stealer_search`
with the grid `nasty_tf.audit.skeptical_search(epochs)` (`loc` in {1, 2} x `kd_delay` as 0 or a
quarter of the schedule on labels first); see docs/attacks.md, "The skeptical stealer".
"""

import re

import keras
from keras import layers, ops

from nasty_tf.errors import InputError, check_count
from nasty_tf.losses import cross_entropy_per_sample
from nasty_tf.paired_model import PairedModel, regularisation_loss
from nasty_tf.stealers.served import kl_per_sample, served_logits_model, tempered_kl_per_sample
from nasty_tf.stealers.served_distiller import (
    MODEL_CONFIG_KEYS,
    check_alpha,
    check_temperature,
    is_served_logits_model,
    refuse_unknown_parameters,
)

NAME = "skeptical"
# The authors' fixed self-distillation weights (train_kd_to_SD.py).
SELF_DISTILLATION_KL_WEIGHT = 0.3
SELF_DISTILLATION_CE_WEIGHT = 0.7

# Zoo naming (nasty_tf.models): residual-style networks name their blocks
# `stage{s}_block{b}_...`; the plain CNN names its three conv stages' last layers `relu{i}`.
_STAGE_BLOCK = re.compile(r"^stage(\d+)_block(\d+)_")
_CNN_STAGE = re.compile(r"^relu(\d+)$")


def stage_outputs(network):
    """The layers whose outputs end the network's intermediate stages, nearest the head first.

    For `stage{s}_block{b}_*` networks (ResNet, PreResNet, ResNeXt, MobileNetV2, ShuffleNetV2
    of the zoo) it is the last layer of each stage's last block, every stage but the last
    (which feeds the final head), e.g. `stage3_block1_out`, `stage2_block1_out`,
    `stage1_block1_out` for ResNet-18 and `stage2_block2_add`, `stage1_block2_add` for
    PreResNet-20 (pre-activation: the block ends in its sum). For the plain CNN, whose three
    conv stages all feed its dense block, it is `relu3`, `relu2`, `relu1`.

    Raises:
        InputError: the network has neither naming; pass `tap_layers` to `SkepticalStudent`.
    """
    last = {}
    for layer in network.layers:  # topological order: a block's last layer comes last
        match = _STAGE_BLOCK.match(layer.name)
        if match:
            stage, block = int(match[1]), int(match[2])
            if stage not in last or block >= last[stage][0]:
                last[stage] = (block, layer.name)
    if last:
        names = [last[stage][1] for stage in sorted(last)[:-1]]
    else:
        stages = []
        for layer in network.layers:
            match = _CNN_STAGE.match(layer.name)
            if match:
                stages.append((int(match[1]), layer.name))
        names = [name for _, name in sorted(stages)]
    if not names:
        raise InputError(
            f"Cannot find the intermediate stages of {network.name!r} by layer name; "
            "pass tap_layers=[...] (layer names, nearest the final head first). "
            f"Received: network={network.name!r}"
        )
    return names[::-1]


def auxiliary_heads(network, tap_layers=None):
    """`network` with auxiliary classifier heads: images -> `[z0, z1, ..., zn]`.

    `z0` is the network's own logits; `zi` is a head (global average pooling, then a float32
    Dense layer named `skeptical_head{i}_logits`) on the output of `tap_layers[i - 1]`. The
    heads share every layer of `network`, which is left unchanged (the released student).

    Args:
        network: a Functional network of the zoo (or any with `tap_layers` given).
        tap_layers: layer names to attach heads to, nearest the final head first; default
            `stage_outputs(network)`.

    Raises:
        InputError: no stage is found, a named layer is missing, or its output is not a
            feature map or vector.
    """
    names = list(tap_layers) if tap_layers else stage_outputs(network)
    num_classes = network.output_shape[-1]
    outputs = [network.output]
    for index, name in enumerate(names, start=1):
        try:
            x = network.get_layer(name).output
        except ValueError:
            raise InputError(
                f"tap_layers names a layer that {network.name!r} does not have. Received: {name!r}"
            ) from None
        if len(x.shape) == 4:
            x = layers.GlobalAveragePooling2D(name=f"skeptical_head{index}_pool")(x)
        elif len(x.shape) != 2:
            raise InputError(
                f"A skeptical head needs a feature map or vector. Received: {name!r} with shape {x.shape}"
            )
        outputs.append(
            layers.Dense(num_classes, dtype="float32", name=f"skeptical_head{index}_logits")(x)
        )
    return keras.Model(network.input, outputs, name=f"{network.name}_skeptical_heads")


@keras.saving.register_keras_serializable(package="nasty_tf")
class SkepticalLoss(keras.losses.Loss):
    """The Skeptical Student objective (module docstring), per sample.

    Call with `y_true` = integer labels and `y_pred = (heads, served_logits, kd_active)`:
    `heads` the list `[z0, z1, ...]`, `kd_active` 1.0 once `epoch > kd_delay` else 0.0.

    Args:
        alpha: weight of the KD term at the `loc` head, in [0, 1] (default 0.9).
        temperature: `tau`, > 0 (default 4), for both KL terms.
        loc: the head the teacher is distilled into: 0 the final head, i >= 1 the i-th
            auxiliary head from the end (default 1).
    """

    def __init__(self, alpha=0.9, temperature=4.0, loc=1, name="skeptical", **kwargs):
        super().__init__(name=name, **kwargs)
        self.alpha = check_alpha(alpha)
        self.temperature = check_temperature(temperature)
        check_count("loc", loc, minimum=0)
        self.loc = loc

    def kd_term(self, labels, heads, served_logits):
        """`alpha * tau^2 * KL(p_T || p_loc) + (1 - alpha) * CE(z_loc, y)`, per sample."""
        z_loc = heads[self.loc]
        kl = tempered_kl_per_sample(served_logits, z_loc, self.temperature)
        return self.alpha * kl + (1.0 - self.alpha) * cross_entropy_per_sample(labels, z_loc)

    def self_distillation_term(self, labels, heads):
        """`0.3 * KL(softmax(z0 / tau) || softmax(z1 / tau)) + 0.7 * CE(z1, y)`, per sample."""
        kl = kl_per_sample(heads[0], heads[1], self.temperature)
        return (
            SELF_DISTILLATION_KL_WEIGHT * kl
            + SELF_DISTILLATION_CE_WEIGHT * cross_entropy_per_sample(labels, heads[1])
        )

    def call(self, y_true, y_pred):
        heads, served_logits, kd_active = y_pred
        if len(heads) < 2 or self.loc >= len(heads):
            raise InputError(
                f"loc must name a head in [0, {len(heads) - 1}] and an auxiliary head must exist. "
                f"Received: loc={self.loc}, heads={len(heads)}"
            )
        ce = cross_entropy_per_sample(y_true, heads[0])
        rest = self.kd_term(y_true, heads, served_logits) + self.self_distillation_term(
            y_true, heads
        )
        return ce + ops.cast(kd_active, "float32") * rest

    def get_config(self):
        return {
            **super().get_config(),
            "alpha": self.alpha,
            "temperature": self.temperature,
            "loc": self.loc,
        }


class KDDelaySchedule(keras.callbacks.Callback):
    """Turns the KD terms on at the start of every epoch after `kd_delay` (`epoch > kd_delay`)."""

    def __init__(self, wrapper):
        super().__init__()
        self.wrapper = wrapper

    def on_epoch_begin(self, epoch, logs=None):
        self.wrapper.kd_active.assign(1.0 if epoch > self.wrapper.kd_delay else 0.0)


@keras.saving.register_keras_serializable(package="nasty_tf")
class SkepticalStudent(PairedModel):
    """The `skeptical` stealer: trains `student` with auxiliary heads against served outputs.

    Heads are attached to the first `max(1, loc)` of `tap_layers`, the ones the loss reads.
    `fit` adds the callback that switches the KD terms on after `kd_delay` (from the absolute
    epoch index, so `initial_epoch` resumes right). Logs `ce` and `accuracy` of the final head
    and `kl`, the tempered teacher KL at the `loc` head.

    Args:
        student: a zoo network (CNN, PreResNet, ResNet, ...; `stage_outputs`).
        served: what the release serves (`nasty_tf.stealers.served.served_logits_model`).
        augmenter: optional Keras layer applied once per step before both.
        alpha: KD weight at the `loc` head, in [0, 1] (default 0.9).
        temperature: `tau`, > 0 (default 4).
        loc: head the teacher is distilled into, 0 (final) to the number of auxiliary heads
            (default 1, the auxiliary head nearest the final one).
        kd_delay: 0-based epoch after which the KD terms start, an integer >= -1 (default 0:
            one label-only epoch first; -1: none).
        tap_layers: layer names to attach heads to, nearest the final head first; default
            `stage_outputs(student)`.

    Example:
        >>> stealer = SkepticalStudent(student, releases.plain(teacher), loc=1, kd_delay=0)
        >>> stealer.compile(optimizer="adam")
        >>> stealer.fit(x_train, y_train, epochs=10)
        >>> stealer.student.save("student.keras")  # the plain network, no heads
    """

    def __init__(
        self,
        student,
        served,
        augmenter=None,
        alpha=0.9,
        temperature=4.0,
        loc=1,
        kd_delay=0,
        tap_layers=None,
        **kwargs,
    ):
        model_kwargs = {key: kwargs.pop(key) for key in MODEL_CONFIG_KEYS if key in kwargs}
        params = self.check_params(
            alpha=alpha,
            temperature=temperature,
            loc=loc,
            kd_delay=kd_delay,
            tap_layers=tap_layers,
            **kwargs,
        )
        taps = list(tap_layers) if tap_layers else stage_outputs(student)
        if params["loc"] > len(taps):
            raise InputError(
                f"loc must be in [0, {len(taps)}] for {student.name!r} ({len(taps)} intermediate "
                f"stages). Received: loc={params['loc']}"
            )
        # Only the heads the loss reads: z1 (self-distillation) and z_loc; a head beyond them
        # would get no gradient (the authors' extra heads idle the same way).
        taps = taps[: max(1, params["loc"])]
        heads = auxiliary_heads(student, taps)
        if not is_served_logits_model(served):
            served = served_logits_model(served, student.input_shape[1:])
        objective = SkepticalLoss(alpha=alpha, temperature=temperature, loc=loc)
        super().__init__(
            student, served, objective, augmenter=augmenter, frozen_role="teacher", **model_kwargs
        )
        self.heads = heads
        self.kd_delay = params["kd_delay"]
        self.tap_layers = taps
        # A variable, not a Python flag: the compiled train step reads it, a callback sets it.
        self.kd_active = keras.Variable(
            1.0 if self.kd_delay < 0 else 0.0, trainable=False, name="kd_active", dtype="float32"
        )

    @staticmethod
    def parameters():
        return {"alpha": 0.9, "temperature": 4.0, "loc": 1, "kd_delay": 0, "tap_layers": None}

    @classmethod
    def check_params(cls, **params):
        """Validates the stealer's parameters (those a network does not decide)."""
        refuse_unknown_parameters(cls.__name__, params, cls.parameters())
        params = {**cls.parameters(), **params}
        SkepticalLoss(alpha=params["alpha"], temperature=params["temperature"], loc=params["loc"])
        kd_delay = params["kd_delay"]
        check_count("kd_delay", kd_delay, minimum=-1)
        tap_layers = params["tap_layers"]
        if tap_layers is not None and (
            isinstance(tap_layers, str) or not all(isinstance(name, str) for name in tap_layers)
        ):
            raise InputError(
                f"tap_layers must be a list of layer names. Received: tap_layers={tap_layers!r}"
            )
        return params

    @property
    def student(self):
        return self.network

    @property
    def served(self):
        return self.frozen

    def call(self, images, training=False):
        images = ops.cast(images, "float32")
        if self.augmenter is not None:
            images = self.augmenter(images, training=training)
        heads = list(self.heads(images, training=training))
        served_logits = ops.stop_gradient(self.frozen(images, training=False))
        return {"logits": heads[0], "heads": heads, "frozen_logits": served_logits}

    def kl_term(self, logits, frozen_logits):
        return tempered_kl_per_sample(frozen_logits, logits, self.objective.temperature)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        heads, served_logits = y_pred["heads"], y_pred["frozen_logits"]
        loss = self.objective(
            y, (tuple(heads), served_logits, self.kd_active), sample_weight=sample_weight
        )
        # The heads model holds the student's layers and the heads': all that is trained.
        loss = loss + regularisation_loss(self.heads)
        self.cross_entropy_tracker.update_state(
            cross_entropy_per_sample(y, heads[0]), sample_weight=sample_weight
        )
        self.kl_tracker.update_state(
            self.kl_term(heads[self.objective.loc], served_logits), sample_weight=sample_weight
        )
        self.accuracy_tracker.update_state(y, heads[0], sample_weight=sample_weight)
        return loss

    def fit(self, *args, callbacks=None, **kwargs):
        callbacks = list(callbacks or []) + [KDDelaySchedule(self)]
        return super().fit(*args, callbacks=callbacks, **kwargs)

    def get_config(self):
        config = super().get_config()
        config["student"] = config.pop("network")
        return {
            **config,
            "served": keras.saving.serialize_keras_object(self.served),
            "alpha": self.objective.alpha,
            "temperature": self.objective.temperature,
            "loc": self.objective.loc,
            "kd_delay": self.kd_delay,
            "tap_layers": self.tap_layers,
        }

    @classmethod
    def from_config(cls, config):
        return cls(**cls._deserialize_models(config, "student", "served", "augmenter"))
