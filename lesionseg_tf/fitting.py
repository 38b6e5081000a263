"""The fit of one training run (paper section 3.3): Adam on per-pixel softmax
cross-entropy (or another `config.LOSSES` loss), the epochs with their callbacks, resuming
from the folder's backup, and the export of the chosen epoch.

`training.run` decides what to train on and calls `fit_and_export`.
"""

import os

import keras
import tensorflow as tf

from lesionseg_tf import callbacks, distribute, export, losses, pipeline
from lesionseg_tf import model as model_lib
from lesionseg_tf.config import JIT_COMPILE, LR_SCHEDULES, PRECISION_POLICIES
from lesionseg_tf.keras_metrics import PerImageJaccard
from lesionseg_tf.model import build_model

MONITOR = "val_jaccard"


class TrainingError(RuntimeError):
    """Training could not go on; the message says why and what to try."""


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


def compiled_model(
    *,
    learning_rate,
    jit_compile="auto",
    mixed_precision="none",
    sync_batch_norm=False,
    steps_per_execution=1,
    context="none",
    fused_batch_norm=True,
    loss="cross_entropy",
    color_augment=False,
    scale_augment=False,
    batch_norm="train",
):
    """The Table-1 model compiled for training (section 3.3): Adam, per-pixel softmax
    cross-entropy, the per-image Jaccard. Call inside a strategy's scope to distribute.

    Args:
      learning_rate: a float or a schedule (`learning_rate_schedule`).
      jit_compile: "auto" (XLA where a GPU is visible, as Keras decides), True or
        False; or one of `config.JIT_COMPILE`'s words.
      mixed_precision: "none", "float16" or "bfloat16" compute (`config.PRECISION_POLICIES`);
        the global policy is restored to float32 afterwards.
      context: the network's context option (`model.build_model`).
      fused_batch_norm: `model.build_model`'s; False only to measure what fusing saves.
      loss: a `config.LOSSES` name (`losses.make_loss`); "cross_entropy" is the paper's.
      color_augment: also change each training image's colour (`augment.random_color`).
      scale_augment: also zoom and shift each training pair (`augment.random_scale`).
      batch_norm: "train" (the paper's) or "frozen": every batch-norm layer not
        trainable, so Keras runs it in inference mode (`config.BATCH_NORM_MODES`).
    """
    jit_compile = JIT_COMPILE.get(jit_compile, jit_compile)
    keras.mixed_precision.set_global_policy(PRECISION_POLICIES[mixed_precision])
    try:
        model = build_model(
            sync_batch_norm=sync_batch_norm, context=context, fused_batch_norm=fused_batch_norm
        )
    finally:
        keras.mixed_precision.set_global_policy("float32")
    model.color_augment = color_augment
    model.scale_augment = scale_augment
    if batch_norm == "frozen":
        for layer in model.layers:
            if isinstance(layer, keras.layers.BatchNormalization):
                layer.trainable = False
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss=losses.make_loss(loss),
        metrics=[PerImageJaccard()],
        jit_compile=jit_compile,
        steps_per_execution=steps_per_execution,
    )
    return model


