"""Flags that predict.py and evaluate.py share, defined once so they cannot drift.

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
