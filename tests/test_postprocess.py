"""Section 3.4 post-processing, held to independent references: Pillow's bicubic
(Keys, a = -0.5) for the upscaling, OpenCV and scikit-image for the opening."""

import cv2
import numpy as np
import PIL.Image
import pytest
import skimage.morphology
import tensorflow as tf

from lesionseg_tf import postprocess

DISK = skimage.morphology.disk(1).astype(np.uint8)
ROUNDING = 0.25  # grey levels between TensorFlow's and Pillow's bicubic, at most


def pillow_bicubic(values, height, width):
    """Float bicubic resampling by Pillow: Keys' kernel, a = -0.5, half-pixel centres."""
    image = PIL.Image.fromarray(values.astype(np.float32), mode="F")
    return np.asarray(image.resize((width, height), PIL.Image.Resampling.BICUBIC))


def reference_mask(probability, height, width):
    """Section 3.4 written out with other libraries: 0-255 scale, Pillow's bicubic
    upscaling rounded to 8 bits, threshold at 128, OpenCV's opening with
    scikit-image's disk (pixels outside the image neither erode nor dilate).

    Returns:
      The mask, and the upscaled values (to find pixels at the threshold's edge).
    """
    scaled = np.clip(np.rint(probability * 255), 0, 255)
    upscaled = pillow_bicubic(scaled, height, width)
    binary = (np.clip(np.rint(upscaled), 0, 255) >= 128).astype(np.uint8)
    eroded = cv2.erode(binary, DISK, borderType=cv2.BORDER_CONSTANT, borderValue=1)
    opened = cv2.dilate(eroded, DISK, borderType=cv2.BORDER_CONSTANT, borderValue=0)
    return opened * 255, upscaled


