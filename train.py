"""Trains LesionSeg on ISIC 2017 Task 1 and exports a SavedModel.

    python train.py --data_dir=ISIC2017 --model_dir=runs/lesionseg
"""

import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's start-up chatter out

from absl import app, flags, logging

_DATA_DIR = flags.DEFINE_string(
    "data_dir", "ISIC2017", "Folder holding the unpacked ISIC 2017 Task 1 archives.")
_MODEL_DIR = flags.DEFINE_string(
    "model_dir", "runs/lesionseg", "Where checkpoints, logs and the export are written.")
_IMAGE_SIZE = flags.DEFINE_integer("image_size", 448, "Network input side (paper: 448).")
_BATCH_SIZE = flags.DEFINE_integer("batch_size", 32, "Batch size (paper: 32).")
_LEARNING_RATE = flags.DEFINE_float(
    "learning_rate", 1e-3, "Adam learning rate (the paper gives none; Adam's default).")
_MAX_EPOCHS = flags.DEFINE_integer("max_epochs", 200, "Upper bound on training epochs.")
_PATIENCE = flags.DEFINE_integer(
    "patience", 20, "Epochs without a better validation Jaccard before training stops.")
_SEED = flags.DEFINE_integer("seed", 0, "Seed for weights, shuffling and augmentation.")
_GENERATE_SYNTHETIC = flags.DEFINE_bool(
    "generate_synthetic", False,
    "If --data_dir does not exist, first write a small synthetic dataset in the ISIC layout "
    "there (the quick start).")


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    # Imported here so that --help answers without loading TensorFlow.
    from lesionseg_tf import synthetic, training

    config = {name: flags.FLAGS[name].value for name in (
        "data_dir", "model_dir", "image_size", "batch_size", "learning_rate", "max_epochs",
        "patience", "seed")}
    try:
        if _GENERATE_SYNTHETIC.value and not os.path.exists(_DATA_DIR.value):
            logging.info("writing a synthetic ISIC-layout dataset to %s", _DATA_DIR.value)
            synthetic.write_synthetic_isic(_DATA_DIR.value, num_training=64, num_validation=16,
                                           num_test=16, seed=_SEED.value)
        training.check_inputs(**config)
    except (ValueError, OSError) as e:
        sys.exit(f"train.py: {e}")

    os.makedirs(_MODEL_DIR.value, exist_ok=True)
    with open(os.path.join(_MODEL_DIR.value, "flags.json"), "w") as f:
        json.dump(config, f, indent=2)
    result = training.train(**config)
    print(f"validation per-image mean Jaccard: {result['val_jaccard']:.4f} "
          f"(best epoch {result['best_epoch']} of {result['epochs_run']}); "
          f"SavedModel: {result['export_dir']}")


if __name__ == "__main__":
    app.run(main)
