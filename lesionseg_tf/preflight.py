"""Checking a dataset before training: every problem found, in one report.

Images are checked from their headers (Pillow reads the first kilobytes only),
then decoded as the training pipeline decodes them (`pipeline.check_image_decodes`,
at the training size: libjpeg's reduced-scale decoding still reads every byte),
so that no file can stop an epoch halfway. Masks, small PNGs or BMPs, are read
as training reads them (`images.read_mask_file`) because their values matter: a
mask stored as 0/1 would train as all background under the ISIC rule (lesion
where value > 128). All in parallel threads.
"""

import concurrent.futures
import dataclasses
import os

import numpy as np

from lesionseg_tf import images, pipeline
from lesionseg_tf.config import DEFAULT_MAX_PIXELS
from lesionseg_tf.model import DEFAULT_IMAGE_SIZE


@dataclasses.dataclass(frozen=True)
class Problem:
    path: str
    message: str
    is_error: bool = True

    def __str__(self):
        return f"{'error' if self.is_error else 'warning'}: {self.path}: {self.message}"


@dataclasses.dataclass
class Report:
    """What `check_split` found. `good` are the examples without errors."""
    good: list
    problems: list

    @property
    def errors(self):
        return [p for p in self.problems if p.is_error]

    @property
    def warnings(self):
        return [p for p in self.problems if not p.is_error]


def check_example(example, max_pixels=DEFAULT_MAX_PIXELS, image_size=DEFAULT_IMAGE_SIZE):
    """All problems of one image/mask pair (`image_size`: the training size)."""
    problems = []
    try:
        photo_size = images.read_image_header(example.image_path, max_pixels=max_pixels,
                                            match_extension=True)
        pipeline.check_image_decodes(example.image_path, image_size)
    except images.ImageReadError as e:
        problems.append(Problem(example.image_path, str(e).split(": ", 1)[1]))
        photo_size = None
    path = example.mask_path
    try:
        if os.path.getsize(path) == 0:
            raise images.ImageReadError(f"{path}: empty file (0 bytes)")
        mask = images.read_mask_file(path)  # as training and evaluation read it
    except (images.ImageReadError, OSError) as e:
        return problems + [Problem(path, str(e).split(": ", 1)[-1])]
    height, width = mask.shape
    if photo_size is not None and photo_size != (width, height):
        problems.append(Problem(path, f"mask is {width}x{height}, its image "
                                      f"{os.path.basename(example.image_path)} is "
                                      f"{photo_size[0]}x{photo_size[1]}"))
    values = images.mask_histogram(mask)
    present = np.flatnonzero(values)
    if present.max() == 1:
        problems.append(Problem(path, "mask values are 0/1: it looks 0/1-encoded and would "
                                      "train as all background under the ISIC rule (lesion "
                                      "where value > 128); store it as 0/255"))
    elif not set(present.tolist()) <= {0, 255}:
        other = int(values[1:255].sum())
        problems.append(Problem(
            path, f"{other} pixels are neither 0 nor 255 (anti-aliased edges?); they are "
                  "binarized with value > 128", is_error=False))
    return problems


def check_split(examples, orphans=(), *, max_pixels=DEFAULT_MAX_PIXELS,
                image_size=DEFAULT_IMAGE_SIZE, workers=None):
    """Checks every pair of a split; collects every problem rather than stopping.

    Args:
      examples: `datasets.Example`s. orphans: `(path, message)` from `datasets.Dataset.scan`.
      max_pixels: images above this are refused before they can exhaust memory.
      image_size: the training size, at which the images are test-decoded.
      workers: threads decoding (OpenCV and TensorFlow release the GIL); default:
        CPU count.

    Returns:
      A `Report`.
    """
    problems = [Problem(path, message) for path, message in orphans]
    good = []
    pipeline.training_decoder(image_size)  # traced once, before the threads share it
    with concurrent.futures.ThreadPoolExecutor(workers or os.cpu_count()) as pool:
        found = pool.map(lambda e: check_example(e, max_pixels, image_size), examples)
        for example, example_problems in zip(examples, found):
            problems += example_problems
            if not any(p.is_error for p in example_problems):
                good.append(example)
    return Report(good=good, problems=problems)
