"""The shipped model (pretrained/lesionseg_isic2017) on the shipped example photographs,
through the README's first command."""

import json
import os

import cv2
import numpy as np
import pytest

from lesionseg_tf import datasets, evaluation, images, metrics
from tests.conftest import REPO_ROOT, run_script

PRETRAINED = os.path.join(REPO_ROOT, "pretrained", "lesionseg_isic2017")
EXAMPLES = os.path.join(REPO_ROOT, "examples")
# Per-image mean Jaccard of the shipped model on examples/, as MODEL_CARD.md gives it
# (2026-12-01, JPEGs decoded with the accurate IDCT); a change to the export, pre- or
# post-processing that costs more than 0.05 fails.
MEASURED_JACCARD = 0.7816
TOLERANCE = 0.05


@pytest.mark.slow
def test_readme_command_segments_the_examples_as_measured(tmp_path):
    out = tmp_path / "example_predictions"
    result = run_script(
        "predict.py",
        f"--model={os.path.join(PRETRAINED, 'export')}",
        f"--input={os.path.join(EXAMPLES, 'ISIC-2017_Validation_Data')}",
        f"--output_dir={out}",
        "--overlay",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    examples = datasets.find_split(EXAMPLES, split="validation")
    assert len(examples) == 3
    rows = []
    for example in examples:
        mask = images.read_mask_file(str(out / f"{example.image_id}_segmentation.png"))
        assert set(np.unique(mask)) <= {0, 255}
        rows.append(
            evaluation.score_image(
                example.image_id, truth=images.read_mask_file(example.mask_path), prediction=mask
            )
        )
        overlay = cv2.imread(str(out / "overlays" / f"{example.image_id}_overlay.jpg"))
        assert overlay is not None and overlay.shape[:2] == mask.shape
    jaccard = metrics.summarize(rows)["jaccard"]
    assert jaccard >= MEASURED_JACCARD - TOLERANCE, jaccard


def test_model_card_and_run_files_are_shipped():
    for name in (
        "MODEL_CARD.md",
        "flags.json",
        "holdout_ids.txt",
        "training_ids.txt",
        "training_log.csv",
        "lesionseg.keras",
        "lesionseg_int8.tflite",
        os.path.join("export", "saved_model.pb"),
    ):
        assert os.path.isfile(os.path.join(PRETRAINED, name)), name
    with open(os.path.join(PRETRAINED, "flags.json")) as f:
        flags = json.load(f)
    assert flags["select_on"] == "holdout"  # selected without validation ground truth
    with open(os.path.join(PRETRAINED, "holdout_ids.txt")) as f:
        held_out = set(f.read().split())
    validation = {e.image_id for e in datasets.find_split(EXAMPLES, split="validation")}
    assert not held_out & validation
    size = sum(
        os.path.getsize(os.path.join(folder, name))
        for folder, _, names in os.walk(PRETRAINED)
        for name in names
    )
    assert size <= 25_000_000, size  # the pretrained folder stays small (git keeps every byte)
    # The export stores each weight once: its variables are the .keras file's weights.
    variables = os.path.getsize(
        os.path.join(PRETRAINED, "export", "variables", "variables.data-00000-of-00001")
    )
    assert 2_057_952 * 4 <= variables <= 1.03 * 2_057_952 * 4, variables


def test_shipped_weights_are_the_exported_model():
    import tensorflow as tf  # pylint: disable=import-outside-toplevel

    from lesionseg_tf import model as model_lib  # pylint: disable=import-outside-toplevel

    # model.load registers the network's classes itself: this passes run alone too.
    model = model_lib.load(os.path.join(PRETRAINED, "lesionseg.keras"))
    assert getattr(model, "optimizer", None) is None  # weights only, for fine-tuning
    images = np.random.default_rng(0).normal(size=(1, 64, 64, 3)).astype(np.float32)
    exported = tf.saved_model.load(os.path.join(PRETRAINED, "export"))
    np.testing.assert_allclose(
        exported.logits(tf.constant(images))["logits"].numpy(),
        np.asarray(model(images, training=False)),
        atol=1e-4,
    )


def test_shipped_int8_tflite_scores_the_examples_as_the_saved_model():
    """The shipped .tflite (the int8 network) inside the library's own pre- and
    post-processing, against the SavedModel, on the three example photographs."""
    from lesionseg_tf import inference  # pylint: disable=import-outside-toplevel

    lite = inference.load_segmenter(os.path.join(PRETRAINED, "lesionseg_int8.tflite"))
    saved = inference.load_segmenter(os.path.join(PRETRAINED, "export"))
    assert lite.image_size == saved.image_size == 64
    rows = []
    for example in datasets.find_split(EXAMPLES, split="validation"):
        photo = images.read_image_file(example.image_path)
        mask = lite.segment(photo)
        assert (mask == saved.segment(photo)).mean() > 0.98
        rows.append(
            evaluation.score_image(
                example.image_id, truth=images.read_mask_file(example.mask_path), prediction=mask
            )
        )
    assert metrics.summarize(rows)["jaccard"] >= MEASURED_JACCARD - TOLERANCE


def folder_digest(path):
    """Every file under `path` with its bytes' SHA-256 and its mode."""
    import hashlib  # pylint: disable=import-outside-toplevel

    digests = {}
    for folder, _, names in os.walk(path):
        for name in names:
            full = os.path.join(folder, name)
            with open(full, "rb") as f:
                digests[os.path.relpath(full, path)] = (
                    hashlib.sha256(f.read()).hexdigest(),
                    os.stat(full).st_mode,
                )
    return digests


@pytest.mark.slow
def test_export_command_writes_only_what_it_is_asked_for(tmp_path):
    """A serving copy and a report of the shipped model leave pretrained/ byte-identical,
    and two evaluations on different datasets keep both reports."""
    before = folder_digest(PRETRAINED)
    result = run_script(
        "-m tools.export", f"--run_dir={PRETRAINED}", f"--serving_base={tmp_path / 'serving'}"
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert os.path.isfile(tmp_path / "serving" / "1" / "saved_model.pb")
    assert f"SavedModel: {tmp_path / 'serving' / '1'}" in result.stdout
    assert folder_digest(PRETRAINED) == before
