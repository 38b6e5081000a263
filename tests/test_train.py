"""End to end: train.py on a tiny synthetic ISIC tree, then its outputs."""

import csv
import glob
import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from lesionseg_tf import data, export
from tests.conftest import TRAINED_EPOCHS, run_script


def test_prints_the_validation_jaccard(trained_run):
    model_dir, result = trained_run
    assert "validation per-image mean Jaccard:" in result.stdout
    with open(os.path.join(model_dir, "result.json")) as f:
        summary = json.load(f)
    assert 0.0 <= summary["val_jaccard"] <= 1.0 and summary["epochs_run"] == TRAINED_EPOCHS
    assert f"{summary['val_jaccard']:.4f}" in result.stdout


def test_writes_checkpoint_logs_and_config(trained_run):
    model_dir, _ = trained_run
    assert isinstance(keras.models.load_model(os.path.join(model_dir, "best.keras"),
                                              safe_mode=True), keras.Model)
    assert glob.glob(os.path.join(model_dir, "logs", "train", "events.out.tfevents.*"))
    assert glob.glob(os.path.join(model_dir, "logs", "validation", "events.out.tfevents.*"))
    with open(os.path.join(model_dir, "training_log.csv")) as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == TRAINED_EPOCHS and "val_jaccard" in rows[0]
    with open(os.path.join(model_dir, "flags.json")) as f:
        config = json.load(f)
    assert config["image_size"] == 32 and config["batch_size"] == 4 and config["seed"] == 3


def test_export_reproduces_the_best_model(trained_run, tiny_isic):
    model_dir, _ = trained_run
    best = keras.models.load_model(os.path.join(model_dir, "best.keras"), safe_mode=True)
    examples = data.find_split(tiny_isic, "validation")
    images, _ = next(iter(data.make_dataset(examples, image_size=32, batch_size=4,
                                            is_training=False)))
    loaded = tf.saved_model.load(os.path.join(model_dir, "export"))
    got = loaded.logits(images)["logits"].numpy()
    assert got.shape == (4, 32, 32, 2)
    np.testing.assert_allclose(got, np.asarray(best(images, training=False)), atol=1e-4)
    assert "serving_default" in loaded.signatures
    assert not glob.glob(os.path.join(model_dir, ".export-*"))  # no staging left behind


def test_check_export_catches_a_different_model(trained_run, tiny_isic):
    model_dir, _ = trained_run
    from lesionseg_tf.model import build_model
    other = build_model()
    images = np.random.default_rng(0).normal(size=(1, 32, 32, 3)).astype(np.float32)
    with pytest.raises(AssertionError, match="differs"):
        export.check_export(os.path.join(model_dir, "export"), other, images)


@pytest.mark.parametrize("args,message", [
    (["--data_dir=/nonexistent/isic"], "does not exist"),
    (["--image_size=30"], "multiple of 4"),
    (["--batch_size=0"], "batch_size must be >= 1"),
])
def test_bad_input_is_one_clear_line(args, message, tmp_path):
    result = run_script("train.py", f"--model_dir={tmp_path / 'run'}", *args)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert message in result.stderr.strip().splitlines()[-1]
    assert not os.path.exists(tmp_path / "run")


def test_batch_larger_than_training_split(tiny_isic, tmp_path):
    result = run_script("train.py", f"--data_dir={tiny_isic}", f"--model_dir={tmp_path / 'r'}",
                        "--batch_size=32", "--image_size=32")
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert "fewer than one batch of 32" in result.stderr.strip().splitlines()[-1]


def test_divergence_stops_with_advice(tiny_isic, tmp_path):
    result = run_script("train.py", f"--data_dir={tiny_isic}", f"--model_dir={tmp_path / 'r'}",
                        "--image_size=32", "--batch_size=4", "--max_epochs=3",
                        "--learning_rate=1e30")
    assert result.returncode != 0 and "Traceback" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert "the loss became NaN or infinite at epoch 1" in last and "--learning_rate" in last
    assert not (tmp_path / "r" / "export").exists()
