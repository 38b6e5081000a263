"""The datasets on disk, each recognized by its folder names: ISIC 2016, 2017 (the
paper's, section 2) and 2018 Task 1, PH2, and plain `images/` + `masks/` folders.

    dataset = datasets.open_dataset("ISIC2018")
    dataset.summary()          # 'ISIC 2018 Task 1: 2594 training, 100 validation, 1000 test pairs'
    dataset.find("training")   # [Example, ...] sorted by image id

An image id is the photograph's file stem (`ISIC_0000000`, `IMD002`, a clinic's own
names). Splits are `training`, `validation` and `test` where a layout has them;
`all` is every pair of the tree, and the only split of a layout without splits.
"""

import dataclasses
import os

import numpy as np

from lesionseg_tf import messages
from lesionseg_tf.layouts import (
    ALL,
    LAYOUT_NAMES,
    LAYOUTS,
    SPLIT_CHOICES,
    DatasetError,
    Example,
    layout_named,
)


@dataclasses.dataclass(frozen=True)
class Dataset:
    """One recognized tree: its layout, where it is, and what each split holds."""

    layout: object
    root: str
    files: dict  # split (or ALL) -> SplitFiles

    @property
    def has_splits(self):
        return ALL not in self.files

    @property
    def splits(self):
        """The splits with photographs and ground truth, in the usual order."""
        return [s for s in SPLIT_CHOICES if s in self.files and self.files[s].paired]

    def available(self):
        """The values `--split` may take here."""
        return [s for s in self.splits if s != ALL] + [ALL] if self.splits else []

    def training_split(self):
        """What train.py trains on: the training split, or every pair of a layout
        without splits."""
        if not self.has_splits:
            return ALL
        if "training" not in self.splits:
            try:
                self.scan("training")  # raises, naming the splits there are
            except DatasetError as e:
                raise DatasetError(
                    f"{e}. train.py trains on a training split, or on every pair of a folder "
                    "without splits: to train on these pairs, copy or link them into one "
                    "folder as images/<name>.jpg and masks/<name>.png (or "
                    "<name>_segmentation.png) and pass that folder as --data_dir "
                    "(docs/datasets.md)"
                ) from None
        return "training"

    def summary(self):
        """One line: 'ISIC 2018 Task 1: 2594 training, 100 validation, 1000 test pairs'."""
        counts, notes = [], []
        for split in SPLIT_CHOICES:
            found = self.files.get(split)
            if found is not None and found.paired:
                count = len(found.images.keys() & found.masks.keys())
                counts.append(str(count) if split == ALL else f"{count} {split}")
            elif found is not None and found.images is not None:
                notes.append(f"{len(found.images)} {split} images without ground truth")
        text = f"{', '.join(counts)} pairs" if counts else "no pairs"
        text += "" if self.has_splits else " (no splits)"
        return f"{self.layout.title}: {text}" + "".join(f"; {note}" for note in notes)

    def _split_files(self, split):
        if split not in SPLIT_CHOICES:
            raise DatasetError(f"unknown split {split!r}; choose one of {', '.join(SPLIT_CHOICES)}")
        if split == ALL:
            if not self.splits:
                raise DatasetError(
                    f"{self.layout.title} in {self.root} has no split with both "
                    "photographs and ground truth" + self._missing_note()
                )
            return [self.files[s] for s in self.splits]
        found = self.files.get(split)
        if found is None or not found.paired:
            there = ", ".join(self.available()) or "none"
            raise DatasetError(
                f"{self.layout.title} in {self.root} has no {split} split"
                f"{self._missing_note(split)}; splits there: {there}"
            )
        return [found]

    def _missing_note(self, split=None):
        found = self.files.get(split) if split else None
        if found is not None and found.images is not None and found.masks is None:
            return f" with ground truth ({found.mask_dir} is missing)"
        if found is not None and found.images is None:
            return f" with photographs ({found.image_dir} is missing)"
        return ""

    def scan(self, split):
        """The image/mask pairs of `split`, and the orphans.

        Returns:
          `(examples, orphans)`: `Example`s sorted by image id, and one
          `(path, problem)` per photograph without a mask or mask without a
          photograph.

        Raises:
          DatasetError: an unknown split, one that is not here (naming those that
            are), or an id found in two splits of `all`.
        """
        examples, orphans, seen = [], [], {}
        for found in self._split_files(split):
            images, masks = found.images, found.masks
            orphans += [
                (images[i], f"image has no mask in {found.mask_dir}")
                for i in sorted(images.keys() - masks.keys())
            ]
            orphans += [
                (masks[i], f"mask has no image in {found.image_dir}")
                for i in sorted(masks.keys() - images.keys())
            ]
            for image_id in sorted(images.keys() & masks.keys()):
                if image_id in seen:
                    raise DatasetError(
                        f"image id {image_id} is in two splits: {seen[image_id]}"
                        f" and {images[image_id]}"
                    )
                seen[image_id] = images[image_id]
                examples.append(Example(image_id, images[image_id], masks[image_id]))
        return sorted(examples, key=lambda e: e.image_id), orphans

    def find(self, split):
        """Like `scan`, but every photograph must have its mask and vice versa.

        Raises:
          DatasetError: as `scan`; or the split is empty, or has orphans (all named).
        """
        examples, orphans = self.scan(split)
        if orphans:
            no_mask = sorted(p for p, problem in orphans if problem.startswith("image"))
            no_image = sorted(p for p, problem in orphans if problem.startswith("mask"))
            problems = []
            if no_mask:
                problems.append(
                    f"{len(no_mask)} image(s) have no mask: {messages.list_some(no_mask)}"
                )
            if no_image:
                problems.append(
                    f"{len(no_image)} mask(s) have no image: {messages.list_some(no_image)}"
                )
            raise DatasetError(
                f"{self.layout.title}, {split} split: "
                + "; ".join(problems)
                + f" (expected {self.layout.expected()})"
            )
        if not examples:
            folders = ", ".join(f.image_dir for f in self._split_files(split))
            raise DatasetError(
                f"{self.layout.title}, {split} split: no images found in "
                f"{folders} (expected {self.layout.expected()})"
            )
        return examples


