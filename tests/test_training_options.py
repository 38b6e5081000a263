"""The options of the recipe beyond the paper reach the training step: the loss
(`--loss`) and the colour and scale augmentations (`--color_augment`,
`--scale_augment`)."""

import numpy as np
import pytest
import tensorflow as tf

from lesionseg_tf import fitting, losses
from lesionseg_tf.config import LOSSES

tf.config.experimental.enable_op_determinism()


def data(seed=0):
    rng = np.random.default_rng(seed)
    images = tf.image.per_image_standardization(
        rng.integers(0, 256, (4, 32, 32, 3)).astype(np.float32)
    ).numpy()
    labels = np.zeros((4, 32, 32, 1), np.int32)
    labels[:, 8:24, 6:20] = 1
    return images, labels


def model_with(weights=None, **options):
    model = fitting.compiled_model(learning_rate=1e-2, jit_compile=False, **options)
    if weights is not None:
        model.set_weights(weights)
    return model


@pytest.mark.parametrize("name", LOSSES)
def test_the_model_is_trained_on_the_loss_asked_for(name):
    images, labels = data()
    model = model_with(loss=name)
    expected = float(losses.make_loss(name)(labels, model(images, training=False)))
    np.testing.assert_allclose(float(model.test_on_batch(images, labels)[0]), expected, rtol=1e-5)


@pytest.mark.parametrize("option", ["color_augment", "scale_augment"])
def test_an_augmentation_changes_the_step_the_same_way_each_time(option):
    images, labels = data(1)
    start = model_with().get_weights()
    stepped = {}
    for name, on in (("plain", False), ("on", True), ("on again", True)):
        model = model_with(start, **{option: on})
        model.fit(tf.data.Dataset.from_tensors((images, labels)), verbose=0, shuffle=False)
        stepped[name] = model.get_weights()
    # Seeded by the run's seed and the step alone: the same step twice is the same.
    for a, b in zip(stepped["on"], stepped["on again"]):
        np.testing.assert_array_equal(a, b)
    assert any(not np.allclose(a, b) for a, b in zip(stepped["on"], stepped["plain"]))


def test_frozen_batch_norm_keeps_its_statistics_and_scale():
    images, labels = data(3)
    start = model_with().get_weights()
    names = ("gamma", "beta", "moving_mean", "moving_variance")

    def batch_norm_weights(model):
        return [w.numpy() for w in model.weights if w.path.split("/")[-1] in names]

    frozen, learning = model_with(start, batch_norm="frozen"), model_with(start)
    before = batch_norm_weights(frozen)
    for model in (frozen, learning):
        model.fit(tf.data.Dataset.from_tensors((images, labels)), verbose=0, shuffle=False)
    for a, b in zip(batch_norm_weights(frozen), before, strict=True):
        np.testing.assert_array_equal(a, b)
    assert any(not np.array_equal(a, b) for a, b in zip(batch_norm_weights(learning), before))
    # The convolutions still learn.
    conv = frozen.get_layer("conv1_1").kernel.numpy()
    assert not np.array_equal(conv, model_with(start).get_layer("conv1_1").kernel.numpy())
