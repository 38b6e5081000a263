"""Post-processing (paper section 3.4): the network's lesion probability map at its
input resolution -> a 0/255 mask at the photograph's full resolution.

    probability [h, w] in [0, 1]
      -> 0-255 scale (uint8)
      -> bicubic upscaling to the photograph's height x width
      -> binarization at 128 (value >= 128, i.e. probability >= 0.5, as the argmax)
      -> morphological opening with the 3x3 disk (a cross: skimage.morphology.disk(1),
         OpenCV's 3x3 ellipse), which removes isolated pixels and one-pixel spurs
      -> uint8 mask, 0 background / 255 lesion.

This module is the one home of that pipeline: `probability_to_mask` (NumPy/OpenCV)
serves predict.py and evaluate.py, `probability_to_mask_tf` (TensorFlow ops)
is the same pipeline inside the exported SavedModel's serving graph. Both are
held to each other by the tests. The options beyond the paper (largest connected
component, hole filling, 8-fold test-time augmentation) are off by default.
"""

import cv2
import numpy as np
import tensorflow as tf

from lesionseg_tf import augment

BINARY_THRESHOLD = 128
# 3x3 disk of radius 1: the centre and its 4 neighbours.
DISK_3X3 = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (3, 3))


def lesion_probability(logits):
    """`[..., 2]` logits (background, lesion) -> `[...]` float32 lesion probability."""
    return tf.nn.softmax(tf.cast(logits, tf.float32), axis=-1)[..., 1]


