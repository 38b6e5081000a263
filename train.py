"""Trains LesionSeg on ISIC 2017 Task 1 (or ISIC 2016/2018, PH2, your own folders)
and exports a SavedModel.

    python train.py --data_dir=ISIC2017 --model_dir=runs/lesionseg
    python train.py --data_dir=clinic --init_from=pretrained/lesionseg_isic2017  # fine-tune

If the run is killed, the same command continues it from the last completed epoch.
"""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's start-up chatter out

from absl import app, flags

import common_flags
import console
from lesionseg_tf import config as config_lib  # noqa: E402 (after the environment)
from lesionseg_tf import datasets, run_dir  # noqa: E402

_DEFAULTS = config_lib.RunConfig(data_dir="")

_DATA_DIR, _DATASET = common_flags.define_dataset_flags(
    "Trains on the training split, or on every pair of a layout without splits."
)
_INIT_FROM = flags.DEFINE_string(
    "init_from",
    None,
    "Start from these weights (fine-tuning), with a fresh optimizer: a run "
    "folder, a shipped model such as pretrained/lesionseg_isic2017 (its lesionseg.keras), or a "
    ".keras/.weights.h5 file.",
)
_MODEL_DIR = flags.DEFINE_string(
    "model_dir", "runs/lesionseg", "Where checkpoints, logs and the export are written."
)
_IMAGE_SIZE = common_flags.define_image_size(
    _DEFAULTS.image_size, "Network input side (paper: 448)."
)
_BATCH_SIZE = flags.DEFINE_integer("batch_size", _DEFAULTS.batch_size, "Batch size (paper: 32).")
_LEARNING_RATE = flags.DEFINE_float(
    "learning_rate",
    _DEFAULTS.learning_rate,
    "Adam learning rate (the paper gives none; Adam's default).",
)
_LR_SCHEDULE = flags.DEFINE_enum(
    "lr_schedule",
    _DEFAULTS.lr_schedule,
    list(config_lib.LR_SCHEDULES),
    "constant (the paper's), or cosine decay to zero over --max_epochs.",
)
_MAX_EPOCHS = flags.DEFINE_integer(
    "max_epochs", _DEFAULTS.max_epochs, "Upper bound on training epochs."
)
_PATIENCE = flags.DEFINE_integer(
    "patience",
    _DEFAULTS.patience,
    "Epochs without a better selection Jaccard before training stops.",
)
_SELECT_ON = flags.DEFINE_enum(
    "select_on",
    _DEFAULTS.select_on,
    list(config_lib.SELECT_ON),
    "Which pairs pick the best epoch and stop training: a held-out part of the training split "
    "(the validation split is then never read: the paper's validation score was blind), "
    "the validation split (its score is then optimistic), or none: every training pair "
    "trains for --max_epochs and the last epoch is exported (a final model, trained for the "
    "epochs its held-out runs chose).",
)
_HOLDOUT_FRACTION = flags.DEFINE_float(
    "holdout_fraction",
    _DEFAULTS.holdout_fraction,
    "Share of the training split held out for "
    "--select_on=holdout, drawn from --holdout_seed; the ids go to "
    "<model_dir>/holdout_ids.txt.",
)
_SEED = common_flags.define_seed("Seed for weights, data order and augmentation.")
_HOLDOUT_SEED = flags.DEFINE_integer(
    "holdout_seed",
    None,
    "Seed of the held-out draw (default: --seed). Fix it to compare "
    "seeds on the same selection pairs.",
)
_DETERMINISTIC = flags.DEFINE_bool(
    "deterministic",
    False,
    "Deterministic TensorFlow ops: two runs with the same flags give "
    "bit-identical weights on the same hardware (slower on GPUs).",
)
_SKIP_BAD_EXAMPLES = flags.DEFINE_bool(
    "skip_bad_examples",
    False,
    "Train on the good pairs when the data check finds bad ones "
    "(they are listed); by default any error stops the run before training.",
)
_MAX_IMAGE_PIXELS = common_flags.define_max_image_pixels()
_OVERWRITE = flags.DEFINE_bool(
    "overwrite", False, "Train again in a --model_dir that holds a finished run."
)
_CACHE = flags.DEFINE_enum(
    "cache",
    _DEFAULTS.cache,
    list(config_lib.CACHE_CHOICES),
    "Keep the decoded, resized images in memory (about 1.2 GB for ISIC 2017 training at 448), "
    "in a cache file under --model_dir/cache, or decode every epoch.",
)
_JIT_COMPILE, _MIXED_PRECISION = common_flags.define_compute_flags()
_STEPS_PER_EXECUTION = flags.DEFINE_integer(
    "steps_per_execution",
    _DEFAULTS.steps_per_execution,
    "Training steps per call into the "
    "compiled graph, and per host read of the loss (by the NaN guard); more saves per-step "
    "overhead on a GPU. Does not change the results; epochs stay whole.",
)
_STRATEGY = flags.DEFINE_enum(
    "strategy",
    _DEFAULTS.strategy,
    list(config_lib.STRATEGIES),
    "tf.distribute strategy. auto: MirroredStrategy when more than one GPU is visible; "
    "multi_worker: MultiWorkerMirroredStrategy configured by TF_CONFIG. --batch_size is the "
    "global batch, split over the replicas.",
)
_CONTEXT = flags.DEFINE_enum(
    "context",
    _DEFAULTS.context,
    list(config_lib.CONTEXTS),
    "none: the paper's Table 1. image_pooling: also give every output pixel the whole image "
    "as context, DeepLabv3's image-level feature before the subpixel layer (not in the paper; "
    "docs/reproduction.md).",
)
_LOSS = flags.DEFINE_enum(
    "loss",
    _DEFAULTS.loss,
    list(config_lib.LOSSES),
    "cross_entropy: the paper's per-pixel cross-entropy. soft_jaccard: one minus each image's "
    "soft Jaccard (Yuan, Chao and Lo 2017). cross_entropy_dice: cross-entropy plus each "
    "image's soft Dice loss. The last two are not in the paper (docs/reproduction.md).",
)
_COLOR_AUGMENT = flags.DEFINE_bool(
    "color_augment",
    _DEFAULTS.color_augment,
    "Also change each training image's brightness, contrast, saturation and hue at random, "
    "after the paper's rotations and flips (not in the paper).",
)
_SCALE_AUGMENT = flags.DEFINE_bool(
    "scale_augment",
    _DEFAULTS.scale_augment,
    "Also zoom each training pair in or out (up to 1.5x, mirrored surroundings) and shift it "
    "at random, keeping the whole lesion, after the rotations and flips (not in the paper).",
)
_BATCH_NORM = flags.DEFINE_enum(
    "batch_norm",
    _DEFAULTS.batch_norm,
    list(config_lib.BATCH_NORM_MODES),
    "train: batch norm learns from each batch (the paper's). frozen: batch norm in inference "
    "mode, its statistics and scale kept, as for fine-tuning on a few photographs.",
)
_MEMBERS = flags.DEFINE_integer(
    "members",
    _DEFAULTS.members,
    "Train this many networks one after another, with seeds --seed, --seed+1, ..., each a run "
    "of its own in <model_dir>/member_<k>, and export their ensemble (the mean probability) as "
    "the model (not in the paper; docs/reproduction.md).",
)
_RECIPE = flags.DEFINE_string(
    "recipe",
    _DEFAULTS.recipe,
    "A named set of the settings above (config.RECIPES; recorded in flags.json): paper, the "
    "paper's recipe, every default as it is; dice_ensemble, the recipe beyond it (two networks "
    "averaged, cross-entropy plus Dice, 64x64, cosine rate over 50 epochs; docs/reproduction.md). "
    "A flag given explicitly overrides the recipe's value.",
)
flags.register_validator(
    "recipe",
    lambda name: name in config_lib.RECIPES,
    message=f"--recipe: one of {', '.join(config_lib.RECIPES)}",
)
_GENERATE_SYNTHETIC = flags.DEFINE_bool(
    "generate_synthetic",
    False,
    "If --data_dir does not exist, first write a small synthetic dataset in the ISIC layout "
    "there (the quick start).",
)

