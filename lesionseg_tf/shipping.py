"""A finished train.py run as a shipped model folder (`pretrained/<name>/`): what
predict.py, evaluate.py, tools.export, fine-tuning (`--init_from`) and the page take,
and what says how the model was made, without what only training needs (the
optimizer's state, the backup, TensorBoard's logs, the image cache).
"""

import os
import shutil

from lesionseg_tf import files, study, study_collect
from lesionseg_tf import model as model_lib
from lesionseg_tf.run_dir import RunDir, is_saved_model

# What a shipped folder copies from the run (those the run has: a run on every pair
# holds none out); of each network of an ensemble (`--members`), `RunDir.MEMBER_RECORD`.
SHIPPED_FILES = (RunDir.CONFIG, RunDir.TRAINING_IDS, RunDir.HOLDOUT_IDS, RunDir.RESULT, RunDir.LOG)


def ship_run(run_dir, *, output_dir):
    """Writes `output_dir` from the finished run `run_dir`: its `export/`; its
    `SHIPPED_FILES` and, for an ensemble, each network's `RunDir.MEMBER_RECORD` in
    `member_<k>/` (`study.member_files`), the JSON ones with this machine's paths taken
    out (`study_collect.copy_portably`: the data folder by its name, the run's own paths
    from its folder's name on); and the model for Keras as `lesionseg.keras` with no
    optimizer state (an ensemble's own; else the run's `best.keras` saved again
    uncompiled). The folder appears whole or not at all (`files.atomic_path`).

    Returns:
      The paths written, relative to `output_dir`, sorted.

    Raises:
      ValueError: the run is not finished, or `output_dir` exists.
      FileNotFoundError: the run lacks its export or model.
    """
    run = RunDir(run_dir)
    if not run.is_finished():
        raise ValueError(f"{run.path} holds no finished run ({RunDir.RESULT} is missing)")
    if os.path.exists(output_dir):
        raise ValueError(f"{output_dir} exists: ship to a new folder")
    if not is_saved_model(run.export_dir):
        raise FileNotFoundError(f"{run.export_dir} holds no SavedModel")
    weights = run.weights_file()
    if weights is None:
        raise FileNotFoundError(f"{run.path} holds neither {' nor '.join(RunDir.WEIGHT_FILES)}")
    with files.atomic_path(output_dir) as staging:
        shutil.copytree(run.export_dir, os.path.join(staging, RunDir.EXPORT))
        kept = [name for name in SHIPPED_FILES if os.path.isfile(run.file(name))]
        kept += [os.path.join(member, name) for member, name in study.member_files(run.path)]
        study_collect.copy_portably(
            [(run.file(name), os.path.join(staging, name)) for name in kept],
            runs_dir=os.path.dirname(os.path.abspath(run.path)),
            data_dir=run.settings()["data_dir"],
        )
        model_lib.load(weights, compile=False).save(os.path.join(staging, RunDir.SHIPPED_MODEL))
    return sorted(
        os.path.relpath(os.path.join(folder, name), output_dir)
        for folder, _, names in os.walk(output_dir)
        for name in names
    )
