"""Exports a run folder's model (its best.keras, or a shipped model's lesionseg.keras):
the SavedModel with this version's serving graph (replacing <run_dir>/export), a
versioned copy for TF Serving, and TFLite files of the network.

    python -m tools.export --run_dir=pretrained/lesionseg_isic2017
    python -m tools.export --run_dir=runs/lesionseg --serving_base=/models/lesionseg --version=1
    python -m tools.export --run_dir=runs/lesionseg --tflite=float32,float16,int8 \
        --data_dir=ISIC2017

TFLite files are written beside the export as lesionseg_<variant>.tflite; int8 is
calibrated on --calibration_images photographs the run trained on (its
training_ids.txt), read from --data_dir.
"""

import os
import shutil
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's start-up chatter out

import numpy as np  # noqa: E402
from absl import app, flags, logging  # noqa: E402

import common_flags  # noqa: E402
import console  # noqa: E402

_RUN_DIR = common_flags.define_run_dir(
    "A train.py run folder (best.keras) or a shipped model folder (lesionseg.keras); its "
    "export/ is replaced.")
_SERVING_BASE = flags.DEFINE_string(
    "serving_base", None, "Also copy the SavedModel to <serving_base>/<version>/, the layout "
    "TF Serving loads (--model_base_path).")
_VERSION = flags.DEFINE_integer("version", 1, "The version folder under --serving_base.")
_TFLITE = flags.DEFINE_list(
    "tflite", [], "TFLite variants of the network to write beside the export: float32, "
    "float16, int8.")
_DATA_DIR, _ = common_flags.define_dataset_flags(
    "For --tflite=int8: the dataset whose training photographs calibrate it.")
_CALIBRATION_IMAGES = flags.DEFINE_integer(
    "calibration_images", 300, "For --tflite=int8: how many training photographs.")


def calibration_images(run, data_dir, count, image_size):
    """`count` standardized photographs the run trained on, drawn with seed 0."""
    from lesionseg_tf import datasets, pipeline  # pylint: disable=import-outside-toplevel
    from lesionseg_tf.run_dir import RunDir  # pylint: disable=import-outside-toplevel

    trained = set(run.read_ids(RunDir.TRAINING_IDS) or [])
    dataset = datasets.open_dataset(data_dir)
    examples = [e for e in dataset.find(dataset.training_split()) if e.image_id in trained]
    if not examples:
        raise ValueError(f"none of {data_dir}'s training photographs is in "
                         f"{run.file(RunDir.TRAINING_IDS)}")
    picks = np.random.default_rng(0).permutation(len(examples))[:count]
    chosen = [examples[i] for i in sorted(picks)]
    batches = pipeline.make_dataset(chosen, image_size=image_size, batch_size=32,
                                    is_training=False)
    return np.concatenate([images.numpy() for images, _ in batches])


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    if not _RUN_DIR.value:
        raise app.UsageError("--run_dir is required: a train.py run folder or a shipped model")
    unknown = sorted(set(_TFLITE.value) - {"float32", "float16", "int8"})
    if unknown:
        raise app.UsageError(f"--tflite: unknown variant(s) {', '.join(unknown)}")
    console.start_tensorflow()
    import tensorflow as tf

    from lesionseg_tf import export, files, tflite
    from lesionseg_tf.run_dir import RunDir

    logging.set_verbosity(logging.WARNING)  # TensorFlow's notes on each traced function
    tf.get_logger().setLevel("WARNING")
    run = RunDir(_RUN_DIR.value)
    try:
        model, image_size = export.load_run_model(run.path)
    except (OSError, ValueError, KeyError) as e:
        sys.exit(f"export: {e}")
    export_dir = export.export_saved_model(model, run.export_dir, image_size=image_size)
    images = np.random.default_rng(0).normal(size=(2, image_size, image_size, 3))
    difference = export.check_export(export_dir, model, images.astype(np.float32))
    print(f"exported {export_dir} (image_size {image_size}; max |logit difference| "
          f"{difference:.2g})")
    if _SERVING_BASE.value:
        target = os.path.join(_SERVING_BASE.value, str(_VERSION.value))
        os.makedirs(_SERVING_BASE.value, exist_ok=True)
        with files.atomic_path(target) as temporary:
            shutil.copytree(export_dir, temporary)
        print(f"TF Serving copy: {target}")
    for variant in _TFLITE.value:
        calibration = None
        if variant == "int8":
            try:
                calibration = calibration_images(run, _DATA_DIR.value,
                                                  _CALIBRATION_IMAGES.value, image_size)
            except (OSError, ValueError) as e:
                sys.exit(f"export: {e}")
        data = tflite.convert(model, image_size=image_size, variant=variant,
                              calibration_images=calibration)
        path = run.file(f"lesionseg_{variant}{tflite.EXTENSION}")
        files.write_atomically(path, data)
        print(f"TFLite {variant}: {path} ({len(data) / 1e6:.1f} MB"
              + (f", calibrated on {len(calibration)} training photographs)"
                 if calibration is not None else ")"))


if __name__ == "__main__":
    app.run(main)
