"""How evaluate.py scores what `split_choice.choose` chose: the predicted masks (made by
a model, or read from the folder's matched files) and the images a model was trained on
among them; `score_split` puts them together and scores them with `evaluation.run`.
"""

from lesionseg_tf import evaluation, images, messages
from lesionseg_tf.run_dir import RunDir


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


def prediction_source(choice, *, model=None, segment_options=None, max_pixels):
    """How `run` gets each chosen example's predicted mask: read from the file
    `split_choice.choose` matched to it, or made by the model
    (`inference.load_segmenter`) with `segment_options`.

    Returns:
      `(predict, source)`: `example -> (mask, name for messages)`, and what made
      the masks (the folder or the model).

    Raises:
      ValueError: the model cannot be loaded or lacks an option asked for.
    """
    if choice.pred_dir:

        def read(example):
            path = choice.pred_paths[example.image_id]
            return images.read_mask_file(path), path

        return read, choice.pred_dir
    from lesionseg_tf import inference  # pylint: disable=import-outside-toplevel

    segmenter = inference.load_segmenter(model)
    options = dict(segment_options or {})
    segmenter.check_options(tta=options.get("tta", False))

    def segment(example):
        image = images.read_image_file(example.image_path, max_pixels=max_pixels)
        return segmenter.segment(image, **options), example.image_path

    return segment, model


def _warn_of_training_overlap(examples, *, model, on_error):
    """Says through `on_error` how many of `examples` `model` was trained on (none
    known for a predictions folder, `model` None): their ids."""
    overlap, trained_ids = training_overlap(examples, saved_model=model) if model else ([], None)
    if overlap:
        on_error(
            f"warning: {len(overlap)} of the {len(examples)} images scored were trained on "
            f"({trained_ids}: {messages.list_some(overlap, limit=3)}); "
            "the scores below are optimistic"
        )
    return overlap


def score_split(
    choice,
    *,
    model=None,
    segment_options=None,
    max_pixels,
    output_dir,
    bootstrap=2000,
    figures=False,
    on_error,
    make_progress=None,
):
    """Scores a model, or the predictions folder of `choice`, on the examples of
    `choice` (`split_choice.choose`) and writes the report folder: evaluate.py's work
    once TensorFlow has loaded.

    Args:
      choice: what to score; with its `pred_dir` the masks are read, not made.
      model, segment_options, max_pixels: `prediction_source`'s (model unused with
        a predictions folder).
      output_dir, bootstrap: `run`'s; figures: draw the report's figures too.
      on_error: called with each problem and warning (images the model was trained
        on, images that could not be scored).
      make_progress: `count -> progress reporter` (`evaluate`'s `progress`).

    Returns:
      `(Report, title)`: what `run` scored and wrote, and a title naming the data,
      the split and what made the masks.

    Raises:
      ValueError, OSError: the model is unusable, before any image is scored.
      ScoringError: some images could not be scored (nothing written).
    """
    if choice.pred_dir:
        model = None
    predict, source = prediction_source(
        choice, model=model, segment_options=segment_options, max_pixels=max_pixels
    )
    examples = choice.examples
    overlap = _warn_of_training_overlap(examples, model=model, on_error=on_error)
    config = {
        "data_dir": choice.data_dir,
        "split": choice.split,
        "model": model,
        "pred_dir": choice.pred_dir,
        **(segment_options or {}),
        "bootstrap": bootstrap,
        "ids_file": choice.ids_file,
        "dataset": choice.found.layout.name,
        "images_trained_on": len(overlap),
    }
    result = evaluation.run(
        examples,
        predict=predict,
        output_dir=output_dir,
        config=config,
        bootstrap=bootstrap,
        figures_title=choice.name if figures else None,
        on_error=on_error,
        progress=make_progress(len(examples)) if make_progress else None,
    )
    return result, f"{choice.name}, {source}"
