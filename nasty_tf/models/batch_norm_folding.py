"""Inference with every BatchNorm folded into the convolution before it, for frozen networks.

In inference mode a BatchNorm is a per-channel affine map, `y = x * s + (beta - mean * s)` with
`s = gamma / sqrt(var + eps)`, so `BN(conv(x, W) + b)` equals `conv(x, W * s) + (b - mean) * s
+ beta`. It is meant for the frozen partner of `PairedModel` (the adversary, the KD teacher),
which runs only in inference mode, once per training step: folding removes two full passes
over every feature map (the multiply and the add), leaving a conv plus bias that TensorFlow's
graph optimiser can fuse with the following ReLU/residual add. It is not wired into
`PairedModel`, because it gained nothing measurable: on 2026-11-27 (2 CPU cores, TensorFlow,
ResNet-18 nasty steps at batch 128, folded and plain adversaries built in one process and
stepped in turn, 6 steps each) the median step took 2.70 s folded against 2.71 s plain with
the zoo's `FusedBatchNormalization`, and 3.03 s both ways with Keras' layer. Try it again on a
GPU before wiring it (swap it in for `self.frozen(images, training=False)` in
`PairedModel.call`). The folded kernels are computed from the live variables
inside the step (a pass over the weights, much smaller than the activations at any useful batch
size), so nothing is copied, stored or serialised, and the result can never go stale when the
network's weights are loaded or restored later.

Only the zoo's pattern is folded: a `Conv2D` or `DepthwiseConv2D` (channels last, linear
activation, used once) whose only consumer is a channels-last `BatchNormalization`. Anything
else (pre-activation BNs, nested models) runs unchanged, in inference mode.
"""

import weakref

import keras
from keras import ops

_PLANS = weakref.WeakKeyDictionary()  # network -> plan, built once per network


def _single_use(layer):
    return len(layer._inbound_nodes) == 1 and len(layer._outbound_nodes) == 1


def _producer(layer):
    node = layer._inbound_nodes[0]
    if len(node.input_tensors) != 1:
        return None
    return node.input_tensors[0]._keras_history.operation


def _plan(network):
    """`{id(conv): batch_norm}` of the foldable pairs and the ids of the folded BNs."""
    if network in _PLANS:
        return _PLANS[network]
    pairs, folded = {}, set()
    for layer in network.layers:
        if not isinstance(layer, keras.layers.BatchNormalization) or not _single_use(layer):
            continue
        if layer.axis not in (-1, len(layer.input.shape) - 1):
            continue
        conv = _producer(layer)
        is_conv = isinstance(conv, (keras.layers.Conv2D, keras.layers.DepthwiseConv2D))
        if (
            not is_conv
            or not _single_use(conv)
            or conv.data_format != "channels_last"
            or conv.activation not in (None, keras.activations.linear)
        ):
            continue
        pairs[id(conv)] = layer
        folded.add(id(layer))
    _PLANS[network] = (pairs, folded)
    return pairs, folded


def _folded_conv(conv, batch_norm, inputs):
    variance = ops.cast(batch_norm.moving_variance, "float32")
    scale = ops.rsqrt(variance + batch_norm.epsilon)
    if batch_norm.scale:
        scale = scale * ops.cast(batch_norm.gamma, "float32")
    shift = -ops.cast(batch_norm.moving_mean, "float32") * scale
    if batch_norm.center:
        shift = shift + ops.cast(batch_norm.beta, "float32")
    if conv.use_bias:
        shift = shift + ops.cast(conv.bias, "float32") * scale
    kernel = ops.cast(conv.kernel, "float32")
    if isinstance(conv, keras.layers.DepthwiseConv2D):
        # Kernel (h, w, in, multiplier); output channel c * multiplier + m.
        kernel = kernel * ops.reshape(scale, ops.shape(kernel)[2:])
    else:
        kernel = kernel * scale  # (h, w, in / groups, out): scale the output axis
    dtype = conv.compute_dtype
    x = ops.cast(inputs, dtype)
    kernel = ops.cast(kernel, dtype)
    if isinstance(conv, keras.layers.DepthwiseConv2D):
        outputs = ops.depthwise_conv(
            x,
            kernel,
            strides=conv.strides,
            padding=conv.padding,
            data_format=conv.data_format,
            dilation_rate=conv.dilation_rate,
        )
    else:
        outputs = conv.convolution_op(x, kernel)
    return ops.cast(outputs + ops.cast(shift, dtype), batch_norm.compute_dtype)


def folded_inference(network, images):
    """`network(images, training=False)` with its conv+BatchNorm pairs folded (see module doc).

    Equal to the plain inference call up to float rounding (about 1e-5 relative in float32).
    Networks that are not Functional run unchanged.

    Args:
        network: a Functional `keras.Model` (every network of the zoo is one).
        images: a batch the network accepts.

    Returns:
        The network's output.

    Example:
        >>> logits = folded_inference(models.get_model("resnet18", 10), images)
    """
    if not isinstance(network, keras.Model) or not hasattr(network, "_run_through_graph"):
        return network(images, training=False)
    pairs, folded = _plan(network)
    if not pairs:
        return network(images, training=False)

    def operation_fn(operation):
        if id(operation) in pairs:
            # The graph may pass keyword arguments (`mask=None`) that no conv+BN pair uses.
            return lambda x, **_: _folded_conv(operation, pairs[id(operation)], x)
        if id(operation) in folded:
            return lambda x, **_: x
        if getattr(operation, "_call_has_training_arg", False):
            return lambda *args, **kwargs: operation(*args, **{**kwargs, "training": False})
        return operation

    # Functional._run_through_graph is what Functional.call runs, with our layer substitutes.
    inputs = ops.convert_to_tensor(images, dtype=network.inputs[0].dtype)
    return network._run_through_graph([inputs], operation_fn=operation_fn)
