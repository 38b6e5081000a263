"""Writes an ensemble of finished train.py runs as one model folder: their mean
probability as one network, exported as a SavedModel (not in the paper).

    python -m tools.ensemble --runs=runs/a,runs/b --output_dir=runs/ensemble_ab
    python evaluate.py --model=runs/ensemble_ab/export --data_dir=ISIC2017
"""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's start-up chatter out

from absl import app, flags

import common_flags
import console

_RUNS = flags.DEFINE_list("runs", [], "Two or more train.py run folders of one input size.")
_OUTPUT_DIR = common_flags.define_output_dir(None, "The ensemble's folder (required).")


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    if len(_RUNS.value) < 2 or not _OUTPUT_DIR.value:
        raise app.UsageError("give --runs=A,B[,...] (two or more) and --output_dir")
    console.require_inputs("ensemble", [("--runs", run, "folder") for run in _RUNS.value])
    console.start_tensorflow()
    from lesionseg_tf import ensemble

    try:
        path = ensemble.write_ensemble(_RUNS.value, output_dir=_OUTPUT_DIR.value)["export_dir"]
    except (ValueError, OSError) as e:
        sys.exit(f"ensemble: {e}")
    print(f"SavedModel of {len(_RUNS.value)} networks: {path}")


if __name__ == "__main__":
    console.run(main)
