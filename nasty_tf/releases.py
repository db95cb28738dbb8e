"""Releases: what a model owner serves, as small functions from a network to a servable model.

A defence is a release (issue 20, item 2; DESIGN.md section 7). Each function takes a trained
network (pixels in [0, 255] -> logits) and returns a Keras model from `images` to a dict of
`logits` and `probabilities`, the names `serving_default` returns (`nasty_tf.export`). The
export and the audit both go through these functions, so the audited thing and the exported
thing are the same code.

- `plain(network)`: the logits and their softmax.
- `stingy(network, top_k_ratio)`: the Stingy Teacher defence (Ma et al., 2022, "Stingy
  Teacher: Sparse Logits Suffice to Fail Knowledge Distillation"; code HowieMa/stingy-teacher):
  only the top k logits are served, the rest are `-inf` before the softmax, so the served
  probabilities have exactly k non-zero entries per row and the argmax is unchanged.
- The `nasty` release is the nasty network given to `plain`; `nasty+stingy` is the nasty
  network given to `stingy`: the network is the defence there, not the serving.

A release is built from built-in Keras layers and `keras.ops` only (the network goes through
`as_plain_keras`), with no `Lambda` and no class of ours, so its `.keras` file loads and serves
with Keras alone (DESIGN.md section 6).

Example:

```python
from nasty_tf import releases

served = releases.stingy(keras.saving.load_model("nasty/model.keras"))
outputs = served(images)  # {"logits": ..., "probabilities": ...}
served.save("nasty_stingy_release.keras")
```
"""

import math

import keras
from keras import ops

from nasty_tf.errors import InputError
from nasty_tf.models.plain_keras import as_plain_keras

# The Stingy Teacher's sparsity for its two CIFAR settings (issue 20): k = 2 of 10 classes and
# k = 10 of 100. The ratio is a step in the class count: 0.2 below 100 classes, 0.1 from 100 on
# (Tiny-ImageNet's 200 classes: k = 20). Few classes need the larger share so that more than
# the top-1 remains; many classes tolerate a smaller share with the same absolute k growth.
SMALL_LABEL_SPACE_RATIO = 0.2
LARGE_LABEL_SPACE_RATIO = 0.1
LARGE_LABEL_SPACE = 100


def default_top_k_ratio(num_classes):
    """The stingy release's default ratio: 0.2 below 100 classes, 0.1 from 100 classes on."""
    return SMALL_LABEL_SPACE_RATIO if num_classes < LARGE_LABEL_SPACE else LARGE_LABEL_SPACE_RATIO


def check_top_k_ratio(top_k_ratio):
    """Returns `top_k_ratio` as a float; raises `InputError` unless it is in (0, 1]."""
    if (
        isinstance(top_k_ratio, bool)
        or not isinstance(top_k_ratio, (int, float))
        or not 0.0 < top_k_ratio <= 1.0
    ):
        raise InputError(f"top_k_ratio must be in (0, 1]. Received: top_k_ratio={top_k_ratio!r}")
    return float(top_k_ratio)


def top_k_count(num_classes, top_k_ratio=None):
    """`k = max(1, round(top_k_ratio * num_classes))`, rounding halves up.

    Args:
        num_classes: the number of classes, >= 2.
        top_k_ratio: in (0, 1]; None for `default_top_k_ratio(num_classes)`.

    Example: `top_k_count(10) == 2`, `top_k_count(100) == 10`, `top_k_count(10, 0.05) == 1`.
    """
    if top_k_ratio is None:
        top_k_ratio = default_top_k_ratio(num_classes)
    top_k_ratio = check_top_k_ratio(top_k_ratio)
    # The 1e-9 absorbs float error (0.15 * 10 is 1.4999999999999998), so halves round up.
    return max(1, int(math.floor(top_k_ratio * num_classes + 0.5 + 1e-9)))


