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
photograph) to the largest: where a difference lives. The first line names the run
settings in which the two arms' models were trained differently (image size, precision,
loss, ...), read from each run's flags.json where the report leads to it (a collected
run's folder, `<run>/evaluation/`, the model its summary.json names): a difference
measures them together. Loads no TensorFlow.
"""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's start-up chatter out

from absl import app, flags

import common_flags
import console
from lesionseg_tf import metrics, report_comparison

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
    try:
        lines = report_comparison.compare_reports(
            argv[1],
            argv[2],
            metric=_METRIC.value,
            samples=_BOOTSTRAP.value,
            lesion_area_groups=_BY_LESION_AREA.value,
        )
    except (OSError, ValueError) as e:
        sys.exit(f"compare: {e}")
    for line in lines:
        print(line)


if __name__ == "__main__":
    console.run(main)
