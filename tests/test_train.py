"""End to end: train.py on a tiny synthetic ISIC tree, then its outputs."""

import csv
import glob
import json
import os
import stat

import keras
import numpy as np
import pytest
import tensorflow as tf

from lesionseg_tf import callbacks, datasets, export, figures, pipeline
from tests.conftest import TRAINED_EPOCHS, assert_drawn, run_script


@pytest.mark.slow
def test_trains_without_a_validation_split_and_selects_on_held_out_pairs(
    trained_run, training_only_isic
):
    model_dir, result = trained_run
    assert "held-out per-image mean Jaccard:" in result.stdout
    with open(os.path.join(model_dir, "result.json")) as f:
        summary = json.load(f)
    assert summary["selected_on"] == "holdout" and summary["epochs_run"] == TRAINED_EPOCHS
    assert 0.0 <= summary["selection_jaccard"] <= 1.0
    assert f"{summary['selection_jaccard']:.4f}" in result.stdout
    # The held-out ids are written, and they are --holdout_seed's draw (4, 10%), not
    # --seed's (3 holds out another pair).
    with open(os.path.join(model_dir, "holdout_ids.txt")) as f:
        written = f.read().split()
    pairs = datasets.find_split(training_only_isic, split="training")
    trained, held_out = datasets.split_holdout(pairs, fraction=0.1, seed=4)
    assert written == [e.image_id for e in held_out] and len(written) == 1
    assert written != [e.image_id for e in datasets.split_holdout(pairs, fraction=0.1, seed=3)[1]]
    with open(os.path.join(model_dir, "flags.json")) as f:
        assert json.load(f)["holdout_seed"] == 4
    assert (
        "7 training pairs; 1 held-out training pairs choose the epoch (the epoch lines' val_ "
        "scores; the validation split is not read)"
    ) in result.stdout
    # The dataset in one line first; the ids trained on recorded for evaluate.py.
    # (after train.py's own notes, such as the bfloat16 advice on a CPU with the units)
    lines = [line for line in result.stdout.splitlines() if not line.startswith("train.py: ")]
    assert lines[0] == "ISIC 2017 Task 1: 8 training pairs"
    with open(os.path.join(model_dir, "training_ids.txt")) as f:
        assert f.read().splitlines() == [e.image_id for e in trained]


@pytest.mark.slow
def test_log_reads_well_in_a_file(trained_run):
    _, result = trained_run
    output = result.stdout + result.stderr
    assert "\x1b" not in output and "\r" not in output and "\b" not in output
    assert max(len(line) for line in output.splitlines()) < 300
    # One line per epoch, not a progress bar, and none of TensorFlow's routine chatter.
    assert (
        sum(line.startswith(("1/1 - ", "1/1 ")) for line in result.stdout.splitlines())
        == TRAINED_EPOCHS
    )
    assert "absl::InitializeLog" not in output and "cpu_feature_guard" not in output
    assert "oneDNN supports DT_INT32" not in output  # at the first epoch, on AVX2 machines
    # The bfloat16 advice, exactly on a CPU with the units (--mixed_precision at its default).
    from lesionseg_tf import hardware  # pylint: disable=import-outside-toplevel

    units = hardware.bfloat16_units(hardware.read_cpu_flags())
    assert ("this CPU has bfloat16 units" in result.stdout) == bool(
        hardware.bfloat16_measurement(units)
    )
    assert "signature_serialization" not in output  # TensorFlow's own INFO lines


@pytest.mark.slow
def test_writes_checkpoint_logs_and_config(trained_run):
    model_dir, _ = trained_run
    assert isinstance(
        keras.models.load_model(os.path.join(model_dir, "best.keras"), safe_mode=True), keras.Model
    )
    assert glob.glob(os.path.join(model_dir, "logs", "train", "events.out.tfevents.*"))
    assert glob.glob(os.path.join(model_dir, "logs", "validation", "events.out.tfevents.*"))
    with open(os.path.join(model_dir, "training_log.csv")) as f:
        rows = list(csv.DictReader(f))
    # Epochs counted from 1, as result.json's best_epoch: the best row is that epoch.
    assert [int(row["epoch"]) for row in rows] == list(range(1, TRAINED_EPOCHS + 1))
    with open(os.path.join(model_dir, "result.json")) as f:
        result = json.load(f)
    best_row = max(rows, key=lambda row: float(row["val_jaccard"]))
    assert int(best_row["epoch"]) == result["best_epoch"]
    with open(os.path.join(model_dir, "training_log.csv"), "rb") as f:
        assert b"\r" not in f.read()
    with open(os.path.join(model_dir, "flags.json")) as f:
        config = json.load(f)
    assert config["image_size"] == 32 and config["batch_size"] == 4 and config["seed"] == 3


@pytest.mark.slow
def test_run_files_have_the_modes_of_the_umask(trained_run):
    """Files written atomically are not private: a shared results folder can read them."""
    model_dir, _ = trained_run
    umask = os.umask(0)
    os.umask(umask)
    expected = 0o666 & ~umask
    for name in (
        "best.keras",
        "result.json",
        "flags.json",
        "training_ids.txt",
        "holdout_ids.txt",
        "training_log.csv",
        "export/saved_model.pb",
    ):
        mode = stat.S_IMODE(os.stat(os.path.join(model_dir, name)).st_mode)
        assert mode == expected, f"{name}: {oct(mode)}, expected {oct(expected)}"
    assert stat.S_IMODE(os.stat(os.path.join(model_dir, "export")).st_mode) == 0o777 & ~umask


