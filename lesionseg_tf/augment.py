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
        [batch_size, 3], seed=seed, minval=0, maxval=2, dtype=tf.int32)
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
    for step in (reversed(steps) if inverse else steps):
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
        tf.shape(images)[1], tf.shape(images)[2],
        message="random_dihedral needs square images (height == width)")
    transforms = draw_transforms(tf.shape(images)[0], seed=seed)
    return (apply_transforms(images, transforms=transforms),
            apply_transforms(masks, transforms=transforms))


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
    seeds = tf.random.experimental.stateless_split(tf.cast(seed, tf.int64),
                                                   num=tf.shape(images)[0])

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
