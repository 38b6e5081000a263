import keras
import numpy as np
import pytest

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
    expected = np.pad(x, [(0, 0), (padding, padding), (padding, padding), (0, 0)],
                      mode="reflect")
    got = np.asarray(ReflectionPad2D(padding)(x))
    np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("block,channels", [(2, 8), (4, 32), (4, 64)])
def test_depth_to_space_matches_numpy(block, channels):
    x = np.random.default_rng(block).normal(size=(2, 5, 6, channels)).astype(np.float32)
    np.testing.assert_array_equal(np.asarray(DepthToSpace(block)(x)),
                                  numpy_depth_to_space(x, block))


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
    assert isinstance(keras.saving.deserialize_keras_object(serialized, safe_mode=True),
                      ReflectionPad2D)


def test_layers_reject_bad_arguments():
    with pytest.raises(ValueError, match="padding"):
        ReflectionPad2D(-1)
    with pytest.raises(ValueError, match="block_size"):
        DepthToSpace(1)
