"""Flags that the scripts share, defined once so they cannot drift.

Not a script: it only defines flags, for the scripts' modules to call at import.
"""

from absl import flags


def define_postprocess_flags():
    """The post-processing options (off by default: the paper's pipeline) and the pixel limit.

    Returns:
      A function giving the `Segmenter.segment` keyword arguments from the parsed
      flags, and the `--max_image_pixels` flag holder.
    """
    tta = flags.DEFINE_bool("tta", False, "Average over the 8 rotations/flips (not in the paper).")
    largest = flags.DEFINE_bool(
        "largest_component", False, "Keep only the largest lesion region (not in the paper).")
    fill = flags.DEFINE_bool("fill_holes", False, "Fill holes in the mask (not in the paper).")
    max_pixels = flags.DEFINE_integer(
        "max_image_pixels", 100_000_000, "Refuse images with more pixels than this.")

    def segment_options():
        return {"tta": tta.value, "keep_largest_component": largest.value,
                "fill_mask_holes": fill.value}

    return segment_options, max_pixels


# The choices of --dataset and --split; tests hold them to lesionseg_tf.datasets
# (which is not imported here, so that --help answers without loading TensorFlow).
DATASETS = ("isic2016", "isic2017", "isic2018", "ph2", "folders")
SPLITS = ("training", "validation", "test", "all")


def define_dataset_flags(data_dir_help=""):
    """`--data_dir`, and `--dataset`: the layout to read, recognized from the folder
    names unless given. `data_dir_help` is added to `--data_dir`'s help."""
    data_dir = flags.DEFINE_string(
        "data_dir", "ISIC2017", "A dataset's top folder: the unpacked ISIC 2016, 2017 or 2018 "
        "archives, PH2, or images/ + masks/ folders (recognized by their names)."
        + (" " + data_dir_help if data_dir_help else ""))
    dataset = flags.DEFINE_enum(
        "dataset", None, list(DATASETS),
        "Force this dataset layout instead of recognizing it from the folder names.")
    return data_dir, dataset


def define_split_flag(default):
    """`--split`: training, validation, test, or all (every pair of the tree)."""
    return flags.DEFINE_enum(
        "split", default, list(SPLITS), "Which split: training, validation, test, or all "
        "(every pair; the only split of PH2 and of a flat images/ + masks/ folder).")
