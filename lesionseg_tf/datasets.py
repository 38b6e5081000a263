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
import re

import numpy as np

# What a photograph's name says it is; the dataset check holds the file to it.
EXTENSION_FORMATS = {".jpg": "JPEG", ".jpeg": "JPEG", ".png": "PNG", ".bmp": "BMP"}


class DatasetError(ValueError):
    """The data directory does not hold a usable dataset or split; the message says why."""


@dataclasses.dataclass(frozen=True)
class Example:
    """One image/mask pair of a split."""

    image_id: str
    image_path: str
    mask_path: str


SPLITS = ("training", "validation", "test")
ALL = "all"
SPLIT_CHOICES = SPLITS + (ALL,)
PHOTO_EXTENSIONS = tuple(EXTENSION_FORMATS)  # JPEG, PNG, BMP
MASK_EXTENSIONS = (".png", ".bmp")

ISIC_IMAGE = re.compile(r"^(ISIC_\d{7})\.jpg$", re.IGNORECASE)
# The 2016 archives spell "_Segmentation", the 2017 and 2018 ones "_segmentation".
ISIC_MASK = re.compile(r"^(ISIC_\d{7})_[Ss]egmentation\.png$")


@dataclasses.dataclass(frozen=True)
class SplitFiles:
    """What one split's folders hold. `images` / `masks` map image id -> path, and
    are None when that folder is not there."""

    images: dict | None
    masks: dict | None
    image_dir: str
    mask_dir: str

    @property
    def paired(self):
        return self.images is not None and self.masks is not None


def _matching_files(folder, pattern):
    """Maps image id -> path for the files of `folder` whose names match `pattern`."""
    found = {}
    for name in sorted(os.listdir(folder)):
        match = pattern.match(name)
        if match:
            found[match.group(1)] = os.path.join(folder, name)
    return found


def _files_by_stem(folder, extensions):
    """Maps stem -> path for the files of `folder` with one of `extensions`.

    Raises:
      DatasetError: two files share a stem (`a.jpg` and `a.png`): ids must be unique.
    """
    found = {}
    for name in sorted(os.listdir(folder)):
        stem, extension = os.path.splitext(name)
        if name.startswith(".") or extension.lower() not in extensions:
            continue
        if stem in found:
            raise DatasetError(
                f"{found[stem]} and {os.path.join(folder, name)} have the same "
                "stem; image ids are file stems and must be unique"
            )
        found[stem] = os.path.join(folder, name)
    return found


class IsicLayout:
    """An ISIC challenge's segmentation archives, unpacked side by side."""

    def __init__(self, name, *, title, folders, mask_suffix="_segmentation"):
        self.name, self.title, self.folders = name, title, folders
        self.mask_suffix = mask_suffix  # as the archives spell it; both spellings are read

    def locate(self, data_dir):
        if any(
            os.path.isdir(os.path.join(data_dir, folder))
            for pair in self.folders.values()
            for folder in pair
        ):
            return data_dir
        return None

    def expected(self):
        pairs = ", ".join(f"{images}/ + {masks}/" for images, masks in self.folders.values())
        return f"{self.title}: {pairs} (ISIC_<7 digits>.jpg, ISIC_<7 digits>{self.mask_suffix}.png)"

    def split_files(self, root):
        found = {}
        for split, names in self.folders.items():
            image_dir, mask_dir = (os.path.join(root, name) for name in names)
            images = _matching_files(image_dir, ISIC_IMAGE) if os.path.isdir(image_dir) else None
            masks = _matching_files(mask_dir, ISIC_MASK) if os.path.isdir(mask_dir) else None
            if images is not None or masks is not None:
                found[split] = SplitFiles(images, masks, image_dir, mask_dir)
        return found


class Ph2Layout:
    """PH2: one folder per case, the photograph and its lesion mask as BMPs; no splits."""

    name, title = "ph2", "PH2"
    FOLDER = "PH2 Dataset images"
    CASE = re.compile(r"^IMD\d{3}$")

    def _is_case(self, data_dir, name):
        return bool(self.CASE.match(name)) and os.path.isdir(
            os.path.join(data_dir, name, f"{name}_Dermoscopic_Image")
        )

    def locate(self, data_dir):
        inner = os.path.join(data_dir, self.FOLDER)
        if os.path.isdir(inner):
            return inner
        if os.path.basename(os.path.normpath(data_dir)) == self.FOLDER or any(
            self._is_case(data_dir, name) for name in os.listdir(data_dir)
        ):
            return data_dir
        return None

    def expected(self):
        return (
            f"PH2: {self.FOLDER}/IMD<nnn>/IMD<nnn>_Dermoscopic_Image/IMD<nnn>.bmp with "
            "IMD<nnn>/IMD<nnn>_lesion/IMD<nnn>_lesion.bmp"
        )

    def split_files(self, root):
        images, masks = {}, {}
        for case in sorted(os.listdir(root)):
            if not self.CASE.match(case):
                continue
            image = os.path.join(root, case, f"{case}_Dermoscopic_Image", f"{case}.bmp")
            mask = os.path.join(root, case, f"{case}_lesion", f"{case}_lesion.bmp")
            if os.path.isfile(image):
                images[case] = image
            if os.path.isfile(mask):
                masks[case] = mask
        return {ALL: SplitFiles(images, masks, root, root)}


