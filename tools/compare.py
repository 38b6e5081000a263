"""Compares two models scored on the same images: the mean per-image difference with a
paired bootstrap 95% interval, and a two-sided Wilcoxon signed-rank p-value.

    python -m tools.compare runs/a/evaluation/ISIC2017-validation/per_image.csv \\
        runs/b/evaluation/ISIC2017-validation/per_image.csv
    python -m tools.compare A.csv B.csv --metric=hd95

Each file is an evaluate.py report (per_image.csv); the first minus the second is
reported. The images must be the same in both; a boundary distance is compared on the
images where both reports define it. Loads no TensorFlow.
"""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's start-up chatter out

from absl import app, flags

import common_flags
import console
from lesionseg_tf import metrics, report

_METRIC = flags.DEFINE_enum("metric", "jaccard", list(metrics.SCORE_NAMES),
                            "Which per-image score to compare.")
_BOOTSTRAP = common_flags.define_bootstrap()


def read_scores(path, metric):
    """Image id -> score (None where undefined) of a report."""
    rows = report.read_per_image(path)
    if not rows or metric not in rows[0]:
        raise ValueError(f"{path}: not a {report.PER_IMAGE_FILE} with a {metric} column")
    return {row["image_id"]: row[metric] for row in rows}


def main(argv):
    if len(argv) != 3:
        raise app.UsageError("give two per_image.csv files: python -m tools.compare A B")
    if _BOOTSTRAP.value < 1:
        raise app.UsageError(f"--bootstrap must be >= 1, got {_BOOTSTRAP.value}")

    first_path, second_path = argv[1:]
    try:
        first, second = (read_scores(p, _METRIC.value) for p in (first_path, second_path))
    except (OSError, ValueError) as e:
        sys.exit(f"compare: {e}")
    if set(first) != set(second):
        only = sorted(set(first) ^ set(second))
        sys.exit(f"compare: the files score different images ({len(only)} in one only: "
                 f"{', '.join(only[:3])}{', ...' if len(only) > 3 else ''})")
    ids = sorted(i for i in first if first[i] is not None and second[i] is not None)
    if len(ids) < len(first):
        print(f"{len(first) - len(ids)} of {len(first)} images left out: {_METRIC.value} is "
              "undefined there (an empty mask) in one report or both")
    comparison = metrics.paired_comparison([first[i] for i in ids], second=[second[i] for i in ids],
                                           samples=_BOOTSTRAP.value, seed=0)
    print(metrics.format_comparison(comparison, first_name=first_path, second_name=second_path,
                                    metric=_METRIC.value))


if __name__ == "__main__":
    console.run(main)
