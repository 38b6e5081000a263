"""On-the-fly augmentation by the 8 rotations/flips of the square (paper section 3.2).

The paper rotates by random multiples of 90 degrees and flips. Together these
form the dihedral group of the square, whose 8 elements are exactly the
combinations of three independent binary choices: transpose (swap height and
width), flip up-down, flip left-right. Drawing the three bits uniformly draws
each of the 8 transforms with probability 1/8, the same distribution as a
uniform k in {0,1,2,3} rotations followed by a fair flip.

The ops are batched (`tf.where` over the batch axis), so they run wherever the
caller runs them: `LesionSegNet.train_step` applies them at the start of each
training step, on the GPU when there is one, rather than per example on the
CPU in the input pipeline.
"""

import tensorflow as tf

from lesionseg_tf.pipeline import standardize

NUM_TRANSFORMS = 8


def draw_transforms(batch_size, *, seed):
    """Draws one dihedral transform per example.

    Args:
      batch_size: scalar int, examples in the batch.
      seed: `[2]` int tensor for the stateless generator; the same seed gives the
        same draws, so a resumed run repeats an uninterrupted one.

    Returns:
      `[batch_size, 3]` bool: (transpose, flip up-down, flip left-right).
    """
    bits = tf.random.stateless_uniform(
        [batch_size, 3], seed=seed, minval=0, maxval=2, dtype=tf.int32
    )
    return tf.cast(bits, tf.bool)


def apply_transforms(tensor, *, transforms, inverse=False):
    """Applies per-example dihedral transforms to `[batch, side, side, channels]`.

    `transforms` is `[batch, 3]` bool from `draw_transforms`: transpose, then flip
    up-down, then flip left-right. With `inverse`, the steps run in reverse order,
    which undoes the transform (each step is its own inverse). Height must equal
    width: a transposed image of another shape could not be batched.
    """

    def pick(flag, changed, unchanged):
        return tf.where(flag[:, tf.newaxis, tf.newaxis, tf.newaxis], changed, unchanged)

    steps = [
        lambda t: pick(transforms[:, 0], tf.transpose(t, [0, 2, 1, 3]), t),
        lambda t: pick(transforms[:, 1], tf.reverse(t, axis=[1]), t),
        lambda t: pick(transforms[:, 2], tf.reverse(t, axis=[2]), t),
    ]
    for step in reversed(steps) if inverse else steps:
        tensor = step(tensor)
    return tensor


def random_dihedral(images, *, masks, seed):
    """Transforms each image and its mask by the same random rotation/flip.

    Args:
      images: `[batch, side, side, channels]`, any dtype.
      masks: `[batch, side, side, 1]`, any dtype.
      seed: `[2]` int tensor.

    Returns:
      `(images, masks)` with the shapes and dtypes they came in with.
    """
    images = tf.convert_to_tensor(images)
    masks = tf.convert_to_tensor(masks)
    tf.debugging.assert_equal(
        tf.shape(images)[1],
        tf.shape(images)[2],
        message="random_dihedral needs square images (height == width)",
    )
    transforms = draw_transforms(tf.shape(images)[0], seed=seed)
    return (
        apply_transforms(images, transforms=transforms),
        apply_transforms(masks, transforms=transforms),
    )


# The ranges of `random_color`, on the photograph rescaled to [0, 1].
BRIGHTNESS_DELTA = 0.1
CONTRAST_RANGE = (0.8, 1.25)
SATURATION_RANGE = (0.7, 1.3)
HUE_DELTA = 0.04  # of the colour circle: about 14 degrees


def random_color(images, *, seed):
    """Changes each standardized image's colour by its own random brightness,
    contrast, saturation and hue (not in the paper: dermoscopy's colour varies with
    the camera and the light), then standardizes it again as section 3.2 does.

    Each image is first rescaled to [0, 1] by its own minimum and maximum, an affine
    map that standardization undoes exactly, so an image is left unchanged where
    every draw is neutral. Brightness and contrast alone would also be undone by
    the standardization; what they change is which pixels the clipping to [0, 1]
    saturates, and saturation and hue change the balance between the channels.

    Args:
      images: `[batch, H, W, 3]` float32, per-image standardized.
      seed: `[2]` int tensor; image k draws from a seed derived from it and k, so
        the same seed gives the same changes.

    Returns:
      `[batch, H, W, 3]` float32, per-image standardized.
    """
    images = tf.convert_to_tensor(images, tf.float32)
    seeds = tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), num=tf.shape(images)[0])

    def change(args):
        image, image_seed = args
        low, high = tf.reduce_min(image), tf.reduce_max(image)
        image = (image - low) / tf.maximum(high - low, 1e-6)
        op_seeds = tf.random.experimental.stateless_split(image_seed, num=4)
        image = tf.image.stateless_random_brightness(image, BRIGHTNESS_DELTA, op_seeds[0])
        image = tf.image.stateless_random_contrast(image, *CONTRAST_RANGE, op_seeds[1])
        image = tf.clip_by_value(image, 0.0, 1.0)
        image = tf.image.stateless_random_saturation(image, *SATURATION_RANGE, op_seeds[2])
        image = tf.image.stateless_random_hue(image, HUE_DELTA, op_seeds[3])
        return standardize(tf.clip_by_value(image, 0.0, 1.0))

    return tf.map_fn(change, (images, seeds), fn_output_signature=tf.float32)


