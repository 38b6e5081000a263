"""Checking a dataset before training, every problem found in one report, and choosing
the pairs a run trains on and selects its epoch on (`select_data`).

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

from lesionseg_tf import datasets, images, messages, pipeline
from lesionseg_tf.config import DEFAULT_IMAGE_SIZE, DEFAULT_MAX_PIXELS, FEW_SELECTION_PAIRS


@dataclasses.dataclass(frozen=True)
class Problem:
    path: str
    message: str
    is_error: bool = True

    def __str__(self):
        return f"{'error' if self.is_error else 'warning'}: {self.path}: {self.message}"


@dataclasses.dataclass
class CheckReport:
    """What `check_split` found. `good` are the examples without errors."""

    good: list
    problems: list

    @property
    def errors(self):
        return [p for p in self.problems if p.is_error]

    @property
    def warnings(self):
        return [p for p in self.problems if not p.is_error]


def check_example(example, *, max_pixels=DEFAULT_MAX_PIXELS, image_size=DEFAULT_IMAGE_SIZE):
    """All problems of one image/mask pair (`image_size`: the training size)."""
    problems = []
    try:
        photo_size = images.read_image_header(
            example.image_path, max_pixels=max_pixels, match_extension=True
        )
        pipeline.check_image_decodes(example.image_path, image_size=image_size)
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
        problems.append(
            Problem(
                path,
                f"mask is {width}x{height}, its image "
                f"{os.path.basename(example.image_path)} is "
                f"{photo_size[0]}x{photo_size[1]}",
            )
        )
    return problems + _mask_value_problems(mask, path=path)


def _mask_value_problems(mask, *, path):
    """A 0/1-encoded mask (an error: it would train as all background), or values
    other than 0 and 255 (a warning: binarized with value > 128)."""
    values = images.mask_histogram(mask)
    present = np.flatnonzero(values)
    if present.max() == 1:
        return [
            Problem(
                path,
                "mask values are 0/1: it looks 0/1-encoded and would "
                "train as all background under the ISIC rule (lesion "
                "where value > 128); store it as 0/255",
            )
        ]
    if not set(present.tolist()) <= {0, 255}:
        other = int(values[1:255].sum())
        return [
            Problem(
                path,
                f"{other} pixels are neither 0 nor 255 (anti-aliased edges?); they are "
                "binarized with value > 128",
                is_error=False,
            )
        ]
    return []


def check_split(
    examples,
    *,
    orphans=(),
    max_pixels=DEFAULT_MAX_PIXELS,
    image_size=DEFAULT_IMAGE_SIZE,
    workers=None,
    progress=None,
):
    """Checks every pair of a split; collects every problem rather than stopping.

    Args:
      examples: `datasets.Example`s. orphans: `(path, message)` from `datasets.Dataset.scan`.
      max_pixels: images above this are refused before they can exhaust memory.
      image_size: the training size, at which the images are test-decoded.
      workers: threads decoding (OpenCV and TensorFlow release the GIL); default:
        CPU count.
      progress: an object whose `update(done)` is called after each pair
        (`check_progress`), or None.

    Returns:
      A `CheckReport`.
    """
    problems = [Problem(path, message) for path, message in orphans]
    good = []
    pipeline.training_decoder(image_size)  # traced once, before the threads share it
    with concurrent.futures.ThreadPoolExecutor(workers or os.cpu_count()) as pool:
        found = pool.map(
            lambda e: check_example(e, max_pixels=max_pixels, image_size=image_size), examples
        )
        for done, (example, example_problems) in enumerate(zip(examples, found), 1):
            problems += example_problems
            if not any(p.is_error for p in example_problems):
                good.append(example)
            if progress is not None:
                progress.update(done)
    return CheckReport(good=good, problems=problems)


def fitted_holdout_fraction(pairs, *, fraction):
    """The held-out share of `pairs` training pairs for a run that may hold out more
    than `fraction` to choose its epoch: at least `config.FEW_SELECTION_PAIRS` pairs,
    at most half of them, and never less than `fraction` gives
    (`datasets.split_holdout` holds out `round(fraction * pairs)`)."""
    wanted = min(FEW_SELECTION_PAIRS, pairs // 2)
    return fraction if round(fraction * pairs) >= wanted else wanted / pairs


# The least time between two lines of the data check's progress (`check_progress`): it
# comes before a run's first epoch, about a minute on ISIC 2017's 2000 full-size pairs.
CHECK_PROGRESS_SECONDS = 20.0


def check_progress(split, pairs, report):
    """Progress through the check of a split's `pairs` pairs (`check_split`'s
    `progress`): a line through `report` every `CHECK_PROGRESS_SECONDS`."""
    return messages.TimedProgress(
        pairs,
        label=f"checking the {split} split",
        unit="pairs",
        report=report,
        every_seconds=CHECK_PROGRESS_SECONDS,
    )


def select_data(dataset, *, config, fit_batch=False, report_progress=None):
    """Finds and checks the data before training (`check_split`), and
    chooses the selection set: the pairs whose per-image Jaccard picks the best
    epoch and stops training (section 3.3).

    Training uses the training split, or every pair of a layout without splits
    (PH2, a flat folder: `datasets.Dataset.training_split`). With
    `config.select_on == "holdout"` (the default) the selection set is a share
    `holdout_fraction` of those pairs, drawn from `holdout_seed`
    (`datasets.split_holdout`), and the validation split is never read: the
    organizers scored the paper's validation number blind. With "validation" it
    is the validation split, which makes a validation score optimistic. With "none"
    every training pair trains and the selection set is empty.

    Args:
      dataset: a `datasets.Dataset` (`datasets.open_dataset`).
      config: a `config.RunConfig`.
      fit_batch: fewer training examples than `config.batch_size` are no error
        (the caller trains in one batch of all of them).
      report_progress: called with a line of progress through each split's check
        (`check_progress`), or None.

    Returns:
      `(training examples, selection examples, problems)`: the examples to use
      and every problem found (warnings, and with `skip_bad_examples` the errors
      of the examples left out).

    Raises:
      datasets.DatasetError: a split that is not there (naming those that are); every
        error found, unless `skip_bad_examples`; or too few usable examples (fewer
        than a batch, unless `fit_batch`).
    """
    train_split = dataset.training_split()
    wanted = datasets.splits_for_training(dataset, select_on=config.select_on)
    scans = {split: dataset.scan(split) for split in wanted}  # all missing splits first
    splits, problems = {}, []
    for split, (examples, orphans) in scans.items():
        report = check_split(
            examples,
            orphans=orphans,
            max_pixels=config.max_image_pixels,
            image_size=config.image_size,
            progress=report_progress and check_progress(split, len(examples), report_progress),
        )
        problems += report.problems
        splits[split] = report.good if config.skip_bad_examples else examples
        if not splits[split]:
            raise datasets.DatasetError(
                f"{split} split of {dataset.root} has no usable image/mask pairs"
            )
    errors = [p for p in problems if p.is_error]
    if errors and not config.skip_bad_examples:
        lines = "\n".join(str(p) for p in problems)
        raise datasets.DatasetError(
            f"{len(errors)} problem(s) in {dataset.root}:\n{lines}\n"
            "fix them, or pass --skip_bad_examples to train on the other pairs"
        )
    train_examples, selection = datasets.training_and_selection(
        splits, config=config, train_split=train_split, root=dataset.root, fit_batch=fit_batch
    )
    return train_examples, selection, problems
