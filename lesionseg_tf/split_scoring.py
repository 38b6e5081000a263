"""What evaluate.py scores and with what: a split's examples (all, or those of an ids
file), the predicted masks (made by a model, or read from a folder and matched by id),
and the images a model was trained on among them; `score_split` puts them together and
scores them with `evaluation.run`.
"""

import os

from lesionseg_tf import datasets, evaluation, images, layouts, messages
from lesionseg_tf.run_dir import RunDir


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


def training_overlap(examples, *, saved_model):
    """The ids of `examples` that the model of `saved_model` was trained on.

    ISIC editions share many images, so a model trained on one edition and scored
    on another may have seen them. train.py records its training ids in the run
    folder (`<run>/training_ids.txt` beside `<run>/export`).

    Returns:
      `(sorted ids in both, path of the ids file)`; `([], None)` when the run
      folder records none.
    """
    run = RunDir.of_export(saved_model)
    trained = run.read_ids(RunDir.TRAINING_IDS)
    if trained is None:
        return [], None
    trained = set(trained)
    return (
        sorted(e.image_id for e in examples if e.image_id in trained),
        run.file(RunDir.TRAINING_IDS),
    )


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


def prediction_source(examples, *, model=None, pred_dir=None, segment_options=None, max_pixels):
    """How `run` gets each example's predicted mask: read from `pred_dir`, or made by
    the model (`inference.load_segmenter`) with `segment_options`.

    Returns:
      `(predict, source)`: `example -> (mask, name for messages)`, and what made
      the masks (the folder or the model).

    Raises:
      MissingPredictions: `pred_dir` lacks a single prediction for some images.
      ValueError: the model cannot be loaded or lacks an option asked for.
    """
    if pred_dir:
        paths, problems = match_predictions(examples, pred_dir=pred_dir)
        if problems:
            raise MissingPredictions(
                f"{len(problems)} image(s) have no single prediction in {pred_dir}",
                problems=problems,
            )

        def read(example):
            path = paths[example.image_id]
            return images.read_mask_file(path), path

        return read, pred_dir
    from lesionseg_tf import inference  # pylint: disable=import-outside-toplevel

    segmenter = inference.load_segmenter(model)
    options = dict(segment_options or {})
    segmenter.check_options(tta=options.get("tta", False))

    def segment(example):
        image = images.read_image_file(example.image_path, max_pixels=max_pixels)
        return segmenter.segment(image, **options), example.image_path

    return segment, model


def _warn_of_training_overlap(examples, *, model, pred_dir, on_error):
    """Says through `on_error` how many of `examples` `model` was trained on (none
    known for a predictions folder): their ids."""
    overlap, trained_ids = ([], None) if pred_dir else training_overlap(examples, saved_model=model)
    if overlap:
        on_error(
            f"warning: {len(overlap)} of the {len(examples)} images scored were trained on "
            f"({trained_ids}: {messages.list_some(overlap, limit=3)}); "
            "the scores below are optimistic"
        )
    return overlap


def score_split(
    data_dir,
    *,
    dataset=None,
    split,
    ids_file=None,
    model=None,
    pred_dir=None,
    segment_options=None,
    max_pixels,
    output_dir,
    bootstrap=2000,
    figures=False,
    report_line,
    on_error,
    make_progress=None,
):
    """Scores a model, or a predictions folder, on one split of a dataset and writes
    the report folder: the one call behind evaluate.py.

    Args:
      data_dir, dataset: the data (`datasets.open_dataset`); split: which split.
      ids_file: score only the ids it lists (`select_ids`).
      model, pred_dir, segment_options, max_pixels: `prediction_source`'s.
      output_dir, bootstrap: `run`'s; figures: draw the report's figures too.
      report_line: called with each line a person should see before scoring (the
        dataset's summary); on_error: with each problem and warning (images the
        model was trained on, images that could not be scored).
      make_progress: `count -> progress reporter` (`evaluate`'s `progress`).

    Returns:
      `(Report, title)`: what `run` scored and wrote, and a title naming the data,
      the split and what made the masks.

    Raises:
      MissingPredictions, ValueError, OSError: the data, ids or model are unusable,
        before any image is scored.
      ScoringError: some images could not be scored (nothing written).
    """
    found = datasets.open_dataset(data_dir, dataset=dataset)
    report_line(found.summary())
    examples = found.find(split)
    if ids_file:
        examples = select_ids(examples, ids_file=ids_file)
    predict, source = prediction_source(
        examples,
        model=model,
        pred_dir=pred_dir,
        segment_options=segment_options,
        max_pixels=max_pixels,
    )
    overlap = _warn_of_training_overlap(examples, model=model, pred_dir=pred_dir, on_error=on_error)
    name = f"{found.layout.title}, {split} split"
    config = {
        "data_dir": data_dir,
        "split": split,
        "model": None if pred_dir else model,
        "pred_dir": pred_dir,
        **(segment_options or {}),
        "bootstrap": bootstrap,
        "ids_file": ids_file,
        "dataset": found.layout.name,
        "images_trained_on": len(overlap),
    }
    result = evaluation.run(
        examples,
        predict=predict,
        output_dir=output_dir,
        config=config,
        bootstrap=bootstrap,
        figures_title=name if figures else None,
        on_error=on_error,
        progress=make_progress(len(examples)) if make_progress else None,
    )
    return result, f"{name}, {source}"
