"""`DeepInversion`: images optimised from noise to match a teacher (Yin et al., CVPR 2020).

Per batch, as in the authors' `deepinversion_cifar10.py`: start from `randn` images in the
teacher's normalised input space (see `pixel_space`), then for `steps` Adam steps:

1. jitter: roll the batch by random offsets in [-jitter, jitter] pixels (both axes), as their
   CIFAR code does; with `flip=True` also flip it horizontally with probability 1/2 (their
   ImageNet code);
2. teacher forward in inference mode, reading the input of every BatchNormalization layer;
3. loss = CE(logits, targets) + bn_weight * R_feature + tv_weight * TV + l2_weight * ||x||_2
   (`nasty_tf.datafree.losses`), the priors on the jittered batch as in their code.

Targets are `arange(batch) % classes` (their fixed `[0..9] * 25 + [0..5]` for 256 images).
Not ported: Adaptive DeepInversion's competition term (it needs a student during synthesis)
and their keeping of the lowest-loss iterate (the last iterate is kept).

`DeepInversion` is a `keras.Model` whose only trainable weight is the image batch; its loss is
in `compute_loss`, the hook every backend's trainer calls, so it is backend-portable; one
`fit` epoch runs the optimisation of one batch. `synthesize` runs it batch after batch.
"""

import keras
import numpy as np
from keras import layers, ops

from nasty_tf.datafree import losses
from nasty_tf.datafree.pixel_space import PixelSpace
from nasty_tf.training import input_pipeline


def batchnorm_layers(network):
    """The network's BatchNormalization layers, in graph order (nested models included)."""
    found = []
    for layer in network.layers:
        if isinstance(layer, layers.BatchNormalization):
            found.append(layer)
        elif isinstance(layer, keras.Model):
            found.extend(batchnorm_layers(layer))
    return found


def batchnorm_input_model(network):
    """A Functional view of `network` returning `[logits, input of each BN layer...]`.

    Args:
        network: a Functional model (every network of the zoo).

    Returns:
        `(model, bn_layers)`: the tap model and the BatchNormalization layers it reads, in the
        same order as its outputs after the logits.
    """
    bn_layers = batchnorm_layers(network)
    taps = [layer.input for layer in bn_layers]
    return keras.Model(network.input, [network.output, *taps], name="batchnorm_inputs"), bn_layers


