"""Training precision: Keras dtype policies for a run, and for the frozen network it loads.

`float32` (the default, the reference's), `mixed_bfloat16` (bfloat16 compute, float32
weights: fast on GPUs and on CPUs with AMX or AVX512-BF16) or `mixed_float16` (float16
compute with Keras' automatic loss scaling). Under either mixed policy the zoo's logits stay
float32 and the losses are computed in float32 (DESIGN.md section 3): the nasty KL term
depends on small differences of growing logits that bfloat16 would erase.

A run builds its networks under the policy (`dtype_policy`). The frozen partner it loads (the
adversary of a nasty run, the teacher of a KD run) keeps the policy it was saved with, so
`match_precision` gives its layers the run's policy: its forward pass, part of every step,
then runs at the same speed and precision as the trained network's.
"""

import contextlib

import keras

from nasty_tf.errors import InputError

PRECISIONS = ("float32", "mixed_bfloat16", "mixed_float16")


def check_precision(name):
    if name not in PRECISIONS:
        raise InputError(
            f"precision must be one of {', '.join(PRECISIONS)}. Received: precision={name!r}"
        )


@contextlib.contextmanager
def dtype_policy(name):
    """Sets Keras' global dtype policy for the block, and restores the previous one."""
    check_precision(name)
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(name)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


def match_precision(network, name):
    """Gives every layer of `network` the policy `name`, but those producing its outputs.

    The output layers (the zoo's float32 `logits`) keep their policy, as they do when a
    network is built under a mixed policy. Weights stay float32 under every policy, so only
    the compute dtype changes; returns `network`, changed in place.
    """
    check_precision(name)
    output_layers = {id(tensor._keras_history[0]) for tensor in network.outputs}  # pylint: disable=protected-access

    def visit(layers):
        for layer in layers:
            if isinstance(layer, keras.Model):  # a nested model: its own layers
                visit(layer.layers)
            elif id(layer) not in output_layers and not isinstance(layer, keras.layers.InputLayer):
                layer.dtype_policy = name

    visit(network.layers)
    return network
