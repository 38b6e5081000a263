"""What evaluate.py scores, chosen before TensorFlow loads: a split's examples (all, or
those of an ids file) and, for a predictions folder, each one's mask file matched by id.
Every problem of the data, the ids file or the folder is found here, in well under a
second, before a model or TensorFlow is loaded. No TensorFlow.
"""

import dataclasses
import os

from lesionseg_tf import datasets, layouts, messages


def match_predictions(examples, *, pred_dir):
    """Finds each example's predicted mask by its image id (the file stem), on every
    dataset layout: a PNG or BMP named `<id>.png` or `<id>_<anything>.png`, such as
    predict.py's `<id>_segmentation.png`. A file that two ids could claim (`a_b.png`
    for `a` and `a_b`) goes to the longer id.

    Returns:
      `(paths, problems)`: image id -> path, and one message per image with no
      or several candidates.
    """
    if not os.path.isdir(pred_dir):
        raise FileNotFoundError(f"prediction folder {pred_dir} does not exist")
    ids = {example.image_id for example in examples}
    candidates = {}
    for name in sorted(os.listdir(pred_dir)):
        stem, extension = os.path.splitext(name)
        if name.startswith(".") or extension.lower() not in layouts.MASK_EXTENSIONS:
            continue
        owners = [
            prefix
            for prefix in [stem[:i] for i, c in enumerate(stem) if c == "_"] + [stem]
            if prefix in ids
        ]
        if owners:
            candidates.setdefault(max(owners, key=len), []).append(name)
    paths, problems = {}, []
    for example in examples:
        found = candidates.get(example.image_id, [])
        if not found:
            problems.append(f"{pred_dir}: no prediction for {example.image_id}")
        elif len(found) > 1:
            problems.append(
                f"{pred_dir}: several predictions for {example.image_id}: {', '.join(found)}"
            )
        else:
            paths[example.image_id] = os.path.join(pred_dir, found[0])
    return paths, problems


def select_ids(examples, *, ids_file):
    """The examples whose ids `ids_file` lists (one per line), in the file's order.

    Raises:
      ValueError: the file lists no id, or ids that are not among the examples.
    """
    with open(ids_file) as f:
        wanted = [line.strip() for line in f if line.strip()]
    if not wanted:
        raise ValueError(f"{ids_file} lists no image id")
    by_id = {e.image_id: e for e in examples}
    missing = [i for i in wanted if i not in by_id]
    if missing:
        raise ValueError(
            f"{ids_file}: {len(missing)} of its {len(wanted)} ids are not in the "
            f"split ({messages.list_some(missing, limit=3)})"
        )
    return [by_id[i] for i in wanted]


class MissingPredictions(ValueError):
    """Images of a predictions folder without a single prediction; `problems` names each."""

    def __init__(self, message, *, problems):
        super().__init__(message)
        self.problems = problems


@dataclasses.dataclass(frozen=True)
class Choice:
    """What evaluate.py scores.

    Attributes:
      data_dir, split, ids_file, pred_dir: `choose`'s arguments.
      found: the dataset (`datasets.open_dataset`).
      examples: the split's examples, or those of the ids file in its order.
      pred_paths: image id -> predicted mask file in `pred_dir`; None without one.
    """

    data_dir: str
    split: str
    ids_file: str | None
    pred_dir: str | None
    found: datasets.Dataset
    examples: list
    pred_paths: dict | None

    @property
    def name(self):
        """'ISIC 2017 Task 1, validation split'."""
        return f"{self.found.layout.title}, {self.split} split"


def choose(data_dir, *, dataset=None, split, ids_file=None, pred_dir=None):
    """The examples of `split` (those `ids_file` lists, when given) and, with `pred_dir`,
    each one's prediction (`match_predictions`).

    Raises:
      DatasetError: the data or the split is unusable (`datasets.Dataset.find`).
      ValueError: the ids file is (`select_ids`).
      MissingPredictions: `pred_dir` lacks a single prediction for some images.
      FileNotFoundError: `pred_dir` does not exist.
    """
    found = datasets.open_dataset(data_dir, dataset=dataset)
    examples = found.find(split)
    if ids_file:
        examples = select_ids(examples, ids_file=ids_file)
    paths = None
    if pred_dir:
        paths, problems = match_predictions(examples, pred_dir=pred_dir)
        if problems:
            raise MissingPredictions(
                f"{len(problems)} image(s) have no single prediction in {pred_dir}",
                problems=problems,
            )
    return Choice(
        data_dir=data_dir,
        split=split,
        ids_file=ids_file,
        pred_dir=pred_dir,
        found=found,
        examples=examples,
        pred_paths=paths,
    )
