"""The flags of the project's commands, each defined once here (train.py, predict.py,
evaluate.py and the tools in tools/ call these at import), with their choices and
defaults taken from the library's TensorFlow-free modules, so `--help` and a bad flag
answer in a second.

Not a script and not part of the library.
"""

from absl import flags

from lesionseg_tf import config, datasets


def define_data_dir_flag(data_dir_help=""):
    """`--data_dir`: a dataset's top folder; `data_dir_help` is added to its help."""
    return flags.DEFINE_string(
        "data_dir",
        "ISIC2017",
        "A dataset's top folder: the unpacked ISIC 2016, 2017 or 2018 "
        "archives, PH2, or images/ + masks/ folders (recognized by their names)."
        + (" " + data_dir_help if data_dir_help else ""),
    )


def define_dataset_flags(data_dir_help=""):
    """`--data_dir` (`define_data_dir_flag`), and `--dataset`: the layout to read,
    recognized from the folder names unless given."""
    data_dir = define_data_dir_flag(data_dir_help)
    dataset = flags.DEFINE_enum(
        "dataset",
        None,
        list(datasets.LAYOUT_NAMES),
        "Force this dataset layout instead of recognizing it from the folder names.",
    )
    return data_dir, dataset


def define_split_flag(default, extra_help=""):
    """`--split`: training, validation, test, or all (every pair of the tree)."""
    return flags.DEFINE_enum(
        "split",
        default,
        list(datasets.SPLIT_CHOICES),
        "Which split: training, validation, "
        "test, or all (every pair; the only split of PH2 and of a flat images/ + masks/ "
        "folder)." + (" " + extra_help if extra_help else ""),
    )


def define_max_image_pixels():
    return flags.DEFINE_integer(
        "max_image_pixels", config.DEFAULT_MAX_PIXELS, "Refuse images with more pixels than this."
    )


def define_image_size(default, help_text):
    return flags.DEFINE_integer("image_size", default, help_text)


def define_model_flags(default="runs/lesionseg/export"):
    """`--model`: a SavedModel folder or a .tflite file; `--saved_model`, its older
    name, kept as an alias.

    Returns:
      The `--model` flag holder.
    """
    model = flags.DEFINE_string(
        "model",
        default,
        "The model to run: a SavedModel folder (train.py's export/) or a "
        ".tflite file (python -m tools.export --tflite=...).",
    )
    flags.DEFINE_alias("saved_model", "model")
    return model


def define_output_dir(default, help_text):
    return flags.DEFINE_string("output_dir", default, help_text)


def define_output(default, help_text):
    return flags.DEFINE_string("output", default, help_text)


def define_run_dir(help_text):
    return flags.DEFINE_string("run_dir", None, help_text)


def define_bootstrap():
    return flags.DEFINE_integer(
        "bootstrap",
        2000,
        "Bootstrap resamples (over images, seeded) for the 95% confidence "
        "intervals; 0 skips them where they are optional.",
    )


def define_seed(help_text):
    return flags.DEFINE_integer("seed", 0, help_text)


def define_compute_flags():
    """`--jit_compile` (the words of `config.JIT_COMPILE`) and `--mixed_precision`."""
    jit_compile = flags.DEFINE_enum(
        "jit_compile",
        "auto",
        list(config.JIT_COMPILE),
        "XLA-compile the training step; auto: on where a GPU is visible.",
    )
    mixed_precision = flags.DEFINE_enum(
        "mixed_precision",
        "none",
        list(config.PRECISIONS),
        "Compute in half precision (variables, logits and loss stay float32): float16 or "
        "bfloat16 on GPUs; bfloat16 on CPUs only where they have bfloat16 units (python -m "
        "tools.benchmark says which): with AVX512_BF16, 1.5-1.9x faster than float32 from "
        "64x64 to 448x448 on a 2-core AMD EPYC VM; with AMX, 2.6-3.1x on a 2-core Intel Xeon "
        "VM; validation Jaccard -0.006 at 64 (docs/cpu.md). Without such units it is emulated "
        "and much slower.",
    )
    return jit_compile, mixed_precision


def define_postprocess_flags():
    """The post-processing options (off by default: the paper's pipeline) and the pixel limit.

    Returns:
      A function giving the `Segmenter.segment` keyword arguments from the parsed
      flags, and the `--max_image_pixels` flag holder.
    """
    tta = flags.DEFINE_bool("tta", False, "Average over the 8 rotations/flips (not in the paper).")
    largest = flags.DEFINE_bool(
        "largest_component", False, "Keep only the largest lesion region (not in the paper)."
    )
    central = flags.DEFINE_bool(
        "central_component",
        False,
        "Keep only the lesion region nearest the photograph's centre (not in the paper; not "
        "with --largest_component).",
    )
    flags.register_multi_flags_validator(
        ["largest_component", "central_component"],
        lambda values: not (values["largest_component"] and values["central_component"]),
        message="give --largest_component or --central_component, not both",
    )
    fill = flags.DEFINE_bool("fill_holes", False, "Fill holes in the mask (not in the paper).")
    max_pixels = define_max_image_pixels()

    def segment_options():
        return {
            "tta": tta.value,
            "keep_largest_component": largest.value,
            "keep_central_component": central.value,
            "fill_mask_holes": fill.value,
        }

    return segment_options, max_pixels
