"""Exports a run folder's model (its best.keras, or a shipped model's lesionseg.keras)
and writes only what it is asked for: the SavedModel with this version's serving graph,
a versioned copy for TF Serving, TFLite files of the network.

    python -m tools.export --run_dir=runs/lesionseg                  # runs/lesionseg/export
    python -m tools.export --run_dir=pretrained/lesionseg_isic2017 --export_dir=/tmp/export
    python -m tools.export --run_dir=pretrained/lesionseg_isic2017 --serving_base=/models/lesionseg
    python -m tools.export --run_dir=runs/lesionseg --tflite=float32,float16,int8 \\
        --data_dir=ISIC2017

With no output flag, the run's own export/ is written again (a shipped model's
too: pass --export_dir to leave it as it is). TFLite files go to --tflite_dir
(default: the run folder) as lesionseg_<variant>.tflite; int8 is calibrated on
--calibration_images photographs the run trained on (its training_ids.txt), read
from --data_dir.
"""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's start-up chatter out

import numpy as np  # noqa: E402
from absl import app, flags, logging  # noqa: E402

import common_flags  # noqa: E402
import console  # noqa: E402
from lesionseg_tf import config  # noqa: E402

_RUN_DIR = common_flags.define_run_dir(
    "A train.py run folder (best.keras) or a shipped model folder (lesionseg.keras)."
)
_EXPORT_DIR = flags.DEFINE_string(
    "export_dir",
    None,
    "Write the SavedModel here (replacing it); default: <run_dir>/export "
    "when neither --serving_base nor --tflite is given, else no SavedModel but theirs.",
)
_SERVING_BASE = flags.DEFINE_string(
    "serving_base",
    None,
    "Write the SavedModel to <serving_base>/<version>/, the layout TF "
    "Serving loads (--model_base_path).",
)
_VERSION = flags.DEFINE_integer("version", 1, "The version folder under --serving_base.")
_TFLITE = flags.DEFINE_list(
    "tflite",
    [],
    "TFLite variants of the network to write (to --tflite_dir): float32, float16, int8.",
)
_TFLITE_DIR = flags.DEFINE_string(
    "tflite_dir", None, "Where the TFLite files go; default: --run_dir."
)
_DATA_DIR, _DATASET = common_flags.define_dataset_flags(
    "For --tflite=int8: the dataset whose training photographs calibrate it."
)
_CALIBRATION_IMAGES = flags.DEFINE_integer(
    "calibration_images", 300, "For --tflite=int8: how many training photographs."
)


def calibration_images(run, data_dir, count, image_size, dataset=None):
    """`count` standardized photographs the run trained on, drawn with seed 0."""
    from lesionseg_tf import datasets, pipeline  # pylint: disable=import-outside-toplevel
    from lesionseg_tf.run_dir import RunDir  # pylint: disable=import-outside-toplevel

    trained = set(run.read_ids(RunDir.TRAINING_IDS) or [])
    data = datasets.open_dataset(data_dir, dataset=dataset)
    examples = [e for e in data.find(data.training_split()) if e.image_id in trained]
    if not examples:
        raise ValueError(
            f"none of {data_dir}'s training photographs is in {run.file(RunDir.TRAINING_IDS)}"
        )
    picks = np.random.default_rng(0).permutation(len(examples))[:count]
    chosen = [examples[i] for i in sorted(picks)]
    batches = pipeline.make_dataset(chosen, image_size=image_size, batch_size=32, is_training=False)
    return np.concatenate([images.numpy() for images, _ in batches])


def saved_model_targets(run_export_dir):
    """Where SavedModels go: --export_dir, or the run's export/ when nothing else is
    asked for; and --serving_base/--version."""
    targets = []
    if _EXPORT_DIR.value or not (_SERVING_BASE.value or _TFLITE.value):
        targets.append(_EXPORT_DIR.value or run_export_dir)
    if _SERVING_BASE.value:
        targets.append(os.path.join(_SERVING_BASE.value, str(_VERSION.value)))
    return targets


flags.register_validator(
    "run_dir", bool, message="--run_dir is required: a train.py run folder or a shipped model"
)
flags.register_validator(
    "tflite",
    lambda variants: set(variants) <= set(config.TFLITE_VARIANTS),
    message=f"--tflite: variants are {', '.join(config.TFLITE_VARIANTS)}",
)


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    console.require_inputs("export", [("--run_dir", _RUN_DIR.value, "folder")])
    console.start_tensorflow()
    from lesionseg_tf import export, tflite
    from lesionseg_tf import model as model_lib
    from lesionseg_tf.run_dir import RunDir

    logging.set_verbosity(logging.WARNING)  # TensorFlow's notes on each traced function
    run = RunDir(_RUN_DIR.value)
    try:
        model, image_size = model_lib.load_run(run.path)
    except (OSError, ValueError, KeyError) as e:
        sys.exit(f"export: {e}")
    for target in saved_model_targets(run.export_dir):
        export_dir, difference = export.export_checked(
            model, export_dir=target, image_size=image_size
        )
        print(
            f"SavedModel: {export_dir} (image_size {image_size}; max |logit difference| "
            f"{difference:.2g})"
        )
    for variant in _TFLITE.value:
        try:
            calibration = None
            if variant == "int8":
                calibration = calibration_images(
                    run,
                    _DATA_DIR.value,
                    _CALIBRATION_IMAGES.value,
                    image_size,
                    dataset=_DATASET.value,
                )
        except (OSError, ValueError) as e:
            sys.exit(f"export: {e}")
        path = os.path.join(_TFLITE_DIR.value or run.path, f"lesionseg_{variant}{tflite.EXTENSION}")
        size = tflite.write(
            model,
            path=path,
            image_size=image_size,
            variant=variant,
            calibration_images=calibration,
        )
        calibrated = (
            f", calibrated on {len(calibration)} training photographs"
            if calibration is not None
            else ""
        )
        print(f"TFLite {variant}: {path} ({size / 1e6:.1f} MB{calibrated})")


if __name__ == "__main__":
    console.run(main)