def fit_and_export(
    config,
    folder,
    *,
    strategy,
    train_examples,
    selection_examples,
    steps_per_execution,
    init_from,
    verbose,
    report,
):
    """Builds the model, continues from the folder's backup (or starts from
    `init_from`, scored first as epoch 0), trains until done, then exports the best
    epoch: the result dict."""
    os.makedirs(folder.path, exist_ok=True)
    keras.utils.set_random_seed(config.seed)
    steps_per_epoch = len(train_examples) // config.batch_size
    model = _run_model(
        config,
        strategy=strategy,
        steps_per_epoch=steps_per_epoch,
        steps_per_execution=steps_per_execution,
    )
    # Outside the strategy's scope: a plain host variable the input pipeline reads.
    epoch = tf.Variable(0, dtype=tf.int64, trainable=False, name="data_epoch")
    # Without a selection set, the training pairs unaugmented are scored once at the end.
    selecting = config.select_on != "none"
    scored_examples = selection_examples if selecting else train_examples
    train_ds, selection_ds = (
        _dataset(config, folder, examples=examples, split=split, epoch=epoch)
        for examples, split in ((train_examples, "training"), (scored_examples, "selection"))
    )
    best = callbacks.BestAndEarlyStop(
        monitor=MONITOR if selecting else None,
        patience=config.patience,
        best_path=folder.best_path,
    )
    initial_epoch = _start(
        model, best, folder, config=config, strategy=strategy, init_from=init_from, report=report
    )
    if init_from and initial_epoch == 0 and selecting:
        _score_start(model, best, folder, train_ds, selection_ds, report=report)
    if initial_epoch >= config.max_epochs or best.stopped:
        report("training was complete; evaluating and exporting the best epoch", False)
    else:
        _fit(
            model,
            best,
            folder,
            train_ds,
            selection_ds if selecting else None,
            epoch,
            config=config,
            initial_epoch=initial_epoch,
            verbose=verbose,
            progress=(
                # A line per epoch (a log file): lines inside a long one too.
                callbacks.EpochProgress(
                    steps_per_epoch=steps_per_epoch, report=lambda line: report(line, False)
                )
                if verbose == 2
                else None
            ),
        )
    return _export(model, best, folder, selection_ds, image_size=config.image_size)


def _run_model(config, *, strategy, steps_per_epoch, steps_per_execution):
    """`compiled_model` with the run's settings, in the strategy's scope: with several
    replicas, batch statistics over the global batch (as one device would compute
    them for the paper's batch of 32)."""
    with strategy.scope():
        model = compiled_model(
            learning_rate=learning_rate_schedule(
                config.learning_rate,
                schedule=config.lr_schedule,
                decay_steps=config.max_epochs * steps_per_epoch,
            ),
            jit_compile=config.jit_compile,
            mixed_precision=config.mixed_precision,
            sync_batch_norm=strategy.num_replicas_in_sync > 1,
            steps_per_execution=steps_per_execution,
            context=config.context,
            loss=config.loss,
            color_augment=config.color_augment,
            scale_augment=config.scale_augment,
            batch_norm=config.batch_norm,
        )
        model.augment_seed = config.seed
    return model


def _dataset(config, folder, *, examples, split, epoch):
    """The "training" split's batches (each epoch's order from the seed and `epoch`),
    or another's in a fixed order, cached as `config.cache` says."""
    is_training = split == "training"
    return pipeline.make_dataset(
        examples,
        image_size=config.image_size,
        batch_size=config.batch_size,
        is_training=is_training,
        seed=config.seed,
        epoch=epoch if is_training else None,
        cache=pipeline.cache_argument(
            config.cache,
            cache_dir=folder.cache_dir,
            split=split,
            examples=examples,
            image_size=config.image_size,
        ),
    )


def _start(model, best, folder, *, config, strategy, init_from, report):
    """Restores the folder's backup into `model` and `best` (a resumed run), or sets
    `init_from`'s weights (a fine-tuning run), said through `report`: the epoch to
    start from."""
    state = folder.backup_state()
    if state is not None:
        with strategy.scope():
            callbacks.restore_backup(model, backup_dir=folder.backup_dir, state=state)
        best.restore(state["early_stopping"])
        callbacks.truncate_logs(
            folder.log_path, log_dir=folder.tensorboard_dir, epochs=state["epoch"]
        )
        resumed = f"resuming after epoch {state['epoch']} of {config.max_epochs}"
        if best.monitor is None:
            report(f"{resumed} (no selection)", False)
        else:
            report(
                f"{resumed}: best {MONITOR} {best.best:.4f} at epoch {best.best_epoch + 1}, "
                f"{best.wait} epochs without improvement",
                False,
            )
        return state["epoch"]
    if init_from:
        with strategy.scope():
            model_lib.set_weights_from(model, path=init_from)
        report(f"starting from the weights of {init_from}", False)
    return 0


