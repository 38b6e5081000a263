"""Reading photographs and masks, from files and from encoded bytes (in the graph, for
the SavedModel's `segment_bytes`), checking them from their headers, and writing masks.

Prediction and evaluation read whole files here; training decodes through the
input pipeline (`pipeline`), whose decoder the dataset check also runs.
"""

import os

import cv2
import numpy as np
import tensorflow as tf
from PIL import Image

from lesionseg_tf import files, messages
from lesionseg_tf.config import DEFAULT_MAX_PIXELS
from lesionseg_tf.layouts import EXTENSION_FORMATS

# The project's own pixel limit (`max_pixels`, checked from the header before any
# decoding) replaces Pillow's decompression-bomb guard, which would otherwise refuse,
# or warn about, images the user allowed with --max_image_pixels.
Image.MAX_IMAGE_PIXELS = None


# The first bytes of each photograph format (`photograph_size`, the training decoder).
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
JPEG_SIGNATURE = b"\xff\xd8\xff"
BMP_SIGNATURE = b"BM"


def _unsigned(raw, offset, length, *, little_endian):
    """The unsigned integer of `length` bytes at `offset` of a scalar string, as int64."""
    digits = tf.cast(tf.io.decode_raw(tf.strings.substr(raw, offset, length), tf.uint8), tf.int64)
    if little_endian:
        digits = tf.reverse(digits, [0])
    return tf.reduce_sum(digits * (256 ** tf.range(length - 1, -1, -1, dtype=tf.int64)))


def photograph_size(raw):
    """`(height, width)` of an encoded JPEG, PNG or BMP from its header, without
    decoding it, as int64 scalars: the in-graph counterpart of `read_image_header`
    (a test ties the two on real photographs), for the SavedModel's `segment_bytes`.

    Raises (when the graph runs):
      InvalidArgumentError: the bytes are not a JPEG, PNG or BMP, or their header is
        cut short.
    """
    length = tf.strings.length(raw)
    starts_jpeg = is_jpeg(raw)
    is_png = tf.equal(tf.strings.substr(raw, 0, 8), PNG_SIGNATURE)
    is_bmp = tf.equal(tf.strings.substr(raw, 0, 2), BMP_SIGNATURE)
    known = tf.debugging.Assert(
        starts_jpeg | is_png | is_bmp,
        [
            "the request's bytes are not a JPEG, PNG or BMP image (first bytes:",
            tf.strings.substr(raw, 0, 8),
            ")",
        ],
    )
    with tf.control_dependencies([known]):
        kind = tf.cast(is_png, tf.int32) + 2 * tf.cast(is_bmp, tf.int32)

    def jpeg():
        shape = tf.cast(tf.io.extract_jpeg_shape(raw), tf.int64)
        return shape[0], shape[1]

    def header(minimum, height_at, width_at, little_endian):
        def read():
            complete = tf.debugging.Assert(
                length >= minimum, ["the image header is cut short:", length, "bytes"]
            )
            with tf.control_dependencies([complete]):
                height = _unsigned(raw, height_at, 4, little_endian=little_endian)
                width = _unsigned(raw, width_at, 4, little_endian=little_endian)
            if little_endian:  # a BMP's height is negative for top-down rows
                height = tf.where(height >= 2**31, 2**32 - height, height)
            return height, width

        return read

    return tf.switch_case(kind, [jpeg, header(24, 20, 16, False), header(26, 22, 18, True)])


def decode_photograph(raw, *, max_pixels):
    """Encoded JPEG, PNG or BMP -> `[H, W, 3]` uint8 RGB, refusing (InvalidArgumentError
    when the graph runs) bytes that are no image and photographs over `max_pixels`
    before decoding them, and truncated data when decoding."""
    height, width = photograph_size(raw)
    small_enough = tf.debugging.Assert(
        height * width <= max_pixels,
        ["the photograph is", width, "x", height, "pixels, over the limit of", max_pixels],
    )
    with tf.control_dependencies([small_enough]):
        return decode_bytes(raw)


