"""Scores LesionSeg on a dataset split with the ISIC challenges' metrics.

    python evaluate.py                       # runs/lesionseg/export on ISIC2017 validation
    python evaluate.py --split=test
    python evaluate.py --pred_dir=predictions --split=test   # score existing masks
    python evaluate.py --data_dir=PH2 --split=all            # another dataset, recognized

Prints the per-image-averaged Jaccard (the ISIC 2017 ranking metric), thresholded
Jaccard, Dice, accuracy, sensitivity, specificity and the pixel-pooled two-class
mean IoU; writes per_image.csv and summary.json to --output_dir.
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
    "pred_dir", None, "Score this folder of predicted masks instead of running a model.")
_OUTPUT_DIR = common_flags.define_output_dir(
    None, "Where per_image.csv and summary.json go; default "
    "<model_dir>/evaluation/<split> beside the SavedModel, or <pred_dir>_evaluation/<split>.")
_IDS_FILE = flags.DEFINE_string(
    "ids_file", None, "Score only the images listed in this file, one id per line (for "
    "example a run's holdout_ids.txt, to score its held-out training pairs with --split="
    "training).")
_BOOTSTRAP = common_flags.define_bootstrap()
_FIGURES = flags.DEFINE_bool(
    "figures", False, "Also write a per-image Jaccard histogram and a contact sheet of the "
    "best, median and worst images (PNG) beside summary.json.")
_SEGMENT_OPTIONS, _MAX_IMAGE_PIXELS = common_flags.define_postprocess_flags()

# The shared flags are listed by --help as this script's own.
flags.adopt_module_key_flags(common_flags)


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    def fail(message):
        print(f"evaluate.py: {message}", file=sys.stderr, flush=True)

    if _BOOTSTRAP.value < 0:  # refused before TensorFlow loads
        raise app.UsageError(f"--bootstrap must be >= 0, got {_BOOTSTRAP.value}")
    console.start_tensorflow()
    from lesionseg_tf import datasets, evaluation, images, inference

    try:
        dataset = datasets.open_dataset(_DATA_DIR.value, dataset=_DATASET.value)
        print(dataset.summary(), flush=True)
        examples = dataset.find(_SPLIT.value)
        if _IDS_FILE.value:
            examples = evaluation.select_ids(examples, _IDS_FILE.value)
        if _PRED_DIR.value:
            paths, problems = evaluation.match_predictions(examples, _PRED_DIR.value)
            if problems:
                for problem in problems:
                    fail(problem)
                sys.exit(f"evaluate.py: {len(problems)} image(s) of the {_SPLIT.value} split "
                         f"have no single prediction in {_PRED_DIR.value}")

            def predict(example):
                path = paths[example.image_id]
                return images.read_mask_file(path), path
            source = _PRED_DIR.value
        else:
            segmenter = inference.load_segmenter(_MODEL())
            options = _SEGMENT_OPTIONS()
            segmenter.check_options(tta=options["tta"])

            def predict(example):
                image = images.read_image_file(example.image_path, _MAX_IMAGE_PIXELS.value)
                return segmenter.segment(image, **options), example.image_path
            source = _MODEL()
    except (ValueError, OSError) as e:
        sys.exit(f"evaluate.py: {e}")
    overlap, ids_file = ([], None) if _PRED_DIR.value else evaluation.training_overlap(
        examples, _MODEL())
    if overlap:
        fail(f"warning: {len(overlap)} of the {len(examples)} images scored were trained on "
             f"({ids_file}: {', '.join(overlap[:3])}{', ...' if len(overlap) > 3 else ''}); "
             "the scores below are optimistic")

    rows, failed = evaluation.evaluate(examples, predict, on_error=fail,
                                       progress=console.make_progress(len(examples)))
    if failed:
        sys.exit(f"evaluate.py: {len(failed)} of {len(examples)} images could not be scored; "
                 "no summary written")
    summary = evaluation.summarize(rows)
    intervals = None
    if _BOOTSTRAP.value:
        from lesionseg_tf import metrics
        intervals = metrics.bootstrap_intervals(rows, samples=_BOOTSTRAP.value, seed=0)
    output_dir = _OUTPUT_DIR.value or evaluation.default_output_dir(
        saved_model=_MODEL(), pred_dir=_PRED_DIR.value, split=_SPLIT.value)
    config = {name: flags.FLAGS[name].value for name in (
        "data_dir", "split", "saved_model", "pred_dir", "tta", "largest_component", "fill_holes",
        "bootstrap")}
    config.update(model=None if _PRED_DIR.value else _MODEL(), ids_file=_IDS_FILE.value,
                  dataset=dataset.layout.name, images_trained_on=len(overlap))
    evaluation.write_report(rows, summary, output_dir, config, intervals=intervals)
    name = f"{dataset.layout.title}, {_SPLIT.value} split"
    title = f"{name}, {source}"
    print(evaluation.format_table(summary, title, intervals))
    print(f"per-image scores and summary: {output_dir}")
    if _FIGURES.value:
        for path in evaluation.write_figures(rows, examples, predict, output_dir, title=name):
            print(f"figure: {path}")


if __name__ == "__main__":
    app.run(main)