class DeepInversion(keras.Model):
    """One batch of images optimised to look like the teacher's training data to the teacher.

    Fit it on the target labels repeated once per optimisation step, with `batch_size` equal
    to the image batch and `shuffle=False`; every step then sees the same targets. Logs the
    *last step's* `loss`, `ce`, `bn` (R_feature), `tv`, `l2` and `accuracy` (teacher's argmax
    == target), not means over the epoch: one epoch is one whole optimisation.

    Args:
        teacher: the released network (pixels in [0, 255]); frozen, inference mode.
        batch_size: images optimised together (the authors: 256).
        bn_weight: weight of the BN-statistics loss (the authors: 10).
        tv_weight: weight of the total-variation prior (the authors: 2.5e-5 to 1e-3).
        l2_weight: weight of the L2 prior (the authors' CIFAR runs: 0).
        jitter: largest roll, in pixels (the authors: 2).
        flip: random horizontal flips of the batch (default off: the authors' CIFAR script
            only rolls).
        seed: seeds the noise and the jitter.

    Example:
        >>> inversion = DeepInversion(teacher, batch_size=256)
        >>> inversion.compile(optimizer=keras.optimizers.Adam(0.05))
        >>> targets = inversion.targets()
        >>> inversion.fit(np.tile(targets, 2000), np.tile(targets, 2000), batch_size=256,
        ...               shuffle=False)
        >>> images = inversion.pixels()
    """

    def __init__(
        self,
        teacher,
        batch_size=256,
        bn_weight=10.0,
        tv_weight=2.5e-5,
        l2_weight=0.0,
        jitter=2,
        flip=False,
        seed=0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        teacher.trainable = False
        self.teacher = teacher
        self.taps, bn_layers = batchnorm_input_model(teacher)
        self.bn_layers = bn_layers
        self.pixel_space = PixelSpace(teacher)
        self.num_classes = int(teacher.output_shape[-1])
        self.batch_size = int(batch_size)
        self.bn_weight = float(bn_weight)
        self.tv_weight = float(tv_weight)
        self.l2_weight = float(l2_weight)
        self.jitter = int(jitter)
        self.flip = bool(flip)
        self.seed = int(seed)
        self.seed_generator = keras.random.SeedGenerator(seed)
        image_shape = tuple(int(d) for d in teacher.input_shape[1:])
        self.images = self.add_weight(
            shape=(self.batch_size, *image_shape),
            initializer=keras.initializers.RandomNormal(stddev=1.0, seed=seed),
            name="images",
        )
        self.trackers = {
            name: keras.metrics.Mean(name=name) for name in ("loss", "ce", "bn", "tv", "l2")
        }
        self.accuracy_tracker = keras.metrics.SparseCategoricalAccuracy(name="accuracy")

    @property
    def metrics(self):
        return [*self.trackers.values(), self.accuracy_tracker]

    def targets(self):
        """The target labels of the batch: `arange(batch_size) % num_classes`."""
        return (np.arange(self.batch_size) % self.num_classes).astype("int32")

    def reset(self, seed):
        """Fresh noise images, jitter draws and optimizer state for the next batch: the batch's
        optimisation is then a pure function of `seed` (a resumed run redoes it exactly)."""
        noise = np.random.default_rng(seed).standard_normal(tuple(self.images.shape))
        self.images.assign(noise.astype("float32"))
        state = self.seed_generator.state
        state.assign(np.array([seed, 0], dtype=keras.backend.standardize_dtype(state.dtype)))
        optimizer = getattr(self, "optimizer", None)
        if optimizer is not None and optimizer.built:
            # Moments and the step count restart; a float learning rate is a variable of the
            # optimizer too, and must be kept.
            for variable in optimizer.variables:
                if variable is not getattr(optimizer, "_learning_rate", None):
                    variable.assign(np.zeros(variable.shape, dtype=variable.dtype))

    def build(self, input_shape=None):
        self.built = True

    def jittered(self, training):
        images = ops.convert_to_tensor(self.images)
        if not training:
            return images
        if self.jitter:
            shifts = keras.random.randint(
                (2,), -self.jitter, self.jitter + 1, seed=self.seed_generator
            )
            images = ops.roll(images, shifts[0], axis=1)
            images = ops.roll(images, shifts[1], axis=2)
        if self.flip:
            flip = keras.random.uniform((), seed=self.seed_generator) < 0.5
            images = ops.where(flip, ops.flip(images, axis=2), images)
        return images

    def call(self, labels, training=False):
        """Teacher outputs on the (jittered) batch; `labels` only carry the targets."""
        images = self.jittered(training)
        outputs = self.taps(self.pixel_space.to_pixels(images), training=False)
        return {"logits": outputs[0], "bn_inputs": list(outputs[1:]), "images": images}

    def objective(self, targets, y_pred):
        """`(total, ce, bn, tv, l2)` of DeepInversion's loss on one forward pass."""
        logits = ops.cast(y_pred["logits"], "float32")
        ce = ops.mean(
            keras.losses.sparse_categorical_crossentropy(
                ops.cast(targets, "int32"), logits, from_logits=True
            )
        )
        bn = losses.bn_statistics_loss(
            y_pred["bn_inputs"],
            [layer.moving_mean for layer in self.bn_layers],
            [layer.moving_variance for layer in self.bn_layers],
            [layer.axis for layer in self.bn_layers],
        )
        tv = losses.total_variation_loss(y_pred["images"])
        l2 = losses.image_l2_loss(y_pred["images"])
        total = ce + self.bn_weight * bn + self.tv_weight * tv + self.l2_weight * l2
        return total, ce, bn, tv, l2

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        total, ce, bn, tv, l2 = self.objective(y, y_pred)
        for name, value in (("loss", total), ("ce", ce), ("bn", bn), ("tv", tv), ("l2", l2)):
            self.trackers[name].reset_state()
            self.trackers[name].update_state(value)
        self.accuracy_tracker.reset_state()
        self.accuracy_tracker.update_state(y, y_pred["logits"])
        return total

    def evaluate_objective(self):
        """The loss terms on the current batch without jitter, as a dict of floats."""
        targets = self.targets()
        values = self.objective(targets, self(targets, training=False))
        return {
            name: float(ops.convert_to_numpy(value))
            for name, value in zip(("loss", "ce", "bn", "tv", "l2"), values)
        }

    def compute_metrics(self, x, y, y_pred, sample_weight=None):
        return {metric.name: metric.result() for metric in self.metrics}

    def pixels(self):
        """The current batch as float32 pixels (unclipped; what the student is fed)."""
        return ops.convert_to_numpy(self.pixel_space.to_pixels(self.images))


def synthesize(inversion, num_images, steps, seed=0, verbose=0, callbacks=None, store=None):
    """Runs `inversion` batch after batch until `num_images` images exist.

    Args:
        inversion: a compiled `DeepInversion`.
        num_images: images to make (the last batch is cut to fit).
        steps: optimisation steps per batch (the authors: 2,000).
        seed: the first batch's noise seed (batch `i` uses `seed + i`).
        verbose: Keras verbosity of each batch's `fit`.
        callbacks: passed to each batch's `fit`.
        store: optional; `store.load(index)` returns a batch finished earlier as `(pixels,
            targets, history entry)` or None, and `store.save(index, ...)` keeps a new one, so
            that an interrupted synthesis resumes at its first unfinished batch.

    Returns:
        `(pixels, targets, history)`: float32 pixels `(num_images, H, W, C)`, their int32 target
        labels, and per batch `{"initial": ..., "final": ...}`, the loss terms (without jitter)
        before and after the optimisation.
    """
    batch = inversion.batch_size
    targets = inversion.targets()
    images, labels, history = [], [], []
    made = 0
    index = 0
    while made < num_images:
        keep = min(batch, num_images - made)
        done = store.load(index) if store is not None else None
        if done is None:
            inversion.reset(seed + index)
            initial = inversion.evaluate_objective()
            repeated = np.tile(targets, steps)
            inversion.fit(
                **input_pipeline.fit_inputs(repeated, repeated, batch_size=batch),
                epochs=1,
                verbose=verbose,
                callbacks=callbacks,
            )
            done = (
                inversion.pixels()[:keep],
                targets[:keep],
                {"initial": initial, "final": inversion.evaluate_objective()},
            )
            if store is not None:
                store.save(index, *done)
        images.append(done[0])
        labels.append(done[1])
        history.append(done[2])
        made += keep
        index += 1
    return np.concatenate(images), np.concatenate(labels), history