def encode_png(mask):
    """`[H, W]` uint8 -> PNG bytes (single channel, 8-bit)."""
    ok, encoded = cv2.imencode(".png", mask)
    if not ok:
        raise ValueError("PNG encoding failed")
    return encoded.tobytes()


def encode_jpeg(bgr, *, quality, name):
    """`[H, W, 3]` uint8 in OpenCV's BGR order -> JPEG bytes at `quality`; `name` (the
    file it is for) names it in the error."""
    ok, encoded = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError(f"{name}: JPEG encoding failed")
    return encoded.tobytes()


class ImageReadError(ValueError):
    """A file could not be read as the image it should be; the message names it."""


def read_image_header(path, *, max_pixels=DEFAULT_MAX_PIXELS, match_extension=False):
    """Reads `(width, height)` from an image file's header, without decoding it.

    Raises:
      ImageReadError: empty, not an image, a colour-palette BMP (which TensorFlow
        decodes wrongly), with `match_extension` not the format its name ends with
        (`EXTENSION_FORMATS`), or more than `max_pixels` pixels.
    """
    try:
        size = os.path.getsize(path)
    except OSError as e:
        raise ImageReadError(f"{path}: cannot read ({e.strerror})") from None
    if size == 0:
        raise ImageReadError(f"{path}: empty file (0 bytes)")
    try:
        with Image.open(path) as image:
            width, height = image.size
            image_format, mode = image.format, image.mode
    except (OSError, SyntaxError, ValueError) as e:
        raise ImageReadError(f"{path}: not a readable image ({e})") from None
    if image_format == "BMP" and mode == "P":
        raise ImageReadError(
            f"{path}: is a colour-palette BMP, which TensorFlow's decoder would "
            "read as grey palette indices; save it as a 24-bit BMP or a PNG"
        )
    extension = os.path.splitext(path)[1].lower()
    if match_extension and image_format != EXTENSION_FORMATS.get(extension):
        raise ImageReadError(
            f"{path}: is a {image_format} file, expected a "
            f"{EXTENSION_FORMATS.get(extension, 'JPEG, PNG or BMP')} "
            f"(its name ends {extension or 'without an extension'})"
        )
    if width * height > max_pixels:
        raise ImageReadError(
            f"{path}: {width}x{height} is {width * height:,} pixels, over the limit of "
            f"{max_pixels:,} (raise --max_image_pixels if it is meant to be this big)"
        )
    return width, height


def decode_image(path):
    """Reads a photograph (JPEG, PNG or BMP): `[H, W, 3]` uint8 RGB."""
    return decode_bytes(tf.io.read_file(path))


# libjpeg's accurate integer inverse DCT, its own default and what Pillow, OpenCV and web
# browsers decode with; TensorFlow's default is the fast one, about 1 grey level away.
JPEG_DCT_METHOD = "INTEGER_ACCURATE"


def is_jpeg(raw):
    """Whether encoded bytes (a string tensor) begin as a JPEG does, whatever the file's
    name."""
    return tf.equal(tf.strings.substr(raw, 0, len(JPEG_SIGNATURE)), JPEG_SIGNATURE)


def decode_bytes(raw):
    """A JPEG, PNG, BMP or GIF's bytes (a GIF's first frame) -> `[H, W, 3]` uint8 RGB,
    JPEGs with `JPEG_DCT_METHOD` (so the browser page decodes the same pixels)."""
    image = tf.cond(
        is_jpeg(raw),
        lambda: tf.io.decode_jpeg(raw, channels=3, dct_method=JPEG_DCT_METHOD),
        lambda: tf.io.decode_image(raw, channels=3, expand_animations=False),
    )
    image.set_shape([None, None, 3])
    return image


