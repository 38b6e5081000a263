"""Writes a small synthetic dataset in the exact layout of one the project reads
(for trying the scripts without the real data, and for the tests).

    python -m tools.synthetic --out_dir=/tmp/ISIC2017 --layout=isic2017
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's start-up chatter out

from absl import app, flags

import common_flags
import console
from lesionseg_tf import datasets

_OUT_DIR = flags.DEFINE_string("out_dir", None, "Folder to write the dataset into.")
_NUM_TRAINING = flags.DEFINE_integer("num_training", 16, "Training pairs.")
_NUM_VALIDATION = flags.DEFINE_integer("num_validation", 8, "Validation pairs.")
_NUM_TEST = flags.DEFINE_integer("num_test", 8, "Test pairs.")
_SEED = common_flags.define_seed("Seed of the synthetic pictures.")
_LAYOUT = flags.DEFINE_enum(
    "layout", "isic2017", list(datasets.LAYOUT_NAMES), "Folder layout of the dataset written."
)
flags.mark_flag_as_required("out_dir")


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    console.start_tensorflow()
    from lesionseg_tf import synthetic

    counts = synthetic.write_synthetic_dataset(
        _OUT_DIR.value,
        layout=_LAYOUT.value,
        num_training=_NUM_TRAINING.value,
        num_validation=_NUM_VALIDATION.value,
        num_test=_NUM_TEST.value,
        seed=_SEED.value,
    )
    print(f"wrote {counts} to {_OUT_DIR.value}")


if __name__ == "__main__":
    console.run(main)
