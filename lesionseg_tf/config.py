"""A training run's configuration, validated once: what `flags.json` records and
what a resumed run must repeat.

Imports neither TensorFlow nor the rest of the package, so that the scripts take
their flags' choices and defaults from here and refuse a bad value in a second,
before TensorFlow loads (`common_flags.library_module`).
"""

import dataclasses

UPSCALE = 4  # Table 1: two stride-2 convolutions, undone by a x4 depth-to-space
DEFAULT_IMAGE_SIZE = 448  # the paper's, section 3.2
DEFAULT_MAX_PIXELS = 100_000_000  # the largest ISIC 2017 photograph has 30 million

LR_SCHEDULES = ("constant", "cosine")
# What picks the epoch exported: a held-out share of the training pairs, the validation split,
# or nothing ("none": every training pair trains and the last epoch is exported, for a final
# model trained for the number of epochs its held-out runs chose).
SELECT_ON = ("holdout", "validation", "none")
CACHE_CHOICES = ("memory", "disk", "none")
PRECISIONS = ("none", "float16", "bfloat16")
# Keras' mixed-precision policy of each --mixed_precision choice.
PRECISION_POLICIES = {"none": "float32", "float16": "mixed_float16", "bfloat16": "mixed_bfloat16"}
# The compute dtype of each --mixed_precision choice, as tables name it.
PRECISION_NAMES = {"none": "float32", "float16": "float16", "bfloat16": "bfloat16"}
# The paper's ISIC 2017 validation per-image mean Jaccard, 448x448 (section 4).
PAPER_JACCARD = 0.642
# "none": Table 1; "image_pooling": DeepLabv3's image-level feature (`model.context_branch`).
CONTEXTS = ("none", "image_pooling")
# The training loss (`losses.make_loss`): "cross_entropy" is the paper's (section 3.3).
LOSSES = ("cross_entropy", "soft_jaccard", "cross_entropy_dice")
# Batch norm while training: "train" (the paper's: batch statistics, gamma and beta
# learned) or "frozen" (inference mode: the moving statistics, gamma and beta kept), as
# Keras' transfer-learning guide fine-tunes, so a few photographs do not relearn them.
BATCH_NORM_MODES = ("train", "frozen")
# Fine-tuning (`--init_from`): the settings a run takes where its flags are not given,
# chosen by docs/fine_tuning/run_fine_tuning.sh (docs/datasets.md): on 20 ISIC 2017 pairs
# the shipped model never trained on, 1e-4 with batch norm training stayed within 0.004
# of the start on validation, batch norm frozen lost 0.02-0.03.
FINE_TUNING_DEFAULTS = {"learning_rate": 1e-4}
# Fewer selection pairs than this make the choice of epoch little better than chance;
# fine-tuning holds out at least this many where it can (`preflight.fitted_holdout_fraction`).
FEW_SELECTION_PAIRS = 10
STRATEGIES = ("auto", "one_device", "mirrored", "multi_worker")
# --jit_compile's words and what Keras' `compile(jit_compile=...)` takes for each.
JIT_COMPILE = {"auto": "auto", "true": True, "false": False}
DEFAULT_STEPS_PER_EXECUTION = 8
# The .tflite files of the network (`tflite.convert`), for the export command's choices.
TFLITE_VARIANTS = ("float32", "float16", "int8")


# Named recipes (`train.py --recipe`): `RunConfig` values, each of which a flag given
# explicitly overrides; the name is recorded in `flags.json`. "paper" is every default as it
# is (section 3.3). A recipe beyond the paper joins here once docs/reproduction.md's
# protocol has settled it on held-out pairs.
RECIPES = {
    "paper": {},
    # "Beyond the paper" (docs/reproduction.md), settled on held-out pairs by its rules 5-6:
    # two networks (seeds --seed and --seed+1) trained with cross-entropy plus per-image soft Dice,
    # averaged, at 64x64 with the cosine rate over 50 epochs. Rule 6 over two draws of each arm:
    # +0.0065 (+0.0012 to +0.0126) on the held-out pairs against the paper's loss (table.md).
    "dice_ensemble": {
        "image_size": 64,
        "lr_schedule": "cosine",
        "max_epochs": 50,
        "patience": 20,
        "loss": "cross_entropy_dice",
        "members": 2,
    },
}