def _detect(data_dir, layouts):
    return [(layout, root) for layout in layouts if (root := layout.locate(data_dir)) is not None]


def open_dataset(data_dir, *, dataset=None):
    """Recognizes the layout of `data_dir` (or uses `dataset`, one of
    `LAYOUT_NAMES`) and lists its files.

    Raises:
      DatasetError: no such folder, an unknown `dataset`, no layout (or not the
        forced one) found there, listing what was looked for, or several.
    """
    if not os.path.isdir(data_dir):
        raise DatasetError(f"data directory {data_dir} does not exist")
    if dataset is None:
        layouts = LAYOUTS
    elif dataset in LAYOUT_NAMES:
        layouts = [layout_named(dataset)]
    else:
        raise DatasetError(f"unknown dataset {dataset!r}; choose one of {', '.join(LAYOUT_NAMES)}")
    found = _detect(data_dir, layouts)
    if not found:
        looked_for = "\n".join(f"  {layout.expected()}" for layout in layouts)
        raise DatasetError(
            f"{data_dir} does not hold "
            + (
                "any of the dataset layouts this project reads"
                if dataset is None
                else f"the {layouts[0].title} layout"
            )
            + f"; looked for:\n{looked_for}"
        )
    if len(found) > 1:
        names = ", ".join(f"{layout.title} (--dataset={layout.name})" for layout, _ in found)
        raise DatasetError(
            f"{data_dir} holds several dataset layouts: {names}; choose one with --dataset"
        )
    layout, root = found[0]
    return Dataset(layout, root, layout.split_files(root))


def find_split(data_dir, *, split, dataset=None):
    """`open_dataset(data_dir, dataset=dataset).find(split)`."""
    return open_dataset(data_dir, dataset=dataset).find(split)


