"""The paper's Table 1 as data (section 3.1), and what follows from it without building
the network: its receptive field. Imports no TensorFlow (`model` builds the network
from these rows; the study's figure reads the field).
"""

import dataclasses

from lesionseg_tf.config import CONTEXTS, UPSCALE

NUM_CLASSES = 2  # background, lesion


@dataclasses.dataclass(frozen=True)
class ConvSpec:
    """One row of Table 1."""

    name: str
    kernel: int
    filters: int
    stride: int = 1
    dilation: int = 1
    batch_norm: bool = True
    relu: bool = True


TABLE_1 = (
    ConvSpec("conv1_1", kernel=5, filters=64, stride=2),
    ConvSpec("conv1_2", kernel=3, filters=96),
    ConvSpec("conv1_3", kernel=1, filters=96),
    ConvSpec("conv2_1", kernel=3, filters=128, stride=2),
    ConvSpec("conv2_2", kernel=3, filters=256),
    ConvSpec("conv2_3", kernel=1, filters=256),
    # Table 1 lists three atrous layers (the text says "the last two"); the
    # table is followed. "Stride/Rate 2" is the dilation rate: a stride would
    # leave 1/32 of the input, which a x4 subpixel layer cannot restore.
    ConvSpec("conv3_1", kernel=3, filters=256, dilation=2),
    ConvSpec("conv3_2", kernel=3, filters=256, dilation=2),
    ConvSpec("conv3_3", kernel=3, filters=128, dilation=2, relu=False),
    # 32 = 4 * 4 sub-pixel positions x 2 classes; no normalization, no activation.
    ConvSpec(
        "subpixel", kernel=3, filters=UPSCALE * UPSCALE * NUM_CLASSES, batch_norm=False, relu=False
    ),
)


# The context branch's width: as many channels as the conv3_3 features it joins, so
# the concatenation weighs the whole image and the local field alike (DeepLabv3 gives
# each of its pyramid's branches the same depth, 256).
CONTEXT_FILTERS = 128
WHOLE_IMAGE = None  # `receptive_field` of a network with a global context branch


def check_context(context):
    """Raises ValueError unless `context` is one of `CONTEXTS`."""
    if context not in CONTEXTS:
        raise ValueError(f"context must be one of {', '.join(CONTEXTS)}, got {context!r}")


def receptive_field(table=TABLE_1, *, context="none") -> int | None:
    """The side, in input pixels, of the square of the input one output pixel depends on.

    Each convolution widens it by `dilation * (kernel - 1)` steps of the grid it
    runs on, whose step in input pixels is the product of the strides before it;
    depth-to-space adds nothing (every output pixel of a 4x4 block reads the same
    feature). For Table 1: 77 pixels, centred on the output pixel (mirror padding
    keeps the layers' outputs aligned with their inputs).

    Returns:
      The side in pixels, or `WHOLE_IMAGE` (None) with `context="image_pooling"`:
      the image-level feature makes every output pixel depend on every input pixel,
      whatever the image's size.
    """
    check_context(context)
    if context == "image_pooling":
        return WHOLE_IMAGE
    field, step = 1, 1
    for spec in table:
        field += spec.dilation * (spec.kernel - 1) * step
        step *= spec.stride
    return field
