"""`DAFL`: data-free learning of a student with a generator (Chen et al., ICCV 2019).

One step, as in the authors' `DAFL_train.py` (they sum both objectives and call `backward()`
once, which equals the two separate updates below because neither depends on the other's
parameters):

1. draw `z ~ N(0, I)`; the generator makes a batch `x = G(z)` (BN in training mode);
2. the frozen teacher (inference mode) gives logits `y_T` and features `f_T` on `x`;
3. the generator descends `oh * L_oh + a * L_a + ie * L_ie` (`nasty_tf.datafree.losses`),
   through the teacher, with Adam;
4. the student descends the KD loss `tau^2 * KL(softmax(y_T/tau) || softmax(y_S/tau))` on the
   *detached* batch (no gradient reaches the generator), with SGD. The authors' `kdloss` is
   this with tau = 1.

The two-player step cannot be one objective, so this model writes its own `train_step`. It is
written for the TensorFlow backend (`tf.GradientTape`); `run_datafree` refuses other backends
with a clear message.
"""

import keras
from keras import ops

from nasty_tf.datafree import losses
from nasty_tf.datafree.pixel_space import PixelSpace
from nasty_tf.errors import InputError
from nasty_tf.losses import tempered_kl_per_sample
from nasty_tf.paired_model import check_compatible, regularisation_loss


def teacher_with_features(teacher):
    """A Functional view of `teacher` returning `[logits, features]` (its `features` layer)."""
    try:
        features = teacher.get_layer("features").output
    except ValueError:
        raise InputError(
            "DAFL's activation loss needs the teacher's 'features' layer (every network of the "
            f"zoo has one). Received: a model named {teacher.name!r} without it"
        ) from None
    return keras.Model(teacher.input, [teacher.output, features], name="teacher_with_features")


class DAFL(keras.Model):
    """Trains `generator` against a frozen `teacher` and `student` by KD on its images.

    Fit it on any array whose batches only set the batch size (e.g. zeros of shape
    `(steps * batch_size, 1)`): the images come from the generator. Logs `loss` (generator
    objective), `one_hot`, `activation`, `entropy`, `kd` and `teacher_agreement` (share of the
    batch where student and teacher agree).

    Args:
        generator: e.g. `dafl_generator(latent_dim, image_shape)`.
        teacher: the released network (pixels in [0, 255]); frozen.
        student: the network to train (pixels in [0, 255]).
        one_hot_weight, activation_weight, entropy_weight: `oh`, `a`, `ie` (the authors'
            CIFAR-10 setting: 0.05, 0.01, 5).
        temperature: tau of the student's KD loss (the authors: 1).
        seed: seeds the latent draws.

    Example:
        >>> dafl = DAFL(dafl_generator(1000), teacher, student)
        >>> dafl.compile(generator_optimizer=keras.optimizers.Adam(0.02),
        ...              student_optimizer=keras.optimizers.SGD(0.1, momentum=0.9))
        >>> dafl.fit(np.zeros((120 * 1024, 1)), batch_size=1024, epochs=2000)
    """

    def __init__(
        self,
        generator,
        teacher,
        student,
        one_hot_weight=0.05,
        activation_weight=0.01,
        entropy_weight=5.0,
        temperature=1.0,
        seed=0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        check_compatible(student, teacher, "teacher")
        teacher.trainable = False
        self.generator = generator
        self.teacher = teacher
        self.student = student
        self.teacher_taps = teacher_with_features(teacher)
        self.pixel_space = PixelSpace(teacher)
        self.latent_dim = int(generator.input_shape[-1])
        self.one_hot_weight = float(one_hot_weight)
        self.activation_weight = float(activation_weight)
        self.entropy_weight = float(entropy_weight)
        self.temperature = float(temperature)
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.trackers = {
            name: keras.metrics.Mean(name=name)
            for name in ("loss", "one_hot", "activation", "entropy", "kd", "teacher_agreement")
        }

    @property
    def metrics(self):
        return list(self.trackers.values())

    def compile(self, generator_optimizer, student_optimizer, **kwargs):
        super().compile(**kwargs)
        self.generator_optimizer = generator_optimizer
        self.student_optimizer = student_optimizer

    def build(self, input_shape=None):
        # Build both optimizers up front: variables cannot be created inside a tf.function step.
        self.generator_optimizer.build(self.generator.trainable_variables)
        self.student_optimizer.build(self.student.trainable_variables)
        self.built = True

    def call(self, latent, training=False):
        """The generated batch as pixels (what the teacher and the student are fed)."""
        return self.pixel_space.to_pixels(self.generator(latent, training=training))

    def generator_losses(self, teacher_logits, features):
        """`(total, one_hot, activation, entropy)` of the generator's objective."""
        one_hot = losses.one_hot_loss(teacher_logits)
        activation = losses.activation_loss(features)
        entropy = losses.information_entropy_loss(teacher_logits)
        total = (
            self.one_hot_weight * one_hot
            + self.activation_weight * activation
            + self.entropy_weight * entropy
        )
        return total, one_hot, activation, entropy

    def train_step(self, data):
        if keras.backend.backend() != "tensorflow":
            raise InputError(
                "DAFL's two-player step is written for TensorFlow; unset KERAS_BACKEND. "
                f"Received: KERAS_BACKEND={keras.backend.backend()!r}"
            )
        import tensorflow as tf

        x = data[0] if isinstance(data, (tuple, list)) else data
        batch_size = ops.shape(x)[0]
        latent = keras.random.normal((batch_size, self.latent_dim), seed=self.seed_generator)
        with tf.GradientTape() as generator_tape:
            pixels = self(latent, training=True)
            teacher_logits, features = self.teacher_taps(pixels, training=False)
            generator_loss, one_hot, activation, entropy = self.generator_losses(
                teacher_logits, features
            )
        with tf.GradientTape() as student_tape:
            student_logits = self.student(ops.stop_gradient(pixels), training=True)
            kd = ops.mean(
                tempered_kl_per_sample(
                    ops.stop_gradient(teacher_logits), student_logits, self.temperature
                )
            )
            student_loss = kd + regularisation_loss(self.student)
        generator_variables = self.generator.trainable_variables
        student_variables = self.student.trainable_variables
        self.generator_optimizer.apply_gradients(
            zip(generator_tape.gradient(generator_loss, generator_variables), generator_variables)
        )
        self.student_optimizer.apply_gradients(
            zip(student_tape.gradient(student_loss, student_variables), student_variables)
        )
        agreement = ops.cast(
            ops.argmax(student_logits, axis=-1) == ops.argmax(teacher_logits, axis=-1), "float32"
        )
        for name, value in (
            ("loss", generator_loss),
            ("one_hot", one_hot),
            ("activation", activation),
            ("entropy", entropy),
            ("kd", kd),
            ("teacher_agreement", ops.mean(agreement)),
        ):
            self.trackers[name].update_state(value)
        return {name: tracker.result() for name, tracker in self.trackers.items()}
