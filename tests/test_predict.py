"""predict.py, evaluate.py and the serving signature, on the model trained by `trained_run`."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import cv2
import numpy as np
import pytest
import tensorflow as tf

from lesionseg_tf import datasets, export, images, inference, pipeline, postprocess, synthetic
from tests.conftest import REPO_ROOT, assert_drawn, run_script, script_env

BIN = os.path.dirname(sys.executable)


@pytest.fixture(scope="module")
def export_dir(trained_run):
    return os.path.join(trained_run[0], "export")


@pytest.fixture(scope="module")
def predictions(export_dir, tiny_isic, tmp_path_factory):
    out = str(tmp_path_factory.mktemp("pred"))
    images = os.path.join(tiny_isic, "ISIC-2017_Validation_Data")
    result = run_script(
        "predict.py",
        f"--model={export_dir}",
        f"--input={images}",
        f"--output_dir={out}",
        "--overlay",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    # Not a terminal: plain progress lines, no progress bar.
    assert "\r" not in result.stdout and "\x1b" not in result.stdout
    assert "4/4 images" in result.stdout
    return out


@pytest.mark.slow
def test_masks_are_a_valid_isic_submission(predictions, tiny_isic):
    examples = datasets.find_split(tiny_isic, split="validation")
    names = sorted(n for n in os.listdir(predictions) if n.endswith(".png"))
    assert names == [f"{e.image_id}_segmentation.png" for e in examples]
    for example in examples:
        mask = cv2.imread(
            os.path.join(predictions, f"{example.image_id}_segmentation.png"), cv2.IMREAD_UNCHANGED
        )
        image = cv2.imread(example.image_path)
        assert mask.dtype == np.uint8 and mask.ndim == 2 and mask.shape == image.shape[:2]
        assert set(np.unique(mask)) <= {0, 255}
        picture = cv2.imread(
            os.path.join(predictions, "overlays", f"{example.image_id}_overlay.jpg")
        )
        assert picture is not None and picture.shape == image.shape
    assert not [n for n in os.listdir(predictions) if n.startswith(".partial-")]


def official_jaccard(truth_dir, pred_dir):
    result = subprocess.run(
        [
            os.path.join(BIN, "isic-challenge-scoring"),
            "-o",
            "json",
            "segmentation",
            truth_dir,
            pred_dir,
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)["macro_average"]["jaccard"]


@pytest.mark.slow
def test_official_cli_agrees_with_evaluate(predictions, export_dir, tiny_isic, tmp_path):
    truth_dir = os.path.join(tiny_isic, "ISIC-2017_Validation_Part1_GroundTruth")
    official = official_jaccard(truth_dir, predictions)
    for extra in (
        [f"--model={export_dir}", "--bootstrap=0"],
        [f"--pred_dir={predictions}", "--figures"],
    ):
        out = tmp_path / extra[0].split("=")[0].strip("-")
        result = run_script("evaluate.py", f"--data_dir={tiny_isic}", f"--output_dir={out}", *extra)
        assert result.returncode == 0, result.stderr[-3000:]
        assert "Jaccard (IoU), per-image mean" in result.stdout
        assert "\r" not in result.stdout and "4/4 images" in result.stdout
        with open(out / "summary.json") as f:
            report = json.load(f)
        summary = report["summary"]
        assert abs(summary["jaccard"] - official) <= 1e-9, extra
        assert f"{official:.4f}" in result.stdout
        with open(out / "per_image.csv") as f:
            assert len(f.readlines()) == 1 + summary["images"] == 5
        if "--figures" in extra:  # with the default 2000 resamples and figures
            low, high = report["confidence_95"]["jaccard"]
            assert low <= summary["jaccard"] <= high
            assert f"(95% CI {low:.4f}-{high:.4f})" in result.stdout
            for name in ("jaccard_histogram.png", "best_median_worst.png"):
                assert_drawn(out / name, min_width=300)
        else:
            assert "confidence_95" not in report and "95% CI" not in result.stdout


@pytest.mark.slow
def test_predict_writes_the_graph_mask_of_the_library_pipeline(predictions, export_dir, tiny_isic):
    """predict.py's masks are the `segment` signature's, and the graph computes the
    library's pipeline (resize, standardize, network, section 3.4), with and without
    test-time augmentation."""
    loaded = tf.saved_model.load(export_dir)
    network = loaded.signatures["logits"]
    size = export.read_info(export_dir)["image_size"]
    differing = total = 0
    for example in datasets.find_split(tiny_isic, split="validation"):
        image = images.read_image_file(example.image_path)
        height, width = image.shape[:2]
        written = images.read_mask_file(
            os.path.join(predictions, f"{example.image_id}_segmentation.png")
        )
        served = loaded.signatures["serving_default"](image=tf.constant(image))["mask"]
        np.testing.assert_array_equal(written, served.numpy())
        inputs = pipeline.standardize(pipeline.resize_image(image[np.newaxis], image_size=size))
        plain = postprocess.lesion_probability(network(images=inputs)["logits"])[0]
        averaged = postprocess.tta_lesion_probability(
            lambda batch: network(images=batch)["logits"], images=inputs
        )[0]
        for name, probability in (("segment", plain), ("segment_tta", averaged)):
            got = loaded.signatures[name](image=tf.constant(image))["mask"].numpy()
            expected = postprocess.probability_to_mask(
                probability, height=height, width=width
            ).numpy()
            differing += int(np.sum(got != expected))  # float rounding at the threshold only
            total += got.size
    assert differing / total < 1e-3


@pytest.mark.slow
def test_logits_signature_refuses_sides_not_divisible_by_4(export_dir):
    loaded = tf.saved_model.load(export_dir)
    assert loaded.logits(tf.zeros([1, 32, 48, 3]))["logits"].shape == (1, 32, 48, 2)
    with pytest.raises(tf.errors.InvalidArgumentError, match="divisible by 4"):
        loaded.logits(tf.zeros([1, 30, 32, 3]))


@pytest.mark.slow
def test_saved_model_cli_lists_the_signatures(export_dir):
    result = subprocess.run(
        [os.path.join(BIN, "saved_model_cli"), "show", "--dir", export_dir, "--all"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    for expected in (
        "signature_def['serving_default']",
        "signature_def['segment']",
        "signature_def['segment_tta']",
        "signature_def['logits']",
        "dtype: DT_UINT8",
        "shape: (-1, -1, 3)",
    ):
        assert expected in result.stdout, expected


@pytest.mark.slow
def test_bad_images_are_named_and_the_rest_written(export_dir, tiny_isic, tmp_path):
    folder = tmp_path / "in"
    shutil.copytree(os.path.join(tiny_isic, "ISIC-2017_Test_v2_Data"), folder)
    good = sorted(n for n in os.listdir(folder) if n.endswith(".jpg"))
    payload = (folder / good[0]).read_bytes()
    (folder / "ISIC_8000001.jpg").write_bytes(payload[: len(payload) // 2])  # truncated
    (folder / "ISIC_8000002.jpg").write_bytes(b"")  # zero bytes
    (folder / "ISIC_8000003.jpg").write_bytes(os.urandom(2000))  # not an image
    out = tmp_path / "out"
    result = run_script(
        "predict.py", f"--model={export_dir}", f"--input={folder}", f"--output_dir={out}"
    )
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("predict.py: ")]
    for bad in ("ISIC_8000001.jpg", "ISIC_8000002.jpg", "ISIC_8000003.jpg"):
        assert len([line for line in errors if bad in line]) >= 1, result.stderr
    # Plain words: no TensorFlow graph path or op name, no native decoder line.
    for raw in ("{{function_node", "[Op:", "jpeg_mem.cc", "Premature end of JPEG"):
        assert raw not in result.stderr, (raw, result.stderr)
    written = sorted(os.listdir(out))
    assert written == [n.replace(".jpg", "_segmentation.png") for n in good]


@pytest.mark.slow
def test_refuses_to_write_into_the_input_folder(export_dir, tiny_isic, tmp_path):
    folder = tmp_path / "in"
    shutil.copytree(os.path.join(tiny_isic, "ISIC-2017_Test_v2_Data"), folder)
    before = sorted(os.listdir(folder))
    result = run_script(
        "predict.py", f"--model={export_dir}", f"--input={folder}", f"--output_dir={folder}"
    )
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert "is the source folder" in result.stderr.strip().splitlines()[-1]
    assert sorted(os.listdir(folder)) == before


@pytest.mark.slow
def test_evaluate_reports_bad_files_and_trained_on_images_one_line_each(
    export_dir, tiny_isic, tmp_path
):
    root = tmp_path / "isic"
    shutil.copytree(tiny_isic, root)
    examples = datasets.find_split(str(root), split="validation")
    open(examples[0].mask_path, "wb").close()  # zero-byte truth
    with open(examples[1].image_path, "wb") as f:
        f.write(os.urandom(3000))  # not an image
    out = tmp_path / "report"
    # --split=all: the 7 training pairs the model was trained on are among the 16 scored.
    result = run_script(
        "evaluate.py",
        f"--data_dir={root}",
        f"--model={export_dir}",
        f"--output_dir={out}",
        "--split=all",
    )
    assert result.returncode != 0 and "Traceback" not in result.stderr
    summary = "ISIC 2017 Task 1: 8 training, 4 validation, 4 test pairs"
    assert result.stdout.splitlines()[0] == summary
    errors = [line for line in result.stderr.splitlines() if line.startswith("evaluate.py: ")]
    with open(os.path.join(os.path.dirname(export_dir), "training_ids.txt")) as f:
        trained = f.read().splitlines()
    assert len(trained) == 7
    assert errors[0] == (
        f"evaluate.py: warning: 7 of the 16 images scored were trained on "
        f"({os.path.join(os.path.dirname(export_dir), 'training_ids.txt')}: "
        f"{', '.join(sorted(trained)[:3])} and 4 more); the scores below are optimistic"
    )
    assert any(os.path.basename(examples[0].mask_path) in line for line in errors)
    assert any(os.path.basename(examples[1].image_path) in line for line in errors)
    assert "2 of 16 images could not be scored" in errors[-1]
    assert not out.exists()


@pytest.mark.slow
def test_evaluate_pred_dir_problems(predictions, tiny_isic, tmp_path):
    pred = tmp_path / "pred"
    shutil.copytree(predictions, pred)
    names = sorted(n for n in os.listdir(pred) if n.endswith(".png"))
    os.remove(pred / names[0])
    result = run_script("evaluate.py", f"--data_dir={tiny_isic}", f"--pred_dir={pred}")
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert f"no prediction for {names[0][:12]}" in result.stderr
    shutil.copy(predictions + "/" + names[0], pred / names[0])
    cv2.imwrite(str(pred / names[1]), np.zeros((10, 12), np.uint8))
    result = run_script("evaluate.py", f"--data_dir={tiny_isic}", f"--pred_dir={pred}")
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert f"{names[1]}: prediction is 12x10 (WxH), ground truth is" in result.stderr


@pytest.mark.slow
def test_killing_predict_leaves_no_partial_mask(export_dir, tmp_path):
    folder = tmp_path / "many"
    folder.mkdir()
    image, _ = synthetic.render_example(np.random.default_rng(0), height=1500, width=2000)
    cv2.imwrite(str(folder / "ISIC_9100000.jpg"), image[..., ::-1])
    for i in range(1, 60):
        os.link(folder / "ISIC_9100000.jpg", folder / f"ISIC_91{i:05d}.jpg")
    out = tmp_path / "out"
    env = script_env()
    process = subprocess.Popen(
        [
            sys.executable,
            "predict.py",
            f"--model={export_dir}",
            f"--input={folder}",
            f"--output_dir={out}",
        ],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 120
    while (not out.exists() or len(os.listdir(out)) < 3) and time.time() < deadline:
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.wait()
    finals = [n for n in os.listdir(out) if n.endswith("_segmentation.png")]
    assert 0 < len(finals) < 60
    for name in finals:  # every file under a final name is complete
        mask = cv2.imread(str(out / name), cv2.IMREAD_UNCHANGED)
        assert mask is not None and mask.shape == (1500, 2000)


@pytest.mark.slow
def test_killing_the_export_never_leaves_a_partial_one(tmp_path):
    target = tmp_path / "export"
    script = (
        "import sys\n"
        "from lesionseg_tf import export\n"
        "from lesionseg_tf.model import build_model\n"
        "model = build_model()\n"
        "while True:\n"
        "    export.export_saved_model(model, export_dir=sys.argv[1], image_size=32)\n"
    )
    env = script_env()
    rng = np.random.default_rng(0)
    for _ in range(3):
        process = subprocess.Popen(
            [sys.executable, "-c", script, str(target)],
            cwd=REPO_ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.time() + 120
        while not target.exists() and time.time() < deadline:
            time.sleep(0.01)
        time.sleep(float(rng.uniform(0.0, 1.5)))  # somewhere inside a later export
        process.send_signal(signal.SIGKILL)
        process.wait()
        # Between the two renames of a replacement the export is absent and the previous
        # one is export.old; either way a complete export survives, never a partial one.
        survivor = target if target.exists() else target.with_name("export.old")
        assert survivor.exists(), "neither the export nor the previous one survived the kill"
        segmenter = inference.Segmenter(str(survivor))
        assert segmenter.segment(np.zeros((40, 50, 3), np.uint8)).shape == (40, 50)


def test_write_atomically_leaves_old_or_new_never_partial(tmp_path, monkeypatch):
    from lesionseg_tf import files

    target = tmp_path / "mask.png"
    files.write_atomically(str(target), payload=b"old")
    files.write_atomically(str(target), payload="new text")
    assert target.read_bytes() == b"new text"

    def crash(*args):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="disk full"):
        files.write_atomically(str(target), payload=b"half")
    assert target.read_bytes() == b"new text" and os.listdir(tmp_path) == ["mask.png"]


@pytest.mark.slow
def test_evaluations_of_two_datasets_keep_both_reports_and_never_mix(
    export_dir, tiny_isic, tmp_path
):
    run = tmp_path / "run"
    shutil.copytree(export_dir, run / "export")
    for name in ("clinic_a", "clinic_b"):
        shutil.copytree(tiny_isic, tmp_path / name)
    first = run_script(
        "evaluate.py",
        f"--data_dir={tmp_path / 'clinic_a'}",
        f"--model={run / 'export'}",
        "--bootstrap=0",
        "--figures",
    )
    second = run_script(
        "evaluate.py",
        f"--data_dir={tmp_path / 'clinic_b'}",
        f"--model={run / 'export'}",
        "--bootstrap=0",
    )
    assert first.returncode == 0 and second.returncode == 0, second.stderr[-3000:]
    reports = run / "evaluation"
    assert sorted(os.listdir(reports)) == ["clinic_a-validation", "clinic_b-validation"]
    assert "histogram" in " ".join(os.listdir(reports / "clinic_a-validation"))
    # The same dataset again without figures: the report folder is replaced whole.
    again = run_script(
        "evaluate.py",
        f"--data_dir={tmp_path / 'clinic_a'}",
        f"--model={run / 'export'}",
        "--bootstrap=0",
    )
    assert again.returncode == 0, again.stderr[-3000:]
    assert sorted(os.listdir(reports / "clinic_a-validation")) == ["per_image.csv", "summary.json"]
    # The table has the boundary distances.
    assert "HD95" in again.stdout and "ASSD" in again.stdout
