"""Training (paper section 3.3): Adam, per-pixel softmax cross-entropy, early stopping
on the per-image mean Jaccard of a selection set, then a SavedModel export.

A run survives being killed at any moment: `callbacks.EpochBackup` keeps the
weights, optimizer state, epoch counter and early-stopping state of the last
completed epoch until `result.json` is written, and the input order of every
epoch depends only on the seed and the epoch number. Running the same command
again continues from the last completed epoch, or finishes a run whose training
was complete.
"""

import json
import os
import shutil
import tempfile

import keras
import tensorflow as tf
from absl import logging

from lesionseg_tf import callbacks, data, datasets, distribute, export, files, preflight
from lesionseg_tf.evaluation import TRAINING_IDS_FILE
from lesionseg_tf.metrics import PerImageJaccard
from lesionseg_tf.model import DEFAULT_IMAGE_SIZE, UPSCALE, build_model

BEST_CHECKPOINT = "best.keras"
EXPORT_DIR = "export"
BACKUP_DIR = "backup"
FLAGS_FILE = "flags.json"
RESULT_FILE = "result.json"
LOG_FILE = "training_log.csv"
HOLDOUT_FILE = "holdout_ids.txt"
MONITOR = "val_jaccard"


class TrainingError(RuntimeError):
    """Training could not go on; the message says why and what to try."""


def check_config(*, image_size, batch_size, learning_rate, max_epochs, patience,
                 max_image_pixels=data.DEFAULT_MAX_PIXELS, steps_per_execution=1):
    """Refuses settings that cannot train (ValueError), before any data is read."""
    if image_size <= 0 or image_size % UPSCALE:
        raise ValueError(f"image_size must be a positive multiple of {UPSCALE}, got {image_size}")
    for name, value in (("batch_size", batch_size), ("max_epochs", max_epochs),
                        ("max_image_pixels", max_image_pixels),
                        ("steps_per_execution", steps_per_execution)):
        if value < 1:
            raise ValueError(f"{name} must be >= 1, got {value}")
    if patience < 0:
        raise ValueError(f"patience must be >= 0, got {patience}")
    if not learning_rate > 0:
        raise ValueError(f"learning_rate must be > 0, got {learning_rate}")


def check_run_dir(model_dir, config, *, overwrite=False):
    """Decides whether `model_dir` starts a run or continues one.

    Returns:
      True when a run with the same flags has completed epochs to continue from
      (its `backup/`); it may also have finished training and only need its
      evaluation and export. False means a fresh start: `overwrite`, or nothing
      of a completed epoch in the folder.

    Raises:
      ValueError: the folder holds a finished run (`result.json`) and not
        `overwrite`, or a run to continue whose flags differ from `config`.
    """
    if overwrite:
        return False
    if os.path.exists(os.path.join(model_dir, RESULT_FILE)):
        raise ValueError(f"{model_dir} holds a finished run ({RESULT_FILE}); choose another "
                         "--model_dir, or pass --overwrite to train it again from scratch")
    if callbacks.read_backup(os.path.join(model_dir, BACKUP_DIR)) is None:
        return False
    flags_path = os.path.join(model_dir, FLAGS_FILE)
    previous = {}
    if os.path.exists(flags_path):
        with open(flags_path) as f:
            previous = json.load(f)
    changed = sorted(k for k in config if previous.get(k) != config[k])
    if changed:
        raise ValueError(
            f"{model_dir} holds an interrupted run with other flags (" + ", ".join(
                f"{k}: {previous.get(k)!r} then, {config[k]!r} now" for k in changed)
            + "); rerun with the same flags to resume, choose another --model_dir, or pass "
            "--overwrite to start again from scratch")
    return True


# Not cache/: it is keyed by content and stays valid.
RUN_FILES = (BEST_CHECKPOINT, EXPORT_DIR, EXPORT_DIR + ".old", BACKUP_DIR, RESULT_FILE, "logs",
             LOG_FILE, HOLDOUT_FILE, TRAINING_IDS_FILE)


def clear_run(model_dir):
    """Removes what a run writes to `model_dir` (not other files), for a fresh start."""
    for name in RUN_FILES:
        path = os.path.join(model_dir, name)
        if os.path.isdir(path):
            shutil.rmtree(path)
        elif os.path.exists(path):
            os.remove(path)


SELECT_ON = ("holdout", "validation")


