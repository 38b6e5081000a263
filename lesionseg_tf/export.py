"""SavedModel export: the raw network and the full-resolution serving signature."""

import json
import os

import keras
import numpy as np
import tensorflow as tf

from lesionseg_tf import files, pipeline, postprocess
from lesionseg_tf import model as model_lib
from lesionseg_tf.config import DEFAULT_MAX_PIXELS
from lesionseg_tf.run_dir import RunDir

SEGMENT_ENDPOINT = "segment"  # also serving_default
SEGMENT_TTA_ENDPOINT = "segment_tta"
SEGMENT_BYTES_ENDPOINT = "segment_bytes"  # for TF Serving's REST API
LOGITS_ENDPOINT = "logits"
INFO_FILE = os.path.join("assets.extra", "lesionseg.json")

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
JPEG_SIGNATURE = b"\xff\xd8\xff"
BMP_SIGNATURE = b"BM"


def _unsigned(raw, offset, length, *, little_endian):
    """The unsigned integer of `length` bytes at `offset` of a scalar string, as int64."""
    digits = tf.cast(tf.io.decode_raw(tf.strings.substr(raw, offset, length), tf.uint8),
                     tf.int64)
    if little_endian:
        digits = tf.reverse(digits, [0])
    return tf.reduce_sum(digits * (256 ** tf.range(length - 1, -1, -1, dtype=tf.int64)))


def photograph_size(raw):
    """`(height, width)` of an encoded JPEG, PNG or BMP from its header, without
    decoding it, as int64 scalars: the in-graph counterpart of
    `images.read_image_header` (a test ties the two on real photographs).

    Raises (when the graph runs):
      InvalidArgumentError: the bytes are not a JPEG, PNG or BMP, or their header is
        cut short.
    """
    length = tf.strings.length(raw)
    is_jpeg = tf.equal(tf.strings.substr(raw, 0, 3), JPEG_SIGNATURE)
    is_png = tf.equal(tf.strings.substr(raw, 0, 8), PNG_SIGNATURE)
    is_bmp = tf.equal(tf.strings.substr(raw, 0, 2), BMP_SIGNATURE)
    known = tf.debugging.Assert(
        is_jpeg | is_png | is_bmp,
        ["the request's bytes are not a JPEG, PNG or BMP image (first bytes:",
         tf.strings.substr(raw, 0, 8), ")"])
    with tf.control_dependencies([known]):
        kind = tf.cast(is_png, tf.int32) + 2 * tf.cast(is_bmp, tf.int32)

    def jpeg():
        shape = tf.cast(tf.io.extract_jpeg_shape(raw), tf.int64)
        return shape[0], shape[1]

    def header(minimum, height_at, width_at, little_endian):
        def read():
            complete = tf.debugging.Assert(
                length >= minimum, ["the image header is cut short:", length, "bytes"])
            with tf.control_dependencies([complete]):
                height = _unsigned(raw, height_at, 4, little_endian=little_endian)
                width = _unsigned(raw, width_at, 4, little_endian=little_endian)
            if little_endian:  # a BMP's height is negative for top-down rows
                height = tf.where(height >= 2 ** 31, 2 ** 32 - height, height)
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
        ["the photograph is", width, "x", height, "pixels, over the limit of", max_pixels])
    with tf.control_dependencies([small_enough]):
        image = tf.io.decode_image(raw, channels=3, expand_animations=False)
    image.set_shape([None, None, 3])
    return image


def segment_photograph(network, image, *, image_size, tta=False):
    """One photograph's mask, the whole way (sections 3.2 and 3.4): resize to
    `image_size`, per-image standardization, `network`, the lesion probability (over
    the 8 rotations/flips with `tta`), then `postprocess.probability_to_mask` at the
    photograph's size. What the SavedModel's signatures trace, and what
    `inference.LiteSegmenter` runs eagerly around a LiteRT network: one composition.

    Args:
      network: `[batch, s, s, 3]` float32 standardized -> `[batch, s, s, 2]` logits.
      image: `[H, W, 3]` uint8 RGB.

    Returns:
      `[H, W]` uint8 0/255.
    """
    height, width = tf.shape(image)[0], tf.shape(image)[1]
    inputs = pipeline.standardize(pipeline.resize_image(image[tf.newaxis], image_size))
    if tta:
        probability = postprocess.tta_lesion_probability(network, inputs)[0]
    else:
        probability = postprocess.lesion_probability(network(inputs))[0]
    return postprocess.probability_to_mask(probability, height, width)


