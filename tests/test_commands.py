"""What every command does before any work: its help, and its refusal of missing
inputs, both before TensorFlow loads (a stand-in `tensorflow` package that fails on
import proves it), each in well under a second."""

import os
import subprocess
import sys

import pytest

from lesionseg_tf.config import RunConfig
from lesionseg_tf.run_dir import RunDir
from tests.conftest import REPO_ROOT, run_script, script_env

# Each command, and flags its help must name (a sample of each group).
COMMANDS = {
    "train.py": [
        "recipe",
        "data_dir",
        "image_size",
        "context",
        "init_from",
        "batch_size",
        "mixed_precision",
        "model_dir",
        "max_image_pixels",
        "loss",
        "color_augment",
        "scale_augment",
        "batch_norm",
        "members",
    ],
    "predict.py": ["input", "model", "saved_model", "output_dir", "tta", "max_image_pixels"],
    "evaluate.py": [
        "data_dir",
        "split",
        "ids_file",
        "model",
        "pred_dir",
        "output_dir",
        "bootstrap",
        "figures",
        "central_component",
    ],
    "-m tools.benchmark": [
        "sections",
        "model",
        "train_image_size",
        "precisions",
        "mixed_precision",
        "sample_dir",
        "output",
    ],
    "-m tools.check_data": ["data_dir", "dataset", "split", "image_size", "max_image_pixels"],
    "-m tools.compare": ["metric", "bootstrap", "by_lesion_area"],
    "-m tools.export": [
        "run_dir",
        "export_dir",
        "serving_base",
        "version",
        "tflite",
        "data_dir",
        "calibration_images",
    ],
    "-m tools.learning_curves": ["run_dir", "output"],
    "-m tools.ensemble": ["runs", "output_dir"],
    "-m tools.ship": ["run_dir", "output_dir"],
    "-m tools.study": ["study_dir", "output_dir", "reference", "collect", "collect_holdout", "run"],
    "-m tools.synthetic": ["layout", "out_dir", "seed"],
    "-m tools.train_step_speed": [],
    "-m tools.torch_reference": [],
    "-m tools.benchmark_training": [],
    "-m tools.resize_dataset": ["data_dir", "output_dir", "size", "max_image_pixels"],
    "-m tools.web": ["host", "port", "screenshot", "time", "time_repeats", "model", "chromium"],
}


@pytest.fixture(scope="module")
def no_tensorflow(tmp_path_factory):
    """An environment whose `import tensorflow` fails loudly."""
    folder = tmp_path_factory.mktemp("no_tensorflow")
    (folder / "tensorflow").mkdir()
    (folder / "tensorflow" / "__init__.py").write_text(
        "raise ImportError('TENSORFLOW WAS IMPORTED')\n"
    )
    env = script_env()
    env["PYTHONPATH"] = f"{folder}{os.pathsep}{REPO_ROOT}"
    return env