def _score_start(model, best, folder, train_ds, selection_ds, *, report):
    """Epoch 0 of a fine-tuning run: the starting weights scored as an epoch is (on
    the training pairs, unaugmented, and on the selection pairs), logged as epoch 0
    and made the best so far, so that a run in which no epoch beats them exports
    them unchanged: fine-tuning never exports a model worse, on the selection pairs,
    than the one it started from."""
    logs = model.evaluate(train_ds, return_dict=True, verbose=0)
    selection = model.evaluate(selection_ds, return_dict=True, verbose=0)
    logs.update({f"val_{name}": value for name, value in selection.items()})
    # Built before the start is saved, so its checkpoint holds the whole (fresh)
    # optimizer state as every epoch's does, and loads without a mismatch.
    model.optimizer.build(model.trainable_variables)
    best.set_model(model)
    best.on_epoch_end(-1, logs)  # best_epoch -1: the start (epoch 0 of the log)
    callbacks.EpochLog(folder.log_path).on_epoch_end(-1, logs)
    report(
        "Epoch 0 (the starting weights, before any training): "
        + " - ".join(f"{name}: {logs[name]:.4f}" for name in sorted(logs)),
        False,
    )


def _fit(
    model, best, folder, train_ds, selection_ds, epoch, *, config, initial_epoch, verbose, progress
):
    """`model.fit` with the run's callbacks (and `progress`, a callback or None), to
    the last epoch or early stopping.

    Raises:
      TrainingError: the loss became NaN or infinite.
    """
    nan_guard = callbacks.StopOnNaN()
    model.fit(
        train_ds,
        validation_data=selection_ds,
        epochs=config.max_epochs,
        initial_epoch=initial_epoch,
        verbose=verbose,
        shuffle=False,  # the dataset orders each epoch itself
        callbacks=[
            callbacks.EpochVariable(epoch),
            nan_guard,
            *([progress] if progress else []),
            best,
            callbacks.EpochLog(folder.log_path),
            callbacks.EpochSummaries(folder.tensorboard_dir),
            # Last: an epoch is backed up only once all it writes is on disk.
            callbacks.EpochBackup(folder.backup_dir, early_stopping=best),
        ],
    )
    if nan_guard.where is not None:
        kept = (
            f" (the best model so far is in {folder.best_path})"
            if os.path.exists(folder.best_path)
            else ""
        )
        epoch_number, first, last = nan_guard.where
        steps = f"step {first}" if first == last else f"steps {first}-{last}"
        raise TrainingError(
            f"the loss became NaN or infinite at epoch {epoch_number}, {steps}; training "
            f"stopped{kept}. Try a lower --learning_rate (e.g. 1e-4), check the data, or rerun "
            "with --deterministic to reproduce it"
        )


def _export(model, best, folder, selection_ds, *, image_size):
    """Exports the best epoch's weights, checked against the model: the result dict.
    `selection_ds` is scored for "selection_jaccard" (with --select_on=none, the
    training pairs, unaugmented)."""
    model.load_weights(folder.best_path)  # the best epoch's weights, also after a resume
    scores = model.evaluate(selection_ds, return_dict=True, verbose=0)
    export_dir = export.export_saved_model(
        model, export_dir=folder.export_dir, image_size=image_size
    )
    sample_images, _ = next(iter(selection_ds.take(1)))
    export.check_export(export_dir, model=model, inputs=sample_images[:2].numpy())
    return {
        "selection_jaccard": float(scores["jaccard"]),
        "best_epoch": best.best_epoch + 1,
        "epochs_run": folder.backup_state()["epoch"],
        "export_dir": export_dir,
        "weights_sha256": distribute.weights_digest(model),
        # What the model really ran with, whatever was asked for.
        "compute_dtype": model_lib.compute_dtype_of(model),
        "loss_scaling": isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer),
        "jit_compile": bool(model.jit_compile),
        "steps_per_execution": int(model.steps_per_execution),
    }
