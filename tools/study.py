"""Makes the reproduction study's table, paired comparisons and figure again from the
small files of its runs (docs/study/<run>/), without the data or the weights; or
collects a finished run's small files into docs/study/.

    python -m tools.study                       # writes docs/study/table.md and the figure
    python -m tools.study --collect=RUNS/size256_cosine50 --data_dir=isic2017_256
    python -m tools.study --collect_holdout=REPORT --run=RUN --data_dir=isic2017_256

Each run folder holds a train.py run's flags.json, holdout_ids.txt, training_log.csv and
result.json, and evaluate.py's validation per_image.csv and summary.json; and, where its
held-out pairs were scored at the photographs' resolution through its export, that report
under holdout/.
"""

import os
import sys

from absl import app, flags

import common_flags
import console

_STUDY_DIR = flags.DEFINE_string("study_dir", "docs/study", "The study's run folders.")
_OUTPUT_DIR = common_flags.define_output_dir(
    None, "Where table.md and the figure go; default --study_dir."
)
_REFERENCE = flags.DEFINE_string(
    "reference", "shipped_recipe_seed0", "The run every other run is compared with."
)
_COLLECT = flags.DEFINE_string(
    "collect",
    None,
    "Instead: copy this finished, scored run folder's small files (flags, "
    "held-out ids, log, result, validation report, held-out report) to "
    "<study_dir>/<run name>/, with the paths of this machine taken out.",
)
_COLLECT_HOLDOUT = flags.DEFINE_string(
    "collect_holdout",
    None,
    "Instead: copy this evaluate.py report folder, scored on the "
    "held-out pairs of the study run --run (--split=training --ids_file=its holdout_ids.txt), "
    "to <study_dir>/<run>/holdout/, its paths made portable.",
)
_RUN = flags.DEFINE_string("run", None, "With --collect_holdout: the study run it scores.")
_DATA_DIR = common_flags.define_data_dir_flag(
    "With --collect or --collect_holdout: the data the run used, recorded by its folder name only."
)


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    console.require_inputs("study", [("--study_dir", _STUDY_DIR.value, "folder")])
    from lesionseg_tf import study_collect, study_tables  # no TensorFlow

    if _COLLECT.value:
        try:
            folder = study_collect.collect_run(
                _COLLECT.value, study_dir=_STUDY_DIR.value, data_dir=_DATA_DIR.value
            )
        except OSError as e:
            sys.exit(f"study: {e}")
        print(f"collected: {folder}")
        return
    if _COLLECT_HOLDOUT.value:
        if not _RUN.value:
            raise app.UsageError("--collect_holdout needs --run (the study run it scores)")
        try:
            folder = study_collect.collect_holdout_report(
                _COLLECT_HOLDOUT.value,
                study_run=os.path.join(_STUDY_DIR.value, _RUN.value),
                data_dir=_DATA_DIR.value,
            )
        except (OSError, ValueError) as e:
            sys.exit(f"study: {e}")
        print(f"collected: {folder}")
        return

    try:
        table, table_path, figure_path = study_tables.write_table_and_figure(
            _STUDY_DIR.value,
            output_dir=_OUTPUT_DIR.value or _STUDY_DIR.value,
            reference=_REFERENCE.value,
        )
    except (OSError, ValueError) as e:
        sys.exit(f"study: {e}")
    print(table)
    print(f"table: {table_path}")
    print(f"figure: {figure_path}")


if __name__ == "__main__":
    console.run(main)
