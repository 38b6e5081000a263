"""The Keras metric of training: the per-image Jaccard in the graph (section 3.3's
selection score), the twin of `metrics.image_metrics`' Jaccard on whole masks (the
tests tie the two)."""

import keras
import tensorflow as tf


@keras.saving.register_keras_serializable(package="lesionseg_tf")
class PerImageJaccard(keras.metrics.Metric):
    """Mean over images of the lesion Jaccard index, prediction = argmax of the logits.

    `y_true`: `[batch, H, W]` or `[batch, H, W, 1]` labels, lesion where > 0.
    `y_pred`: `[batch, H, W, 2]` logits or probabilities (background, lesion).
    Used as the training's validation score and early-stopping criterion
    (paper section 3.3: "trained until validation mean IoU stops improving").
    """

    def __init__(self, name="jaccard", **kwargs):
        super().__init__(name=name, **kwargs)
        self.total = self.add_variable(shape=(), initializer="zeros", name="total")
        self.count = self.add_variable(shape=(), initializer="zeros", name="count")

    def update_state(self, y_true, y_pred, sample_weight=None):
        if sample_weight is not None:
            raise ValueError("PerImageJaccard does not take sample weights")
        with tf.name_scope(self.name):  # named, for profiles (tools.profile_step)
            truth = tf.reshape(tf.convert_to_tensor(y_true) > 0, tf.shape(y_pred)[:-1])
            prediction = tf.argmax(y_pred, axis=-1) == 1
            axes = [1, 2]
            intersection = tf.reduce_sum(tf.cast(truth & prediction, tf.float32), axes)
            union = tf.reduce_sum(tf.cast(truth | prediction, tf.float32), axes)
            jaccard = tf.where(union > 0, intersection / tf.maximum(union, 1.0), 1.0)
        self.total.assign_add(tf.reduce_sum(jaccard))
        self.count.assign_add(tf.cast(tf.shape(jaccard)[0], tf.float32))

    def result(self):
        return tf.math.divide_no_nan(self.total, self.count)

    def reset_state(self):
        self.total.assign(0.0)
        self.count.assign(0.0)
