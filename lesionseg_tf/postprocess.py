"""Post-processing (paper section 3.4): the network's lesion probability map at its
input resolution -> a 0/255 mask at the photograph's full resolution.

    probability [h, w] in [0, 1]
      -> 0-255 scale, rounded (the network output as an 8-bit image)
      -> bicubic upscaling to the photograph's height x width: TensorFlow's
         `tf.image.resize(method="bicubic")` kernel, Keys' cubic convolution
         (a = -0.5), half-pixel centres, taps outside the image dropped and the rest
         renormalized, applied as two matrix products (`bicubic_weights`); the
         result read as 8 bits, as an image resize gives
      -> binarization at 128 (value >= 128, i.e. probability >= 0.5, as the argmax)
      -> morphological opening with the 3x3 disk (the centre and its 4 neighbours:
         `skimage.morphology.disk(1)`), which removes isolated pixels and one-pixel
         spurs; pixels outside the photograph neither erode nor dilate it
      -> uint8 mask, 0 background / 255 lesion.

`probability_to_mask` is the one home of that pipeline. It is traced into the
exported SavedModel's `segment` signatures (`export.export_saved_model`), and
predict.py and evaluate.py get their masks from those signatures, so the score
evaluate.py prints is the score of the deployed graph. The options beyond the
paper: 8-fold test-time augmentation (`tta_lesion_probability`, also in the
graph, signature `segment_tta`), and the largest connected component and hole
filling (`refine`, OpenCV steps on the graph's mask), all off by default.
"""

import cv2
import numpy as np
import tensorflow as tf

from lesionseg_tf import augment

BINARY_THRESHOLD = 128
RESIZE_METHOD = "bicubic"


def lesion_probability(logits):
    """`[..., 2]` logits (background, lesion) -> `[...]` float32 lesion probability."""
    return tf.nn.softmax(tf.cast(logits, tf.float32), axis=-1)[..., 1]


def tta_lesion_probability(logits_fn, *, images):
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
    batch = augment.apply_transforms(
        tf.repeat(images, augment.NUM_TRANSFORMS, axis=0), transforms=transforms
    )
    probability = lesion_probability(logits_fn(batch))[..., tf.newaxis]
    restored = augment.apply_transforms(probability, transforms=transforms, inverse=True)
    return tf.reduce_mean(restored, axis=0, keepdims=True)[..., 0]


def _disk_extreme(binary, combine, outside):
    """`combine` (`tf.logical_and`: erosion, `tf.logical_or`: dilation) of each
    pixel of a `[H, W]` bool image and its 4 neighbours, the 3x3 disk; positions
    outside the image read `outside`.

    Written as shifted slices of a bool image: AND/OR of five views, where
    `tf.nn.max_pool2d` or `tf.nn.dilation2d` would compute in numbers over a
    window, several times slower on a 6748x4499 photograph.
    """
    padded = tf.pad(binary, [[1, 1], [1, 1]], constant_values=outside)
    vertical = combine(padded[:-2, 1:-1], padded[2:, 1:-1])
    horizontal = combine(padded[1:-1, :-2], padded[1:-1, 2:])
    return combine(padded[1:-1, 1:-1], combine(vertical, horizontal))


def open_with_disk(binary):
    """Morphological opening of a `[H, W]` bool image with the 3x3 disk: erosion,
    then dilation. As in OpenCV, pixels outside the image never erode the border
    nor dilate into it."""
    eroded = _disk_extreme(binary, tf.logical_and, True)
    return _disk_extreme(eroded, tf.logical_or, False)


def bicubic_weights(size, *, new_size):
    """`[size, new_size]` float32: row i is the response of `tf.image.resize`'s
    bicubic kernel, along one axis, to a unit impulse at input position i.

    Bicubic resampling is linear and separable, so resizing an `[h, w]` image to
    `[H, W]` is `bicubic_weights(h, H).T @ image @ bicubic_weights(w, W)`: with
    the weights read off TensorFlow's own kernel, the same values as
    `tf.image.resize` (within float rounding), computed as matrix products.
    """
    impulses = tf.eye(size)[tf.newaxis, :, :, tf.newaxis]
    return tf.image.resize(impulses, tf.stack([size, new_size]), method=RESIZE_METHOD)[0, :, :, 0]


BAND_ROWS = 256  # output rows upscaled at a time


