"""Segments photographs at full resolution with an exported LesionSeg model.

    python predict.py --input=ISIC2017/ISIC-2017_Test_v2_Data --output_dir=predictions
    python predict.py --input="PH2/PH2 Dataset images" --output_dir=ph2_predictions

Writes <stem>_segmentation.png (single-channel 8-bit, 0/255, the photograph's size)
per photograph, <stem> its file name without the extension: a folder of them for
ISIC photographs is a valid ISIC Task 1 submission.
"""

import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's start-up chatter out

from absl import app, flags

import common_flags
import console

_MODEL = common_flags.define_model_flags()
_INPUT = flags.DEFINE_string(
    "input",
    None,
    "One image, a folder of images (ISIC superpixel files are skipped), or a "
    "dataset's top or image folder (any layout train.py reads, PH2's nested folders too).",
)
_OUTPUT_DIR = common_flags.define_output_dir("predictions", "Where the masks are written.")
_OVERLAY = flags.DEFINE_bool(
    "overlay",
    False,
    "Also write overlays/<id>_overlay.jpg: the photograph with the predicted "
    "outline (green) and, where a ground-truth mask is known, the true one (magenta).",
)
_TRUTH_DIR = flags.DEFINE_string(
    "truth_dir",
    None,
    "Ground-truth masks for the overlays; found by themselves for a folder of a dataset layout.",
)
_SEGMENT_OPTIONS, _MAX_IMAGE_PIXELS = common_flags.define_postprocess_flags()
_OVERWRITE_SOURCES = flags.DEFINE_bool(
    "allow_writing_into_sources",
    False,
    "Allow --output_dir to be the input or ground-truth folder.",
)

# The shared flags are listed by --help as this script's own.
flags.adopt_module_key_flags(common_flags)


flags.register_validator(
    "input", bool, message="--input is required: an image or a folder of images"
)


def _paths_given():
    return [
        ("--input", _INPUT.value, "file or folder"),
        ("--model", _MODEL.value, "model"),
        ("--truth_dir", _TRUTH_DIR.value, "folder"),
    ]


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    console.require_inputs("predict.py", _paths_given())
    from lesionseg_tf import prediction  # the plan needs no TensorFlow: refused before it loads

    try:
        jobs, found = prediction.plan(
            _INPUT.value,
            output_dir=_OUTPUT_DIR.value,
            truth_dir=_TRUTH_DIR.value,
            allow_writing_into_sources=_OVERWRITE_SOURCES.value,
        )
    except (ValueError, OSError) as e:
        sys.exit(f"predict.py: {e}")
    print(found, flush=True)
    console.start_tensorflow()
    from lesionseg_tf import inference

    try:
        segmenter = inference.load_segmenter(_MODEL.value)
        segmenter.check_options(tta=_SEGMENT_OPTIONS()["tta"])
    except (ValueError, OSError) as e:
        sys.exit(f"predict.py: {e}")
    start = time.perf_counter()
    failures = prediction.run(
        jobs,
        segmenter=segmenter,
        overlay=_OVERLAY.value,
        max_pixels=_MAX_IMAGE_PIXELS.value,
        progress=console.make_progress(len(jobs)),
        **_SEGMENT_OPTIONS(),
        on_error=lambda message: print(f"predict.py: {message}", file=sys.stderr, flush=True),
    )
    seconds = time.perf_counter() - start
    print(
        prediction.result_line(
            jobs=jobs, failures=failures, output_dir=_OUTPUT_DIR.value, seconds=seconds
        )
    )
    if failures:
        sys.exit(
            f"predict.py: {len(failures)} of {len(jobs)} images failed: " + ", ".join(failures)
        )


HELP_GROUPS = (
    ("input", ["input", "truth_dir", "max_image_pixels"]),
    (
        "model",
        ["model", "saved_model", "tta", "largest_component", "central_component", "fill_holes"],
    ),
    ("output", ["output_dir", "overlay", "allow_writing_into_sources"]),
)

if __name__ == "__main__":
    console.run(main, groups=HELP_GROUPS)