def preflight_data(dataset, *, batch_size, max_image_pixels, skip_bad_examples,
                   select_on="holdout", holdout_fraction=0.1, seed=0,
                   image_size=DEFAULT_IMAGE_SIZE):
    """Finds and checks the data before training (`preflight.check_split`), and
    chooses the selection set: the pairs whose per-image Jaccard picks the best
    epoch and stops training (section 3.3).

    Training uses the training split, or every pair of a layout without splits
    (PH2, a flat folder: `datasets.Dataset.training_split`). With
    `select_on="holdout"` (the default) the selection set is a share
    `holdout_fraction` of those pairs, drawn from `seed` (`data.split_holdout`),
    and the validation split is never read: the organizers scored the paper's
    validation number blind. With "validation" it is the validation split, which
    makes a validation score optimistic.

    Args:
      dataset: a `datasets.Dataset` (`datasets.open_dataset`).

    Returns:
      `(training examples, selection examples, problems)`: the examples to use
      and every problem found (warnings, and with `skip_bad_examples` the errors
      of the examples left out).

    Raises:
      ValueError: an unknown `select_on` or a `holdout_fraction` outside (0, 1).
      data.DatasetError: a split that is not there (naming those that are); every
        error found, unless `skip_bad_examples`; or too few usable examples.
    """
    if select_on not in SELECT_ON:
        raise ValueError(f"select_on must be one of {', '.join(SELECT_ON)}, got {select_on!r}")
    if select_on == "holdout" and not 0 < holdout_fraction < 1:
        raise ValueError(f"holdout_fraction must be between 0 and 1, got {holdout_fraction}")
    train_split = dataset.training_split()
    wanted = (train_split, "validation") if select_on == "validation" else (train_split,)
    scans = {split: dataset.scan(split) for split in wanted}  # all missing splits first
    splits, problems = {}, []
    for split, (examples, orphans) in scans.items():
        report = preflight.check_split(examples, orphans, max_pixels=max_image_pixels,
                                       image_size=image_size)
        problems += report.problems
        splits[split] = report.good if skip_bad_examples else examples
        if not splits[split]:
            raise data.DatasetError(f"{split} split of {dataset.root} has no usable image/mask "
                                    "pairs")
    errors = [p for p in problems if p.is_error]
    if errors and not skip_bad_examples:
        lines = "\n".join(str(p) for p in problems)
        raise data.DatasetError(
            f"{len(errors)} problem(s) in {dataset.root}:\n{lines}\n"
            "fix them, or pass --skip_bad_examples to train on the other pairs")
    if select_on == "holdout":
        train_examples, selection = data.split_holdout(
            splits[train_split], fraction=holdout_fraction, seed=seed)
    else:
        train_examples, selection = splits[train_split], splits["validation"]
    if len(train_examples) < batch_size:
        raise data.DatasetError(
            f"{train_split} split of {dataset.root} leaves {len(train_examples)} usable images "
            f"for training, fewer than one batch of {batch_size}; lower --batch_size"
            + (" or --holdout_fraction" if select_on == "holdout" else ""))
    return train_examples, selection, problems


def init_weights_file(init_from):
    """The weights file `--init_from` names: a file (`.keras`, `.weights.h5`), or a
    run folder's `best.keras` or a shipped model's `lesionseg.weights.h5`.

    Raises:
      FileNotFoundError: none of these is there.
    """
    if os.path.isfile(init_from) and init_from.endswith((".keras", ".weights.h5")):
        return init_from
    if os.path.isdir(init_from):
        for name in export.WEIGHT_FILES:
            if os.path.isfile(os.path.join(init_from, name)):
                return os.path.join(init_from, name)
    raise FileNotFoundError(
        f"--init_from {init_from}: expected a .keras or .weights.h5 file, or a folder holding "
        f"{' or '.join(export.WEIGHT_FILES)} (a train.py run or a shipped model)")


DEFAULT_STEPS_PER_EXECUTION = 8
PRECISION_POLICIES = {"none": "float32", "float16": "mixed_float16",
                      "bfloat16": "mixed_bfloat16"}


LR_SCHEDULES = ("constant", "cosine")