def _network_output(network):
    """`(inputs, logits, num_classes)` of a fresh `images` input fed through `network`."""
    if not isinstance(network, keras.Model):
        raise InputError(f"network must be a Keras model. Received: network={network!r}")
    input_shape = tuple(network.input_shape[1:])
    num_classes = network.output_shape[-1]
    if not isinstance(num_classes, int) or num_classes < 2:
        raise InputError(
            f"network must output logits over at least 2 classes. "
            f"Received: output_shape={network.output_shape}"
        )
    network = as_plain_keras(network)
    inputs = keras.Input(input_shape, name="images")
    logits = network(inputs)
    if logits.dtype != "float32":  # a mixed-precision network: serve float32 like export does
        logits = ops.cast(logits, "float32")
    return inputs, logits, num_classes


def _served(inputs, logits, name):
    probabilities = keras.layers.Softmax(name="probabilities")(logits)
    return keras.Model(inputs, {"logits": logits, "probabilities": probabilities}, name=name)


def plain(network):
    """Serves the network's logits and their softmax: the undefended (or the nasty) release.

    Args:
        network: a trained network (pixels in [0, 255] -> logits), e.g. from `get_model`.

    Returns:
        A Keras model `images -> {"logits", "probabilities"}` named `"plain_release"` holding
        `as_plain_keras(network)` (the network itself when it has no layer of ours to swap,
        a copy of its weights otherwise: build the release after training).

    Raises:
        InputError: `network` is not a Keras model with logits over >= 2 classes.
    """
    inputs, logits, _ = _network_output(network)
    return _served(inputs, logits, "plain_release")


def stingy(network, top_k_ratio=None):
    """Serves only each row's top-k logits, the rest `-inf` (Stingy Teacher, Ma et al., 2022).

    `k = top_k_count(classes, top_k_ratio)`: `max(1, round(ratio x classes))`, default ratio
    0.2 below 100 classes and 0.1 from 100 on (`default_top_k_ratio`). The mask comes from
    `top_k`'s indices scattered as one-hot rows, not from a threshold, so exactly k classes are
    served even when logits tie, and the top-1 class (the argmax) is always among them. The
    served probabilities (softmax of the served logits) are exactly 0 outside the k; inside,
    they are positive unless a kept logit is more than ~87 below the row's maximum (float32
    underflow).

    Args:
        network: a trained network (pixels in [0, 255] -> logits).
        top_k_ratio: the share of classes served, in (0, 1]; None for the default.

    Returns:
        A Keras model `images -> {"logits", "probabilities"}` named `"stingy_release"`.

    Raises:
        InputError: `top_k_ratio` is not in (0, 1], or `network` is unusable.
    """
    if top_k_ratio is not None:
        check_top_k_ratio(top_k_ratio)
    inputs, logits, num_classes = _network_output(network)
    k = top_k_count(num_classes, top_k_ratio)
    _, indices = ops.top_k(logits, k)
    mask = ops.sum(ops.one_hot(indices, num_classes, dtype="float32"), axis=1)
    # log(1) = 0 keeps a served logit exactly; log(0) = -inf withholds the class. No constant
    # to serialise (JSON has no -inf), only ops that Keras rebuilds by itself.
    served_logits = keras.layers.Add(name="logits")([logits, ops.log(mask)])
    return _served(inputs, served_logits, "stingy_release")


_RELEASES = {"plain": plain, "stingy": stingy}


def available_releases():
    """The release names, sorted: `plain`, `stingy` (the nasty ones are these of a nasty network)."""
    return sorted(_RELEASES)


def get_release(name, network, **params):
    """`plain(network)` or `stingy(network, **params)` by name (`--release` of the export).

    Raises:
        InputError: an unknown name, or a parameter the release does not take.
    """
    release = _RELEASES.get(name) if isinstance(name, str) else None
    if release is None:
        raise InputError(f"Unknown release {name!r}. Available: {', '.join(available_releases())}")
    if name == "plain" and params:
        raise InputError(f"The plain release takes no parameters. Received: {sorted(params)}")
    unknown = sorted(set(params) - {"top_k_ratio"})
    if unknown:
        raise InputError(
            f"Unknown parameter(s) {', '.join(unknown)} for the {name} release. Accepted: top_k_ratio"
        )
    return release(network, **params)