# The shared flags are listed by --help as this script's own.
flags.adopt_module_key_flags(common_flags)


# The flag of each `RunConfig` field (the fields are the flags' names).
_CONFIG_HOLDERS = {
    "data_dir": _DATA_DIR,
    "dataset": _DATASET,
    "init_from": _INIT_FROM,
    "image_size": _IMAGE_SIZE,
    "batch_size": _BATCH_SIZE,
    "learning_rate": _LEARNING_RATE,
    "lr_schedule": _LR_SCHEDULE,
    "max_epochs": _MAX_EPOCHS,
    "patience": _PATIENCE,
    "select_on": _SELECT_ON,
    "holdout_fraction": _HOLDOUT_FRACTION,
    "seed": _SEED,
    "holdout_seed": _HOLDOUT_SEED,
    "deterministic": _DETERMINISTIC,
    "skip_bad_examples": _SKIP_BAD_EXAMPLES,
    "max_image_pixels": _MAX_IMAGE_PIXELS,
    "mixed_precision": _MIXED_PRECISION,
    "context": _CONTEXT,
    "loss": _LOSS,
    "color_augment": _COLOR_AUGMENT,
    "scale_augment": _SCALE_AUGMENT,
    "batch_norm": _BATCH_NORM,
    "members": _MEMBERS,
    "recipe": _RECIPE,
    "cache": _CACHE,
    "jit_compile": _JIT_COMPILE,
    "steps_per_execution": _STEPS_PER_EXECUTION,
    "strategy": _STRATEGY,
}


