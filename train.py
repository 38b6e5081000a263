"""Trains LesionSeg on ISIC 2017 Task 1 (or ISIC 2016/2018, PH2, your own folders)
and exports a SavedModel.

    python train.py --data_dir=ISIC2017 --model_dir=runs/lesionseg
    python train.py --data_dir=clinic --init_from=pretrained/lesionseg_isic2017  # fine-tune

If the run is killed, the same command continues it from the last completed epoch.
"""

import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's start-up chatter out

from absl import app, flags, logging

import common_flags
import console

_DATA_DIR, _DATASET = common_flags.define_dataset_flags(
    "Trains on the training split, or on every pair of a layout without splits.")
_INIT_FROM = flags.DEFINE_string(
    "init_from", None, "Start from these weights (fine-tuning), with a fresh optimizer: a run "
    "folder, a shipped model such as pretrained/lesionseg_isic2017, or a .keras/.weights.h5 "
    "file.")
_MODEL_DIR = flags.DEFINE_string(
    "model_dir", "runs/lesionseg", "Where checkpoints, logs and the export are written.")
_IMAGE_SIZE = flags.DEFINE_integer("image_size", 448, "Network input side (paper: 448).")
_BATCH_SIZE = flags.DEFINE_integer("batch_size", 32, "Batch size (paper: 32).")
_LEARNING_RATE = flags.DEFINE_float(
    "learning_rate", 1e-3, "Adam learning rate (the paper gives none; Adam's default).")
_LR_SCHEDULE = flags.DEFINE_enum(
    "lr_schedule", "constant", ["constant", "cosine"],
    "constant (the paper's), or cosine decay to zero over --max_epochs.")
_MAX_EPOCHS = flags.DEFINE_integer("max_epochs", 200, "Upper bound on training epochs.")
_PATIENCE = flags.DEFINE_integer(
    "patience", 20, "Epochs without a better selection Jaccard before training stops.")
_SELECT_ON = flags.DEFINE_enum(
    "select_on", "holdout", ["holdout", "validation"],
    "Which pairs pick the best epoch and stop training: a held-out part of the training split "
    "(the validation split is then never read: the paper's validation score was blind), or "
    "the validation split (its score is then optimistic).")
_HOLDOUT_FRACTION = flags.DEFINE_float(
    "holdout_fraction", 0.1, "Share of the training split held out for --select_on=holdout, "
    "drawn from --holdout_seed; the ids go to <model_dir>/holdout_ids.txt.")
_SEED = flags.DEFINE_integer("seed", 0, "Seed for weights, data order and augmentation.")
_HOLDOUT_SEED = flags.DEFINE_integer(
    "holdout_seed", None, "Seed of the held-out draw (default: --seed). Fix it to compare "
    "seeds on the same selection pairs.")
_DETERMINISTIC = flags.DEFINE_bool(
    "deterministic", False, "Deterministic TensorFlow ops: two runs with the same flags give "
    "bit-identical weights on the same hardware (slower on GPUs).")
_SKIP_BAD_EXAMPLES = flags.DEFINE_bool(
    "skip_bad_examples", False, "Train on the good pairs when the data check finds bad ones "
    "(they are listed); by default any error stops the run before training.")
_MAX_IMAGE_PIXELS = flags.DEFINE_integer(
    "max_image_pixels", 100_000_000, "Refuse images with more pixels than this.")
_OVERWRITE = flags.DEFINE_bool(
    "overwrite", False, "Train again in a --model_dir that holds a finished run.")
_CACHE = flags.DEFINE_enum(
    "cache", "memory", ["memory", "disk", "none"],
    "Keep the decoded, resized images in memory (about 1.2 GB for ISIC 2017 training at 448), "
    "in a cache file under --model_dir/cache, or decode every epoch.")
_JIT_COMPILE = flags.DEFINE_enum(
    "jit_compile", "auto", ["auto", "true", "false"],
    "XLA-compile the training step; auto: on where a GPU is visible.")
_MIXED_PRECISION = flags.DEFINE_enum(
    "mixed_precision", "none", ["none", "float16", "bfloat16"],
    "Compute in half precision on GPUs (variables, logits and loss stay float32).")
_STEPS_PER_EXECUTION = flags.DEFINE_integer(
    "steps_per_execution", 8, "Training steps per call into the compiled graph, and per host "
    "read of the loss (by the NaN guard); more saves per-step overhead on a GPU. Does not "
    "change the results; epochs stay whole.")
_STRATEGY = flags.DEFINE_enum(
    "strategy", "auto", ["auto", "one_device", "mirrored", "multi_worker"],
    "tf.distribute strategy. auto: MirroredStrategy when more than one GPU is visible; "
    "multi_worker: MultiWorkerMirroredStrategy configured by TF_CONFIG. --batch_size is the "
    "global batch, split over the replicas.")
_GENERATE_SYNTHETIC = flags.DEFINE_bool(
    "generate_synthetic", False,
    "If --data_dir does not exist, first write a small synthetic dataset in the ISIC layout "
    "there (the quick start).")

# The flags that define a run: resuming with other values is refused.
_RUN_FLAGS = ("data_dir", "dataset", "init_from", "image_size", "batch_size", "learning_rate",
              "lr_schedule", "max_epochs", "patience", "select_on", "holdout_fraction", "seed",
              "holdout_seed", "deterministic", "skip_bad_examples", "max_image_pixels",
              "mixed_precision")

