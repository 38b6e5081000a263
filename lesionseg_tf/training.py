"""A training run (paper section 3.3): the data checked and split into training and
selection pairs, the folder checked for a fresh start or a resumption, then the fit
(`fitting.fit_and_export`: early stopping on the per-image mean Jaccard of the selection
set, then a SavedModel export).

    config = RunConfig(data_dir="ISIC2017", image_size=64)
    result = training.run(config, "runs/lesionseg")

A run survives being killed at any moment: `callbacks.EpochBackup` keeps the
weights, optimizer state, epoch counter and early-stopping state of the last
completed epoch until `result.json` is written, and the input order of every
epoch depends only on the seed and the epoch number. Running the same call
again continues from the last completed epoch, or finishes a run whose training
was complete.
"""

import dataclasses
import functools
import shutil

import tensorflow as tf
from absl import logging

from lesionseg_tf import datasets, distribute, ensemble, fitting, hardware, preflight, run_dir
from lesionseg_tf.config import FEW_SELECTION_PAIRS
from lesionseg_tf.run_dir import RunDir


def run(
    config,
    *,
    model_dir,
    overwrite=False,
    strategy=None,
    verbose=2,
    report=None,
    fit_batch=False,
    fit_holdout=False,
):
    """A whole training run: the one call behind train.py.

    Checks the folder (`RunDir.check_start`: a fresh start, or the continuation
    of an interrupted run with the same settings) and the data
    (`preflight.select_data`), records the configuration and the ids trained on and
    held out, trains with early stopping on the selection set, exports the best
    epoch and writes `result.json`.

    Args:
      config: a `config.RunConfig` (validated when it was made).
      model_dir: the run folder (`run_dir.RunDir`).
      overwrite: start afresh even where a run is finished or interrupted.
      strategy: a `tf.distribute.Strategy` (`distribute.make_strategy`); default:
        the current one. `config.batch_size` is the global batch, split evenly over
        its replicas. Only the chief worker writes to `model_dir`; the others write
        to a temporary folder they remove, after taking the chief's resume state
        from `model_dir` (which must then be on a shared filesystem).
      verbose: Keras' `fit` verbosity (1 a progress bar, 2 one line per epoch).
      fit_holdout: hold out more than `config.holdout_fraction` where it would leave
        fewer than `config.FEW_SELECTION_PAIRS` pairs to choose the epoch
        (`preflight.fitted_holdout_fraction`; said through `report`, recorded); for
        a fine-tuning run's `--holdout_fraction` left at its default.
      fit_batch: where the data leave fewer training pairs than `config.batch_size`,
        train in one batch of all of them (said through `report`, recorded in
        `flags.json`) instead of refusing; for a `--batch_size` left at its default.
      report: called with `(line, problem)` for what a person should see before
        training starts: the dataset's one-line summary (problem False) and each
        problem the data check found (True); default: logged.

    Returns:
      `{"selection_jaccard", "selected_on", "best_epoch" (counted from 1, as the
      training log; 0 where no epoch of a fine-tuning run beat the starting
      weights, which are then exported), "epochs_run", "export_dir",
      "weights_sha256", ...}`; for `config.members` > 1, `ensemble.train_members`'.

    Raises:
      ValueError: the folder or the settings do not allow the run (the message
        says why), including `datasets.DatasetError` for the data.
      FileNotFoundError: `config.init_from` names no weights.
      fitting.TrainingError: the loss became NaN or infinite.
    """
    report = report or (lambda line, problem: logging.info("%s", line))
    if config.members > 1:  # each network a run of its own, then their ensemble
        return ensemble.train_members(
            config,
            model_dir=model_dir,
            overwrite=overwrite,
            report=report,
            train_one=functools.partial(
                run,
                strategy=strategy,
                verbose=verbose,
                report=report,
                fit_batch=fit_batch,
                fit_holdout=fit_holdout,
            ),
        )
    folder = RunDir(model_dir)
    strategy = strategy or tf.distribute.get_strategy()
    chief = distribute.is_chief(strategy)
    folder.refuse_before_data(
        config, overwrite=overwrite, fit_batch=fit_batch, fit_holdout=fit_holdout
    )
    init_from = config.init_from and run_dir.init_weights_file(config.init_from)
    dataset = datasets.open_dataset(config.data_dir, dataset=config.dataset)
    report(dataset.summary(), False)
    config, train_examples, selection_examples = _chosen_data(
        dataset, config, fit_batch=fit_batch, fit_holdout=fit_holdout, report=report
    )
    # After the data: the batch a fitted run recorded is known only now.
    resuming = folder.check_start(config, overwrite=overwrite)
    replicas = strategy.num_replicas_in_sync
    if config.select_on != "none" and len(selection_examples) < replicas:
        raise ValueError(
            f"{len(selection_examples)} selection pair(s) for {replicas} replicas: each "
            "replica scores its share of them; raise --holdout_fraction, or train on fewer "
            "devices or workers"
        )
    if resuming:
        report(f"resuming the interrupted run in {model_dir}", False)
    elif chief:  # a fresh start: overwrite, or no epoch of a run was completed here
        folder.clear()
    if config.deterministic:
        tf.config.experimental.enable_op_determinism()
    if chief:
        _write_start(folder, config, train_examples, selection_examples)
    report(selection_line(len(train_examples), len(selection_examples), config.select_on), False)
    return _train(
        config,
        folder,
        strategy=strategy,
        train_examples=train_examples,
        selection_examples=selection_examples,
        init_from=init_from,
        verbose=verbose,
        report=report,
    )