def read_image_file(path, *, max_pixels=DEFAULT_MAX_PIXELS):
    """Reads a photograph (JPEG, PNG, BMP or GIF) for prediction and evaluation.

    The header is checked first (`read_image_header`), so an image over
    `max_pixels` is refused before it is decoded.

    Returns:
      `[H, W, 3]` uint8 RGB NumPy array.

    Raises:
      ImageReadError: missing, empty, truncated, too large or not an image.
    """
    read_image_header(path, max_pixels=max_pixels)
    try:
        image = decode_image(path)
    except tf.errors.OpError as e:
        raise ImageReadError(f"{path}: cannot decode image ({messages.reason(e)})") from None
    return image.numpy()


def read_mask_file(path):
    """Reads a mask (PNG, or BMP as PH2's) the way the ISIC scorer does.

    Single-channel 8-bit is taken as is; a 3- or 4-channel image is accepted
    only if it is exactly grey (R = G = B, alpha if any fully opaque) and
    converted to one channel. A BMP mask must hold only 0 and 255: PH2's binary
    lesion masks read so (a 1-bit BMP too), and anything else is refused rather
    than guessed at.

    Returns:
      `[H, W]` uint8 NumPy array (not yet binarized).

    Raises:
      ImageReadError: unreadable, not 8-bit, colour, or a BMP with other values.
    """
    import cv2  # pylint: disable=import-outside-toplevel

    mask = cv2.imread(path, cv2.IMREAD_UNCHANGED)
    if mask is None:
        raise ImageReadError(f"{path}: cannot decode mask image")
    if mask.dtype != "uint8":
        raise ImageReadError(f"{path}: mask is {mask.dtype}, expected 8-bit")
    if mask.ndim == 3:
        colour = mask[..., :3]
        if mask.shape[2] == 4 and not (mask[..., 3] == 255).all():
            raise ImageReadError(f"{path}: mask has transparent pixels; expected one channel")
        if mask.shape[2] not in (3, 4) or not (
            (colour[..., 0] == colour[..., 1]).all() and (colour[..., 1] == colour[..., 2]).all()
        ):
            raise ImageReadError(
                f"{path}: mask is not single-channel (greyscale) and its "
                f"{mask.shape[2]} channels differ"
            )
        mask = colour[..., 0].copy()
    with open(path, "rb") as f:
        is_bmp = f.read(2) == b"BM"
    if is_bmp:
        present = np.flatnonzero(mask_histogram(mask)).tolist()
        if not set(present) <= {0, 255}:
            raise ImageReadError(
                f"{path}: BMP mask holds the values {messages.list_some(present, limit=8)}; "
                "a binary mask "
                "(as PH2's) reads as 0 and 255 only"
            )
    return mask


def mask_histogram(mask):
    """Pixel count of each value 0-255 of a `[H, W]` uint8 mask (int64).

    OpenCV's float32 histogram, ~5x faster than `np.bincount`: exact below 2**24
    pixels per value, and a value's presence (count > 0) is always exact.
    """
    import cv2  # pylint: disable=import-outside-toplevel

    return cv2.calcHist([mask], [0], None, [256], [0, 256]).ravel().astype(np.int64)


def write_resized_pair(example, *, image_path, mask_path, size, max_pixels=DEFAULT_MAX_PIXELS):
    """Writes a `datasets.Example`'s photograph and mask squashed to `size` x `size`,
    as the study's 256x256 copies of ISIC 2017 are: the photograph by area averaging
    (antialiased), as a quality-95 JPEG; the mask by area averaging, then lesion where
    > 127, as a 0/255 PNG.

    Raises:
      ImageReadError: the photograph or the mask cannot be read.
    """
    image = read_image_file(example.image_path, max_pixels=max_pixels)
    mask = read_mask_file(example.mask_path)
    small = cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA)
    small_mask = cv2.resize(mask, (size, size), interpolation=cv2.INTER_AREA)
    jpeg = encode_jpeg(small[..., ::-1], quality=95, name=example.image_path)
    files.write_atomically(image_path, payload=jpeg)
    files.write_atomically(
        mask_path, payload=encode_png(np.where(small_mask > 127, 255, 0).astype(np.uint8))
    )