@dataclasses.dataclass(frozen=True)
class RunConfig:
    """The settings of one training run (section 3.3 and the project's options).

    The fields down to `recipe` define the run (`RUN_FIELDS`): a
    resumed run must repeat them. The rest say how it runs on this machine and
    may change between a run and its resumption.

    `holdout_seed` None means `seed`: it is resolved on construction, so a
    recorded configuration always names the held-out draw it used.

    Raises:
      ValueError: on construction, for any setting that cannot train.
    """

    data_dir: str
    dataset: str | None = None
    init_from: str | None = None
    image_size: int = DEFAULT_IMAGE_SIZE
    batch_size: int = 32
    learning_rate: float = 1e-3
    lr_schedule: str = "constant"
    max_epochs: int = 200
    patience: int = 20
    select_on: str = "holdout"
    holdout_fraction: float = 0.1
    seed: int = 0
    holdout_seed: int | None = None
    deterministic: bool = False
    skip_bad_examples: bool = False
    max_image_pixels: int = DEFAULT_MAX_PIXELS
    mixed_precision: str = "none"
    context: str = "none"
    loss: str = "cross_entropy"
    color_augment: bool = False
    scale_augment: bool = False
    batch_norm: str = "train"
    # Networks trained one after another (seeds `seed`, `seed` + 1, ...) and exported as
    # their ensemble (`ensemble.train_members`); 1: one network, the paper's.
    members: int = 1
    recipe: str = "paper"
    # How the run executes; not compared on resumption.
    cache: str = "memory"
    jit_compile: str = "auto"
    steps_per_execution: int = DEFAULT_STEPS_PER_EXECUTION
    strategy: str = "auto"

    def __post_init__(self):
        if self.holdout_seed is None:
            object.__setattr__(self, "holdout_seed", self.seed)
        if self.image_size <= 0 or self.image_size % UPSCALE:
            raise ValueError(
                f"image_size must be a positive multiple of {UPSCALE}, got {self.image_size}"
            )
        for name in (
            "batch_size",
            "max_epochs",
            "max_image_pixels",
            "steps_per_execution",
            "members",
        ):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.members > 1 and self.init_from:
            raise ValueError(
                f"members {self.members} trains an ensemble from scratch, init_from fine-tunes "
                "one network: give one of them"
            )
        if self.members > 1 and self.strategy == "multi_worker":
            raise ValueError(
                "members > 1 is not supported with the multi_worker strategy: train each "
                "network as its own run and join them with python -m tools.ensemble"
            )
        if self.patience < 0:
            raise ValueError(f"patience must be >= 0, got {self.patience}")
        if not self.learning_rate > 0:
            raise ValueError(f"learning_rate must be > 0, got {self.learning_rate}")
        if self.select_on == "holdout" and not 0 < self.holdout_fraction < 1:
            raise ValueError(
                f"holdout_fraction must be between 0 and 1, got {self.holdout_fraction}"
            )
        for name, choices in (
            ("lr_schedule", LR_SCHEDULES),
            ("select_on", SELECT_ON),
            ("cache", CACHE_CHOICES),
            ("mixed_precision", PRECISIONS),
            ("context", CONTEXTS),
            ("loss", LOSSES),
            ("batch_norm", BATCH_NORM_MODES),
            ("recipe", tuple(RECIPES)),
            ("jit_compile", tuple(JIT_COMPILE)),
            ("strategy", STRATEGIES),
        ):
            if getattr(self, name) not in choices:
                raise ValueError(
                    f"{name} must be one of {', '.join(choices)}, got {getattr(self, name)!r}"
                )

    def run_settings(self):
        """The settings that define the run, as a dict (compared on resumption)."""
        return {name: getattr(self, name) for name in RUN_FIELDS}

    def to_dict(self):
        return dataclasses.asdict(self)


# Run settings added after the first runs were recorded. Their defaults are what the
# code did before them (Table 1, the paper's loss, augmentation and batch norm), so a `flags.json`
# without them reads as its defaults and such runs still resume and compare.
SETTINGS_BEFORE_RECORDED = {
    field.name: field.default
    for field in dataclasses.fields(RunConfig)
    if field.name
    in ("context", "loss", "color_augment", "scale_augment", "batch_norm", "members", "recipe")
}


def recorded_settings(recorded):
    """The run settings (`RUN_FIELDS`) a recorded `flags.json` stands for: a field
    written before it existed reads as what the code did then
    (`SETTINGS_BEFORE_RECORDED`: Table 1, the paper's loss and augmentation;
    `holdout_seed` the `seed`), so such runs still resume and compare."""
    values = {name: recorded.get(name) for name in RUN_FIELDS}
    for name, value in SETTINGS_BEFORE_RECORDED.items():
        if name not in recorded:
            values[name] = value
    if recorded.get("holdout_seed") is None and "seed" in recorded:
        values["holdout_seed"] = recorded["seed"]
    return values


RUN_FIELDS = tuple(
    field.name
    for field in dataclasses.fields(RunConfig)
    if field.name not in ("cache", "jit_compile", "steps_per_execution", "strategy")
)