def _chosen_data(dataset, config, *, fit_batch, fit_holdout, report):
    """The data checked and split (`preflight.select_data`), the held-out share and
    the batch fitted to a small folder where asked, each said through `report`:
    `(config as fitted, training examples, selection examples)`."""
    if fit_holdout and config.select_on == "holdout":
        pairs = len(dataset.find(dataset.training_split()))
        fraction = preflight.fitted_holdout_fraction(pairs, fraction=config.holdout_fraction)
        if fraction != config.holdout_fraction:
            report(
                f"--holdout_fraction={fraction:.3g}: {round(fraction * pairs)} of the {pairs} "
                "pairs held out to choose the epoch, as the default would hold out too few "
                "(give --holdout_fraction to choose)",
                False,
            )
            config = dataclasses.replace(config, holdout_fraction=fraction)
    train_examples, selection_examples, problems = preflight.select_data(
        dataset,
        config=config,
        fit_batch=fit_batch,
        report_progress=lambda line: report(line, False),
    )
    for problem in problems:
        report(str(problem) + (" (skipped)" if problem.is_error else ""), True)
    if len(train_examples) < config.batch_size:  # only with fit_batch
        report(
            f"--batch_size={len(train_examples)}: all {len(train_examples)} training pairs in "
            f"one batch, as there are fewer than {config.batch_size} (give --batch_size to "
            "choose)",
            False,
        )
        config = dataclasses.replace(config, batch_size=len(train_examples))
    if config.select_on == "holdout" and len(selection_examples) < FEW_SELECTION_PAIRS:
        report(
            f"only {len(selection_examples)} held-out pair(s) choose the best epoch: on so "
            "few the choice is mostly chance; a larger --holdout_fraction gives it more "
            "to go by",
            True,
        )
    return config, train_examples, selection_examples


def _write_start(folder, config, train_examples, selection_examples):
    """The chief's first files: the settings, and the ids trained on (for evaluate.py
    to warn when it scores any of them) and held out."""
    folder.write_config(config)
    folder.write_ids(RunDir.TRAINING_IDS, examples=train_examples)
    if config.select_on == "holdout":
        folder.write_ids(RunDir.HOLDOUT_IDS, examples=selection_examples)


def selection_line(training, selection, select_on):
    """What a person reads before the epochs: how many pairs train, which choose the
    epoch, and so what the epoch lines' `val_` scores are."""
    if select_on == "none":
        return f"{training} training pairs, no selection: no val_ scores, the last epoch exported"
    if select_on == "validation":
        return (
            f"{training} training pairs; the {selection} validation pairs choose the epoch (the "
            "epoch lines' val_ scores), so the validation score is optimistic"
        )
    return (
        f"{training} training pairs; {selection} held-out training pairs choose the epoch (the "
        "epoch lines' val_ scores; the validation split is not read)"
    )


