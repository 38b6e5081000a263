"""The folder layouts a dataset is recognized by (ISIC 2016, 2017 and 2018 Task 1, PH2,
plain `images/` + `masks/` folders), what each split's folders hold (`SplitFiles`), and
the words `datasets` speaks in: splits, examples, extensions and its error.
"""

import dataclasses
import os
import re

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
