"""Crash safety and repeatability of training (train.py as a user runs it)."""

import csv
import glob
import json
import os
import signal
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from lesionseg_tf import losses, synthetic
from lesionseg_tf import model as model_lib
from tests.conftest import REPO_ROOT, run_script, script_env

pytestmark = pytest.mark.slow  # every test here trains

EPOCHS = 4


@pytest.fixture(scope="module")
def resume_data(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("resume_isic"))
    synthetic.write_synthetic_dataset(
        root, num_training=16, num_validation=4, num_test=1, seed=4, widths=(48, 80)
    )
    return root


def train_args(data_dir, model_dir):
    return [
        f"--data_dir={data_dir}",
        f"--model_dir={model_dir}",
        "--image_size=32",
        "--batch_size=2",
        f"--max_epochs={EPOCHS}",
        f"--patience={EPOCHS}",
        "--seed=11",
        "--deterministic",
        "--steps_per_execution=3",  # 7 steps: executions of 3, 3, 1
        # The options beyond the paper on: the resume is proven with the fullest
        # training step (the paper's is the same step with the colour branch off).
        "--loss=soft_jaccard",
        "--color_augment",
        "--scale_augment",
    ]


@pytest.fixture(scope="module")
def uninterrupted(resume_data, tmp_path_factory):
    model_dir = str(tmp_path_factory.mktemp("uninterrupted"))
    result = run_script("train.py", *train_args(resume_data, model_dir))
    assert result.returncode == 0, result.stderr[-3000:]
    return model_dir


def weights(model_dir):
    return model_lib.load(os.path.join(model_dir, "best.keras")).get_weights()


def tensorboard_points(model_dir):
    """Every (run, tag, step, value) of the run's TensorBoard event files, sorted:
    a point logged twice appears twice."""
    points = []
    for path in glob.glob(os.path.join(model_dir, "logs", "*", "events.out.tfevents.*")):
        run = os.path.basename(os.path.dirname(path))
        for record in tf.data.TFRecordDataset(path):
            event = tf.compat.v1.Event.FromString(record.numpy())
            for value in event.summary.value:
                points.append((run, value.tag, event.step, float(tf.make_ndarray(value.tensor))))
    return sorted(points)


def csv_epochs(model_dir):
    with open(os.path.join(model_dir, "training_log.csv")) as f:
        return [int(row["epoch"]) for row in csv.DictReader(f)]


# Where each killed run dies (0-based epochs), in order, in one model folder.
KILLS = (
    ("csv", 0),
    ("mid_epoch", 1),
    ("checkpoint", 2),
    ("backup", EPOCHS - 1),
    ("before_export", 0),
    ("during_export", 0),
)


def test_killed_at_every_point_ends_as_an_uninterrupted_run(uninterrupted, resume_data, tmp_path):
    model_dir = tmp_path / "killed"
    args = train_args(resume_data, model_dir)
    for point, epoch in KILLS:
        killed = subprocess.run(
            [
                sys.executable,
                os.path.join("tests", "crash_train.py"),
                point,
                str(epoch),
                "--",
                *args,
            ],
            cwd=REPO_ROOT,
            env=script_env(),
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert killed.returncode == -signal.SIGKILL, (point, killed.stderr[-3000:])
        if point == "backup":  # training complete: what follows must not train again
            assert (model_dir / "backup").is_dir()
        if point.endswith("export"):
            assert "Epoch " not in killed.stdout, f"trained again after the last epoch ({point})"
            assert "training was complete" in killed.stdout
    assert glob.glob(str(model_dir / ".partial-*-export")), "the killed export left no staging"

    result = run_script("train.py", *args)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Epoch " not in result.stdout and "training was complete" in result.stdout
    assert f"of {EPOCHS});" in result.stdout
    # Each epoch once, with the values of the uninterrupted run.
    assert csv_epochs(model_dir) == list(range(1, EPOCHS + 1))
    with (
        open(model_dir / "training_log.csv", "rb") as f,
        open(os.path.join(uninterrupted, "training_log.csv"), "rb") as g,
    ):
        assert f.read() == g.read()  # byte for byte, line endings included
    points = tensorboard_points(model_dir)
    assert points == tensorboard_points(uninterrupted)
    assert len({(run, tag, step) for run, tag, step, _ in points}) == len(points)
    assert {step for _, _, step, _ in points} == set(range(EPOCHS))
    for a, b in zip(weights(uninterrupted), weights(model_dir), strict=True):
        np.testing.assert_array_equal(a, b)
    # The run is complete: the backup and the killed export's staging folder are gone.
    assert not (model_dir / "backup").exists()
    assert not glob.glob(str(model_dir / ".partial-*"))
    assert os.path.isfile(model_dir / "export" / "saved_model.pb")


def test_the_options_are_recorded_and_trained_with(uninterrupted):
    with open(os.path.join(uninterrupted, "flags.json")) as f:
        recorded = json.load(f)
    assert recorded["loss"] == "soft_jaccard" and recorded["color_augment"] is True
    assert recorded["scale_augment"] is True
    model = model_lib.load(os.path.join(uninterrupted, "best.keras"))
    assert isinstance(model.loss, losses.SoftJaccard)


def test_resuming_with_other_flags_is_refused(resume_data, tmp_path):
    model_dir = tmp_path / "run"
    (model_dir / "backup").mkdir(parents=True)
    (model_dir / "backup" / "state.json").write_text('{"epoch": 1}')
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
