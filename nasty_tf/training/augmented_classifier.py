"""Normal training: a network behind an optional on-device augmenter."""

import keras

from nasty_tf.paired_model import regularisation_loss


class AugmentedClassifier(keras.Model):
    """`network` behind an optional augmenter, trained on plain cross-entropy."""

    def __init__(self, network, augmenter=None, name="augmented_classifier", **kwargs):
        super().__init__(name=name, **kwargs)
        self.network = network
        self.augmenter = augmenter
        self.accuracy_tracker = keras.metrics.SparseCategoricalAccuracy(name="accuracy")
        self.cross_entropy = keras.losses.SparseCategoricalCrossentropy(from_logits=True)

    def call(self, images, training=False):
        images = keras.ops.cast(images, "float32")
        if self.augmenter is not None:
            images = self.augmenter(images, training=training)
        return self.network(images, training=training)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        self.accuracy_tracker.update_state(y, y_pred, sample_weight=sample_weight)
        loss = self.cross_entropy(y, keras.ops.cast(y_pred, "float32"), sample_weight=sample_weight)
        return loss + regularisation_loss(self.network)