@pytest.mark.slow
def test_export_reproduces_the_best_model(trained_run, tiny_isic):
    model_dir, _ = trained_run
    best = keras.models.load_model(os.path.join(model_dir, "best.keras"), safe_mode=True)
    examples = datasets.find_split(tiny_isic, split="validation")
    images, _ = next(
        iter(pipeline.make_dataset(examples, image_size=32, batch_size=4, is_training=False))
    )
    loaded = tf.saved_model.load(os.path.join(model_dir, "export"))
    got = loaded.logits(images)["logits"].numpy()
    assert got.shape == (4, 32, 32, 2)
    np.testing.assert_allclose(got, np.asarray(best(images, training=False)), atol=1e-4)
    assert "serving_default" in loaded.signatures
    assert not glob.glob(os.path.join(model_dir, ".partial-*"))  # no staging left behind


@pytest.mark.slow
def test_check_export_catches_a_different_model(trained_run, tiny_isic):
    model_dir, _ = trained_run
    from lesionseg_tf.model import build_model

    other = build_model()
    images = np.random.default_rng(0).normal(size=(1, 32, 32, 3)).astype(np.float32)
    with pytest.raises(AssertionError, match="differs"):
        export.check_export(os.path.join(model_dir, "export"), model=other, inputs=images)


@pytest.mark.parametrize(
    "args,message",
    [
        (["--data_dir=/nonexistent/isic"], "--data_dir /nonexistent/isic: no such folder"),
        (["--image_size=30"], "multiple of 4"),  # refused before TensorFlow loads
        (["--batch_size=0"], "batch_size must be >= 1"),
    ],
)
def test_bad_input_is_one_clear_line(args, message, tmp_path):
    result = run_script("train.py", f"--model_dir={tmp_path / 'run'}", *args)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert message in result.stderr.strip().splitlines()[-1]
    assert not os.path.exists(tmp_path / "run")


@pytest.mark.slow
def test_divergence_stops_with_advice(tiny_isic, tmp_path):
    result = run_script(
        "train.py",
        f"--data_dir={tiny_isic}",
        f"--model_dir={tmp_path / 'r'}",
        "--image_size=32",
        "--batch_size=4",
        "--max_epochs=3",
        "--learning_rate=1e30",
    )
    assert result.returncode != 0 and "Traceback" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert "the loss became NaN or infinite at epoch " in last and "--learning_rate" in last
    assert not (tmp_path / "r" / "export").exists()


@pytest.mark.slow
def test_learning_curves_command(trained_run, tmp_path):
    model_dir, _ = trained_run
    out = tmp_path / "curves.png"
    result = run_script("-m tools.learning_curves", f"--run_dir={model_dir}", f"--output={out}")
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"learning curves: {out}" in result.stdout
    assert_drawn(out, min_width=600)
    with pytest.raises(FileNotFoundError, match="no training log"):
        figures.learning_curves(
            str(tmp_path / "nothing" / "training_log.csv"), path=str(tmp_path / "x.png"), title="x"
        )
    ensemble = tmp_path / "ensemble"
    ensemble.mkdir()
    (ensemble / "flags.json").write_text('{"members": 2}')
    refused = run_script("-m tools.learning_curves", f"--run_dir={ensemble}")
    assert refused.returncode != 0
    said = "an ensemble of 2 networks (--members), each with its own curves: --run_dir="
    assert f"{said}{ensemble}/member_0" in refused.stderr


@pytest.mark.slow
def test_select_on_none_trains_on_every_pair_and_exports_the_last_epoch(
    training_only_isic, tmp_path
):
    model_dir = str(tmp_path / "final")
    result = run_script(
        "train.py",
        f"--data_dir={training_only_isic}",
        f"--model_dir={model_dir}",
        "--image_size=32",
        "--batch_size=4",
        "--max_epochs=3",
        "--patience=1",
        "--select_on=none",
    )
    assert result.returncode == 0, result.stderr
    assert "no selection (--select_on=none): the last epoch, 3, exported" in result.stdout
    with open(os.path.join(model_dir, "result.json")) as f:
        summary = json.load(f)
    assert summary["selected_on"] == "none"
    assert summary["best_epoch"] == summary["epochs_run"] == 3  # patience stops nothing
    pairs = datasets.find_split(training_only_isic, split="training")
    with open(os.path.join(model_dir, "training_ids.txt")) as f:
        assert f.read().splitlines() == [e.image_id for e in pairs]
    assert not os.path.exists(os.path.join(model_dir, "holdout_ids.txt"))
    with open(os.path.join(model_dir, "training_log.csv")) as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 3 and not any(k.startswith("val_") for k in rows[0])


def test_without_a_monitor_every_epoch_is_kept_and_nothing_stops(tmp_path):
    """--select_on=none's BestAndEarlyStop: the last epoch is the one saved, whatever
    the metrics did, and patience never stops training."""
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    best = callbacks.BestAndEarlyStop(
        monitor=None, patience=1, best_path=str(tmp_path / "best.keras")
    )
    best.set_model(model)
    for epoch, jaccard in enumerate([0.9, 0.5, 0.1]):  # worse every epoch
        model.layers[0].kernel.assign(np.full((2, 1), float(epoch), np.float32))
        best.on_epoch_end(epoch, {"loss": 1.0, "val_jaccard": jaccard})
    assert (best.best_epoch, best.wait, best.stopped) == (2, 0, False)
    saved = keras.models.load_model(str(tmp_path / "best.keras"))
    np.testing.assert_array_equal(saved.layers[0].kernel.numpy(), np.full((2, 1), 2.0))