def network_module(model):
    """A `tf.Module` tracking the network's own `tf.Variable`s, which functions calling
    `model` capture: saving it (not the Keras model, whose variable wrappers would be
    saved again) stores each weight once. The SavedModel export and the TFLite
    conversion both start from it."""
    module = tf.Module()
    module.network_variables = [getattr(v, "value", v) for v in model.weights]
    return module


def export_saved_model(model, export_dir, *, image_size, max_pixels=DEFAULT_MAX_PIXELS):
    """Writes `model` as a TensorFlow SavedModel, atomically, each weight stored once.

    Signatures:
      `segment` (also `serving_default`): `image`, one `[H, W, 3]` uint8 RGB
        photograph of any size -> `mask`, `[H, W]` uint8 0/255: resize to
        `image_size`, per-image standardization, the network, then the paper's
        post-processing (`postprocess.probability_to_mask`), all in the graph,
        so a client needs nothing from this project. predict.py and evaluate.py
        call this signature.
      `segment_tta`: the same with the probability averaged over the 8
        rotations/flips of the input (test-time augmentation, not in the paper).
      `segment_bytes`: `image_bytes`, `[batch]` string of encoded photographs
        (JPEG, PNG or BMP) -> `mask_bytes`, `[batch]` string of PNG masks, each the
        `segment` mask of the decoded photograph. The form TF Serving's REST API
        carries binary data in (`{"b64": ...}` in, `..._bytes` outputs base64-encoded
        out). Bytes that are no image, a photograph over `max_pixels` (read from its
        header before decoding) and truncated data are refused with an error naming
        the problem.
      `logits`: `images`, `[batch, h, w, 3]` float32 standardized (h, w divisible
        by 4) -> `logits`, `[batch, h, w, 2]` float32: the raw network.
    `assets.extra/lesionseg.json` records `image_size`, `max_pixels` and the
    network's `context` option.

    Only the network's variables are saved (not the Keras objects around them),
    so `variables/` holds each weight once.

    The SavedModel is written beside `export_dir` under a temporary name and
    renamed into place (`files.atomic_path`), so a crash never leaves a partial
    export there.

    Returns:
      `export_dir` as an absolute path.
    """
    export_dir = os.path.abspath(export_dir)
    os.makedirs(os.path.dirname(export_dir), exist_ok=True)

    def network(images):
        return model(images, training=False)

    def mask(image, tta):
        return segment_photograph(network, image, image_size=image_size, tta=tta)

    def mask_bytes(raw):
        image = decode_photograph(raw, max_pixels=max_pixels)
        return tf.io.encode_png(mask(image, tta=False)[..., tf.newaxis])

    photograph = tf.TensorSpec([None, None, 3], tf.uint8, name="image")
    module = network_module(model)
    module.segment = tf.function(lambda image: {"mask": mask(image, tta=False)},
                                 input_signature=[photograph])
    module.segment_tta = tf.function(lambda image: {"mask": mask(image, tta=True)},
                                     input_signature=[photograph])
    module.segment_bytes = tf.function(
        lambda image_bytes: {"mask_bytes": tf.map_fn(
            mask_bytes, image_bytes, fn_output_signature=tf.TensorSpec([], tf.string))},
        input_signature=[tf.TensorSpec([None], tf.string, name="image_bytes")])
    module.logits = tf.function(lambda images: {"logits": network(images)}, input_signature=[
        tf.TensorSpec([None, None, None, 3], tf.float32, name="images")])
    signatures = {"serving_default": module.segment, SEGMENT_ENDPOINT: module.segment,
                  SEGMENT_TTA_ENDPOINT: module.segment_tta,
                  SEGMENT_BYTES_ENDPOINT: module.segment_bytes,
                  LOGITS_ENDPOINT: module.logits}
    with files.atomic_path(export_dir) as written:
        tf.saved_model.save(module, written, signatures=signatures)
        os.makedirs(os.path.join(written, os.path.dirname(INFO_FILE)), exist_ok=True)
        files.write_atomically(os.path.join(written, INFO_FILE), json.dumps(
            {"image_size": int(image_size), "max_pixels": int(max_pixels),
             "context": model_lib.context_of(model), "paper": "arXiv:1703.03372"}))
    return export_dir


