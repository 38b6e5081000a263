"""Compares two models scored on the same images: the mean per-image difference with a
paired bootstrap 95% interval, and a two-sided Wilcoxon signed-rank p-value.

    python -m tools.compare runs/a/evaluation/ISIC2017-validation/per_image.csv \\
        runs/b/evaluation/ISIC2017-validation/per_image.csv
    python -m tools.compare A.csv B.csv --metric=hd95
    python -m tools.compare A.csv B.csv --by_lesion_area=3
    python -m tools.compare A_seed0.csv,A_seed1.csv B_seed0.csv,B_seed1.csv

Each file is an evaluate.py report (per_image.csv); the first minus the second is
reported. Either may be several reports joined by commas (seeds of one recipe): each
image's score is then its mean over them, as the study's rule for keeping an
ingredient compares two seeds of each arm (docs/reproduction.md). The images must be
the same in both; a boundary distance is compared on the images where both reports
define it. `--by_lesion_area=N` compares them again within N
groups of equal count, from the smallest ground-truth lesions (as a share of the
photograph) to the largest: where a difference lives. Loads no TensorFlow.
"""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's start-up chatter out

from absl import app, flags

import common_flags
import console
from lesionseg_tf import metrics, report, stats

_METRIC = flags.DEFINE_enum(
    "metric", "jaccard", list(metrics.SCORE_NAMES), "Which per-image score to compare."
)
_BOOTSTRAP = common_flags.define_bootstrap()
_BY_LESION_AREA = flags.DEFINE_integer(
    "by_lesion_area",
    0,
    "Also compare within this many groups of images of equal count, by the share of the "
    "photograph the ground-truth lesion covers, smallest first (0: not).",
)


def read_rows(path, metric):
    """Image id -> row of a report, which must have a `metric` column."""
    rows = report.read_per_image(path)
    if not rows or metric not in rows[0]:
        raise ValueError(f"{path}: not a {report.PER_IMAGE_FILE} with a {metric} column")
    return {row["image_id"]: row for row in rows}


def read_arm(paths, metric):
    """Image id -> row of one arm: a report, or several comma-separated reports of the
    same images (seeds of one recipe), whose `metric` is then each image's mean over
    them (undefined where any report leaves it undefined); the other columns are the
    first report's.

    Raises:
      ValueError: a report is unreadable, or the reports score different images.
    """
    reports = [read_rows(path, metric) for path in paths.split(",")]
    for path, rows in zip(paths.split(",")[1:], reports[1:]):
        if set(rows) != set(reports[0]):
            raise ValueError(f"{path} scores other images than {paths.split(',')[0]}")
    arm = {}
    for image_id, row in reports[0].items():
        values = [rows[image_id][metric] for rows in reports]
        mean = None if None in values else sum(values) / len(values)
        arm[image_id] = {**row, metric: mean}
    return arm


def lesion_shares(first, second, ids, *, names):
    """The ground-truth lesion's share of each image, which both reports must agree on
    (the same masks scored at the same size)."""
    for path, rows in zip(names, (first, second)):
        if any(c not in rows[ids[0]] for c in ("tp", "fn", "height", "width")):
            raise ValueError(f"{path}: no tp, fn, height and width columns to measure lesions by")
    shares = [metrics.lesion_share(first[i]) for i in ids]
    differ = [
        i for i, share in zip(ids, shares) if abs(metrics.lesion_share(second[i]) - share) > 1e-3
    ]
    if differ:
        raise ValueError(
            f"the two reports' ground-truth lesions differ on {len(differ)} images "
            f"({', '.join(differ[:3])}): scored at other sizes or with other masks"
        )
    return shares


def main(argv):
    if len(argv) != 3:
        raise app.UsageError(
            "give two per_image.csv files, or two comma-separated lists of "
            "them: python -m tools.compare A B"
        )
    if _BOOTSTRAP.value < 1:
        raise app.UsageError(f"--bootstrap must be >= 1, got {_BOOTSTRAP.value}")
    if _BY_LESION_AREA.value < 0:
        raise app.UsageError(f"--by_lesion_area must be >= 0, got {_BY_LESION_AREA.value}")

    first_path, second_path = argv[1:]
    metric = _METRIC.value
    try:
        first, second = (read_arm(p, metric) for p in (first_path, second_path))
    except (OSError, ValueError) as e:
        sys.exit(f"compare: {e}")
    if set(first) != set(second):
        only = sorted(set(first) ^ set(second))
        sys.exit(
            f"compare: the files score different images ({len(only)} in one only: "
            f"{', '.join(only[:3])}{', ...' if len(only) > 3 else ''})"
        )
    ids = sorted(i for i in first if first[i][metric] is not None and second[i][metric] is not None)
    if not ids:
        sys.exit(f"compare: {metric} is undefined on every image in one report or both")
    groups = []
    if _BY_LESION_AREA.value:
        try:
            shares = lesion_shares(first, second, ids, names=(first_path, second_path))
            groups = stats.equal_count_groups(shares, groups=_BY_LESION_AREA.value)
        except ValueError as e:
            sys.exit(f"compare: {e}")
    if len(ids) < len(first):
        print(
            f"{len(first) - len(ids)} of {len(first)} images left out: {metric} is "
            "undefined there (an empty mask) in one report or both"
        )

    def compare(chosen, heading=None):
        comparison = stats.paired_comparison(
            [first[i][metric] for i in chosen],
            second=[second[i][metric] for i in chosen],
            samples=_BOOTSTRAP.value,
            seed=0,
        )
        return stats.format_comparison(
            comparison,
            first_name=first_path,
            second_name=second_path,
            metric=metric,
            heading=heading,
        )

    print(compare(ids))
    for number, (indices, lowest, highest) in enumerate(groups, start=1):
        print(
            compare(
                [ids[k] for k in indices],
                heading=(
                    f"group {number} of {len(groups)} by lesion area: lesions covering "
                    f"{lowest:.1%} to {highest:.1%} of the photograph, {len(indices)} images:"
                ),
            )
        )


if __name__ == "__main__":
    console.run(main)