def command(line, *args, env):
    return subprocess.run(
        [sys.executable, *line.split(), *args],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize("line", sorted(COMMANDS))
def test_help_exits_0_and_names_the_flags_without_tensorflow(line, no_tensorflow):
    result = command(line, "--help", env=no_tensorflow)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "TENSORFLOW WAS IMPORTED" not in result.stderr
    assert result.stdout.strip()
    for name in COMMANDS[line]:
        assert f"--{name}:" in result.stdout, name
    # No example joined to its continuation line by a stray backslash in the docstring
    # (aligned comments apart).
    for text in result.stdout.splitlines():
        if text.strip().startswith("python"):
            assert "  " not in text.split(" #")[0].strip(), text


def scoring_inputs(folder):
    """An ISIC 2017 validation split of 3 pairs (empty files: never read before
    TensorFlow), a predictions folder lacking the third, an ids file with an id not in
    the split, a model folder."""
    isic, pred, model = folder / "isic", folder / "pred", folder / "model"
    for name in ("ISIC-2017_Validation_Data", "ISIC-2017_Validation_Part1_GroundTruth"):
        (isic / name).mkdir(parents=True)
    pred.mkdir()
    for i in range(3):
        (isic / "ISIC-2017_Validation_Data" / f"ISIC_000000{i}.jpg").write_bytes(b"")
        mask = f"ISIC_000000{i}_segmentation.png"
        (isic / "ISIC-2017_Validation_Part1_GroundTruth" / mask).write_bytes(b"")
        if i < 2:
            (pred / mask).write_bytes(b"")
    ids = folder / "ids.txt"
    ids.write_text("ISIC_0000001\nISIC_0000009\n")
    model.mkdir()
    (model / "saved_model.pb").write_bytes(b"")
    return {"isic": str(isic), "pred": str(pred), "ids": str(ids), "model": str(model)}


def training_inputs(folder):
    """An ISIC 2017 training split of 3 pairs (empty files: never read before
    TensorFlow), and one of 2 photographs without their masks."""
    names = {}
    for name, pairs in (("trainset", 3), ("orphans", 0)):
        root = folder / name
        for part in ("ISIC-2017_Training_Data", "ISIC-2017_Training_Part1_GroundTruth"):
            (root / part).mkdir(parents=True)
        for i in range(max(pairs, 2)):
            (root / "ISIC-2017_Training_Data" / f"ISIC_000000{i}.jpg").write_bytes(b"")
            if i < pairs:
                mask = f"ISIC_000000{i}_segmentation.png"
                (root / "ISIC-2017_Training_Part1_GroundTruth" / mask).write_bytes(b"")
        names[name] = str(root)
    return names


@pytest.mark.parametrize(
    "line,args,message",
    [
        ("train.py", ["--data_dir={missing}"], "train.py: --data_dir {missing}: no such folder"),
        (
            "train.py",
            ["--data_dir={trainset}", "--model_dir={missing}", "--batch_size=4"],
            "train.py: training split of {trainset} leaves 2 usable images for training, "
            "fewer than one batch of 4; lower --batch_size or --holdout_fraction",
        ),
        (
            "train.py",
            ["--data_dir={trainset}", "--model_dir={missing}", "--holdout_fraction=0.9"],
            "train.py: 3 training pairs cannot spare 3 for a held-out part",
        ),
        (
            "train.py",
            ["--data_dir={trainset}", "--model_dir={missing}", "--select_on=validation"],
            "train.py: ISIC 2017 Task 1 in {trainset} has no validation split",
        ),
        (
            "train.py",
            ["--data_dir={orphans}", "--model_dir={missing}"],
            "train.py: training split of {orphans} has no image/mask pairs: 2 file(s) without "
            "their other half, such as {orphans}/ISIC-2017_Training_Data/ISIC_0000000.jpg "
            "(image has no mask in {orphans}/ISIC-2017_Training_Part1_GroundTruth)",
        ),
        ("train.py", ["--data_dir=.", "--init_from={missing}"], "train.py: --init_from {missing}:"),
        (
            "predict.py",
            ["--input={missing}", "--model=."],
            "predict.py: --input {missing}: no such file or folder",
        ),
        (
            "predict.py",
            ["--input=.", "--model={missing}"],
            "predict.py: --model {missing}: no such file or folder",
        ),
        (
            "evaluate.py",
            ["--data_dir={missing}", "--model=."],
            "evaluate.py: --data_dir {missing}: no such folder",
        ),
        (
            "evaluate.py",
            ["--data_dir=.", "--model={missing}"],
            "evaluate.py: --model {missing}: no such file or folder",
        ),
        (
            "evaluate.py",
            ["--data_dir=.", "--pred_dir={missing}"],
            "evaluate.py: --pred_dir {missing}: no such folder",
        ),
        (
            "evaluate.py",
            ["--data_dir=.", "--model=.", "--ids_file={missing}"],
            "evaluate.py: --ids_file {missing}: no such file",
        ),
        (
            "train.py",
            ["--data_dir=.", "--model_dir={run}"],
            "train.py: {run} holds a finished run (result.json); choose another --model_dir",
        ),
        (
            "train.py",
            ["--data_dir=.", "--model_dir={interrupted}", "--seed=2"],
            "train.py: {interrupted} holds an interrupted run with other flags (seed: 1 then, "
            "2 now); rerun with the same flags to resume",
        ),
        (
            "predict.py",
            ["--input={photos}", "--model={run}/model.tflite", "--output_dir={photos}"],
            "predict.py: --output_dir {photos} is the source folder {photos}; choose another",
        ),
        (
            "predict.py",
            ["--input={run}", "--model={run}/model.tflite"],
            "predict.py: {run}: no images (",
        ),
        (
            "predict.py",
            ["--input=.", "--model={run}"],
            "predict.py: --model {run}: is not a SavedModel (no saved_model.pb): give "
            "train.py's export/ folder or a .tflite file; did you mean {run}/export?",
        ),
        (
            "predict.py",
            ["--input=.", "--model={run}/best.keras"],
            "predict.py: --model {run}/best.keras: is a file but not a .tflite one",
        ),
        (
            "evaluate.py",
            ["--data_dir=.", "--model={run}/export"],
            "evaluate.py: --model {run}/export: is not a SavedModel (no saved_model.pb): give "
            "train.py's export/ folder or a .tflite file",
        ),
        (
            "evaluate.py",
            ["--data_dir={isic}", "--pred_dir={pred}"],
            "evaluate.py: 1 image(s) have no single prediction in {pred}",
        ),
        (
            "evaluate.py",
            ["--data_dir={isic}", "--model={model}", "--ids_file={ids}"],
            "evaluate.py: {ids}: 1 of its 2 ids are not in the split (ISIC_0000009)",
        ),
        (
            "evaluate.py",
            ["--data_dir={isic}", "--model={model}", "--split=training"],
            "evaluate.py: ISIC 2017 Task 1 in {isic} has no training split",
        ),
    ],
)
def test_a_missing_input_is_refused_before_tensorflow(line, args, message, no_tensorflow, tmp_path):
    """A path that is not there, a model folder without its SavedModel, a run folder
    whose run is finished or interrupted under other flags, a prediction with no
    photographs or into its own source folder, a scoring whose split, ids file or
    predictions folder does not fit the data, a training folder whose splits or counts
    do not allow the run: one line."""
    missing = str(tmp_path / "nowhere")
    run = tmp_path / "run"
    (run / "export").mkdir(parents=True)  # a run folder whose export is empty
    (run / "best.keras").write_bytes(b"weights")
    (run / "result.json").write_text("{}")  # a finished run
    (run / "model.tflite").write_bytes(b"flatbuffer")
    photos = tmp_path / "photos"
    photos.mkdir()
    (photos / "ISIC_0000000.jpg").write_bytes(b"jpeg")
    interrupted = tmp_path / "interrupted"
    (interrupted / "backup").mkdir(parents=True)  # a completed epoch's backup
    (interrupted / "backup" / "state.json").write_text('{"epoch": 1}')
    RunDir(interrupted).write_config(RunConfig(data_dir=".", seed=1, holdout_seed=2))
    names = {"missing": missing, "run": str(run), "photos": str(photos)}
    names["interrupted"] = str(interrupted)
    names.update(scoring_inputs(tmp_path))
    names.update(training_inputs(tmp_path))
    result = command(line, *[a.format(**names) for a in args], env=no_tensorflow)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1].startswith(message.format(**names))


