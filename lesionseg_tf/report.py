"""An evaluation report on disk: its file names, where it goes by default, its one
writer and its one reader. Imports no TensorFlow (the study and the compare command
read reports without it).

    <output_dir>/per_image.csv   one row per image: sizes, pixel counts, every score
    <output_dir>/summary.json    the means, their bootstrap intervals, the settings
    <output_dir>/*.png           evaluate.py --figures
"""

import csv
import io
import json
import os

from lesionseg_tf import files, metrics
from lesionseg_tf.run_dir import RunDir

PER_IMAGE_FILE = "per_image.csv"
SUMMARY_FILE = "summary.json"
COUNT_COLUMNS = ("tp", "fp", "tn", "fn")
CSV_COLUMNS = (
    ("image_id", "height", "width")
    + COUNT_COLUMNS
    + metrics.METRIC_NAMES
    + metrics.BOUNDARY_NAMES
    + ("boundary_undefined",)
)
# Where evaluate.py puts the reports of a shipped model (never inside it): relative to
# the folder it runs in, beside train.py's runs/ (ignored by git).
SHIPPED_MODEL_REPORTS = os.path.join("runs", "evaluation")


def default_output_dir(*, model=None, pred_dir=None, data_dir, split, ids_file=None):
    """The report folder of one scoring: one folder per model, dataset, split and
    subset, so that no two of them share a folder.

    `<run>/evaluation/<dataset>-<split>[-<ids file>]` for a train.py run's export (or
    a `.tflite` file in it, under `<run>/evaluation/<file name>/`), one of
    `--members` too; for a shipped model (`RunDir.is_shipped_model`), the same under
    `SHIPPED_MODEL_REPORTS/<model folder>/`, never inside it; for `pred_dir`,
    `<pred_dir>_evaluation/...`, outside the submission folder. `<dataset>` is the
    data folder's name.
    """
    name = f"{os.path.basename(os.path.abspath(data_dir))}-{split}"
    if ids_file:
        name += "-" + os.path.splitext(os.path.basename(ids_file))[0]
    if pred_dir:
        return os.path.join(os.path.normpath(pred_dir) + "_evaluation", name)
    run = RunDir.of_export(model)
    base = (
        os.path.join(SHIPPED_MODEL_REPORTS, os.path.basename(os.path.abspath(run.path)))
        if run.is_shipped_model()
        else run.file(RunDir.EVALUATION)
    )
    if str(model).endswith(".tflite"):
        base = os.path.join(base, os.path.splitext(os.path.basename(model))[0])
    return os.path.join(base, name)


def choose_output_dir(output_dir, *, data_dir, **scoring):
    """`output_dir`, or where none is given the `default_output_dir` of `data_dir` and
    `scoring` (`model`, `pred_dir`, `split`, `ids_file`), checked by `check_output_dir`.

    Raises:
      ValueError: the folder holds the report of another data folder.
    """
    output_dir = output_dir or default_output_dir(data_dir=data_dir, **scoring)
    check_output_dir(output_dir, data_dir=data_dir)
    return output_dir


def check_output_dir(output_dir, *, data_dir):
    """Refuses a folder holding the report of another data folder (a default folder
    of two datasets of the same name), before any scoring.

    Raises:
      ValueError: naming both data folders.
    """
    summary = os.path.join(output_dir, SUMMARY_FILE)
    if not os.path.isfile(summary):
        return
    try:
        with open(summary) as f:
            previous = json.load(f).get("config", {}).get("data_dir")
    except (ValueError, OSError):
        return  # not a readable report: replaced whole, as any report is
    if previous and os.path.abspath(previous) != os.path.abspath(data_dir):
        raise ValueError(
            f"{output_dir} holds the report of {previous}, another data folder "
            f"than {data_dir}; choose --output_dir"
        )


def write(output_dir, *, rows, summary, config, intervals=None, draw=None):
    """Writes a whole report folder atomically: `per_image.csv`, `summary.json` (with
    `config`, and `intervals` from `stats.bootstrap_intervals` when given) and what
    `draw(folder)` writes there (the figures). The folder replaces any previous one,
    so two reports never mix.

    Returns:
      `draw`'s return value (the figures' paths, under `output_dir`), or [].
    """
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows({k: "" if row.get(k) is None else row[k] for k in CSV_COLUMNS} for row in rows)
    report = {"summary": summary, "config": config}
    if intervals is not None:
        report["confidence_95"] = intervals
    os.makedirs(os.path.dirname(os.path.abspath(output_dir)), exist_ok=True)
    drawn = []
    with files.atomic_path(output_dir) as folder:
        os.makedirs(folder)
        files.write_atomically(os.path.join(folder, PER_IMAGE_FILE), payload=text.getvalue())
        files.write_atomically(
            os.path.join(folder, SUMMARY_FILE), payload=json.dumps(report, indent=2)
        )
        if draw is not None:
            drawn = [os.path.join(output_dir, os.path.relpath(p, folder)) for p in draw(folder)]
    return drawn


def _value(column, text):
    if column in ("image_id", "boundary_undefined"):
        return text or None
    if text == "":
        return None
    return int(text) if column in ("height", "width") + COUNT_COLUMNS else float(text)


def read_per_image(path):
    """The rows of a `per_image.csv`, typed: ints for sizes and counts, floats for
    scores, None for an undefined boundary distance. Reports written before the
    boundary columns existed are read too (their rows have no such keys).

    Raises:
      ValueError: the file is no per-image report (naming it).
    """
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        missing = [c for c in ("image_id", "jaccard") if c not in (reader.fieldnames or [])]
        if missing:
            raise ValueError(f"{path}: not a {PER_IMAGE_FILE} (no {', '.join(missing)} column)")
        return [{column: _value(column, text) for column, text in row.items()} for row in reader]


def read_summary(folder):
    """The `summary.json` of a report folder."""
    with open(os.path.join(folder, SUMMARY_FILE)) as f:
        return json.load(f)