def learning_rate_schedule(learning_rate, *, schedule="constant", decay_steps=None):
    """Adam's learning rate (section 3.3 names Adam and no schedule).

    "constant" is the paper's; "cosine" decays it to zero over `decay_steps`
    optimizer steps (the whole run), which settles the weights in the last
    epochs instead of leaving them at full step size.
    """
    if schedule == "constant":
        return learning_rate
    if schedule == "cosine":
        if not decay_steps or decay_steps < 1:
            raise ValueError(f"a cosine schedule needs decay_steps >= 1, got {decay_steps}")
        return keras.optimizers.schedules.CosineDecay(learning_rate, decay_steps)
    raise ValueError(f"lr_schedule must be one of {', '.join(LR_SCHEDULES)}, got {schedule!r}")


def compiled_model(*, learning_rate, jit_compile="auto", mixed_precision="none",
                   sync_batch_norm=False, steps_per_execution=1):
    """The Table-1 model compiled for training (section 3.3): Adam, per-pixel softmax
    cross-entropy, the per-image Jaccard. Call inside a strategy's scope to distribute.

    Args:
      learning_rate: a float or a schedule (`learning_rate_schedule`).
      mixed_precision: "none", "float16" or "bfloat16" compute (`PRECISION_POLICIES`);
        the global policy is restored to float32 afterwards.
    """
    keras.mixed_precision.set_global_policy(PRECISION_POLICIES[mixed_precision])
    try:
        model = build_model(sync_batch_norm=sync_batch_norm)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=[PerImageJaccard()], jit_compile=jit_compile,
        steps_per_execution=steps_per_execution)
    return model


def dataset_cache(cache, model_dir, split, examples, image_size):
    """The `cache` argument of `data.make_dataset` for a `--cache` choice."""
    if cache == "none":
        return None
    if cache == "memory":
        return "memory"
    folder = os.path.join(model_dir, "cache")
    os.makedirs(folder, exist_ok=True)
    prefix = os.path.join(folder, f"{split}-{data.cache_name(examples, image_size)}")
    # A run killed while writing the cache leaves a lock file that would stop the next.
    for name in os.listdir(folder):
        if name.startswith(os.path.basename(prefix)) and name.endswith(".lockfile"):
            os.remove(os.path.join(folder, name))
    return prefix


