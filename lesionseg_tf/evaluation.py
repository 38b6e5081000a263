"""Scoring a split the way the ISIC 2017 challenge did (`isic-challenge-scoring`
semantics), with boundary distances beside it: `run` is the one call behind
evaluate.py, writing a report (`report`).
"""

import dataclasses
import os

from lesionseg_tf import datasets, images, metrics, report, stats
from lesionseg_tf.run_dir import RunDir

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


def match_predictions(examples, *, pred_dir):
    """Finds each example's predicted mask by its image id (the file stem), on every
    dataset layout: a PNG or BMP named `<id>.png` or `<id>_<anything>.png`, such as
    predict.py's `<id>_segmentation.png`. A file that two ids could claim (`a_b.png`
    for `a` and `a_b`) goes to the longer id.

    Returns:
      `(paths, problems)`: image id -> path, and one message per image with no
      or several candidates.
    """
    if not os.path.isdir(pred_dir):
        raise FileNotFoundError(f"prediction folder {pred_dir} does not exist")
    ids = {example.image_id for example in examples}
    candidates = {}
    for name in sorted(os.listdir(pred_dir)):
        stem, extension = os.path.splitext(name)
        if name.startswith(".") or extension.lower() not in datasets.MASK_EXTENSIONS:
            continue
        owners = [
            prefix
            for prefix in [stem[:i] for i, c in enumerate(stem) if c == "_"] + [stem]
            if prefix in ids
        ]
        if owners:
            candidates.setdefault(max(owners, key=len), []).append(name)
    paths, problems = {}, []
    for example in examples:
        found = candidates.get(example.image_id, [])
        if not found:
            problems.append(f"{pred_dir}: no prediction for {example.image_id}")
        elif len(found) > 1:
            problems.append(
                f"{pred_dir}: several predictions for {example.image_id}: {', '.join(found)}"
            )
        else:
            paths[example.image_id] = os.path.join(pred_dir, found[0])
    return paths, problems


def training_overlap(examples, *, saved_model):
    """The ids of `examples` that the model of `saved_model` was trained on.

    ISIC editions share many images, so a model trained on one edition and scored
    on another may have seen them. train.py records its training ids in the run
    folder (`<run>/training_ids.txt` beside `<run>/export`).

    Returns:
      `(sorted ids in both, path of the ids file)`; `([], None)` when the run
      folder records none.
    """
    run = RunDir.of_export(saved_model)
    trained = run.read_ids(RunDir.TRAINING_IDS)
    if trained is None:
        return [], None
    trained = set(trained)
    return (
        sorted(e.image_id for e in examples if e.image_id in trained),
        run.file(RunDir.TRAINING_IDS),
    )


def select_ids(examples, *, ids_file):
    """The examples whose ids `ids_file` lists (one per line), in the file's order.

    Raises:
      ValueError: the file lists no id, or ids that are not among the examples.
    """
    with open(ids_file) as f:
        wanted = [line.strip() for line in f if line.strip()]
    if not wanted:
        raise ValueError(f"{ids_file} lists no image id")
    by_id = {e.image_id: e for e in examples}
    missing = [i for i in wanted if i not in by_id]
    if missing:
        raise ValueError(
            f"{ids_file}: {len(missing)} of its {len(wanted)} ids are not in the "
            f"split ({', '.join(missing[:3])}{', ...' if len(missing) > 3 else ''})"
        )
    return [by_id[i] for i in wanted]


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
    rows, failed = [], []
    for done, example in enumerate(examples, 1):
        try:
            truth = images.read_mask_file(example.mask_path)
            prediction, name = predict(example)
            rows.append(
                score_image(
                    example.image_id, truth=truth, prediction=prediction, prediction_name=name
                )
            )
        except (ValueError, OSError) as e:
            failed.append(example.image_id)
            on_error(str(e))
        if progress is not None:
            progress.update(done)
    return rows, failed


PAPER_JACCARD = 0.642  # the paper's ISIC 2017 validation score (section 4)


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