def read_info(export_dir):
    """The `lesionseg.json` of an export: `{"image_size": int, ...}`."""
    path = os.path.join(export_dir, INFO_FILE)
    if not os.path.isfile(os.path.join(export_dir, "saved_model.pb")):
        raise FileNotFoundError(f"{export_dir} is not a SavedModel (no saved_model.pb); "
                                "train one with train.py or point --saved_model at its export/")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{export_dir} was not exported by lesionseg_tf ({INFO_FILE} "
                                "is missing)")
    with open(path) as f:
        return json.load(f)


# Unit roundoff of each compute precision: the relative error of one rounding.
UNIT_ROUNDOFF = {"float32": 2.0 ** -24, "bfloat16": 2.0 ** -8, "float16": 2.0 ** -11}
FLOAT32_ATOL = 1e-4


def export_tolerance(compute_dtype, largest_logit):
    """How far the reloaded export's logits may be from the in-memory model's.

    The export computes in the model's own precision (a mixed-precision model
    keeps its half-precision compute, float32 weights and float32 logits), so the
    two differ only by how the reloaded graph orders and fuses the same rounded
    operations. In float32 that is far below 1e-4. In half precision a few
    roundings of the output's size: 8 units of roundoff of the largest logit
    (bfloat16, 8 significant bits: 3% of it; float16, 11 bits: 0.4%).
    """
    if compute_dtype == "float32":
        return FLOAT32_ATOL
    return 8 * UNIT_ROUNDOFF[compute_dtype] * max(1.0, float(largest_logit))


def check_export(export_dir, model, images, atol=None):
    """Reloads the export and checks it reproduces `model` on `images`.

    Args:
      images: `[batch, H, W, 3]` float32.
      atol: the largest absolute logit difference allowed; default
        `export_tolerance` of the model's compute precision.

    Returns:
      The largest absolute difference of the logits.

    Raises:
      AssertionError: the reloaded SavedModel disagrees with `model`.
    """
    loaded = tf.saved_model.load(export_dir)
    expected = np.asarray(model(images, training=False))
    got = loaded.logits(tf.constant(images, tf.float32))["logits"].numpy()
    if got.dtype != np.float32:
        raise AssertionError(f"SavedModel {export_dir} returns {got.dtype} logits, not float32")
    difference = float(np.max(np.abs(expected - got)))
    compute_dtype = model.get_layer("conv1_1").compute_dtype
    if atol is None:
        atol = export_tolerance(compute_dtype, np.max(np.abs(expected)))
    if difference > atol:
        raise AssertionError(f"SavedModel {export_dir} differs from the trained model: "
                             f"max |logit difference| = {difference:.3g} (allowed {atol:.3g} "
                             f"in {compute_dtype})")
    return difference


def load_run_model(run_dir):
    """The model of a train.py run folder (`best.keras`) or of a shipped model
    folder (`lesionseg.keras`), and its input size (`RunDir`).

    Raises:
      FileNotFoundError: the folder holds no model or no `flags.json`.
    """
    folder = RunDir(run_dir)
    image_size = folder.image_size()
    path = folder.weights_file()
    if path is None:
        raise FileNotFoundError(f"{run_dir} holds neither {' nor '.join(RunDir.WEIGHT_FILES)}")
    return model_lib.load(path), image_size
