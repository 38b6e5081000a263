"""The training losses (`losses.make_loss`), against NumPy's arithmetic."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from lesionseg_tf import losses
from lesionseg_tf.config import LOSSES


def batch(seed=0):
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(3, 8, 8, 2)).astype(np.float32) * 3
    labels = (rng.random((3, 8, 8, 1)) > 0.6).astype(np.int32)
    return logits, labels


def lesion_probability(logits):
    logits = logits.astype(np.float64)
    return 1.0 / (1.0 + np.exp(logits[..., 0] - logits[..., 1]))


def cross_entropy(logits, labels):
    """Per pixel: log-sum-exp of the logits minus the true class's logit."""
    logits = logits.astype(np.float64)
    chosen = np.take_along_axis(logits, labels, axis=-1)[..., 0]
    return np.logaddexp(logits[..., 0], logits[..., 1]) - chosen


def test_soft_jaccard_is_one_minus_each_images_soft_jaccard():
    logits, labels = batch()
    p, t = lesion_probability(logits), labels[..., 0]
    intersection = (p * t).sum(axis=(1, 2))
    union = p.sum(axis=(1, 2)) + t.sum(axis=(1, 2)) - intersection
    expected = np.mean(1 - (intersection + 1) / (union + 1))
    got = float(losses.make_loss("soft_jaccard")(labels, logits))
    np.testing.assert_allclose(got, expected, rtol=1e-5)


def test_soft_jaccard_weighs_images_not_pixels():
    """A small lesion missed costs as much as a large one: the loss is a mean over
    images, where the pixel cross-entropy is a mean over pixels."""
    labels = np.zeros((2, 32, 32, 1), np.int32)
    labels[0, :4, :4] = 1  # 16 lesion pixels
    labels[1, :24, :24] = 1  # 576
    confident = np.where(labels == 1, 6.0, -6.0).astype(np.float32)
    logits = np.concatenate([-confident, confident], axis=-1)  # right everywhere
    missed_small, missed_large = logits.copy(), logits.copy()
    background = np.stack([np.full((32, 32), 6.0), np.full((32, 32), -6.0)], -1)
    missed_small[0], missed_large[1] = background, background
    jaccard, pixels = losses.make_loss("soft_jaccard"), losses.make_loss("cross_entropy")
    np.testing.assert_allclose(
        float(jaccard(labels, missed_small)), float(jaccard(labels, missed_large)), atol=0.05
    )
    assert float(pixels(labels, missed_large)) > 10 * float(pixels(labels, missed_small))


def test_cross_entropy_dice_adds_keras_dice_of_each_image():
    logits, labels = batch(1)
    p, t = lesion_probability(logits), labels[..., 0]
    dice = 1 - 2 * (p * t).sum(axis=(1, 2)) / (p.sum(axis=(1, 2)) + t.sum(axis=(1, 2)) + 1e-7)
    expected = np.mean(cross_entropy(logits, labels).mean(axis=(1, 2)) + dice)
    got = float(losses.make_loss("cross_entropy_dice")(labels, logits))
    np.testing.assert_allclose(got, expected, rtol=1e-5)


def test_the_papers_loss_is_the_pixel_cross_entropy():
    logits, labels = batch(2)
    got = float(losses.make_loss("cross_entropy")(labels, logits))
    np.testing.assert_allclose(got, cross_entropy(logits, labels).mean(), rtol=1e-5)


@pytest.mark.parametrize("name", LOSSES)
def test_every_loss_has_gradients_and_survives_saving(name):
    logits, labels = batch(3)
    variable = tf.Variable(logits)
    loss = losses.make_loss(name)
    with tf.GradientTape() as tape:
        value = loss(labels, variable)
    gradient = tape.gradient(value, variable)
    assert np.isfinite(float(value)) and float(tf.reduce_max(tf.abs(gradient))) > 0
    again = keras.losses.deserialize(keras.losses.serialize(loss))
    np.testing.assert_allclose(float(again(labels, logits)), float(value), rtol=1e-6)


def test_an_unknown_loss_is_refused():
    with pytest.raises(ValueError, match="loss must be one of"):
        losses.make_loss("focal")