class MissingPredictions(ValueError):
    """Images of a predictions folder without a single prediction; `problems` names each."""

    def __init__(self, message, *, problems):
        super().__init__(message)
        self.problems = problems


def prediction_source(examples, *, model=None, pred_dir=None, segment_options=None, max_pixels):
    """How `run` gets each example's predicted mask: read from `pred_dir`, or made by
    the model (`inference.load_segmenter`) with `segment_options`.

    Returns:
      `(predict, source)`: `example -> (mask, name for messages)`, and what made
      the masks (the folder or the model).

    Raises:
      MissingPredictions: `pred_dir` lacks a single prediction for some images.
      ValueError: the model cannot be loaded or lacks an option asked for.
    """
    if pred_dir:
        paths, problems = match_predictions(examples, pred_dir=pred_dir)
        if problems:
            raise MissingPredictions(
                f"{len(problems)} image(s) have no single prediction in {pred_dir}",
                problems=problems,
            )

        def read(example):
            path = paths[example.image_id]
            return images.read_mask_file(path), path

        return read, pred_dir
    from lesionseg_tf import inference  # pylint: disable=import-outside-toplevel

    segmenter = inference.load_segmenter(model)
    options = dict(segment_options or {})
    segmenter.check_options(tta=options.get("tta", False))

    def segment(example):
        image = images.read_image_file(example.image_path, max_pixels=max_pixels)
        return segmenter.segment(image, **options), example.image_path

    return segment, model


def score_split(
    data_dir,
    *,
    dataset=None,
    split,
    ids_file=None,
    model=None,
    pred_dir=None,
    segment_options=None,
    max_pixels,
    output_dir,
    bootstrap=2000,
    figures=False,
    report_line,
    on_error,
    make_progress=None,
):
    """Scores a model, or a predictions folder, on one split of a dataset and writes
    the report folder: the one call behind evaluate.py.

    Args:
      data_dir, dataset: the data (`datasets.open_dataset`); split: which split.
      ids_file: score only the ids it lists (`select_ids`).
      model, pred_dir, segment_options, max_pixels: `prediction_source`'s.
      output_dir, bootstrap: `run`'s; figures: draw the report's figures too.
      report_line: called with each line a person should see before scoring (the
        dataset's summary); on_error: with each problem and warning (images the
        model was trained on, images that could not be scored).
      make_progress: `count -> progress reporter` (`evaluate`'s `progress`).

    Returns:
      `(Report, title)`: what `run` scored and wrote, and a title naming the data,
      the split and what made the masks.

    Raises:
      MissingPredictions, ValueError, OSError: the data, ids or model are unusable,
        before any image is scored.
      ScoringError: some images could not be scored (nothing written).
    """
    found = datasets.open_dataset(data_dir, dataset=dataset)
    report_line(found.summary())
    examples = found.find(split)
    if ids_file:
        examples = select_ids(examples, ids_file=ids_file)
    predict, source = prediction_source(
        examples,
        model=model,
        pred_dir=pred_dir,
        segment_options=segment_options,
        max_pixels=max_pixels,
    )
    overlap, trained_ids = ([], None) if pred_dir else training_overlap(examples, saved_model=model)
    if overlap:
        on_error(
            f"warning: {len(overlap)} of the {len(examples)} images scored were trained on "
            f"({trained_ids}: {', '.join(overlap[:3])}{', ...' if len(overlap) > 3 else ''}); "
            "the scores below are optimistic"
        )
    name = f"{found.layout.title}, {split} split"
    config = {
        "data_dir": data_dir,
        "split": split,
        "model": None if pred_dir else model,
        "pred_dir": pred_dir,
        **(segment_options or {}),
        "bootstrap": bootstrap,
        "ids_file": ids_file,
        "dataset": found.layout.name,
        "images_trained_on": len(overlap),
    }
    result = run(
        examples,
        predict=predict,
        output_dir=output_dir,
        config=config,
        bootstrap=bootstrap,
        figures_title=name if figures else None,
        on_error=on_error,
        progress=make_progress(len(examples)) if make_progress else None,
    )
    return result, f"{name}, {source}"
