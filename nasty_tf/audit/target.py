"""What an audit attacks: the data and the release, as served, with the keys its runs cache on.

A `.keras` network is served through `nasty_tf.releases` (`plain` or `stingy`), the same code
`tools.export --release` writes; a SavedModel export (`serving_default` takes a uint8 image
batch and returns `logits` and `probabilities`) is served as it is, through
`keras.layers.TFSMLayer` (TensorFlow backend only).
"""

from __future__ import annotations

import dataclasses
import hashlib
import os

import keras
from keras import ops

from nasty_tf import releases
from nasty_tf.errors import InputError


@dataclasses.dataclass(frozen=True)
class AuditTarget:
    """The loaded data and release of one audit.

    Attributes:
        dataset: the dataset (its test split reports).
        train: the dataset less the validation split (what students train on).
        validation: `(images, labels)` held out from training; it only reports.
        served: what the release serves (a Keras model returning `logits` and
            `probabilities`).
        teacher: the release's cache key: `kind` ("keras" | "saved_model"), `sha256`, and for
            a `.keras` file its `release` and `top_k_ratio`.
        network_file: the released `.keras` file (what the data-free stealers attack), or None
            for a SavedModel.
        arch: the students' architecture.
        reference: None, or `{"served": the reference's plain release, "key": its cache key}`.
    """

    dataset: object
    train: object
    validation: tuple
    served: keras.Model
    teacher: dict
    network_file: str | None
    arch: str
    reference: dict | None


def _tree_sha256(directory):
    """One SHA-256 over every file of a directory (relative names and contents), in order."""
    digest = hashlib.sha256()
    for root, dirs, files in os.walk(directory):
        dirs.sort()
        for name in sorted(files):
            path = os.path.join(root, name)
            digest.update(os.path.relpath(path, directory).encode() + b"\0")
            with open(path, "rb") as f:
                digest.update(hashlib.file_digest(f, "sha256").digest())
    return digest.hexdigest()


def saved_model_release(path, dataset):
    """What a SavedModel export serves, as a Keras model from float pixels to its outputs."""
    import tensorflow as tf

    try:
        loaded = tf.saved_model.load(path)
        signature = loaded.signatures["serving_default"]
    except Exception as error:  # TensorFlow raises many types for a foreign directory.
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise InputError(
            f"saved_model: cannot load {path!r} with a serving_default signature: {reason[:200]}"
        ) from None
    specs = signature.structured_input_signature[1]
    outputs = signature.structured_outputs
    if "images" not in specs or "logits" not in outputs:
        raise InputError(
            f"saved_model: {path!r} must serve images -> logits (as nasty_tf.export writes). "
            f"Received: inputs={sorted(specs)}, outputs={sorted(outputs)}"
        )
    shape = tuple(specs["images"].shape[1:])
    classes = outputs["logits"].shape[-1]
    if shape != tuple(dataset.input_shape) or classes != dataset.num_classes:
        raise InputError(
            f"saved_model: {path!r} serves images {shape} over {classes} classes but dataset "
            f"{dataset.name!r} has {tuple(dataset.input_shape)} and {dataset.num_classes}"
        )
    served = keras.layers.TFSMLayer(path, call_endpoint="serving_default", trainable=False)
    inputs = keras.Input(shape, name="images")
    # The signature takes uint8: what a client sends. Pixels in [0, 255] cast exactly.
    pixels = ops.cast(ops.clip(ops.round(inputs), 0, 255), specs["images"].dtype.name)
    outputs = served(pixels)
    return keras.Model(
        inputs,
        {"logits": outputs["logits"], "probabilities": outputs["probabilities"]},
        name="saved_model_release",
    )


def load_target(config):
    """Loads the data and the release of `config` (an `AuditConfig`, already checked)."""
    from nasty_tf.data import load_dataset
    from nasty_tf.data.validation import carve_validation, unseen_validation
    from nasty_tf.models import available_models
    from nasty_tf.training import load_network
    from nasty_tf.training.checkpoints import model_file_sha256

    unseen = config.validation_split == "unseen"
    dataset = load_dataset(
        config.dataset,
        data_dir=config.data_dir,
        train_fraction=1.0 if unseen else config.train_fraction,
        seed=config.seeds[0],
        cache_dir=config.data_cache_dir,
    )
    if unseen:
        train, validation = unseen_validation(
            dataset, config.train_fraction, config.validation_fraction, config.seeds[0]
        )
        dataset = train
    else:
        train, validation = carve_validation(dataset, config.validation_fraction, config.seeds[0])
    if config.model is not None:
        network = load_network(config.model, "model", dataset)
        release = config.release or "plain"
        params = {"top_k_ratio": config.top_k_ratio} if config.top_k_ratio is not None else {}
        served = releases.get_release(release, network, **params)
        teacher = {
            "kind": "keras",
            "sha256": model_file_sha256(config.model, "model"),
            "release": release,
            "top_k_ratio": config.top_k_ratio,
        }
        arch = config.arch or (network.name if network.name in available_models() else "cnn")
    else:
        served = saved_model_release(config.saved_model, dataset)
        teacher = {"kind": "saved_model", "sha256": _tree_sha256(config.saved_model)}
        arch = config.arch or "cnn"
    reference = None
    if config.reference is not None:
        reference_network = load_network(config.reference, "reference", dataset)
        reference = {
            "served": releases.plain(reference_network),
            "key": {"kind": "keras", "sha256": model_file_sha256(config.reference, "reference")},
        }
    return AuditTarget(
        dataset=dataset,
        train=train,
        validation=validation,
        served=served,
        teacher=teacher,
        network_file=config.model,
        arch=arch,
        reference=reference,
    )
