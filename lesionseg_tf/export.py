"""The SavedModel export: writing it (`LesionSegModule`'s signatures), reading its
info, and checking a written export against the model it came from."""

import json
import os

import numpy as np
import tensorflow as tf

from lesionseg_tf import files, images, segment
from lesionseg_tf import model as model_lib
from lesionseg_tf.config import DEFAULT_MAX_PIXELS
from lesionseg_tf.run_dir import SAVED_MODEL_FILE, RunDir, is_saved_model

SEGMENT_ENDPOINT = "segment"  # also serving_default
SEGMENT_TTA_ENDPOINT = "segment_tta"
SEGMENT_BYTES_ENDPOINT = "segment_bytes"  # for TF Serving's REST API
LOGITS_ENDPOINT = "logits"
INFO_FILE = RunDir.EXPORT_INFO


def network_module(model):
    """A `tf.Module` tracking the network's own `tf.Variable`s, which functions calling
    `model` capture: saving it (not the Keras model, whose variable wrappers would be
    saved again) stores each weight once. The TFLite conversion starts from it."""
    module = tf.Module()
    module.network_variables = _network_variables(model)
    return module


def _network_variables(model):
    return [getattr(v, "value", v) for v in model.weights]


_PHOTOGRAPH = tf.TensorSpec([None, None, 3], tf.uint8, name="image")


class LesionSegModule(tf.Module):
    """What the SavedModel holds: the network's variables, once, and one method per
    signature, each a `tf.function` over `segment.segment_photograph` (the composition
    every runtime shares).

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
        the problem (`images.decode_photograph`).
      `logits`: `images`, `[batch, h, w, 3]` float32 standardized (h, w divisible
        by 4) -> `logits`, `[batch, h, w, 2]` float32: the raw network.
    """

    def __init__(self, model, *, image_size, max_pixels):
        super().__init__(name="lesionseg")
        self._model = model  # not tracked: only its variables are saved
        self.network_variables = _network_variables(model)
        self._image_size = int(image_size)
        self._max_pixels = int(max_pixels)

    def __setattr__(self, name, value):
        if name == "_model":  # keep the Keras model out of the saved object graph
            object.__setattr__(self, name, value)
        else:
            super().__setattr__(name, value)

    def _network(self, batch):
        return self._model(batch, training=False)

    def _mask(self, image, *, tta):
        return segment.segment_photograph(
            self._network, image=image, image_size=self._image_size, tta=tta
        )

    @tf.function(input_signature=[_PHOTOGRAPH])
    def segment(self, image):
        return {"mask": self._mask(image, tta=False)}

    @tf.function(input_signature=[_PHOTOGRAPH])
    def segment_tta(self, image):
        return {"mask": self._mask(image, tta=True)}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="image_bytes")])
    def segment_bytes(self, image_bytes):
        def one(raw):
            image = images.decode_photograph(raw, max_pixels=self._max_pixels)
            return tf.io.encode_png(self._mask(image, tta=False)[..., tf.newaxis])

        return {
            "mask_bytes": tf.map_fn(
                one, image_bytes, fn_output_signature=tf.TensorSpec([], tf.string)
            )
        }

    @tf.function(input_signature=[tf.TensorSpec([None, None, None, 3], tf.float32, name="images")])
    def logits(self, images):  # pylint: disable=redefined-outer-name
        return {"logits": self._network(images)}

    def signatures(self):
        return {
            "serving_default": self.segment,
            SEGMENT_ENDPOINT: self.segment,
            SEGMENT_TTA_ENDPOINT: self.segment_tta,
            SEGMENT_BYTES_ENDPOINT: self.segment_bytes,
            LOGITS_ENDPOINT: self.logits,
        }


def export_saved_model(model, *, export_dir, image_size, max_pixels=DEFAULT_MAX_PIXELS):
    """Writes `model` as a TensorFlow SavedModel (`LesionSegModule`'s signatures),
    atomically, each weight stored once. `assets.extra/lesionseg.json` records
    `image_size`, `max_pixels` and the network's `context` option.

    The SavedModel is written beside `export_dir` under a temporary name and
    renamed into place (`files.atomic_path`), so a crash never leaves a partial
    export there.

    Returns:
      `export_dir` as an absolute path.
    """
    export_dir = os.path.abspath(export_dir)
    os.makedirs(os.path.dirname(export_dir), exist_ok=True)
    module = LesionSegModule(model, image_size=image_size, max_pixels=max_pixels)
    with files.atomic_path(export_dir) as written:
        tf.saved_model.save(module, written, signatures=module.signatures())
        os.makedirs(os.path.join(written, os.path.dirname(INFO_FILE)), exist_ok=True)
        files.write_atomically(
            os.path.join(written, INFO_FILE),
            payload=json.dumps(
                {
                    "image_size": int(image_size),
                    "max_pixels": int(max_pixels),
                    "context": model_lib.context_of(model),
                    "members": len(model_lib.networks_of(model)),
                    "paper": "arXiv:1703.03372",
                }
            ),
        )
    return export_dir


def read_info(export_dir):
    """The `lesionseg.json` of an export: `{"image_size": int, ...}`."""
    path = os.path.join(export_dir, INFO_FILE)
    if not is_saved_model(export_dir):
        raise FileNotFoundError(
            f"{export_dir} is not a SavedModel (no {SAVED_MODEL_FILE}); "
            "train one with train.py or point --saved_model at its export/"
        )
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"{export_dir} was not exported by lesionseg_tf ({INFO_FILE} is missing)"
        )
    with open(path) as f:
        return json.load(f)


# Unit roundoff of each compute precision: the relative error of one rounding.
UNIT_ROUNDOFF = {"float32": 2.0**-24, "bfloat16": 2.0**-8, "float16": 2.0**-11}
FLOAT32_ATOL = 1e-4


def export_tolerance(compute_dtype, *, largest_logit):
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


def check_export(export_dir, *, model, inputs, atol=None):
    """Reloads the export and checks it reproduces `model` on `images`.

    Args:
      inputs: `[batch, H, W, 3]` float32.
      atol: the largest absolute logit difference allowed; default
        `export_tolerance` of the model's compute precision.

    Returns:
      The largest absolute difference of the logits.

    Raises:
      AssertionError: the reloaded SavedModel disagrees with `model`.
    """
    loaded = tf.saved_model.load(export_dir)
    expected = np.asarray(model(inputs, training=False))
    got = loaded.logits(tf.constant(inputs, tf.float32))["logits"].numpy()
    if got.dtype != np.float32:
        raise AssertionError(f"SavedModel {export_dir} returns {got.dtype} logits, not float32")
    difference = float(np.max(np.abs(expected - got)))
    compute_dtype = model_lib.compute_dtype_of(model)
    if atol is None:
        atol = export_tolerance(compute_dtype, largest_logit=np.max(np.abs(expected)))
    if difference > atol:
        raise AssertionError(
            f"SavedModel {export_dir} differs from the trained model: "
            f"max |logit difference| = {difference:.3g} (allowed {atol:.3g} "
            f"in {compute_dtype})"
        )
    return difference


def export_checked(model, *, export_dir, image_size):
    """`export_saved_model`, then `check_export` on two random images: `(export_dir,
    largest |logit difference|)`."""
    export_dir = export_saved_model(model, export_dir=export_dir, image_size=image_size)
    inputs = np.random.default_rng(0).normal(size=(2, image_size, image_size, 3))
    return export_dir, check_export(export_dir, model=model, inputs=inputs.astype(np.float32))
