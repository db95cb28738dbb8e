"""The loss terms of the two data-free attacks, written with `keras.ops` (any backend).

DAFL (Chen et al., ICCV 2019, eq. 2-5 and the authors' `DAFL_train.py`):

- one-hot loss `L_oh = CE(y_T, argmax y_T)`: the teacher should be confident on fakes;
- activation loss `L_a = -mean |f_T|`: large responses of the teacher's features (the
  authors take the mean absolute value over batch and feature dims, i.e. the L1 norm / size);
- information-entropy loss `L_ie = sum_c p_c log10 p_c` with `p = mean_batch softmax(y_T)`:
  the negative entropy of the batch's mean prediction, so that classes are balanced. The
  authors' code uses `log10`, and their weights (oh 0.05, a 0.01, ie 5) were tuned with it.

DeepInversion (Yin et al., CVPR 2020, eq. 3-5 and the authors' `deepinversion_cifar10.py`):

- BN-statistics loss `sum_l ||var_l(x) - running_var_l||_2 + ||mean_l(x) - running_mean_l||_2`
  with per-channel batch statistics of each BatchNorm layer's *input* (population variance);
- total variation `sum_d ||x - shift_d(x)||_2` over four neighbour directions (right, down and
  both diagonals), an L2 norm of the differences, not a sum of squares, as in their code;
- an L2 prior `||x||_2` on the whole batch.

The DAFL and DeepInversion objectives are batch-level statistics (a mean softmax, batch
moments), not per-sample losses, so they are functions rather than `keras.losses.Loss`
instances; the attacks run on one device (DESIGN.md section 3's replica scaling does not arise).
"""

from keras import ops


def one_hot_loss(teacher_logits):
    """DAFL's `L_oh`: cross-entropy of the teacher's logits to their own argmax (batch mean)."""
    logits = ops.cast(teacher_logits, "float32")
    pseudo_labels = ops.stop_gradient(ops.argmax(logits, axis=-1))
    log_probs = ops.log_softmax(logits, axis=-1)
    chosen = ops.take_along_axis(log_probs, ops.expand_dims(pseudo_labels, -1), axis=-1)
    return -ops.mean(chosen)


def activation_loss(features):
    """DAFL's `L_a`: minus the mean absolute value of the teacher's feature activations."""
    return -ops.mean(ops.abs(ops.cast(features, "float32")))


def information_entropy_loss(teacher_logits):
    """DAFL's `L_ie`: `sum_c p_c log10 p_c` of the batch-mean softmax (minus its entropy)."""
    probs = ops.mean(ops.softmax(ops.cast(teacher_logits, "float32"), axis=-1), axis=0)
    log_probs = ops.log(ops.maximum(probs, 1e-30)) / ops.log(10.0)
    return ops.sum(probs * log_probs)


def batch_statistics(inputs, axis=-1):
    """Per-channel mean and population variance of a BatchNorm input over all other axes."""
    inputs = ops.cast(inputs, "float32")
    rank = len(inputs.shape)
    axis = axis % rank
    reduce_axes = [i for i in range(rank) if i != axis]
    mean = ops.mean(inputs, axis=reduce_axes)
    variance = ops.mean(ops.square(inputs - _expand(mean, rank, axis)), axis=reduce_axes)
    return mean, variance


def _expand(vector, rank, axis):
    shape = [1] * rank
    shape[axis] = -1
    return ops.reshape(vector, shape)


def bn_statistics_loss(bn_inputs, moving_means, moving_variances, axes=None):
    """DeepInversion's `R_feature`: `sum_l ||var_l - rv_l||_2 + ||mean_l - rm_l||_2`.

    Args:
        bn_inputs: the inputs of each BatchNorm layer on the current batch.
        moving_means, moving_variances: each layer's running statistics (same order).
        axes: each layer's channel axis (default -1 for all).
    """
    axes = axes or [-1] * len(bn_inputs)
    total = ops.zeros((), "float32")
    for inputs, moving_mean, moving_variance, axis in zip(
        bn_inputs, moving_means, moving_variances, axes
    ):
        mean, variance = batch_statistics(inputs, axis)
        total = total + _l2(variance - ops.cast(moving_variance, "float32"))
        total = total + _l2(mean - ops.cast(moving_mean, "float32"))
    return total


def _l2(x):
    return ops.sqrt(ops.sum(ops.square(x)))


def total_variation_loss(images):
    """DeepInversion's TV prior: L2 norms of the differences to four neighbours, summed.

    `images` is channels-last `(N, H, W, C)`.
    """
    images = ops.cast(images, "float32")
    right = images[:, :, :-1, :] - images[:, :, 1:, :]
    down = images[:, :-1, :, :] - images[:, 1:, :, :]
    diagonal = images[:, 1:, :-1, :] - images[:, :-1, 1:, :]
    anti_diagonal = images[:, :-1, :-1, :] - images[:, 1:, 1:, :]
    return _l2(right) + _l2(down) + _l2(diagonal) + _l2(anti_diagonal)


def image_l2_loss(images):
    """DeepInversion's L2 prior: the L2 norm of the whole batch."""
    return _l2(ops.cast(images, "float32"))
