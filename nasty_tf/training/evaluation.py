"""Evaluation helpers shared by the jobs, the protocols and the data-free attacks: a network's
logits on in-memory images, accuracy, and the adversarial KL a nasty teacher reached."""

import math

import keras
import numpy as np

from nasty_tf.losses import tempered_kl_per_sample
from nasty_tf.training import input_pipeline

# Images per inference batch. Inference keeps no activations for gradients, so its batches
# can be larger than training's; fewer steps cost less per image on every device (on a CPU,
# evaluating at 256 instead of its training batch of 32 made a tiny 3-epoch job a fifth faster).
EVALUATION_BATCH_SIZE = 256


def evaluation_batch_size(training_batch_size):
    """The batch in which a run evaluates its test split after an epoch: the smallest multiple
    of its training batch that holds at least `EVALUATION_BATCH_SIZE` images, so that a
    strategy's replicas divide it as they divide the training batch."""
    return training_batch_size * math.ceil(EVALUATION_BATCH_SIZE / training_batch_size)


def predict_logits(network, images, batch_size=EVALUATION_BATCH_SIZE):
    """The float32 logits of `network` on `images` (a numpy array), in order."""
    count = len(images)
    if keras.backend.backend() == "jax":
        # XLA compiles a program per batch shape: the last batch is padded (the padding's
        # logits are dropped) so that predict compiles once. JAX's DataParallel also splits
        # every batch evenly across the devices: a batch size that the devices divide.
        distribution = keras.distribution.distribution()
        if distribution is not None:
            batch_size += -batch_size % distribution.device_mesh.devices.size
        if padding := -count % batch_size:
            images = np.concatenate([images, np.zeros((padding, *images.shape[1:]), images.dtype)])
    if input_pipeline.uses_tf_data():  # not Keras' own autotuned pipeline (input_pipeline.py)
        logits = network.predict(input_pipeline.batches(images, batch_size=batch_size), verbose=0)
    else:
        logits = network.predict(images, batch_size=batch_size, verbose=0)
    return np.asarray(logits, dtype=np.float32)[:count]


def accuracy_percent(logits, labels):
    """Top-1 accuracy in percent."""
    return float(np.mean(np.argmax(logits, axis=-1) == labels) * 100.0)


def adversarial_kl(nasty_logits, adversary_logits, temperature):
    """The mean tau_A^2-scaled `KL(p_nasty || p_adversary)` over the given logits (eq. 2's term)."""
    per_sample = tempered_kl_per_sample(nasty_logits, adversary_logits, temperature)
    return float(np.mean(keras.ops.convert_to_numpy(per_sample)))
