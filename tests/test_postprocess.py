import cv2
import numpy as np
import pytest
import skimage.morphology
import tensorflow as tf

from lesionseg_tf import postprocess


def reference_mask(probability, height, width):
    """Section 3.4 written out independently with OpenCV: 0-255 scale, bicubic
    upscaling, threshold at 128, opening with the 3x3 disk."""
    scaled = np.clip(np.rint(probability * 255), 0, 255).astype(np.uint8)
    big = cv2.resize(scaled, dsize=(width, height), interpolation=cv2.INTER_CUBIC)
    binary = (big >= 128).astype(np.uint8)
    cross = np.array([[0, 1, 0], [1, 1, 1], [0, 1, 0]], np.uint8)
    eroded = cv2.erode(binary, cross, borderType=cv2.BORDER_CONSTANT, borderValue=1)
    opened = cv2.dilate(eroded, cross, borderType=cv2.BORDER_CONSTANT, borderValue=0)
    return opened * 255


def random_probability(rng, size):
    """Smooth blobs plus noise, so that edges, specks and spurs all occur."""
    coarse = rng.random((max(2, size // 8),) * 2).astype(np.float32)
    smooth = cv2.resize(coarse, (size, size), interpolation=cv2.INTER_CUBIC)
    return np.clip(smooth + rng.normal(0, 0.15, (size, size)), 0, 1).astype(np.float32)


SIZES = [(16, 50, 37), (32, 32, 32), (64, 480, 640), (112, 301, 517), (64, 64, 200)]


@pytest.mark.parametrize("net,height,width", SIZES)
def test_matches_independent_opencv_reference(net, height, width):
    probability = random_probability(np.random.default_rng(net + height), net)
    got = postprocess.probability_to_mask(probability, height, width)
    assert got.shape == (height, width) and got.dtype == np.uint8
    np.testing.assert_array_equal(got, reference_mask(probability, height, width))
    assert set(np.unique(got)) <= {0, 255}


def test_disk_is_the_skimage_disk():
    np.testing.assert_array_equal(postprocess.DISK_3X3, skimage.morphology.disk(1))


def test_opening_agrees_with_skimage_inside_the_image():
    probability = random_probability(np.random.default_rng(5), 64)
    mask = postprocess.probability_to_mask(probability, 200, 240)
    scaled = cv2.resize(postprocess.to_uint8_scale(probability), (240, 200),
                        interpolation=cv2.INTER_CUBIC)
    expected = skimage.morphology.opening(scaled >= 128, skimage.morphology.disk(1))
    inner = (slice(2, -2), slice(2, -2))  # skimage treats the image border differently
    np.testing.assert_array_equal(mask[inner] > 0, expected[inner])


def test_opening_removes_specks_and_threshold_is_half():
    probability = np.zeros((40, 40), np.float32)
    probability[10:30, 10:30] = 1.0
    probability[2, 2] = 1.0  # an isolated speck at network resolution
    mask = postprocess.probability_to_mask(probability, 40, 40)
    assert mask[2, 2] == 0 and mask[20, 20] == 255
    assert postprocess.probability_to_mask(np.full((8, 8), 0.5, np.float32), 8, 8).min() == 255
    assert postprocess.probability_to_mask(np.full((8, 8), 0.498, np.float32), 8, 8).max() == 0


def test_largest_component_and_fill_holes():
    probability = np.zeros((60, 60), np.float32)
    probability[5:40, 5:40] = 1.0
    probability[15:25, 15:25] = 0.0  # a hole
    probability[48:56, 48:56] = 1.0  # a smaller second region
    plain = postprocess.probability_to_mask(probability, 60, 60)
    assert plain[20, 20] == 0 and plain[52, 52] == 255
    largest = postprocess.probability_to_mask(probability, 60, 60, keep_largest_component=True)
    assert largest[52, 52] == 0 and largest[10, 10] == 255 and largest[20, 20] == 0
    filled = postprocess.probability_to_mask(probability, 60, 60, fill_mask_holes=True)
    assert filled[20, 20] == 255 and filled[52, 52] == 255 and filled[45, 45] == 0
    np.testing.assert_array_equal(filled[plain > 0], 255)  # filling only adds


def test_fill_holes_keeps_open_bays():
    mask = np.zeros((20, 20), np.uint8)
    mask[5:15, 5:15] = 255
    mask[8:12, 8:20] = 0  # a bay open to the image border is not a hole
    np.testing.assert_array_equal(postprocess.fill_holes(mask), mask)


@pytest.mark.parametrize("net,height,width", SIZES)
def test_tensorflow_version_agrees(net, height, width):
    probability = random_probability(np.random.default_rng(net + width), net)
    expected = postprocess.probability_to_mask(probability, height, width)
    got = postprocess.probability_to_mask_tf(tf.constant(probability), height, width).numpy()
    assert got.shape == expected.shape and got.dtype == np.uint8
    assert np.mean(got == expected) >= 0.999  # same kernel; only fixed-point rounding differs


def test_tensorflow_opening_matches_opencv_exactly():
    # Same binary input to both openings (nearest upscaling removes the bicubic difference).
    binary = (np.random.default_rng(0).random((30, 45)) > 0.4).astype(np.float32)
    got = postprocess.probability_to_mask_tf(tf.constant(binary), 30, 45).numpy()
    expected = cv2.morphologyEx((binary * 255).astype(np.uint8), cv2.MORPH_OPEN,
                                postprocess.DISK_3X3)
    np.testing.assert_array_equal(got, expected)


def test_tta_is_the_mean_over_the_eight_transforms():
    rng = np.random.default_rng(1)
    images = rng.normal(size=(1, 8, 8, 3)).astype(np.float32)
    weights = rng.normal(size=(8, 8, 2)).astype(np.float32)

    def position_dependent(batch):  # not equivariant, so each orientation differs
        return batch[..., :2] * weights

    got = postprocess.tta_lesion_probability(position_dependent, images).numpy()[0]
    expected = []
    for k in range(4):
        for flip in (False, True):
            x = np.rot90(images[0], k)
            x = x[:, ::-1] if flip else x
            p = tf.nn.softmax(x[..., :2] * weights).numpy()[..., 1]
            p = p[:, ::-1] if flip else p
            expected.append(np.rot90(p, -k))
    np.testing.assert_allclose(got, np.mean(expected, axis=0), atol=1e-6)


@pytest.mark.parametrize("shape,size", [((7, 9), (50, 31)), ((64, 64), (301, 517)),
                                        ((32, 48), (32, 48)), ((40, 40), (20, 90))])
def test_tensorflow_bicubic_reproduces_opencv(shape, size):
    values = np.random.default_rng(0).integers(0, 256, shape).astype(np.float32)
    expected = cv2.resize(values, (size[1], size[0]), interpolation=cv2.INTER_CUBIC)
    got = postprocess._cubic_resize_axis(
        postprocess._cubic_resize_axis(tf.constant(values), size[1], axis=1), size[0], axis=0)
    np.testing.assert_allclose(got.numpy(), expected, atol=2e-3)
