"""An ensemble of train.py runs written as one model folder (not in the paper): the
members' mean probability as one network (`model.build_ensemble`), exported as a
SavedModel that every command uses as a single run's; and the training of such a
model in one call (`train_members`, behind `train.py --members`).
"""

import dataclasses
import os

from lesionseg_tf import distribute, export, files
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
      `{"export_dir": the export's absolute path, "weights_sha256": the ensemble's
      weights' digest}`.

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
    with files.atomic_path(folder.file(RunDir.SHIPPED_MODEL)) as temporary:
        ensemble.save(temporary)
    runs = [RunDir(run_dir) for run_dir in run_dirs]
    trained = sorted({i for run in runs for i in run.read_ids(RunDir.TRAINING_IDS) or []})
    folder.write(RunDir.TRAINING_IDS, payload="".join(f"{i}\n" for i in trained))
    held_out = [run.read_ids(RunDir.HOLDOUT_IDS) for run in runs]
    if held_out[0] is not None and all(ids == held_out[0] for ids in held_out):
        folder.write(RunDir.HOLDOUT_IDS, payload="".join(f"{i}\n" for i in held_out[0]))
    return {"export_dir": path, "weights_sha256": distribute.weights_digest(ensemble)}


def train_members(config, *, model_dir, train_one, overwrite=False, report):
    """Trains `config.members` networks one after another and writes their ensemble
    as the run's model (`write_ensemble`): network k is a whole run in
    `<model_dir>/member_<k>` (`RunDir.member`) with seed `config.seed + k`, all on the
    same held-out draw (`config.holdout_seed`), so the ensemble's held-out ids are
    theirs. Run again after a kill, it takes the networks already finished as they
    are (each checked to record network k's settings) and continues the interrupted
    one. A finished run copied in as `member_<k>` is taken so too.

    Args:
      config: a `config.RunConfig` with `members` > 1 (recorded at the top of
        `model_dir`, and compared with what a continued run recorded).
      train_one: `(member_config, model_dir=...) -> result`, one network's run
        (`training.run`).
      overwrite: start every network afresh.
      report: called with `(line, problem)` for the lines a person reads.

    Returns:
      `{"members": each network's result, "selected_on", "epochs_run",
      "export_dir", "weights_sha256"}`, also written as `result.json`.

    Raises:
      ValueError: the folder holds a finished run (without `overwrite`) or one with
        other settings, or a finished network with other settings than network k's;
        or what `train_one` raises.
    """
    folder = RunDir(model_dir)
    folder.refuse_finished(overwrite=overwrite)
    if overwrite:
        folder.clear()
    elif os.path.isfile(folder.file(RunDir.CONFIG)):
        folder.check_same_settings(config)
    folder.write_config(config)
    results = []
    for index in range(config.members):
        member = folder.member(index)
        member_config = dataclasses.replace(
            config, members=1, seed=config.seed + index, holdout_seed=config.holdout_seed
        )
        said = f"network {index + 1} of {config.members} (--seed={member_config.seed})"
        if member.is_finished():
            changed = member.changed_settings(member_config)
            if changed:
                raise ValueError(
                    f"{member.path} holds a finished network trained otherwise than {said}: "
                    f"{', '.join(changed)}; pass --overwrite to train every network again, or "
                    "choose another --model_dir"
                )
            report(f"{said}: trained before, in {member.path}", False)
            results.append(member.read_json(RunDir.RESULT))
        else:
            report(f"{said}: training in {member.path}", False)
            results.append(train_one(member_config, model_dir=member.path))
    written = write_ensemble(
        [folder.member(index).path for index in range(config.members)], output_dir=model_dir
    )
    result = {
        "members": results,
        "selected_on": config.select_on,
        "epochs_run": max(r["epochs_run"] for r in results),
        **written,
    }
    folder.write_json(RunDir.RESULT, values=result)
    return result
