"""Fine-tuning (`--init_from`) starts from a candidate: the starting weights are
scored as epoch 0 and exported unchanged when no epoch beats them."""

import csv
import json
import os
import shutil

import cv2
import pytest

from lesionseg_tf import distribute, synthetic
from lesionseg_tf import model as model_lib
from tests.conftest import run_script

pytestmark = pytest.mark.slow  # trains


@pytest.fixture(scope="module")
def start_and_data(trained_run, tiny_isic, tmp_path_factory):
    """The suite's trained run (on the tiny tree's training split), and a copy of the
    tiny tree whose training masks are inverted while its validation masks are not:
    fine-tuning on it can only make the model worse on validation."""
    start, _ = trained_run
    inverted = str(tmp_path_factory.mktemp("fine_tuning") / "inverted")
    shutil.copytree(tiny_isic, inverted)
    masks = os.path.join(inverted, "ISIC-2017_Training_Part1_GroundTruth")
    for name in os.listdir(masks):
        path = os.path.join(masks, name)
        cv2.imwrite(path, 255 - cv2.imread(path, cv2.IMREAD_GRAYSCALE))
    return start, inverted


def test_a_start_no_epoch_beats_is_exported_unchanged(start_and_data, tmp_path):
    start, inverted = start_and_data
    run = tmp_path / "tuned"
    result = run_script(
        "train.py",
        f"--data_dir={inverted}",
        f"--init_from={start}",
        f"--model_dir={run}",
        "--batch_size=4",
        "--max_epochs=3",
        "--patience=3",
        "--learning_rate=1e-2",
        "--select_on=validation",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.splitlines()
    epoch_zero = [line for line in lines if line.startswith("Epoch 0 (the starting weights")]
    assert len(epoch_zero) == 1 and "val_jaccard: " in epoch_zero[0], result.stdout
    assert "no epoch beat the starting weights" in result.stdout
    with open(run / "result.json") as f:
        recorded = json.load(f)
    assert recorded["best_epoch"] == 0 and recorded["epochs_run"] == 3
    with open(run / "training_log.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [row["epoch"] for row in rows] == ["0", "1", "2", "3"]
    assert all(float(row["val_jaccard"]) < float(rows[0]["val_jaccard"]) for row in rows[1:])
    # The export is the start, by digest of the weights.
    started = distribute.weights_digest(model_lib.load(os.path.join(start, "best.keras")))
    assert recorded["weights_sha256"] == started
    exported = model_lib.load(os.path.join(run, "best.keras"))
    assert distribute.weights_digest(exported) == started


def test_a_folder_smaller_than_a_batch_trains_in_one_batch(start_and_data, tmp_path):
    start, _ = start_and_data
    data = tmp_path / "clinic"
    synthetic.write_synthetic_dataset(
        str(data), num_training=12, num_validation=1, num_test=1, seed=9, widths=(48, 64)
    )
    run = tmp_path / "tuned"
    args = [f"--data_dir={data}", f"--init_from={start}", f"--model_dir={run}", "--max_epochs=1"]
    result = run_script("train.py", *args)
    assert result.returncode == 0, result.stderr[-3000:]
    # 12 pairs: 10% would hold out 1; fine-tuning holds out half (6), at most 10.
    assert "--holdout_fraction=0.5: 6 of the 12 pairs held out to choose the epoch" in (
        result.stdout
    )
    # 6 to train on, fewer than the default batch of 32: one batch of 6.
    assert "--batch_size=6: all 6 training pairs in one batch" in result.stdout
    with open(run / "flags.json") as f:
        recorded = json.load(f)
    assert recorded["batch_size"] == 6 and recorded["holdout_fraction"] == 0.5
    # The fine-tuning defaults where no flag gives them, said at start and recorded.
    assert "--learning_rate=0.0001, the fine-tuning default" in result.stdout
    assert recorded["learning_rate"] == 1e-4 and recorded["batch_norm"] == "train"
    # Still fewer than 10 held-out pairs: the choice of epoch is said to be mostly chance.
    assert "only 6 held-out pair(s) choose the best epoch" in result.stderr
    given = run_script(
        "train.py", *args, "--batch_size=32", "--holdout_fraction=0.1", f"--model_dir={tmp_path}/r2"
    )
    assert given.returncode != 0 and "fewer than one batch of 32" in given.stderr
