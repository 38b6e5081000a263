"""Checks a dataset before training: every problem of every pair, in one report
(headers, decoding as training decodes, mask values and sizes).

    python -m tools.check_data --data_dir=ISIC2017 --image_size=448

Exits 1 when any error is found.
"""

import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's start-up chatter out

from absl import app

import common_flags
import console
from lesionseg_tf import config

_DATA_DIR, _DATASET = common_flags.define_dataset_flags()
_SPLIT = common_flags.define_split_flag(
    "all", "Here all means each split there is, checked in turn."
)
_MAX_IMAGE_PIXELS = common_flags.define_max_image_pixels()
_IMAGE_SIZE = common_flags.define_image_size(
    config.DEFAULT_IMAGE_SIZE, "Training size the images are test-decoded at."
)


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    console.require_inputs("check_data", [("--data_dir", _DATA_DIR.value, "folder")])
    console.start_tensorflow()
    from lesionseg_tf import datasets, preflight

    try:
        dataset = datasets.open_dataset(_DATA_DIR.value, dataset=_DATASET.value)
        splits = (
            [_SPLIT.value]
            if _SPLIT.value != datasets.ALL or not dataset.has_splits
            else dataset.splits
        )
        scans = {split: dataset.scan(split) for split in splits}
    except datasets.DatasetError as e:
        sys.exit(f"check_data: {e}")
    print(dataset.summary())
    errors = 0
    for split, (examples, orphans) in scans.items():
        start = time.perf_counter()
        report = preflight.check_split(
            examples,
            orphans=orphans,
            max_pixels=_MAX_IMAGE_PIXELS.value,
            image_size=_IMAGE_SIZE.value,
            progress=preflight.check_progress(
                split, len(examples), lambda line: print(line, flush=True)
            ),
        )
        for problem in report.problems:
            print(problem)
        errors += len(report.errors)
        print(
            f"{split}: {len(examples)} pairs checked in {time.perf_counter() - start:.1f} s: "
            f"{len(report.errors)} error(s), {len(report.warnings)} warning(s)"
        )
    sys.exit(1 if errors else 0)


if __name__ == "__main__":
    console.run(main)