def bfloat16_advice(config, *, precision_given):
    """The line to print once at start about bfloat16 on this CPU
    (`hardware.bfloat16_advice`), or None: none where a GPU will train."""
    return hardware.bfloat16_advice(
        hardware.bfloat16_units(hardware.read_cpu_flags()),
        gpu_visible=bool(tf.config.list_physical_devices("GPU")),
        precision=config.mixed_precision,
        precision_given=precision_given,
        image_size=config.image_size,
    )


def result_lines(result, *, init_from=None, chief=True):
    """What train.py prints of a finished run's `result`: the selection score and
    best epoch, where the export is, whether it is the unchanged start of a
    fine-tuning run, and the weights' digest."""
    saved = f"SavedModel: {result['export_dir']}" if chief else "(not the chief: no files kept)"
    if "members" in result:  # each network's first line, then the ensemble's
        return [
            *(
                f"network {index + 1}: " + result_lines(member, chief=chief)[0].split("; ")[0]
                for index, member in enumerate(result["members"])
            ),
            f"ensemble of {len(result['members'])} networks (their mean probability): {saved}",
            f"final weights sha256: {result['weights_sha256']}",
        ]
    if result["selected_on"] == "none":
        return [
            f"no selection (--select_on=none): the last epoch, {result['epochs_run']}, exported; "
            f"training pairs' per-image mean Jaccard {result['selection_jaccard']:.4f} (not a "
            f"held-out score); {saved}",
            f"final weights sha256: {result['weights_sha256']}",
        ]
    selected_on = {"holdout": "held-out", "validation": "validation"}[result["selected_on"]]
    lines = [
        f"{selected_on} per-image mean Jaccard: {result['selection_jaccard']:.4f} "
        f"(best epoch {result['best_epoch']} of {result['epochs_run']}); {saved}"
    ]
    if result["best_epoch"] == 0:
        lines.append(
            f"no epoch beat the starting weights of {init_from} on the {selected_on} pairs: "
            "the export is the starting model, unchanged"
        )
    lines.append(f"final weights sha256: {result['weights_sha256']}")
    return lines


def _train(
    config, folder, *, strategy, train_examples, selection_examples, init_from, verbose, report
):
    """Trains on a chief's `folder`, or a non-chief's temporary copy, and writes
    the result (chief only)."""
    replicas = strategy.num_replicas_in_sync
    if config.batch_size % replicas:
        raise ValueError(
            f"batch_size {config.batch_size} does not split evenly over {replicas} replicas"
        )
    report(
        f"global batch {config.batch_size} = {replicas} replica(s) x "
        f"{config.batch_size // replicas}",
        False,
    )
    steps_per_execution = config.steps_per_execution
    if steps_per_execution > 1 and strategy is not tf.distribute.get_strategy():
        # Keras 3.15's multi-step loop fails under tf.distribute strategies ("You must
        # feed a value for placeholder tensor ..." in multi_step_on_iterator).
        report(
            f"--steps_per_execution={steps_per_execution} is not supported by Keras 3.15 under "
            "tf.distribute strategies; running one step per execution",
            True,
        )
        steps_per_execution = 1
    chief = distribute.is_chief(strategy)
    write_to = folder if chief else folder.worker_copy()
    if not chief:
        report(f"not the chief worker: writing to {write_to.path}, removed at the end", False)
    try:
        result = fitting.fit_and_export(
            config,
            write_to,
            strategy=strategy,
            train_examples=train_examples,
            selection_examples=selection_examples,
            steps_per_execution=steps_per_execution,
            init_from=init_from,
            verbose=verbose,
            report=report,
        )
    finally:
        if not chief:
            shutil.rmtree(write_to.path, ignore_errors=True)
    result["selected_on"] = config.select_on
    if chief:
        folder.write_json(RunDir.RESULT, values=result)
        # The run is complete only now: until here, a rerun continues from the backup.
        shutil.rmtree(folder.backup_dir, ignore_errors=True)
    return result
