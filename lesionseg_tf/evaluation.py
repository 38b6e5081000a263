"""Scoring a split the way the ISIC 2017 challenge did (`isic-challenge-scoring`
semantics), with boundary distances beside it: `run` scores the examples and writes a
report (`report`); behind evaluate.py, `split_choice.choose` says what to score and
`split_scoring.score_split` with what.
"""

import dataclasses
import os

from lesionseg_tf import images, messages, metrics, report, stats
from lesionseg_tf.config import PAPER_JACCARD

TABLE_ROWS = (
    ("jaccard", "Jaccard (IoU), per-image mean - ISIC 2017 ranking"),
    ("threshold_jaccard", "thresholded Jaccard (0 below 0.65) - ISIC 2018"),
    ("dice", "Dice"),
    ("accuracy", "accuracy"),
    ("sensitivity", "sensitivity"),
    ("specificity", "specificity"),
    ("pooled_mean_iou", "two-class mean IoU, pixels pooled (keras MeanIoU)"),
    ("hd95", "HD95, pixels (images with both masks non-empty)"),
    ("assd", "ASSD, pixels (mean of the two directed averages)"),
)


def score_image(image_id, *, truth, prediction, prediction_name=None):
    """Per-image row from `[H, W]` truth and prediction mask images (0-255 values).

    Raises:
      ValueError: the sizes differ (naming the prediction and both sizes).
    """
    if truth.shape != prediction.shape:
        raise ValueError(
            f"{prediction_name or image_id}: prediction is "
            f"{prediction.shape[1]}x{prediction.shape[0]} (WxH), ground truth is "
            f"{truth.shape[1]}x{truth.shape[0]}"
        )
    truth, prediction = metrics.binarize(truth), metrics.binarize(prediction)
    counts = metrics.confusion(truth, prediction=prediction)
    return {
        "image_id": image_id,
        "height": truth.shape[0],
        "width": truth.shape[1],
        **counts,
        **metrics.image_metrics(counts),
        **metrics.boundary_distances(truth, prediction=prediction),
    }


def format_table(summary, *, title, intervals=None):
    """The summary as a text table; per-image means get their 95% interval beside
    them when `intervals` (from `stats.bootstrap_intervals`) is given."""
    width = max(len(label) for _, label in TABLE_ROWS)
    lines = [title, "-" * (width + 10)]
    for key, label in TABLE_ROWS:
        if key not in summary:
            continue
        if summary[key] is None:
            lines.append(f"{label:<{width}}  undefined")
            continue
        line = f"{label:<{width}}  {summary[key]:.4f}"
        if intervals and key in intervals:
            low, high = intervals[key]
            line += f"  (95% CI {low:.4f}-{high:.4f})"
        lines.append(line)
    lines.append(f"{'images':<{width}}  {summary['images']}")
    undefined = {k: v for k, v in summary.get("boundary_undefined", {}).items() if v}
    if undefined:
        lines.append(
            f"{'no HD95/ASSD (a mask empty)':<{width}}  "
            + ", ".join(f"{count} {why.replace('_', ' ')}" for why, count in undefined.items())
        )
    return "\n".join(lines)


def evaluate(examples, *, predict, on_error, progress=None):
    """Scores every example.

    Args:
      examples: `datasets.Example`s of the split.
      predict: `example -> (prediction [H, W] uint8, name for messages)`.
      on_error: called with one line per example that could not be scored.
      progress: an object whose `update(done)` is called after each example
        (`console.make_progress`), or None.

    Returns:
      `(rows, failed image ids)`.
    """
    rows = []

    def score(example):
        truth = images.read_mask_file(example.mask_path)
        prediction, name = predict(example)
        rows.append(
            score_image(example.image_id, truth=truth, prediction=prediction, prediction_name=name)
        )

    failed = messages.each_item(examples, score, on_error=on_error, progress=progress)
    return rows, [example.image_id for example in failed]