def _upscale_and_threshold(scaled, height, width):
    """`[h, w]` float32 0-255 image -> `[height, width]` bool: its bicubic
    upscaling, read as 8 bits, >= 128.

    The upscaling is `bicubic_weights`' two matrix products, the second made
    `BAND_ROWS` output rows at a time and thresholded at once, so the float image
    (121 MB for a 6748x4499 photograph) never exists whole.
    """
    size = tf.shape(scaled)[0]
    narrow = tf.linalg.matmul(
        scaled, bicubic_weights(tf.shape(scaled)[1], new_size=width)
    )  # [h, W]
    bands = (height + BAND_ROWS - 1) // BAND_ROWS
    rows = tf.pad(
        tf.transpose(bicubic_weights(size, new_size=height)),
        [[0, bands * BAND_ROWS - height], [0, 0]],
    )
    # The 8-bit value is >= 128 exactly where the float is >= 127.5 (rounding half
    # to even takes 127.5 to 128): one comparison instead of rounding and saturating.
    binary = tf.map_fn(
        lambda band: tf.linalg.matmul(band, narrow) >= BINARY_THRESHOLD - 0.5,
        tf.reshape(rows, [bands, BAND_ROWS, size]),
        fn_output_signature=tf.TensorSpec([BAND_ROWS, None], tf.bool),
    )
    return tf.reshape(binary, [bands * BAND_ROWS, width])[:height]


def probability_to_mask(probability, *, height, width):
    """Paper section 3.4, in TensorFlow operations.

    Args:
      probability: `[h, w]` float32 lesion probability at network resolution.
      height, width: the photograph's size (Python or scalar int32 tensors).

    Returns:
      `[height, width]` uint8 tensor, 0 or 255.
    """
    probability = tf.convert_to_tensor(probability, tf.float32)
    height, width = (tf.convert_to_tensor(x, tf.int32) for x in (height, width))
    scaled = tf.round(tf.clip_by_value(probability, 0.0, 1.0) * 255.0)
    lesion = open_with_disk(_upscale_and_threshold(scaled, height, width))
    return tf.cast(lesion, tf.uint8) * 255


def largest_component(mask):
    """Keeps the largest 8-connected foreground region of a 0/255 uint8 mask."""
    count, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    if count <= 2:  # background plus at most one region
        return mask
    biggest = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    return np.where(labels == biggest, 255, 0).astype(np.uint8)


def central_component(mask):
    """Keeps the 8-connected foreground region of a 0/255 uint8 mask that comes nearest
    the photograph's centre (where dermoscopy centres the lesion): a pixel of it lies
    closest to the centre; among regions equally close, the largest."""
    # Imported here: scipy.ndimage's import (about 0.25 s) would slow every command's
    # start for an option that is off by default.
    import scipy.ndimage  # pylint: disable=import-outside-toplevel

    count, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    if count <= 2:
        return mask
    rows, columns = np.indices(mask.shape, dtype=np.float64)
    centre_distance = np.hypot(rows - (mask.shape[0] - 1) / 2, columns - (mask.shape[1] - 1) / 2)
    regions = np.arange(1, count)
    nearest = scipy.ndimage.minimum(centre_distance, labels=labels, index=regions)
    areas = stats[1:, cv2.CC_STAT_AREA]
    chosen = regions[np.lexsort((-areas, nearest))[0]]
    return np.where(labels == chosen, 255, 0).astype(np.uint8)


def fill_holes(mask):
    """Fills the background regions of a 0/255 uint8 mask that do not touch its border."""
    padded = cv2.copyMakeBorder(mask, 1, 1, 1, 1, cv2.BORDER_CONSTANT, value=0)
    outside = padded.copy()
    flood = np.zeros((padded.shape[0] + 2, padded.shape[1] + 2), np.uint8)
    cv2.floodFill(outside, flood, (0, 0), 255)  # everything reachable from the border
    holes = outside[1:-1, 1:-1] == 0
    return np.where(holes, 255, mask).astype(np.uint8)


def refine(
    mask, *, keep_largest_component=False, keep_central_component=False, fill_mask_holes=False
):
    """The options beyond the paper, on a `[H, W]` uint8 0/255 mask of the graph.

    Args:
      keep_largest_component: keep only the largest connected region.
      keep_central_component: keep only the region nearest the centre
        (`central_component`); not with `keep_largest_component`.
      fill_mask_holes: fill enclosed holes (the ISIC 2018 rules ask for one region
        without holes).

    Raises:
      ValueError: both components asked for.
    """
    if keep_largest_component and keep_central_component:
        raise ValueError("keep the largest or the central component, not both")
    if keep_largest_component:
        mask = largest_component(mask)
    if keep_central_component:
        mask = central_component(mask)
    if fill_mask_holes:
        mask = fill_holes(mask)
    return mask
