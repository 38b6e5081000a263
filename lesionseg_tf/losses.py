"""The training losses: the paper's per-pixel cross-entropy (section 3.3) and two
overlap losses that are not in the paper (`config.LOSSES`).

Every loss takes the network's `[batch, H, W, 2]` float32 logits (background,
lesion) and `[batch, H, W, 1]` int labels (1 = lesion), as the training step feeds
them, and returns the mean over the batch.
"""

import keras
import tensorflow as tf

from lesionseg_tf import postprocess
from lesionseg_tf.config import LOSSES


def lesion_probability(logits):
    """`[batch, H, W, 2]` logits -> `[batch, H, W, 1]` lesion probability
    (`postprocess.lesion_probability`, with the channel axis kept)."""
    return postprocess.lesion_probability(logits)[..., tf.newaxis]


@keras.saving.register_keras_serializable(package="lesionseg_tf")
class SoftJaccard(keras.losses.Loss):
    """One minus the soft Jaccard index of each image, averaged over the batch (the
    Jaccard distance of Yuan, Chao and Lo 2017, IEEE Trans. Med. Imaging 36(9), the
    loss of the ISIC 2017 winner): the training loss that scores what ISIC ranks, the
    per-image Jaccard, with the probability standing for the binary mask.

        loss_i = 1 - (sum(p t) + s) / (sum(p) + sum(t) - sum(p t) + s)

    over the pixels of image i, p the lesion probability and t the label; the
    smoothing `s` (one pixel) keeps an image without lesion defined.
    """

    def __init__(self, smoothing=1.0, name="soft_jaccard", **kwargs):
        super().__init__(name=name, **kwargs)
        self.smoothing = smoothing

    def call(self, y_true, y_pred):
        probability = lesion_probability(y_pred)
        truth = tf.reshape(tf.cast(y_true, tf.float32), tf.shape(probability))
        axes = [1, 2, 3]
        intersection = tf.reduce_sum(probability * truth, axes)
        union = tf.reduce_sum(probability, axes) + tf.reduce_sum(truth, axes) - intersection
        return 1.0 - (intersection + self.smoothing) / (union + self.smoothing)

    def get_config(self):
        return {**super().get_config(), "smoothing": self.smoothing}


@keras.saving.register_keras_serializable(package="lesionseg_tf")
class CrossEntropyDice(keras.losses.Loss):
    """The paper's per-pixel cross-entropy plus Keras' soft Dice loss of each image's
    lesion probability (`keras.losses.dice` over height, width and channel), averaged
    over the batch: the pixels' calibration from the first, the overlap from the second."""

    def __init__(self, name="cross_entropy_dice", **kwargs):
        super().__init__(name=name, **kwargs)

    def call(self, y_true, y_pred):
        logits = tf.cast(y_pred, tf.float32)
        labels = tf.reshape(tf.cast(y_true, tf.int32), tf.shape(logits)[:-1])
        pixel_loss = keras.losses.sparse_categorical_crossentropy(labels, logits, from_logits=True)
        probability = lesion_probability(logits)
        truth = tf.cast(labels[..., tf.newaxis], tf.float32)
        return tf.reduce_mean(pixel_loss, axis=[1, 2]) + keras.losses.dice(
            truth, probability, axis=(1, 2, 3)
        )


def make_loss(name):
    """The Keras loss of a `config.LOSSES` name: "cross_entropy" (the paper's,
    section 3.3: per-pixel softmax cross-entropy over the batch's pixels),
    "soft_jaccard" (`SoftJaccard`) or "cross_entropy_dice" (`CrossEntropyDice`)."""
    if name == "cross_entropy":
        return keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    if name == "soft_jaccard":
        return SoftJaccard()
    if name == "cross_entropy_dice":
        return CrossEntropyDice()
    raise ValueError(f"loss must be one of {', '.join(LOSSES)}, got {name!r}")