def test_runtime_notices_are_dropped_from_standard_error_and_the_rest_kept(tmp_path):
    """What TensorFlow's native code writes to file descriptor 2 while a command runs:
    the oneDNN notice goes, every other line comes through, in order, even unfinished."""
    code = (
        "import os, sys, console\n"
        "console.filter_runtime_lines()\n"
        "os.write(2, b'E0000 util.cc:131] oneDNN supports DT_INT32 only on platforms with "
        "AVX-512. Falling back\\n')\n"
        "os.write(2, b'a real error\\n')\n"
        "print('from python', file=sys.stderr, flush=True)\n"
        "os.write(2, b'last words without newline')\n"
    )
    result = run_script("-c", code, timeout=60)
    assert result.returncode == 0
    assert result.stderr == "a real error\nfrom python\nlast words without newline"


def test_the_library_imports_from_any_folder_after_the_install(tmp_path):
    """requirements.txt installs the repository (`-e .`): no PYTHONPATH, another folder."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, lesionseg_tf.config, lesionseg_tf.datasets; "
            "print(lesionseg_tf.__file__); print('tensorflow' in sys.modules)",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    location, tensorflow_loaded = result.stdout.split()
    assert location == os.path.join(REPO_ROOT, "lesionseg_tf", "__init__.py")
    assert tensorflow_loaded == "False"  # config and datasets import no TensorFlow
