import keras
import numpy as np
import pytest

from lesionseg_tf.layers import BatchNormalization as FusedBatchNormalization
from lesionseg_tf.layers import DepthToSpace, ReflectionPad2D


def numpy_depth_to_space(x, block):
    """Reference for NHWC depth-to-space: channel (i * block + j) * c + k -> pixel (i, j)."""
    b, h, w, channels = x.shape
    c = channels // (block * block)
    x = x.reshape(b, h, w, block, block, c).transpose(0, 1, 3, 2, 4, 5)
    return x.reshape(b, h * block, w * block, c)


@pytest.mark.parametrize("padding", [1, 2, 4])
def test_reflection_pad_matches_numpy_reflect(padding):
    x = np.random.default_rng(padding).normal(size=(2, 9, 7, 3)).astype(np.float32)
    expected = np.pad(x, [(0, 0), (padding, padding), (padding, padding), (0, 0)], mode="reflect")
    got = np.asarray(ReflectionPad2D(padding)(x))
    np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("block,channels", [(2, 8), (4, 32), (4, 64)])
def test_depth_to_space_matches_numpy(block, channels):
    x = np.random.default_rng(block).normal(size=(2, 5, 6, channels)).astype(np.float32)
    np.testing.assert_array_equal(
        np.asarray(DepthToSpace(block)(x)), numpy_depth_to_space(x, block)
    )


def test_depth_to_space_reference_is_the_subpixel_layout():
    # Pixel (i, j) of each 2x2 block comes from channel 2 * i + j (one class).
    x = np.arange(4, dtype=np.float32).reshape(1, 1, 1, 4)
    np.testing.assert_array_equal(numpy_depth_to_space(x, 2)[0, :, :, 0], [[0, 1], [2, 3]])


def test_layers_round_trip_their_config():
    pad = ReflectionPad2D(3, name="p")
    assert ReflectionPad2D.from_config(pad.get_config()).padding == 3
    d2s = DepthToSpace(4, name="d")
    assert DepthToSpace.from_config(d2s.get_config()).block_size == 4
    serialized = keras.saving.serialize_keras_object(pad)
    assert isinstance(
        keras.saving.deserialize_keras_object(serialized, safe_mode=True), ReflectionPad2D
    )


def test_layers_reject_bad_arguments():
    with pytest.raises(ValueError, match="padding"):
        ReflectionPad2D(-1)
    with pytest.raises(ValueError, match="block_size"):
        DepthToSpace(1)


def _train_once(layer, x, upstream):
    """One training-mode call: output, d(output . upstream)/d(x, gamma, beta)."""
    import tensorflow as tf

    with tf.GradientTape() as tape:
        tape.watch(x)
        y = layer(x, training=True)
        loss = tf.reduce_sum(tf.cast(y, tf.float32) * upstream)
    grads = tape.gradient(loss, [x, layer.gamma, layer.beta])
    return [np.asarray(tf.cast(t, tf.float32)) for t in [y, *grads]]


@pytest.mark.parametrize("policy", ["float32", "mixed_bfloat16"])
def test_fused_batch_norm_trains_as_keras_batch_norm(policy):
    import tensorflow as tf

    rng = np.random.default_rng(0)
    # 2x3x3 = 18 values a channel: the fused kernel's Bessel-corrected variance would be
    # 18/17 of the biased one that Keras keeps, far outside the tolerance.
    x = tf.constant(rng.normal(3.0, 2.0, (2, 3, 3, 8)).astype(np.float32))
    upstream = tf.constant(rng.normal(size=(2, 3, 3, 8)).astype(np.float32))
    keras.mixed_precision.set_global_policy(policy)
    try:
        layers = [
            keras.layers.BatchNormalization(momentum=0.5),
            FusedBatchNormalization(momentum=0.5),
        ]
        results = []
        for layer in layers:
            layer.build(x.shape)
            layer.gamma.assign(np.linspace(0.5, 2.0, 8))
            layer.beta.assign(np.linspace(-1.0, 1.0, 8))
            first = _train_once(layer, x, upstream)
            second = _train_once(layer, x * 0.5 + 1.0, upstream)
            statistics = [layer.moving_mean.numpy(), layer.moving_variance.numpy()]
            inference = np.asarray(tf.cast(layer(x, training=False), tf.float32))
            results.append((first, second, statistics, inference))
    finally:
        keras.mixed_precision.set_global_policy("float32")
    tolerance = {"float32": 1e-5, "mixed_bfloat16": 2e-2}[policy]
    for got, expected in zip(results[1], results[0]):
        for a, b in zip(got, expected):
            np.testing.assert_allclose(a, b, rtol=tolerance, atol=tolerance)
    assert results[1][0][0].dtype == np.float32  # compared as float32, computed in bfloat16


def test_fused_batch_norm_frozen_or_inferring_uses_the_moving_statistics():
    x = np.random.default_rng(1).normal(2.0, 3.0, (2, 4, 4, 3)).astype(np.float32)
    layer = FusedBatchNormalization()
    layer.build(x.shape)
    layer.moving_mean.assign([1.0, 2.0, 3.0])
    layer.moving_variance.assign([4.0, 1.0, 0.25])
    expected = (x - [1.0, 2.0, 3.0]) / np.sqrt(np.array([4.0, 1.0, 0.25]) + layer.epsilon)
    np.testing.assert_allclose(np.asarray(layer(x, training=False)), expected, rtol=1e-5, atol=1e-5)
    layer.trainable = False  # a frozen layer normalizes with its moving statistics in training
    np.testing.assert_allclose(np.asarray(layer(x, training=True)), expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(layer.moving_mean.numpy(), [1.0, 2.0, 3.0])
    layer.trainable = True  # and a trained one normalizes with the batch's, and moves them
    trained = np.asarray(layer(x, training=True))
    np.testing.assert_allclose(trained.mean(axis=(0, 1, 2)), [0.0] * 3, atol=1e-5)
    assert not np.allclose(layer.moving_mean.numpy(), [1.0, 2.0, 3.0])


def test_fused_batch_norm_round_trips_as_itself():
    layer = FusedBatchNormalization(momentum=0.9, epsilon=1e-4, name="conv1_1_bn")
    again = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer))
    assert type(again) is FusedBatchNormalization
    assert (again.name, again.momentum, again.epsilon) == ("conv1_1_bn", 0.9, 1e-4)
