"""Crash safety and repeatability of training (train.py as a user runs it)."""

import csv
import os
import signal
import subprocess
import sys
import time

import keras
import numpy as np
import pytest

from lesionseg_tf import synthetic
from tests.conftest import REPO_ROOT, run_script, script_env

EPOCHS = 5


@pytest.fixture(scope="module")
def resume_data(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("resume_isic"))
    synthetic.write_synthetic_isic(root, num_training=16, num_validation=4, num_test=1, seed=4,
                                   widths=(48, 80))
    return root


def train_args(data_dir, model_dir):
    return [f"--data_dir={data_dir}", f"--model_dir={model_dir}", "--image_size=32",
            "--batch_size=2", f"--max_epochs={EPOCHS}", f"--patience={EPOCHS}", "--seed=11",
            "--deterministic"]


@pytest.fixture(scope="module")
def uninterrupted(resume_data, tmp_path_factory):
    model_dir = str(tmp_path_factory.mktemp("uninterrupted"))
    result = run_script("train.py", *train_args(resume_data, model_dir))
    assert result.returncode == 0, result.stderr[-3000:]
    return model_dir


def weights(model_dir):
    model = keras.models.load_model(os.path.join(model_dir, "best.keras"), safe_mode=True)
    return model.get_weights()


def log_rows(model_dir):
    """Epoch -> logged values; a repeated epoch keeps its last row."""
    with open(os.path.join(model_dir, "training_log.csv")) as f:
        return {row["epoch"]: row for row in csv.DictReader(f)}


def test_two_deterministic_runs_are_bit_identical(uninterrupted, resume_data, tmp_path):
    result = run_script("train.py", *train_args(resume_data, tmp_path / "again"))
    assert result.returncode == 0, result.stderr[-3000:]
    for a, b in zip(weights(uninterrupted), weights(tmp_path / "again"), strict=True):
        np.testing.assert_array_equal(a, b)
    assert log_rows(uninterrupted) == log_rows(tmp_path / "again")


def test_sigkill_mid_epoch_then_resume(uninterrupted, resume_data, tmp_path):
    model_dir = tmp_path / "killed"
    env = script_env()
    process = subprocess.Popen(
        [sys.executable, "train.py", *train_args(resume_data, model_dir)], cwd=REPO_ROOT,
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    backup_meta = model_dir / "backup" / "training_metadata.json"
    deadline = time.time() + 300
    while not backup_meta.exists() and time.time() < deadline:  # an epoch has completed
        assert process.poll() is None, "training ended before it could be killed"
        time.sleep(0.02)
    time.sleep(0.3)  # into the next epoch
    process.send_signal(signal.SIGKILL)
    process.wait()
    completed = len(log_rows(model_dir))
    assert 1 <= completed < EPOCHS, "the kill did not land inside the run"
    assert (model_dir / "backup").is_dir() and not (model_dir / "export").exists()

    result = run_script("train.py", *train_args(resume_data, model_dir))
    assert result.returncode == 0, result.stderr[-3000:]
    assert "resuming the interrupted run" in result.stderr
    assert f"of {EPOCHS});" in result.stdout  # epoch count carried over
    assert not (model_dir / "backup").exists()
    # Every epoch's loss and scores, and the best weights, equal the uninterrupted run's.
    assert log_rows(model_dir) == log_rows(uninterrupted)
    for a, b in zip(weights(uninterrupted), weights(model_dir), strict=True):
        np.testing.assert_array_equal(a, b)
    assert os.path.isfile(model_dir / "export" / "saved_model.pb")


def test_resuming_with_other_flags_is_refused(resume_data, tmp_path):
    model_dir = tmp_path / "run"
    (model_dir / "backup").mkdir(parents=True)
    (model_dir / "flags.json").write_text('{"seed": 1}')
    result = run_script("train.py", *train_args(resume_data, model_dir))
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert "interrupted run with other flags" in result.stderr.splitlines()[-1]


def test_finished_run_is_not_overwritten(uninterrupted, resume_data):
    before = os.path.getmtime(os.path.join(uninterrupted, "best.keras"))
    result = run_script("train.py", *train_args(resume_data, uninterrupted))
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert "holds a finished run" in result.stderr.splitlines()[-1]
    assert os.path.getmtime(os.path.join(uninterrupted, "best.keras")) == before