def write_figures(rows, *, examples, predict, output_dir, title):
    """Draws the per-image Jaccard histogram and a contact sheet of the best,
    median and worst images (predicted outline green, true outline magenta)
    beside the report.

    Args:
      rows: per-image rows of `evaluate`.
      examples: the scored `datasets.Example`s.
      predict: the same `example -> (prediction, name)` that `evaluate` used.

    Returns:
      The paths written.
    """
    from lesionseg_tf import figures  # pylint: disable=import-outside-toplevel

    jaccards = [row["jaccard"] for row in rows]
    paths = [
        figures.jaccard_histogram(
            jaccards,
            path=os.path.join(output_dir, figures.HISTOGRAM_FILE),
            title=title,
            reference=PAPER_JACCARD,
            reference_label=f"paper {PAPER_JACCARD}",
        )
    ]
    order = sorted(range(len(rows)), key=lambda i: (rows[i]["jaccard"], rows[i]["image_id"]))
    picks = (("best", order[-1]), ("median", order[len(order) // 2]), ("worst", order[0]))
    by_id = {e.image_id: e for e in examples}
    panels = []
    for label, index in picks:
        example = by_id[rows[index]["image_id"]]
        image = images.read_image_file(example.image_path)
        prediction, _ = predict(example)
        picture = figures.overlay(
            image,
            predicted=prediction,
            truth=images.read_mask_file(example.mask_path),
            max_side=600,
        )
        panels.append(
            (
                f"{label}: {example.image_id}, Jaccard {rows[index]['jaccard']:.3f}",
                picture[..., ::-1],
            )
        )
    paths.append(
        figures.contact_sheet(
            panels, path=os.path.join(output_dir, figures.CONTACT_SHEET_FILE), title=title
        )
    )
    return paths


@dataclasses.dataclass(frozen=True)
class Report:
    """What `run` scored and wrote."""

    rows: list  # per image (`score_image`)
    summary: dict  # `metrics.summarize`
    intervals: dict | None  # `stats.bootstrap_intervals`
    output_dir: str
    figures: list  # paths


class ScoringError(RuntimeError):
    """Some images could not be scored; nothing was written."""


def run(
    examples,
    *,
    predict,
    output_dir,
    config,
    bootstrap=2000,
    figures_title=None,
    on_error,
    progress=None,
):
    """Scores every example and writes the report folder (`report.write`): the one
    call behind evaluate.py.

    Args:
      examples: `datasets.Example`s.
      predict: `example -> (prediction [H, W] uint8, name for messages)`.
      output_dir: the report folder, replaced whole.
      config: what `summary.json` records as the settings.
      bootstrap: resamples of the 95% intervals; 0 leaves them out.
      figures_title: draws the figures (`write_figures`) under this title; None: none.
      on_error, progress: as for `evaluate`.

    Raises:
      ScoringError: an image could not be scored (each was passed to `on_error`).
    """
    rows, failed = evaluate(examples, predict=predict, on_error=on_error, progress=progress)
    if failed:
        raise ScoringError(
            f"{len(failed)} of {len(examples)} images could not be scored; no report written"
        )
    summary = metrics.summarize(rows)
    intervals = stats.bootstrap_intervals(rows, samples=bootstrap, seed=0) if bootstrap else None
    draw = (
        None
        if figures_title is None
        else (
            lambda folder: write_figures(
                rows, examples=examples, predict=predict, output_dir=folder, title=figures_title
            )
        )
    )
    drawn = report.write(
        output_dir, rows=rows, summary=summary, config=config, intervals=intervals, draw=draw
    )
    return Report(
        rows=rows, summary=summary, intervals=intervals, output_dir=output_dir, figures=drawn
    )


def result_lines(result, *, title):
    """What evaluate.py prints of a `Report`: the table of scores under `title`,
    where the report folder is, and each figure drawn."""
    table = format_table(result.summary, title=title, intervals=result.intervals)
    return [table, f"per-image scores and summary: {result.output_dir}"] + [
        f"figure: {path}" for path in result.figures
    ]