# The shared flags are listed by --help as this script's own.
flags.adopt_module_key_flags(common_flags)


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    # Imported here so that --help answers without loading TensorFlow.
    notes, no_cuda_driver = console.import_tensorflow()
    for line in notes:
        print(line, file=sys.stderr)
    if no_cuda_driver:
        logging.info("no CUDA driver on this machine: training on the CPU")
    import tensorflow as tf

    from lesionseg_tf import datasets, distribute, synthetic, training

    config = {name: flags.FLAGS[name].value for name in _RUN_FLAGS}
    if config["holdout_seed"] is None:
        config["holdout_seed"] = _SEED.value
    model_dir = _MODEL_DIR.value
    try:
        # First: a multi-worker strategy must exist before TensorFlow's runtime starts.
        strategy = distribute.make_strategy(_STRATEGY.value)
        chief = distribute.is_chief(strategy)
        training.check_config(
            image_size=_IMAGE_SIZE.value, batch_size=_BATCH_SIZE.value,
            learning_rate=_LEARNING_RATE.value, max_epochs=_MAX_EPOCHS.value,
            patience=_PATIENCE.value, max_image_pixels=_MAX_IMAGE_PIXELS.value,
            steps_per_execution=_STEPS_PER_EXECUTION.value)
        if _GENERATE_SYNTHETIC.value and not os.path.exists(_DATA_DIR.value):
            logging.info("writing a synthetic ISIC-layout dataset to %s", _DATA_DIR.value)
            synthetic.write_synthetic_dataset(_DATA_DIR.value, num_training=64, num_validation=16,
                                              num_test=16, seed=_SEED.value)
        resuming = training.check_run_dir(model_dir, config, overwrite=_OVERWRITE.value)
        init_from = _INIT_FROM.value and training.init_weights_file(_INIT_FROM.value)
        dataset = datasets.open_dataset(_DATA_DIR.value, dataset=_DATASET.value)
        print(dataset.summary(), flush=True)
        train_examples, selection_examples, problems = training.preflight_data(
            dataset, batch_size=_BATCH_SIZE.value,
            max_image_pixels=_MAX_IMAGE_PIXELS.value,
            skip_bad_examples=_SKIP_BAD_EXAMPLES.value, select_on=_SELECT_ON.value,
            holdout_fraction=_HOLDOUT_FRACTION.value, seed=config["holdout_seed"],
            image_size=_IMAGE_SIZE.value)
    except (ValueError, OSError) as e:
        sys.exit(f"train.py: {e}")
    for problem in problems:
        print(f"train.py: {problem}" + (" (skipped)" if problem.is_error else ""),
              file=sys.stderr)
    if resuming:
        logging.info("resuming the interrupted run in %s", model_dir)
    elif chief:  # a fresh start: --overwrite, or no epoch of a run was completed here
        training.clear_run(model_dir)

    if _DETERMINISTIC.value:
        tf.config.experimental.enable_op_determinism()
    if chief:
        os.makedirs(model_dir, exist_ok=True)
        with open(os.path.join(model_dir, training.FLAGS_FILE), "w") as f:
            json.dump({**config, "model_dir": model_dir, "strategy": _STRATEGY.value}, f,
                      indent=2)
        # The ids trained on, for evaluate.py to warn when it scores any of them.
        with open(os.path.join(model_dir, training.TRAINING_IDS_FILE), "w") as f:
            f.writelines(f"{e.image_id}\n" for e in train_examples)
        if _SELECT_ON.value == "holdout":
            with open(os.path.join(model_dir, training.HOLDOUT_FILE), "w") as f:
                f.writelines(f"{e.image_id}\n" for e in selection_examples)
    try:
        result = training.train(
            data_dir=_DATA_DIR.value, model_dir=model_dir, image_size=_IMAGE_SIZE.value,
            batch_size=_BATCH_SIZE.value, learning_rate=_LEARNING_RATE.value,
            lr_schedule=_LR_SCHEDULE.value, max_epochs=_MAX_EPOCHS.value,
            patience=_PATIENCE.value, seed=_SEED.value, train_examples=train_examples,
            selection_examples=selection_examples, selected_on=_SELECT_ON.value,
            cache=_CACHE.value, verbose=1 if sys.stdout.isatty() else 2,
            jit_compile={"auto": "auto", "true": True, "false": False}[_JIT_COMPILE.value],
            mixed_precision=_MIXED_PRECISION.value,
            steps_per_execution=_STEPS_PER_EXECUTION.value, strategy=strategy,
            init_from=init_from)
    except (training.TrainingError, ValueError) as e:
        sys.exit(f"train.py: {e}")
    selected_on = {"holdout": "held-out", "validation": "validation"}[result["selected_on"]]
    print(f"{selected_on} per-image mean Jaccard: {result['selection_jaccard']:.4f} "
          f"(best epoch {result['best_epoch']} of {result['epochs_run']}); "
          + (f"SavedModel: {result['export_dir']}" if chief else "(not the chief: no files kept)"))
    print(f"final weights sha256: {result['weights_sha256']}")


if __name__ == "__main__":
    app.run(main)