class FolderLayout:
    """A clinic's own data: `images/` and `masks/` with matching stems, at the top or
    under `training/`, `validation/` and `test/`. A mask may also carry ISIC's suffix
    (`<name>_segmentation.png` for `images/<name>.jpg`)."""

    MASK_SUFFIX = "_segmentation"  # ISIC 2017's mask names, accepted here too

    name, title = "folders", "image/mask folders"

    def locate(self, data_dir):
        if any(
            os.path.isdir(os.path.join(data_dir, *parts))
            for parts in (("images",), *((split, "images") for split in SPLITS))
        ):
            return data_dir
        return None

    def expected(self):
        return (
            "image/mask folders: images/<name>.jpg|.png|.bmp beside masks/<name>.png|.bmp "
            f"or masks/<name>{self.MASK_SUFFIX}.png, a mask named as its photograph, "
            "optionally under training/, validation/, test/"
        )

    @classmethod
    def _masks(cls, mask_dir):
        """Masks by the id of their photograph: the stem, without ISIC's suffix."""
        masks = {}
        for stem, path in _files_by_stem(mask_dir, MASK_EXTENSIONS).items():
            image_id = stem[: -len(cls.MASK_SUFFIX)] if stem.endswith(cls.MASK_SUFFIX) else stem
            if image_id in masks:
                raise DatasetError(f"{masks[image_id]} and {path} are both masks of {image_id}")
            masks[image_id] = path
        return masks

    @classmethod
    def _split(cls, folder):
        image_dir, mask_dir = os.path.join(folder, "images"), os.path.join(folder, "masks")
        return SplitFiles(
            _files_by_stem(image_dir, PHOTO_EXTENSIONS) if os.path.isdir(image_dir) else None,
            cls._masks(mask_dir) if os.path.isdir(mask_dir) else None,
            image_dir,
            mask_dir,
        )

    def split_files(self, root):
        if os.path.isdir(os.path.join(root, "images")):
            return {ALL: self._split(root)}
        return {
            split: self._split(os.path.join(root, split))
            for split in SPLITS
            if os.path.isdir(os.path.join(root, split, "images"))
        }


LAYOUTS = (
    IsicLayout(
        "isic2016",
        title="ISIC 2016 Part 1",
        folders={
            "training": (
                "ISBI2016_ISIC_Part1_Training_Data",
                "ISBI2016_ISIC_Part1_Training_GroundTruth",
            ),
            "test": ("ISBI2016_ISIC_Part1_Test_Data", "ISBI2016_ISIC_Part1_Test_GroundTruth"),
        },
        mask_suffix="_Segmentation",
    ),
    IsicLayout(
        "isic2017",
        title="ISIC 2017 Task 1",
        folders={
            "training": ("ISIC-2017_Training_Data", "ISIC-2017_Training_Part1_GroundTruth"),
            "validation": ("ISIC-2017_Validation_Data", "ISIC-2017_Validation_Part1_GroundTruth"),
            "test": ("ISIC-2017_Test_v2_Data", "ISIC-2017_Test_v2_Part1_GroundTruth"),
        },
    ),
    IsicLayout(
        "isic2018",
        title="ISIC 2018 Task 1",
        folders={
            "training": ("ISIC2018_Task1-2_Training_Input", "ISIC2018_Task1_Training_GroundTruth"),
            "validation": (
                "ISIC2018_Task1-2_Validation_Input",
                "ISIC2018_Task1_Validation_GroundTruth",
            ),
            "test": ("ISIC2018_Task1-2_Test_Input", "ISIC2018_Task1_Test_GroundTruth"),
        },
    ),
    Ph2Layout(),
    FolderLayout(),
)
LAYOUT_NAMES = tuple(layout.name for layout in LAYOUTS)


def layout_named(name):
    """The layout of `LAYOUTS` called `name` (one of `LAYOUT_NAMES`)."""
    for layout in LAYOUTS:
        if layout.name == name:
            return layout
    raise ValueError(f"no dataset layout {name!r}; there are {', '.join(LAYOUT_NAMES)}")


ISIC2017 = layout_named("isic2017")


def _list_some(ids, limit=5):
    ids = sorted(ids)
    shown = ", ".join(ids[:limit])
    return shown + (f" and {len(ids) - limit} more" if len(ids) > limit else "")


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
                problems.append(f"{len(no_mask)} image(s) have no mask: {_list_some(no_mask)}")
            if no_image:
                problems.append(f"{len(no_image)} mask(s) have no image: {_list_some(no_image)}")
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