def tta_lesion_probability(logits_fn, images):
    """Lesion probability averaged over the 8 rotations/flips of the input.

    Args:
      logits_fn: maps `[batch, s, s, 3]` float32 to `[batch, s, s, 2]` logits.
      images: `[1, s, s, 3]` float32, one standardized square image.

    Returns:
      `[1, s, s]` float32, the mean of the 8 probability maps, each transformed
      back to the input's orientation.
    """
    codes = tf.range(augment.NUM_TRANSFORMS)
    transforms = tf.stack([codes // 4 % 2, codes // 2 % 2, codes % 2], axis=1) > 0
    batch = augment.apply_transforms(tf.repeat(images, augment.NUM_TRANSFORMS, axis=0), transforms)
    probability = lesion_probability(logits_fn(batch))[..., tf.newaxis]
    restored = augment.apply_transforms(probability, transforms, inverse=True)
    return tf.reduce_mean(restored, axis=0, keepdims=True)[..., 0]


def to_uint8_scale(probability):
    """Probability in [0, 1] -> uint8 on the 0-255 scale, rounded to nearest."""
    return np.clip(np.round(np.asarray(probability, np.float32) * 255.0), 0, 255).astype(np.uint8)


def largest_component(mask):
    """Keeps the largest 8-connected foreground region of a 0/255 uint8 mask."""
    count, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    if count <= 2:  # background plus at most one region
        return mask
    biggest = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    return np.where(labels == biggest, 255, 0).astype(np.uint8)


def fill_holes(mask):
    """Fills the background regions of a 0/255 uint8 mask that do not touch its border."""
    padded = cv2.copyMakeBorder(mask, 1, 1, 1, 1, cv2.BORDER_CONSTANT, value=0)
    outside = padded.copy()
    flood = np.zeros((padded.shape[0] + 2, padded.shape[1] + 2), np.uint8)
    cv2.floodFill(outside, flood, (0, 0), 255)  # everything reachable from the border
    holes = outside[1:-1, 1:-1] == 0
    return np.where(holes, 255, mask).astype(np.uint8)


def probability_to_mask(probability, height, width, *, keep_largest_component=False,
                        fill_mask_holes=False):
    """Paper section 3.4 on the CPU with OpenCV.

    Args:
      probability: `[h, w]` lesion probability at network resolution.
      height, width: size of the original photograph.
      keep_largest_component: keep only the largest connected region (off in the paper).
      fill_mask_holes: fill enclosed holes (off in the paper; the ISIC 2018 rules ask
        for one region without holes).

    Returns:
      `[height, width]` uint8, 0 or 255.
    """
    scaled = to_uint8_scale(probability)
    upscaled = cv2.resize(scaled, (int(width), int(height)), interpolation=cv2.INTER_CUBIC)
    # value > 127 is value >= 128 for uint8; cv2.threshold stays in uint8 (fast, no copies).
    _, binary = cv2.threshold(upscaled, BINARY_THRESHOLD - 1, 255, cv2.THRESH_BINARY)
    mask = cv2.morphologyEx(binary, cv2.MORPH_OPEN, DISK_3X3)
    if keep_largest_component:
        mask = largest_component(mask)
    if fill_mask_holes:
        mask = fill_holes(mask)
    return mask


CUBIC_A = -0.75  # the cubic convolution coefficient of OpenCV's INTER_CUBIC


def _cubic_weights(t):
    """`[n]` fractional offsets -> `[n, 4]` weights of the taps at -1, 0, +1, +2."""
    a = CUBIC_A

    def near(x):  # |x| <= 1
        return ((a + 2) * x - (a + 3)) * x * x + 1

    def far(x):  # 1 < |x| < 2
        return ((a * x - 5 * a) * x + 8 * a) * x - 4 * a

    return tf.stack([far(t + 1), near(t), near(1 - t), far(2 - t)], axis=-1)


def _cubic_resize_axis(x, out_size, axis):
    """Bicubic resampling of a 2-D float32 tensor along one axis, as OpenCV does it:
    half-pixel centres, a = -0.75, edge pixels replicated beyond the border."""
    in_size = tf.shape(x)[axis]
    scale = tf.cast(in_size, tf.float64) / tf.cast(out_size, tf.float64)
    source = (tf.range(out_size, dtype=tf.float64) + 0.5) * scale - 0.5
    base = tf.floor(source)
    weights = _cubic_weights(tf.cast(source - base, tf.float32))
    base = tf.cast(base, tf.int32)
    result = None
    for tap in range(4):
        index = tf.clip_by_value(base + tap - 1, 0, in_size - 1)
        weight = weights[:, tap]
        weight = weight[tf.newaxis, :] if axis == 1 else weight[:, tf.newaxis]
        term = tf.gather(x, index, axis=axis) * weight
        result = term if result is None else result + term
    return result


def _cross_filter(binary, reduce_fn, border_value):
    """Min or max of each pixel and its 4 neighbours; outside pixels read `border_value`."""
    padded = tf.pad(binary, [[1, 1], [1, 1]], constant_values=border_value)
    shifts = [padded[1:-1, 1:-1], padded[:-2, 1:-1], padded[2:, 1:-1],
              padded[1:-1, :-2], padded[1:-1, 2:]]
    return reduce_fn(tf.stack(shifts), axis=0)


def probability_to_mask_tf(probability, height, width):
    """Paper section 3.4 in TensorFlow ops, for the exported serving graph.

    The same steps as `probability_to_mask` without the options. The bicubic
    step reproduces OpenCV's kernel (TensorFlow's own uses a = -0.5); OpenCV
    computes it in fixed point, so a pixel whose value lies within rounding of
    the threshold can still come out differently.

    Args:
      probability: `[h, w]` float32 lesion probability.
      height, width: scalar int32 size of the original photograph.

    Returns:
      `[height, width]` uint8, 0 or 255.
    """
    scaled = tf.round(tf.clip_by_value(probability, 0.0, 1.0) * 255.0)
    upscaled = _cubic_resize_axis(_cubic_resize_axis(scaled, width, axis=1), height, axis=0)
    binary = tf.cast(tf.clip_by_value(tf.round(upscaled), 0.0, 255.0) >= BINARY_THRESHOLD,
                     tf.uint8)
    # Opening = erosion then dilation; as in OpenCV, pixels outside the image never
    # erode the border (read as 1) nor dilate into it (read as 0).
    eroded = _cross_filter(binary, tf.reduce_min, 1)
    opened = _cross_filter(eroded, tf.reduce_max, 0)
    return opened * 255
