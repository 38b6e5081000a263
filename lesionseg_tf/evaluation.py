"""Scoring a split the way the ISIC 2017 challenge did (`isic-challenge-scoring` semantics)."""

import csv
import json
import os

from lesionseg_tf import data, metrics

CSV_COLUMNS = ("image_id", "height", "width", "tp", "fp", "tn", "fn") + metrics.METRIC_NAMES
TABLE_ROWS = (
    ("jaccard", "Jaccard (IoU), per-image mean - ISIC 2017 ranking"),
    ("threshold_jaccard", "thresholded Jaccard (0 below 0.65) - ISIC 2018"),
    ("dice", "Dice"),
    ("accuracy", "accuracy"),
    ("sensitivity", "sensitivity"),
    ("specificity", "specificity"),
    ("pooled_mean_iou", "two-class mean IoU, pixels pooled (keras MeanIoU)"),
)


def score_image(image_id, truth, prediction, prediction_name=None):
    """Per-image row from `[H, W]` truth and prediction mask images (0-255 values).

    Raises:
      ValueError: the sizes differ (naming the prediction and both sizes).
    """
    if truth.shape != prediction.shape:
        raise ValueError(f"{prediction_name or image_id}: prediction is "
                         f"{prediction.shape[1]}x{prediction.shape[0]} (WxH), ground truth is "
                         f"{truth.shape[1]}x{truth.shape[0]}")
    counts = metrics.confusion(metrics.binarize(truth), metrics.binarize(prediction))
    return {"image_id": image_id, "height": truth.shape[0], "width": truth.shape[1],
            **counts, **metrics.image_metrics(counts)}


def summarize(rows):
    """Means over images of the ISIC metrics, plus the pooled two-class mean IoU."""
    return metrics.summarize([{k: row[k] for k in ("tp", "fp", "tn", "fn")} for row in rows])


def match_predictions(examples, pred_dir):
    """Finds each example's predicted mask as the ISIC scorer does: the one file in
    `pred_dir` whose name contains the image's 7-digit number.

    Returns:
      `(paths, problems)`: image id -> path, and one message per image with no
      or several candidates.
    """
    if not os.path.isdir(pred_dir):
        raise FileNotFoundError(f"prediction folder {pred_dir} does not exist")
    names = sorted(n for n in os.listdir(pred_dir) if not n.startswith("."))
    paths, problems = {}, []
    for example in examples:
        number = example.image_id.split("_")[1]
        candidates = [n for n in names if number in os.path.splitext(n)[0]]
        if not candidates:
            problems.append(f"{pred_dir}: no prediction for {example.image_id}")
        elif len(candidates) > 1:
            problems.append(f"{pred_dir}: several predictions for {example.image_id}: "
                            f"{', '.join(candidates)}")
        else:
            paths[example.image_id] = os.path.join(pred_dir, candidates[0])
    return paths, problems


def default_output_dir(*, saved_model, pred_dir, split):
    """`<model_dir>/evaluation/<split>` for an export at `<model_dir>/export`, or
    `<pred_dir>_evaluation/<split>` (outside the submission folder) for `pred_dir`."""
    if pred_dir:
        return os.path.join(os.path.normpath(pred_dir) + "_evaluation", split)
    model_dir = os.path.dirname(os.path.normpath(saved_model))
    return os.path.join(model_dir, "evaluation", split)


def write_report(rows, summary, output_dir, config):
    """Writes `per_image.csv` and `summary.json` (with `config`) to `output_dir`."""
    os.makedirs(output_dir, exist_ok=True)
    with open(os.path.join(output_dir, "per_image.csv"), "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=CSV_COLUMNS)
        writer.writeheader()
        writer.writerows({k: row[k] for k in CSV_COLUMNS} for row in rows)
    with open(os.path.join(output_dir, "summary.json"), "w") as f:
        json.dump({"summary": summary, "config": config}, f, indent=2)


def format_table(summary, title):
    width = max(len(label) for _, label in TABLE_ROWS)
    lines = [title, "-" * (width + 10)]
    lines += [f"{label:<{width}}  {summary[key]:.4f}" for key, label in TABLE_ROWS]
    lines.append(f"{'images':<{width}}  {summary['images']}")
    return "\n".join(lines)



def evaluate(examples, predict, *, on_error=print):
    """Scores every example, with a progress bar.

    Args:
      examples: `data.Example`s of the split.
      predict: `example -> (prediction [H, W] uint8, name for messages)`.
      on_error: called with one line per example that could not be scored.

    Returns:
      `(rows, failed image ids)`.
    """
    import keras  # pylint: disable=import-outside-toplevel

    rows, failed = [], []
    progress = keras.utils.Progbar(len(examples), unit_name="image")
    for done, example in enumerate(examples, 1):
        try:
            truth = data.read_mask_file(example.mask_path)
            prediction, name = predict(example)
            rows.append(score_image(example.image_id, truth, prediction, name))
        except (ValueError, OSError) as e:
            failed.append(example.image_id)
            on_error(str(e))
        progress.update(done)
    return rows, failed
