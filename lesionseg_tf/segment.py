"""A photograph to its mask (sections 3.2 to 3.4): the one composition of the steps
around the network, and the reference a port to another runtime must match.

    photograph [H, W, 3] uint8 RGB
      -> resize to the network's square input, bilinear with antialiasing, rounded to
         uint8 (`pipeline.resize_image`; section 3.2 resizes to 448x448)
      -> per-image standardization (`pipeline.standardize`:
         `tf.image.per_image_standardization`, section 3.2)
      -> the network: [1, s, s, 2] logits (background, lesion), section 3.1
      -> the lesion probability, softmax (`postprocess.lesion_probability`)
      -> section 3.4 at the photograph's size (`postprocess.probability_to_mask`):
         0-255 scale rounded, bicubic upscaling, lesion at >= 128, opening with the
         3x3 cross
      -> mask [H, W] uint8, 0 background / 255 lesion.

Every runtime runs this: the SavedModel's signatures trace `segment_photograph`
(`export`), `inference.LiteSegmenter` runs it eagerly around a LiteRT network, and
the browser page's module (web/) mirrors each step, tied to these functions by tests.
"""

import tensorflow as tf

from lesionseg_tf import pipeline, postprocess


def network_input(image, *, image_size):
    """`[H, W, 3]` uint8 photograph -> `[1, image_size, image_size, 3]` float32, the
    network's standardized input (section 3.2)."""
    return pipeline.standardize(pipeline.resize_image(image[tf.newaxis], image_size=image_size))


def segment_photograph(network, *, image, image_size, tta=False):
    """One photograph's mask, the whole way (sections 3.2 and 3.4): `network_input`,
    `network`, the lesion probability (over the 8 rotations/flips with `tta`), then
    `postprocess.probability_to_mask` at the photograph's size. What the SavedModel's
    signatures trace, and what `inference.LiteSegmenter` runs eagerly around a LiteRT
    network: one composition.

    Args:
      network: `[batch, s, s, 3]` float32 standardized -> `[batch, s, s, 2]` logits.
      image: `[H, W, 3]` uint8 RGB.

    Returns:
      `[H, W]` uint8 0/255.
    """
    height, width = tf.shape(image)[0], tf.shape(image)[1]
    inputs = network_input(image, image_size=image_size)
    if tta:
        probability = postprocess.tta_lesion_probability(network, images=inputs)[0]
    else:
        probability = postprocess.lesion_probability(network(inputs))[0]
    return postprocess.probability_to_mask(probability, height=height, width=width)
