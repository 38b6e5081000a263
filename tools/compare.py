"""Compares two models scored on the same images: the mean per-image difference with a
paired bootstrap 95% interval, and a two-sided Wilcoxon signed-rank p-value.

    python -m tools.compare runs/a/evaluation/validation/per_image.csv \
        runs/b/evaluation/validation/per_image.csv

Each file is an evaluate.py report (per_image.csv); the first minus the second is
reported. The images must be the same in both.
"""

import csv
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's start-up chatter out

from absl import app, flags

import common_flags
import console

_METRIC = flags.DEFINE_string("metric", "jaccard", "Which per-image column to compare.")
_BOOTSTRAP = common_flags.define_bootstrap()


def read_scores(path, metric):
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows or metric not in rows[0]:
        raise ValueError(f"{path}: not a per_image.csv with a {metric} column")
    return {row["image_id"]: float(row[metric]) for row in rows}


def main(argv):
    if len(argv) != 3:
        raise app.UsageError("give two per_image.csv files: python -m tools.compare A B")
    console.start_tensorflow()
    if _BOOTSTRAP.value < 1:
        raise app.UsageError(f"--bootstrap must be >= 1, got {_BOOTSTRAP.value}")
    from lesionseg_tf import metrics

    first_path, second_path = argv[1:]
    try:
        first, second = (read_scores(p, _METRIC.value) for p in (first_path, second_path))
    except (OSError, ValueError) as e:
        sys.exit(f"compare: {e}")
    if set(first) != set(second):
        only = sorted(set(first) ^ set(second))
        sys.exit(f"compare: the files score different images ({len(only)} in one only: "
                 f"{', '.join(only[:3])}{', ...' if len(only) > 3 else ''})")
    ids = sorted(first)
    comparison = metrics.paired_comparison([first[i] for i in ids], [second[i] for i in ids],
                                           samples=_BOOTSTRAP.value, seed=0)
    print(metrics.format_comparison(comparison, first_path, second_path,
                                    metric=_METRIC.value))


if __name__ == "__main__":
    app.run(main)