def run_config():
    """The `config.RunConfig` of the parsed flags, and the lines to tell the user
    about settings taken from `--recipe` (`config.RECIPES`), from `--init_from`'s run
    (`run_dir.inherited_settings`) or from the fine-tuning defaults
    (`config.FINE_TUNING_DEFAULTS`).

    Raises:
      ValueError: settings that cannot train, or an `--init_from` run folder whose
        `flags.json` cannot be read.
    """
    values = {name: holder.value for name, holder in _CONFIG_HOLDERS.items()}
    notes = []
    for name, value in config_lib.RECIPES[_RECIPE.value].items():
        if not _CONFIG_HOLDERS[name].present:
            values[name] = value
            notes.append(f"--{name}={value}, from --recipe={_RECIPE.value}")
    if _INIT_FROM.value:
        for name, value in config_lib.FINE_TUNING_DEFAULTS.items():
            if not _CONFIG_HOLDERS[name].present:
                values[name] = value
                notes.append(
                    f"--{name}={value}, the fine-tuning default (measured: docs/datasets.md; "
                    f"give --{name} to change it)"
                )
        for name, value in run_dir.inherited_settings(_INIT_FROM.value).items():
            if not _CONFIG_HOLDERS[name].present:
                if value != values[name]:
                    notes.append(
                        f"--{name}={value}, as {_INIT_FROM.value} was trained (give "
                        f"--{name} to change it)"
                    )
                values[name] = value
            elif values[name] != value:
                notes.append(
                    f"--{name}={values[name]}, while {_INIT_FROM.value} was trained "
                    f"at --{name}={value}"
                )
    return config_lib.RunConfig(**values), notes


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    try:  # refused here, before TensorFlow loads
        config, notes = run_config()
        fit_batch = not _BATCH_SIZE.present
        fit_holdout = bool(config.init_from) and not _HOLDOUT_FRACTION.present
        for note in notes:
            print(f"train.py: {note}", flush=True)
        if config.init_from:
            run_dir.init_weights_file(config.init_from)
        run_dir.RunDir(_MODEL_DIR.value).refuse_before_data(
            config, overwrite=_OVERWRITE.value, fit_batch=fit_batch, fit_holdout=fit_holdout
        )
    except (ValueError, OSError) as e:
        sys.exit(f"train.py: {e}")
    if not _GENERATE_SYNTHETIC.value:
        console.require_inputs("train.py", [("--data_dir", config.data_dir, "folder")])
        try:  # the layout, the splits and the counts, still before TensorFlow
            datasets.refuse_before_checking(config, fit_batch=fit_batch)
        except datasets.DatasetError as e:
            sys.exit(f"train.py: {e}")
    if console.start_tensorflow():
        print("train.py: no CUDA driver on this machine: training on the CPU", flush=True)
    from lesionseg_tf import distribute, fitting, synthetic, training

    advice = training.bfloat16_advice(config, precision_given=_MIXED_PRECISION.present)
    if advice:
        print(f"train.py: {advice}", flush=True)
    try:
        # First: a multi-worker strategy must exist before TensorFlow's runtime starts.
        strategy = distribute.make_strategy(config.strategy)
        if _GENERATE_SYNTHETIC.value and synthetic.write_if_missing(
            config.data_dir, seed=config.seed
        ):
            print(f"wrote a synthetic ISIC-layout dataset to {config.data_dir}", flush=True)
        result = training.run(
            config,
            model_dir=_MODEL_DIR.value,
            overwrite=_OVERWRITE.value,
            strategy=strategy,
            verbose=1 if sys.stdout.isatty() else 2,
            report=report,
            fit_batch=fit_batch,
            fit_holdout=fit_holdout,
        )
    except (ValueError, OSError, fitting.TrainingError) as e:
        sys.exit(f"train.py: {e}")
    for line in training.result_lines(
        result, init_from=config.init_from, chief=distribute.is_chief(strategy)
    ):
        print(line)


def report(line, problem):
    """What training.run shows a person: problems on standard error, the rest on
    standard output."""
    if problem:
        print(f"train.py: {line}", file=sys.stderr, flush=True)
    else:
        print(line, flush=True)


HELP_GROUPS = (
    (
        "data",
        [
            "data_dir",
            "dataset",
            "skip_bad_examples",
            "max_image_pixels",
            "cache",
            "generate_synthetic",
        ],
    ),
    ("model", ["image_size", "context", "init_from"]),
    (
        "training",
        [
            "recipe",
            "batch_size",
            "learning_rate",
            "lr_schedule",
            "max_epochs",
            "patience",
            "loss",
            "color_augment",
            "scale_augment",
            "batch_norm",
            "select_on",
            "holdout_fraction",
            "seed",
            "holdout_seed",
            "deterministic",
        ],
    ),
    ("compute", ["mixed_precision", "jit_compile", "steps_per_execution", "strategy"]),
    ("output", ["model_dir", "overwrite"]),
)

if __name__ == "__main__":
    console.run(main, groups=HELP_GROUPS)
