"""An ensemble of finished train.py runs written as one model folder (not in the
paper): the members' mean probability as one network (`model.build_ensemble`),
exported as a SavedModel that every command uses as a single run's.
"""

import os

from lesionseg_tf import export
from lesionseg_tf import model as model_lib
from lesionseg_tf.run_dir import RunDir


def write_ensemble(run_dirs, *, output_dir):
    """Writes `<output_dir>/export` (the ensemble's SavedModel, `lesionseg.json`
    naming its members), `<output_dir>/lesionseg.keras`, and the ids its members
    trained on (their union, for evaluate.py's warning) and held out (where they
    share them).

    Args:
      run_dirs: two or more run folders (or shipped model folders) of one input
        size and network.

    Returns:
      The export's absolute path.

    Raises:
      ValueError: the runs differ in input size or network, or are fewer than two.
      FileNotFoundError: a folder holds no model.
    """
    loaded = [model_lib.load_run(run_dir) for run_dir in run_dirs]
    sizes = {image_size for _, image_size in loaded}
    if len(sizes) > 1:
        raise ValueError(f"the runs were trained at different input sizes: {sorted(sizes)}")
    ensemble = model_lib.build_ensemble([model for model, _ in loaded])
    folder = RunDir(output_dir)
    os.makedirs(folder.path, exist_ok=True)
    path = export.export_saved_model(ensemble, export_dir=folder.export_dir, image_size=sizes.pop())
    ensemble.save(folder.file(RunDir.SHIPPED_MODEL))
    runs = [RunDir(run_dir) for run_dir in run_dirs]
    trained = sorted({i for run in runs for i in run.read_ids(RunDir.TRAINING_IDS) or []})
    folder.write(RunDir.TRAINING_IDS, payload="".join(f"{i}\n" for i in trained))
    held_out = [run.read_ids(RunDir.HOLDOUT_IDS) for run in runs]
    if held_out[0] is not None and all(ids == held_out[0] for ids in held_out):
        folder.write(RunDir.HOLDOUT_IDS, payload="".join(f"{i}\n" for i in held_out[0]))
    return path