# `random_scale`: the side of the region taken, as a share of the image's side, drawn
# log-uniformly (below 1 zooms in, above 1 zooms out into mirrored surroundings).
SCALE_RANGE = (1 / 1.5, 1.5)


def _lesion_extents(lesion, size):
    """`[batch, side, side]` bool -> `([row start, column start], [row extent, column
    extent])`, each `[batch]` float32 as shares of the side (a lesion-free image: start
    0.5, extent 0)."""
    starts, extents = [], []
    for axis in (1, 2):  # rows, then columns
        present = tf.reduce_any(lesion, axis=3 - axis)
        first = tf.cast(tf.argmax(tf.cast(present, tf.int32), axis=1), tf.float32)
        last = size - tf.cast(
            tf.argmax(tf.cast(tf.reverse(present, [1]), tf.int32), axis=1), tf.float32
        )
        some = tf.reduce_any(present, axis=1)
        starts.append(tf.where(some, first / size, 0.5))
        extents.append(tf.where(some, (last - first) / size, 0.0))
    return starts, extents


def _padded_boxes(corners, region, *, side, pad):
    """Square regions (corners and side as shares of the image's side) as boxes in
    the coordinates of the image mirrored by `pad` pixels on each border, as
    `crop_and_resize` takes them (0 and 1 the centres of the first and last pixels)."""
    size = tf.cast(side, tf.float32)
    padded_size = size + 2 * tf.cast(pad, tf.float32)

    def to_padded(share):
        return (share * size + tf.cast(pad, tf.float32) - 0.5) / (padded_size - 1.0)

    return tf.stack(
        [
            to_padded(corners[0]),
            to_padded(corners[1]),
            to_padded(corners[0] + region),
            to_padded(corners[1] + region),
        ],
        axis=1,
    )


def random_scale(images, *, masks, seed):
    """Zooms and shifts each image and its mask alike, keeping the whole lesion (not in
    the paper: lesions come at every size and place in dermoscopy).

    Each example draws the side of a square region, `SCALE_RANGE` times the image's
    (log-uniformly), widened where needed to hold the lesion's bounding box, and a
    position that keeps the box inside it; the region is resized back to the image's
    side. A region reaching past the border sees the image mirrored there, as
    Table 1's padding does, so a lesion shrunk by zooming out keeps skin around it;
    it reaches past a border only as far as the lesion-free skin there, so the
    mirror shows no second lesion.
    Images are standardized again afterwards (section 3.2).

    Args:
      images: `[batch, side, side, 3]` float32, per-image standardized.
      masks: `[batch, side, side, 1]` int labels (lesion > 0).
      seed: `[2]` int tensor.

    Returns:
      `(images, masks)` with the shapes and dtypes they came in with.
    """
    images = tf.convert_to_tensor(images, tf.float32)
    masks = tf.convert_to_tensor(masks)
    batch, side = tf.shape(images)[0], tf.shape(images)[1]
    size = tf.cast(side, tf.float32)
    draws = tf.random.stateless_uniform([batch, 3], seed=seed)
    low, high = (tf.math.log(tf.constant(v, tf.float32)) for v in SCALE_RANGE)
    region = tf.exp(low + (high - low) * draws[:, 0])
    starts, extents = _lesion_extents(masks[..., 0] > 0, size)
    # The region may reach past a border by no more than the skin between that border
    # and the lesion (its mirror image then holds no second lesion) and than the half
    # side of mirrored margin: on each axis, within [lowest, highest].
    # Two pixels of that skin are kept out of the mirror, for the resampling's rounding.
    keep = 2.0 / size
    lowest = [-tf.minimum(tf.maximum(start - keep, 0.0), 0.5) for start in starts]
    highest = [
        1.0 + tf.minimum(tf.maximum(1.0 - start - extent - keep, 0.0), 0.5)
        for start, extent in zip(starts, extents)
    ]
    region = tf.clip_by_value(
        region,
        tf.maximum(*extents),
        tf.minimum(*(top - bottom for top, bottom in zip(highest, lowest))),
    )
    corners = []
    for k, (start, extent) in enumerate(zip(starts, extents)):
        earliest = tf.maximum(start + extent - region, lowest[k])
        latest = tf.minimum(start, highest[k] - region)
        corners.append(earliest + (latest - earliest) * draws[:, 1 + k])
    pad = side // 2
    boxes = _padded_boxes(corners, region, side=side, pad=pad)
    paddings = [[0, 0], [pad, pad], [pad, pad], [0, 0]]
    indices = tf.range(batch)

    def crop(tensor, method):
        return tf.image.crop_and_resize(
            tf.pad(tensor, paddings, mode="REFLECT"), boxes, indices, [side, side], method=method
        )

    scaled_images = standardize(crop(images, "bilinear"))
    scaled_masks = tf.cast(crop(tf.cast(masks, tf.float32), "nearest"), masks.dtype)
    return tf.ensure_shape(scaled_images, images.shape), tf.ensure_shape(scaled_masks, masks.shape)
