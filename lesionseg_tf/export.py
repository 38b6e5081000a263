"""SavedModel export of the trained network."""

import os
import shutil
import tempfile

import keras
import numpy as np
import tensorflow as tf

LOGITS_ENDPOINT = "logits"


def export_saved_model(model, export_dir):
    """Writes `model` as a TensorFlow SavedModel, atomically.

    Endpoint `logits` (also `serving_default`): `[batch, H, W, 3]` float32
    standardized images, H and W divisible by 4 -> `[batch, H, W, 2]` float32
    logits. The SavedModel is written beside `export_dir` under a temporary name
    and renamed into place, so a crash never leaves a partial export there.

    Returns:
      `export_dir`.
    """
    export_dir = os.path.abspath(export_dir)
    parent = os.path.dirname(export_dir)
    os.makedirs(parent, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=".export-", dir=parent)
    try:
        archive = keras.export.ExportArchive()
        archive.track(model)
        archive.add_endpoint(
            name=LOGITS_ENDPOINT,
            fn=lambda images: model(images, training=False),
            input_signature=[tf.TensorSpec([None, None, None, 3], tf.float32, name="images")])
        written = os.path.join(staging, "saved_model")
        archive.write_out(written, verbose=False)
        _replace_dir(written, export_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return export_dir


def _replace_dir(source, target):
    """Moves folder `source` to `target`, replacing what is there with two renames."""
    if os.path.exists(target):
        old = target + ".old"
        shutil.rmtree(old, ignore_errors=True)
        os.replace(target, old)
        os.replace(source, target)
        shutil.rmtree(old)
    else:
        os.replace(source, target)


def check_export(export_dir, model, images, atol=1e-4):
    """Reloads the export and checks it reproduces `model` on `images`.

    Args:
      images: `[batch, H, W, 3]` float32.

    Returns:
      The largest absolute difference of the logits.

    Raises:
      AssertionError: the reloaded SavedModel disagrees with `model`.
    """
    loaded = tf.saved_model.load(export_dir)
    expected = np.asarray(model(images, training=False))
    got = getattr(loaded, LOGITS_ENDPOINT)(tf.constant(images, tf.float32)).numpy()
    difference = float(np.max(np.abs(expected - got)))
    if difference > atol:
        raise AssertionError(f"SavedModel {export_dir} differs from the trained model: "
                             f"max |logit difference| = {difference:.3g}")
    return difference