def random_probability(rng, size):
    """Smooth blobs plus noise, so that edges, specks and spurs all occur."""
    coarse = rng.random((max(2, size // 8),) * 2).astype(np.float32)
    smooth = cv2.resize(coarse, (size, size), interpolation=cv2.INTER_CUBIC)
    return np.clip(smooth + rng.normal(0, 0.15, (size, size)), 0, 1).astype(np.float32)


SIZES = [(16, 50, 37), (32, 32, 32), (64, 480, 640), (112, 301, 517), (64, 64, 200), (64, 70, 200)]


# Upscaling only: Pillow widens the kernel when it shrinks (antialiasing), the
# section 3.4 upscaling never shrinks.
@pytest.mark.parametrize(
    "shape,size",
    [((7, 9), (50, 31)), ((64, 64), (301, 517)), ((32, 48), (32, 48)), ((40, 40), (41, 90))],
)
def test_bicubic_is_keys_kernel_as_in_pillow(shape, size):
    values = np.random.default_rng(0).integers(0, 256, shape).astype(np.float32)
    rows, columns = (
        postprocess.bicubic_weights(n, new_size=new).numpy() for n, new in zip(shape, size)
    )
    got = rows.T @ values @ columns
    assert got.shape == size
    # The two matrix products are TensorFlow's 2-D op...
    np.testing.assert_allclose(
        got,
        tf.image.resize(values[np.newaxis, :, :, np.newaxis], size, method="bicubic").numpy()[
            0, :, :, 0
        ],
        atol=1e-3,
    )
    # ...and that is Keys' kernel.
    expected = pillow_bicubic(values, *size)
    # TensorFlow reads the kernel from a table of 1024 steps per pixel, Pillow computes
    # it: a fraction of a grey level apart. OpenCV's kernel (a = -0.75) is ~20 apart.
    np.testing.assert_allclose(got, expected, atol=ROUNDING)
    assert np.mean(np.abs(got - expected)) < 0.05


@pytest.mark.parametrize("net,height,width", SIZES)
def test_matches_independent_reference(net, height, width):
    probability = random_probability(np.random.default_rng(net + height), net)
    got = postprocess.probability_to_mask(probability, height=height, width=width).numpy()
    assert got.shape == (height, width) and got.dtype == np.uint8
    assert set(np.unique(got)) <= {0, 255}
    expected, upscaled = reference_mask(probability, height, width)
    # Pixels may differ only where the upscaled value lies within the kernels' rounding
    # of the threshold's edge (127.5), and then only they and the pixels their opening
    # reaches.
    edge = cv2.dilate((np.abs(upscaled - 127.5) < ROUNDING).astype(np.uint8), np.ones((5, 5)))
    differ = got != expected
    assert not np.any(differ & (edge == 0)), np.argwhere(differ & (edge == 0))[:5]
    assert np.mean(differ) < 1e-3


def test_opening_is_the_disk_opening_of_opencv_and_skimage():
    # At the network's own size the bicubic step is the identity, so the opening
    # alone is compared on a random binary image, border included.
    binary = (np.random.default_rng(0).random((30, 45)) > 0.4).astype(np.uint8)
    got = postprocess.probability_to_mask(binary.astype(np.float32), height=30, width=45).numpy()
    np.testing.assert_array_equal(got, cv2.morphologyEx(binary * 255, cv2.MORPH_OPEN, DISK))
    inner = (slice(2, -2), slice(2, -2))  # skimage treats the image border differently
    expected = skimage.morphology.opening(binary > 0, skimage.morphology.disk(1))
    np.testing.assert_array_equal(got[inner] > 0, expected[inner])


def test_opening_removes_specks_and_threshold_is_half():
    probability = np.zeros((40, 40), np.float32)
    probability[10:30, 10:30] = 1.0
    probability[2, 2] = 1.0  # an isolated speck at network resolution
    mask = postprocess.probability_to_mask(probability, height=40, width=40).numpy()
    assert mask[2, 2] == 0 and mask[20, 20] == 255
    half, below = (
        postprocess.probability_to_mask(np.full((8, 8), p), height=8, width=8).numpy()
        for p in (0.5, 0.498)
    )
    assert half.min() == 255 and below.max() == 0


def test_largest_component_and_fill_holes():
    probability = np.zeros((60, 60), np.float32)
    probability[5:40, 5:40] = 1.0
    probability[15:25, 15:25] = 0.0  # a hole
    probability[48:56, 48:56] = 1.0  # a smaller second region
    plain = postprocess.probability_to_mask(probability, height=60, width=60).numpy()
    assert plain[20, 20] == 0 and plain[52, 52] == 255
    assert postprocess.refine(plain) is plain  # the paper's pipeline: no option
    largest = postprocess.refine(plain, keep_largest_component=True)
    assert largest[52, 52] == 0 and largest[10, 10] == 255 and largest[20, 20] == 0
    filled = postprocess.refine(plain, fill_mask_holes=True)
    assert filled[20, 20] == 255 and filled[52, 52] == 255 and filled[45, 45] == 0
    np.testing.assert_array_equal(filled[plain > 0], 255)  # filling only adds


def test_central_component_keeps_the_region_nearest_the_centre():
    mask = np.zeros((60, 80), np.uint8)
    mask[0:30, 0:30] = 255  # the largest, in a corner (a ruler, a dark vignette)
    mask[28:34, 38:44] = 255  # small, over the centre (29.5, 39.5)
    mask[50:58, 70:78] = 255  # another corner
    central = postprocess.refine(mask, keep_central_component=True)
    assert central[30, 40] == 255 and central[10, 10] == 0 and central[55, 75] == 0
    assert postprocess.refine(mask, keep_largest_component=True)[10, 10] == 255
    # Equally near the centre: the larger region.
    tie = np.zeros((21, 21), np.uint8)  # centre (10, 10)
    tie[4:17, 18] = 255  # 13 pixels, the nearest 8 to the right of the centre
    tie[10, 0:3] = 255  # 3 pixels, the nearest 8 to the left
    kept = postprocess.central_component(tie)
    assert kept[10, 18] == 255 and kept[10, 1] == 0
    one = np.zeros((9, 9), np.uint8)
    one[1:3, 1:3] = 255
    assert postprocess.central_component(one) is one  # a single region stays
    with pytest.raises(ValueError, match="not both"):
        postprocess.refine(mask, keep_largest_component=True, keep_central_component=True)


def test_fill_holes_keeps_open_bays():
    mask = np.zeros((20, 20), np.uint8)
    mask[5:15, 5:15] = 255
    mask[8:12, 8:20] = 0  # a bay open to the image border is not a hole
    np.testing.assert_array_equal(postprocess.fill_holes(mask), mask)


def test_tta_is_the_mean_over_the_eight_transforms():
    rng = np.random.default_rng(1)
    images = rng.normal(size=(1, 8, 8, 3)).astype(np.float32)
    weights = rng.normal(size=(8, 8, 2)).astype(np.float32)

    def position_dependent(batch):  # not equivariant, so each orientation differs
        return batch[..., :2] * weights

    got = postprocess.tta_lesion_probability(position_dependent, images=images).numpy()[0]
    expected = []
    for k in range(4):
        for flip in (False, True):
            x = np.rot90(images[0], k)
            x = x[:, ::-1] if flip else x
            p = tf.nn.softmax(x[..., :2] * weights).numpy()[..., 1]
            p = p[:, ::-1] if flip else p
            expected.append(np.rot90(p, -k))
    np.testing.assert_allclose(got, np.mean(expected, axis=0), atol=1e-6)
