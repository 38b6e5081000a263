"""Writes a finished train.py run as a shipped model folder (`lesionseg_tf.shipping`):
its SavedModel, the model for Keras without optimizer state, its flags, ids, result
and training logs (each network's, for an ensemble). Then, for phones and the page:

    python -m tools.ship --run_dir=runs/final --output_dir=pretrained/lesionseg_NAME
    python -m tools.export --run_dir=pretrained/lesionseg_NAME --tflite=int8 --data_dir=ISIC2017

The model card (MODEL_CARD.md) is written by hand from evaluate.py's reports.
"""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's start-up chatter out

from absl import app

import common_flags
import console

_RUN_DIR = common_flags.define_run_dir("A finished train.py run folder.")
_OUTPUT_DIR = common_flags.define_output_dir(None, "The shipped model's folder (a new one).")


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    if not _RUN_DIR.value or not _OUTPUT_DIR.value:
        raise app.UsageError("give --run_dir and --output_dir")
    console.require_inputs("ship", [("--run_dir", _RUN_DIR.value, "folder")])
    console.start_tensorflow()
    from lesionseg_tf import shipping  # pylint: disable=import-outside-toplevel

    try:
        written = shipping.ship_run(_RUN_DIR.value, output_dir=_OUTPUT_DIR.value)
    except (ValueError, OSError) as e:
        sys.exit(f"ship: {e}")
    print(f"shipped {_RUN_DIR.value} as {_OUTPUT_DIR.value}: {len(written)} files")
    for path in written:
        print(f"  {path}")


if __name__ == "__main__":
    console.run(main)
