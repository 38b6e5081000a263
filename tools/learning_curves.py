"""Draws a run's learning curves (loss and per-image Jaccard per epoch, training and
selection set, the best epoch marked) from its training_log.csv.

    python -m tools.learning_curves --run_dir=runs/lesionseg
"""

import os
import sys

from absl import app

import common_flags
import console

_RUN_DIR = common_flags.define_run_dir("A train.py run folder (holding training_log.csv).")
_OUTPUT = common_flags.define_output(None, "PNG to write; default <run_dir>/learning_curves.png.")


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    if not _RUN_DIR.value:
        raise app.UsageError("--run_dir is required: a train.py run folder")
    console.require_inputs("learning_curves", [("--run_dir", _RUN_DIR.value, "folder")])
    from lesionseg_tf import figures
    from lesionseg_tf.run_dir import RunDir

    run = RunDir(_RUN_DIR.value)
    output = _OUTPUT.value or run.file(RunDir.LEARNING_CURVES)
    recorded = run.read_json(RunDir.CONFIG) or {}
    if run.members() > 1:
        sys.exit(
            f"learning_curves: {run.path} is an ensemble of {run.members()} networks "
            f"(--members), each with its own curves: --run_dir={run.member(0).path}, ..."
        )
    selected_on = "validation" if recorded.get("select_on") == "validation" else "held-out"
    try:
        figures.learning_curves(
            run.log_path,
            path=output,
            title=os.path.basename(os.path.normpath(run.path)),
            selection_label=selected_on,
        )
    except (OSError, ValueError) as e:
        sys.exit(f"learning_curves: {e}")
    print(f"learning curves: {output}")


if __name__ == "__main__":
    console.run(main)