def train(*, data_dir, model_dir, image_size=448, batch_size=32, learning_rate=1e-3,
          lr_schedule="constant", max_epochs=200, patience=20, seed=0, train_examples=None,
          selection_examples=None, selected_on="holdout", cache="memory", jit_compile="auto",
          mixed_precision="none", steps_per_execution=DEFAULT_STEPS_PER_EXECUTION,
          strategy=None, init_from=None, verbose=1):
    """Trains LesionSeg (section 3.3), selecting epochs on `selection_examples`.

    Writes under `model_dir`: `best.keras` (whole model of the best selection
    epoch), `logs/` (TensorBoard), `training_log.csv`, `backup/` (the last
    completed epoch: see `callbacks.EpochBackup`), and at the end `export/`
    (SavedModel of the best weights, reload-checked) and `result.json`; then
    `backup/` is removed. If `backup/` holds an interrupted run, it continues
    from the last completed epoch, or, when training was complete, goes straight
    to the evaluation and export; the logs lose what they gained after the backup.

    Args:
      train_examples, selection_examples: the pairs to train on and to select
        the best epoch with (`preflight_data`); default: the training and the
        validation split.
      selected_on: what `selection_examples` are ("holdout" or "validation"),
        for the result.
      lr_schedule: "constant" or "cosine" (`learning_rate_schedule`; the cosine
        decays over `max_epochs`).
      cache: keep the decoded, resized images "memory" or on "disk" (under
        `model_dir/cache`), or "none".
      jit_compile: XLA for the training step: "auto" (on where a GPU is visible,
        as Keras decides), True or False.
      mixed_precision: "none", "float16" or "bfloat16" compute; variables, logits
        and the loss stay float32.
      steps_per_execution: training steps Keras runs per call into the graph
        (and per host read of the loss by the NaN guard); epochs stay whole.
      strategy: a `tf.distribute.Strategy` (`distribute.make_strategy`); default:
        the current one. `batch_size` is the global batch, split evenly over its
        replicas. Only the chief worker writes to `model_dir`; the others write
        to a temporary folder they remove, after taking the chief's resume state
        from `model_dir` (which must then be on a shared filesystem).
      init_from: a weights file (`init_weights_file`) a fresh run starts from
        instead of random weights, with a fresh optimizer (fine-tuning); a resumed
        run continues from its own backup.
      verbose: Keras' `fit` verbosity (1 a progress bar, 2 one line per epoch).

    Returns:
      `{"selection_jaccard": float, "selected_on": str, "best_epoch": int,
      "epochs_run": int, "export_dir": str, "weights_sha256": str}`.

    Raises:
      TrainingError: the loss became NaN or infinite.
    """
    check_config(image_size=image_size, batch_size=batch_size, learning_rate=learning_rate,
                 max_epochs=max_epochs, patience=patience)
    if not (train_examples and selection_examples):
        dataset = datasets.open_dataset(data_dir)
        train_examples = train_examples or dataset.find(dataset.training_split())
        selection_examples = selection_examples or dataset.find("validation")
    logging.info("%d training and %d selection (%s) images from %s", len(train_examples),
                 len(selection_examples), selected_on, data_dir)

    strategy = strategy or tf.distribute.get_strategy()
    replicas = strategy.num_replicas_in_sync
    if batch_size % replicas:
        raise ValueError(f"batch_size {batch_size} does not split evenly over {replicas} "
                         "replicas")
    logging.info("global batch %d = %d replica(s) x %d", batch_size, replicas,
                 batch_size // replicas)
    if steps_per_execution > 1 and strategy is not tf.distribute.get_strategy():
        # Keras 3.15's multi-step loop fails under tf.distribute strategies ("You must
        # feed a value for placeholder tensor ..." in multi_step_on_iterator).
        logging.warning("--steps_per_execution=%d is not supported by Keras 3.15 under "
                        "tf.distribute strategies; running one step per execution",
                        steps_per_execution)
        steps_per_execution = 1
    chief = distribute.is_chief(strategy)
    write_dir = model_dir if chief else _worker_dir(model_dir)
    if not chief:
        logging.info("not the chief worker: writing to %s, removed at the end", write_dir)
    try:
        result = _fit_and_export(
            strategy=strategy, write_dir=write_dir, image_size=image_size,
            batch_size=batch_size, learning_rate=learning_rate, lr_schedule=lr_schedule,
            max_epochs=max_epochs, patience=patience, seed=seed,
            train_examples=train_examples, selection_examples=selection_examples,
            cache=cache, jit_compile=jit_compile, mixed_precision=mixed_precision,
            steps_per_execution=steps_per_execution, init_from=init_from, verbose=verbose)
    finally:
        if not chief:
            shutil.rmtree(write_dir, ignore_errors=True)
    result["selected_on"] = selected_on
    if chief:
        files.write_atomically(os.path.join(model_dir, RESULT_FILE),
                               json.dumps(result, indent=2))
        # The run is complete only now: until here, a rerun continues from the backup.
        shutil.rmtree(os.path.join(model_dir, BACKUP_DIR), ignore_errors=True)
    return result


def _initial_weights(path):
    """The model weights of a `.keras` or `.weights.h5` file, without any optimizer
    state it may hold (read into an uncompiled model)."""
    if path.endswith(".keras"):
        source = keras.models.load_model(path, compile=False, safe_mode=True)
    else:
        source = build_model()
        source.load_weights(path)
    return source.get_weights()


def _worker_dir(model_dir):
    """A non-chief worker's private folder, seeded with the chief's resume state."""
    folder = tempfile.mkdtemp(prefix="lesionseg-worker-")
    if os.path.isdir(os.path.join(model_dir, BACKUP_DIR)):
        shutil.copytree(os.path.join(model_dir, BACKUP_DIR), os.path.join(folder, BACKUP_DIR))
    if os.path.exists(os.path.join(model_dir, BEST_CHECKPOINT)):
        shutil.copy(os.path.join(model_dir, BEST_CHECKPOINT), folder)
    return folder


def _fit_and_export(*, strategy, write_dir, image_size, batch_size, learning_rate, lr_schedule,
                    max_epochs, patience, seed, train_examples, selection_examples, cache,
                    jit_compile, mixed_precision, steps_per_execution, init_from, verbose):
    os.makedirs(write_dir, exist_ok=True)
    keras.utils.set_random_seed(seed)
    steps_per_epoch = len(train_examples) // batch_size
    with strategy.scope():
        # With several replicas, batch statistics over the global batch (as one
        # device would compute them for the paper's batch of 32).
        model = compiled_model(
            learning_rate=learning_rate_schedule(
                learning_rate, schedule=lr_schedule, decay_steps=max_epochs * steps_per_epoch),
            jit_compile=jit_compile, mixed_precision=mixed_precision,
            sync_batch_norm=strategy.num_replicas_in_sync > 1,
            steps_per_execution=steps_per_execution)
        model.augment_seed = seed
    # Outside the strategy's scope: a plain host variable the input pipeline reads.
    epoch = tf.Variable(0, dtype=tf.int64, trainable=False, name="data_epoch")
    train_ds = data.make_dataset(
        train_examples, image_size=image_size, batch_size=batch_size, is_training=True,
        seed=seed, epoch=epoch,
        cache=dataset_cache(cache, write_dir, "training", train_examples, image_size))
    selection_ds = data.make_dataset(
        selection_examples, image_size=image_size, batch_size=batch_size, is_training=False,
        cache=dataset_cache(cache, write_dir, "selection", selection_examples, image_size))
    best_path = os.path.join(write_dir, BEST_CHECKPOINT)
    backup_dir = os.path.join(write_dir, BACKUP_DIR)
    best = callbacks.BestAndEarlyStop(monitor=MONITOR, patience=patience, best_path=best_path)

    state = callbacks.read_backup(backup_dir)
    initial_epoch = 0
    if state is not None:
        with strategy.scope():
            callbacks.restore_backup(model, backup_dir, state)
        best.restore(state["early_stopping"])
        initial_epoch = state["epoch"]
        callbacks.truncate_logs(os.path.join(write_dir, LOG_FILE), os.path.join(write_dir, "logs"),
                                initial_epoch)
        logging.info("resuming after epoch %d of %d: best %s %.4f at epoch %d, %d epochs "
                     "without improvement", initial_epoch, max_epochs, MONITOR, best.best,
                     best.best_epoch + 1, best.wait)
    elif init_from:
        with strategy.scope():
            model.set_weights(_initial_weights(init_from))  # the optimizer starts afresh
        logging.info("starting from the weights of %s", init_from)
    finished = initial_epoch >= max_epochs or best.stopped
    nan_guard = callbacks.StopOnNaN()
    if finished:
        logging.info("training was complete; evaluating and exporting the best epoch")
    else:
        model.fit(train_ds, validation_data=selection_ds, epochs=max_epochs,
                  initial_epoch=initial_epoch, verbose=verbose,
                  shuffle=False,  # the dataset orders each epoch itself
                  callbacks=[
                      callbacks.EpochVariable(epoch),
                      nan_guard,
                      best,
                      keras.callbacks.CSVLogger(os.path.join(write_dir, LOG_FILE), append=True),
                      callbacks.EpochSummaries(os.path.join(write_dir, "logs")),
                      # Last: an epoch is backed up only once all it writes is on disk.
                      callbacks.EpochBackup(backup_dir, best),
                  ])
    if nan_guard.where is not None:
        kept = (f" (the best model so far is in {best_path})" if os.path.exists(best_path)
                else "")
        epoch_number, first, last = nan_guard.where
        steps = f"step {first}" if first == last else f"steps {first}-{last}"
        raise TrainingError(
            f"the loss became NaN or infinite at epoch {epoch_number}, {steps}; training "
            f"stopped{kept}. Try a lower --learning_rate (e.g. 1e-4), check the data, or rerun "
            "with --deterministic to reproduce it")

    model.load_weights(best_path)  # the best epoch's weights, also after a resume
    scores = model.evaluate(selection_ds, return_dict=True, verbose=0)
    export_dir = export.export_saved_model(model, os.path.join(write_dir, EXPORT_DIR),
                                           image_size=image_size)
    sample_images, _ = next(iter(selection_ds.take(1)))
    export.check_export(export_dir, model, sample_images[:2].numpy())
    return {
        "selection_jaccard": float(scores["jaccard"]),
        "best_epoch": best.best_epoch + 1,
        "epochs_run": callbacks.read_backup(backup_dir)["epoch"],
        "export_dir": export_dir,
        "weights_sha256": distribute.weights_digest(model),
        # What the model really ran with, whatever was asked for.
        "compute_dtype": model.get_layer("conv1_1").compute_dtype,
        "loss_scaling": isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer),
        "jit_compile": bool(model.jit_compile),
        "steps_per_execution": int(model.steps_per_execution),
    }
