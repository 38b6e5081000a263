"""Scores LesionSeg on a dataset split with the ISIC challenges' metrics.

    python evaluate.py                       # runs/lesionseg/export on ISIC2017 validation
    python evaluate.py --split=test
    python evaluate.py --pred_dir=predictions --split=test   # score existing masks
    python evaluate.py --data_dir=PH2 --split=all            # another dataset, recognized

Prints the per-image-averaged Jaccard (the ISIC 2017 ranking metric), thresholded
Jaccard, Dice, accuracy, sensitivity, specificity, the pixel-pooled two-class mean
IoU and the boundary distances HD95 and ASSD, with bootstrap intervals; writes
per_image.csv and summary.json to --output_dir.
"""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's start-up chatter out

from absl import app, flags

import common_flags
import console

_DATA_DIR, _DATASET = common_flags.define_dataset_flags()
_SPLIT = common_flags.define_split_flag("validation")
_MODEL = common_flags.define_model_flags()
_PRED_DIR = flags.DEFINE_string(
    "pred_dir", None, "Score this folder of predicted masks instead of running a model."
)
_IDS_FILE = flags.DEFINE_string(
    "ids_file",
    None,
    "Score only the images listed in this file, one id per line (for "
    "example a run's holdout_ids.txt, to score its held-out training pairs with --split="
    "training).",
)
_SEGMENT_OPTIONS, _MAX_IMAGE_PIXELS = common_flags.define_postprocess_flags()
_OUTPUT_DIR = common_flags.define_output_dir(
    None,
    "Where the report goes (replaced whole); default: one folder per model, data folder "
    "and split: <run>/evaluation/<data>-<split> beside a run's export, "
    "runs/evaluation/<model>/<data>-<split> for a shipped model, or "
    "<pred_dir>_evaluation/<data>-<split>.",
)
_BOOTSTRAP = common_flags.define_bootstrap()
_FIGURES = flags.DEFINE_bool(
    "figures",
    False,
    "Also write a per-image Jaccard histogram and a contact sheet of the "
    "best, median and worst images (PNG) beside summary.json.",
)

# The shared flags are listed by --help as this script's own.
flags.adopt_module_key_flags(common_flags)


def print_problem(message):
    print(f"evaluate.py: {message}", file=sys.stderr, flush=True)


flags.register_validator(  # refused before TensorFlow loads
    "bootstrap", lambda value: value >= 0, message="--bootstrap must be >= 0"
)


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    source = ("--pred_dir", _PRED_DIR.value, "folder")
    if not _PRED_DIR.value:
        source = ("--model", _MODEL.value, "model")
    inputs = [("--data_dir", _DATA_DIR.value, "folder"), ("--ids_file", _IDS_FILE.value, "file")]
    console.require_inputs("evaluate.py", [*inputs, source])
    from lesionseg_tf import split_choice  # pylint: disable=import-outside-toplevel

    try:  # every problem of the data, ids or predictions, before TensorFlow loads
        choice = split_choice.choose(
            _DATA_DIR.value,
            dataset=_DATASET.value,
            split=_SPLIT.value,
            ids_file=_IDS_FILE.value,
            pred_dir=_PRED_DIR.value,
        )
    except split_choice.MissingPredictions as e:
        for problem in e.problems:
            print_problem(problem)
        sys.exit(f"evaluate.py: {e}")
    except (ValueError, OSError) as e:
        sys.exit(f"evaluate.py: {e}")
    print(choice.found.summary(), flush=True)
    try:
        from lesionseg_tf import report  # pylint: disable=import-outside-toplevel

        output_dir = report.choose_output_dir(
            _OUTPUT_DIR.value,
            data_dir=choice.data_dir,
            model=_MODEL.value,
            pred_dir=choice.pred_dir,
            split=choice.split,
            ids_file=choice.ids_file,
        )
    except (ValueError, OSError) as e:
        sys.exit(f"evaluate.py: {e}")
    console.start_tensorflow()
    from lesionseg_tf import evaluation, split_scoring

    try:
        result, title = split_scoring.score_split(
            choice,
            model=_MODEL.value,
            segment_options=_SEGMENT_OPTIONS(),
            max_pixels=_MAX_IMAGE_PIXELS.value,
            output_dir=output_dir,
            bootstrap=_BOOTSTRAP.value,
            figures=_FIGURES.value,
            on_error=print_problem,
            make_progress=console.make_progress,
        )
    except (ValueError, OSError, evaluation.ScoringError) as e:
        sys.exit(f"evaluate.py: {e}")
    print("\n".join(evaluation.result_lines(result, title=title)))


HELP_GROUPS = (
    ("data", ["data_dir", "dataset", "split", "ids_file", "max_image_pixels"]),
    (
        "model",
        [
            "model",
            "saved_model",
            "pred_dir",
            "tta",
            "largest_component",
            "central_component",
            "fill_holes",
        ],
    ),
    ("output", ["output_dir", "bootstrap", "figures"]),
)

if __name__ == "__main__":
    console.run(main, groups=HELP_GROUPS)
