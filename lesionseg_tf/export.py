"""SavedModel export: the raw network and the full-resolution serving signature."""

import json
import os

import keras
import numpy as np
import tensorflow as tf

from lesionseg_tf import files, pipeline, postprocess
from lesionseg_tf.run_dir import RunDir

SEGMENT_ENDPOINT = "segment"  # also serving_default
SEGMENT_TTA_ENDPOINT = "segment_tta"
LOGITS_ENDPOINT = "logits"
INFO_FILE = os.path.join("assets.extra", "lesionseg.json")


def export_saved_model(model, export_dir, *, image_size):
    """Writes `model` as a TensorFlow SavedModel, atomically.

    Signatures:
      `segment` (also `serving_default`): `image`, one `[H, W, 3]` uint8 RGB
        photograph of any size -> `mask`, `[H, W]` uint8 0/255: resize to
        `image_size`, per-image standardization, the network, then the paper's
        post-processing (`postprocess.probability_to_mask`), all in the graph,
        so a client needs nothing from this project. predict.py and evaluate.py
        call this signature.
      `segment_tta`: the same with the probability averaged over the 8
        rotations/flips of the input (test-time augmentation, not in the paper).
      `logits`: `images`, `[batch, h, w, 3]` float32 standardized (h, w divisible
        by 4) -> `logits`, `[batch, h, w, 2]` float32: the raw network.
    `assets.extra/lesionseg.json` records `image_size`.

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
        height, width = tf.shape(image)[0], tf.shape(image)[1]
        inputs = pipeline.standardize(pipeline.resize_image(image[tf.newaxis], image_size))
        if tta:
            probability = postprocess.tta_lesion_probability(network, inputs)[0]
        else:
            probability = postprocess.lesion_probability(network(inputs))[0]
        return {"mask": postprocess.probability_to_mask(probability, height, width)}

    def logits(images):
        return {"logits": network(images)}

    with files.atomic_path(export_dir) as written:
        archive = keras.export.ExportArchive()
        archive.track(model)
        photograph = [tf.TensorSpec([None, None, 3], tf.uint8, name="image")]
        archive.add_endpoint(SEGMENT_ENDPOINT, lambda image: mask(image, tta=False),
                             input_signature=photograph)
        archive.add_endpoint(SEGMENT_TTA_ENDPOINT, lambda image: mask(image, tta=True),
                             input_signature=photograph)
        archive.add_endpoint(LOGITS_ENDPOINT, logits, input_signature=[
            tf.TensorSpec([None, None, None, 3], tf.float32, name="images")])
        archive.write_out(written, verbose=False)
        os.makedirs(os.path.join(written, os.path.dirname(INFO_FILE)), exist_ok=True)
        files.write_atomically(os.path.join(written, INFO_FILE), json.dumps(
            {"image_size": int(image_size), "paper": "arXiv:1703.03372"}))
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
    folder (`lesionseg.weights.h5`), and its input size (`RunDir`).

    Raises:
      FileNotFoundError: the folder holds no model or no `flags.json`.
    """
    from lesionseg_tf import model as model_lib  # pylint: disable=import-outside-toplevel

    folder = RunDir(run_dir)
    image_size = folder.image_size()
    path = folder.weights_file()
    if path is None:
        raise FileNotFoundError(f"{run_dir} holds neither {' nor '.join(RunDir.WEIGHT_FILES)}")
    if path.endswith(".keras"):
        return keras.models.load_model(path, safe_mode=True), image_size
    model = model_lib.build_model()
    model.load_weights(path)
    return model, image_size
