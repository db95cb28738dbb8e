"""What a stealer may see of a release, and the maths that is safe on it.

A stealer learns only from what a release serves (issue 20): its served logits, or its served
probabilities, never the network's internals. A stingy release (Ma et al., 2022, "Stingy
Teacher") serves `-inf` for every class outside its top k, so every function here treats `-inf`
as "a class the release withholds": its probability is exactly 0 and `0 * log 0` counts as 0.
Where-masking, not clipping, keeps both the loss and its gradient finite.

Every function is built from `keras.ops` only, so it runs on every backend.
"""

import keras
from keras import ops

from nasty_tf.errors import InputError


def served_logits_model(served, input_shape, name="served"):
    """Wraps what a release serves as a model from images to one float32 tensor of logits.

    Args:
        served: a Keras layer or model that maps an image batch (pixels in [0, 255]) to the
            release's outputs: a dict with `"logits"` and/or `"probabilities"` (what
            `nasty_tf.releases` builds and what `serving_default` returns), or one tensor of
            logits. Served logits are preferred when both are there, because probabilities
            that underflow to 0 in float32 lose what the logits still hold. Probabilities
            alone are turned into `log(probabilities)`: softmax-based stealers see the same
            distribution at every temperature (the log drops only a per-row constant), and a
            served 0 becomes `-inf`, a withheld class, as in a stingy release. A SavedModel
            enters as `keras.layers.TFSMLayer(path, call_endpoint="serving_default")`.
        input_shape: `(height, width, channels)` of one image (the student's).
        name: the wrapper's name.

    Returns:
        A Functional `keras.Model` from `images` to served logits (float32; `-inf` marks a
        withheld class). It holds `served` as its only layer with weights.

    Raises:
        InputError: `served` is not callable, or serves neither logits nor probabilities.
    """
    if not callable(served):
        raise InputError(
            f"served must be a Keras layer or model mapping images to served outputs. "
            f"Received: served={served!r}"
        )
    inputs = keras.Input(tuple(input_shape), name="images")
    outputs = served(inputs)
    if isinstance(outputs, dict):
        if "logits" in outputs:
            logits = outputs["logits"]
        elif "probabilities" in outputs:
            logits = ops.log(ops.cast(outputs["probabilities"], "float32"))
        else:
            raise InputError(
                "served must output 'logits' or 'probabilities'. "
                f"Received: outputs={sorted(outputs)}"
            )
    elif isinstance(outputs, (list, tuple)):
        raise InputError(
            "served must output a dict with 'logits' or 'probabilities', or one logits tensor. "
            f"Received: {len(outputs)} outputs"
        )
    else:
        logits = outputs
    return keras.Model(inputs, ops.cast(logits, "float32"), name=name)


def kl_per_sample(target_logits, predicted_logits, temperature=1.0):
    """`KL(softmax(target / tau) || softmax(predicted / tau))` per row, safe for `-inf` targets.

    A `-inf` target logit is a class with probability exactly 0, whose term `0 * log 0` is 0;
    the mask makes it 0 instead of `0 * -inf = NaN`, and the masked-out branch is finite, so
    the gradient is finite too. For finite targets this equals `nasty_tf.losses`'
    `tempered_kl_per_sample` divided by `tau^2`. No `tau^2` factor here.
    """
    log_p = ops.log_softmax(ops.cast(target_logits, "float32") / temperature, axis=-1)
    log_q = ops.log_softmax(ops.cast(predicted_logits, "float32") / temperature, axis=-1)
    p = ops.exp(log_p)
    kept = p > 0
    zeros = ops.zeros_like(p)
    safe_log_p = ops.where(kept, log_p, zeros)
    return ops.sum(ops.where(kept, p * (safe_log_p - log_q), zeros), axis=-1)


def tempered_kl_per_sample(target_logits, predicted_logits, temperature):
    """`tau^2 * KL(softmax(target / tau) || softmax(predicted / tau))` (paper eq. 1), `-inf`-safe."""
    return temperature**2 * kl_per_sample(target_logits, predicted_logits, temperature)


def top_k_mask(logits, k):
    """1.0 at each row's `k` largest logits and 0.0 elsewhere: exactly `k` ones, ties included.

    Built from `top_k`'s indices and a one-hot scatter rather than a threshold, so tied
    logits never let more (or fewer) than `k` classes through.
    """
    num_classes = logits.shape[-1]
    _, indices = ops.top_k(logits, k)
    return ops.sum(ops.one_hot(indices, num_classes, dtype="float32"), axis=-2)


def keep_top_k(logits, k):
    """The logits with every class outside each row's top `k` set to `-inf`.

    `logits + log(mask)` adds 0 to a kept class and `-inf` to the others: exact, and made of
    ops only (no constant to serialise), the same way `nasty_tf.releases.stingy` serves.
    """
    logits = ops.cast(logits, "float32")
    return logits + ops.log(top_k_mask(logits, k))


def standardize_logits(logits, epsilon=1e-7):
    """Per-row z-score of the logits over the classes a release serves (finite logits).

    As the logit standardisation of Sun et al., CVPR 2024 (their `normalize`: mean, unbiased
    standard deviation, `(z - mean) / (std + 1e-7)`), except that `-inf` (withheld) classes
    stay `-inf` and are left out of the mean and deviation, so a stingy release standardises
    its k served logits. Invariant to `a * z + b` per row for `a > 0` (up to `epsilon`).
    """
    logits = ops.cast(logits, "float32")
    finite = ops.isfinite(logits)
    count = ops.sum(ops.cast(finite, "float32"), axis=-1, keepdims=True)
    zeros = ops.zeros_like(logits)
    mean = ops.sum(ops.where(finite, logits, zeros), axis=-1, keepdims=True) / count
    deviation = ops.where(finite, logits - mean, zeros)
    # Unbiased, as torch.std; one served class has no spread: its z-score is 0.
    variance = ops.sum(deviation * deviation, axis=-1, keepdims=True) / ops.maximum(
        count - 1.0, 1.0
    )
    # epsilon^2 inside the root keeps the root's gradient finite for a constant row.
    std = ops.sqrt(variance + epsilon * epsilon)
    return ops.where(finite, deviation / (std + epsilon), logits)
