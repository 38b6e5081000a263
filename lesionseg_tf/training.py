"""Training (paper section 3.3): Adam, per-pixel softmax cross-entropy, early stopping
on the validation per-image mean Jaccard, then a SavedModel export."""

import json
import os

import keras
from absl import logging

from lesionseg_tf import data, export
from lesionseg_tf.metrics import PerImageJaccard
from lesionseg_tf.model import UPSCALE, build_model

BEST_CHECKPOINT = "best.keras"
EXPORT_DIR = "export"
MONITOR = "val_jaccard"


def check_inputs(*, data_dir, image_size, batch_size, learning_rate, max_epochs, patience,
                 **unused):
    """Refuses settings and data that cannot train, before anything is written.

    Returns:
      `(training examples, validation examples)`.

    Raises:
      ValueError (or its subclass `data.DatasetError`) saying what is wrong.
    """
    del unused
    if image_size <= 0 or image_size % UPSCALE:
        raise ValueError(f"image_size must be a positive multiple of {UPSCALE}, got {image_size}")
    for name, value in (("batch_size", batch_size), ("max_epochs", max_epochs)):
        if value < 1:
            raise ValueError(f"{name} must be >= 1, got {value}")
    if patience < 0:
        raise ValueError(f"patience must be >= 0, got {patience}")
    if not learning_rate > 0:
        raise ValueError(f"learning_rate must be > 0, got {learning_rate}")
    train_examples = data.find_split(data_dir, "training")
    val_examples = data.find_split(data_dir, "validation")
    if len(train_examples) < batch_size:
        raise data.DatasetError(
            f"training split of {data_dir} has {len(train_examples)} images, fewer than one "
            f"batch of {batch_size}; lower --batch_size")
    return train_examples, val_examples


def train(*, data_dir, model_dir, image_size=448, batch_size=32, learning_rate=1e-3,
          max_epochs=200, patience=20, seed=0, verbose=1):
    """Trains LesionSeg on the ISIC training split, monitoring the validation split.

    Writes under `model_dir`: `best.keras` (whole model of the best validation
    epoch), `logs/` (TensorBoard), `training_log.csv`, and `export/` (SavedModel
    of the best weights, reload-checked).

    Returns:
      `{"val_jaccard": float, "best_epoch": int, "epochs_run": int, "export_dir": str}`.
    """
    train_examples, val_examples = check_inputs(
        data_dir=data_dir, image_size=image_size, batch_size=batch_size,
        learning_rate=learning_rate, max_epochs=max_epochs, patience=patience)
    logging.info("%d training and %d validation images from %s",
                 len(train_examples), len(val_examples), data_dir)

    os.makedirs(model_dir, exist_ok=True)
    keras.utils.set_random_seed(seed)
    model = build_model()
    model.augment_seed = seed
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=[PerImageJaccard()])
    train_ds = data.make_dataset(train_examples, image_size=image_size, batch_size=batch_size,
                                 is_training=True, seed=seed)
    val_ds = data.make_dataset(val_examples, image_size=image_size, batch_size=batch_size,
                               is_training=False)
    early_stopping = keras.callbacks.EarlyStopping(
        monitor=MONITOR, mode="max", patience=patience, restore_best_weights=True, verbose=1)
    callbacks = [
        keras.callbacks.ModelCheckpoint(
            os.path.join(model_dir, BEST_CHECKPOINT), monitor=MONITOR, mode="max",
            save_best_only=True, verbose=0),
        early_stopping,
        keras.callbacks.TensorBoard(os.path.join(model_dir, "logs")),
        keras.callbacks.CSVLogger(os.path.join(model_dir, "training_log.csv")),
    ]
    history = model.fit(train_ds, validation_data=val_ds, epochs=max_epochs,
                        callbacks=callbacks, verbose=verbose)

    # EarlyStopping has restored the best epoch's weights.
    scores = model.evaluate(val_ds, return_dict=True, verbose=0)
    export_dir = export.export_saved_model(model, os.path.join(model_dir, EXPORT_DIR),
                                           image_size=image_size)
    sample_images, _ = next(iter(val_ds.take(1)))
    export.check_export(export_dir, model, sample_images[:2].numpy())
    result = {
        "val_jaccard": float(scores["jaccard"]),
        "best_epoch": int(early_stopping.best_epoch) + 1,
        "epochs_run": len(history.epoch),
        "export_dir": export_dir,
    }
    with open(os.path.join(model_dir, "result.json"), "w") as f:
        json.dump(result, f, indent=2)
    return result