def photographs_in(folder):
    """The photographs of `folder` and their ground truth, when `folder` is a
    dataset's top folder (every split) or one split's image folder.

    Returns:
      `(layout title, [(image_id, image_path, mask_path or None)] sorted by id)`,
      or None when `folder` is neither (a plain folder of photographs).
    """

    def listing(files_of_splits):
        rows = []
        for found in files_of_splits:
            masks = found.masks or {}
            rows += [(i, path, masks.get(i)) for i, path in (found.images or {}).items()]
        return sorted(rows)

    found = _detect(folder, LAYOUTS)
    if len(found) == 1:
        layout, root = found[0]
        return layout.title, listing(layout.split_files(root).values())
    parent = os.path.dirname(os.path.abspath(folder))
    for layout, root in _detect(parent, LAYOUTS):
        for split_files in layout.split_files(root).values():
            if (
                split_files.images is not None
                and os.path.isdir(split_files.image_dir)
                and os.path.samefile(split_files.image_dir, folder)
            ):
                return layout.title, listing([split_files])
    return None


def split_holdout(examples, *, fraction, seed):
    """Splits a training split into `(training, held-out)` examples for model
    selection (section 3.3's early stopping without the blind validation split).

    The held-out share is `round(fraction * len(examples))` pairs (at least 1),
    drawn from `seed` alone over the examples sorted by image id, so the same
    files and seed always hold out the same images. Both lists keep id order.
    """
    if not 0 < fraction < 1:
        raise ValueError(f"holdout fraction must be between 0 and 1, got {fraction}")
    ordered = sorted(examples, key=lambda e: e.image_id)
    count = max(1, round(fraction * len(ordered)))
    if count >= len(ordered):
        raise DatasetError(
            f"{len(ordered)} training pairs cannot spare {count} for a held-out "
            "part; lower the holdout fraction or add data"
        )
    rng = np.random.default_rng(seed)
    held = set(rng.permutation(len(ordered))[:count].tolist())
    return (
        [e for i, e in enumerate(ordered) if i not in held],
        [e for i, e in enumerate(ordered) if i in held],
    )


def splits_for_training(dataset, *, select_on):
    """The splits a run reads: the training split (`Dataset.training_split`), and the
    validation split where it chooses the epoch on it (`select_on == "validation"`)."""
    train_split = dataset.training_split()
    return (train_split, "validation") if select_on == "validation" else (train_split,)


def training_and_selection(examples, *, config, train_split, root, fit_batch=False):
    """Section 3.3's two sets, from the examples of each split a run reads
    (`examples`: split -> examples; `splits_for_training`): the pairs that train
    and those whose per-image Jaccard chooses the epoch (the `config.holdout_fraction`
    share of the training split drawn by `split_holdout`, the validation split, or
    none, as `config.select_on` says).

    Raises:
      DatasetError: the training split cannot spare its held-out share, or leaves
        fewer pairs than one batch of `config.batch_size` (unless `fit_batch`: the
        caller then trains in one batch of all of them).
    """
    if config.select_on == "holdout":
        train_examples, selection = split_holdout(
            examples[train_split], fraction=config.holdout_fraction, seed=config.holdout_seed
        )
    elif config.select_on == "validation":
        train_examples, selection = examples[train_split], examples["validation"]
    else:
        train_examples, selection = examples[train_split], []
    if len(train_examples) < config.batch_size and not fit_batch:
        raise DatasetError(
            f"{train_split} split of {root} leaves {len(train_examples)} usable images "
            f"for training, fewer than one batch of {config.batch_size}; lower --batch_size"
            + (" or --holdout_fraction" if config.select_on == "holdout" else "")
        )
    return train_examples, selection


def refuse_before_checking(config, *, fit_batch=False):
    """What train.py refuses in well under a second, before TensorFlow loads and
    before each pair is read (`preflight.select_data`): a folder of no known layout,
    a split it reads that is missing or has no pair, and too few listed pairs to hold
    out a share and fill a batch (`training_and_selection`). The check of each pair
    only removes pairs, so what is refused here would be refused after it too.

    Raises:
      DatasetError: the first of those problems.
    """
    found = open_dataset(config.data_dir, dataset=config.dataset)
    examples = {}
    for split in splits_for_training(found, select_on=config.select_on):
        examples[split], orphans = found.scan(split)
        if not examples[split]:
            raise DatasetError(
                f"{split} split of {found.root} has no image/mask pairs"
                + (
                    f": {len(orphans)} file(s) without their other half, such as "
                    f"{orphans[0][0]} ({orphans[0][1]})"
                    if orphans
                    else ""
                )
            )
    training_and_selection(
        examples,
        config=config,
        train_split=found.training_split(),
        root=found.root,
        fit_batch=fit_batch,
    )
