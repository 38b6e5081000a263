"""The dataset check before training: every problem, named, in one report."""

import dataclasses
import os
import shutil

import cv2
import numpy as np
import pytest

from lesionseg_tf import datasets, images, preflight
from lesionseg_tf.config import RunConfig
from tests.conftest import run_script


@pytest.fixture(scope="module")
def corrupted(tmp_path_factory, tiny_isic):
    """The tiny tree with one of each problem in its training split.

    Returns `(root, {problem: file name that must be named})`.
    """
    root = str(tmp_path_factory.mktemp("corrupted") / "isic")
    shutil.copytree(tiny_isic, root)
    images = os.path.join(root, "ISIC-2017_Training_Data")
    masks = os.path.join(root, "ISIC-2017_Training_Part1_GroundTruth")
    ids = [e.image_id for e in datasets.find_split(root, split="training")]

    def image(i):
        return os.path.join(images, f"{ids[i]}.jpg")

    def mask(i):
        return os.path.join(masks, f"{ids[i]}_segmentation.png")

    named = {}
    open(image(0), "wb").close()
    named["zero-byte JPEG"] = f"{ids[0]}.jpg"
    payload = open(image(1), "rb").read()
    open(image(1), "wb").write(payload[: len(payload) * 2 // 3])
    named["truncated JPEG"] = f"{ids[1]}.jpg"
    open(image(2), "wb").write(np.random.default_rng(0).bytes(5000))
    named["random bytes"] = f"{ids[2]}.jpg"
    grey = cv2.imread(mask(3), cv2.IMREAD_UNCHANGED)
    cv2.imwrite(mask(3), np.dstack([grey, grey // 2, grey]))
    named["RGB mask"] = f"{ids[3]}_segmentation.png"
    cv2.imwrite(
        mask(4),
        cv2.resize(
            cv2.imread(mask(4), cv2.IMREAD_UNCHANGED), (20, 20), interpolation=cv2.INTER_NEAREST
        ),
    )
    named["wrong size"] = f"{ids[4]}_segmentation.png"
    cv2.imwrite(mask(5), cv2.imread(mask(5), cv2.IMREAD_UNCHANGED) // 255)
    named["0/1 mask"] = f"{ids[5]}_segmentation.png"
    smooth = cv2.GaussianBlur(cv2.imread(mask(6), cv2.IMREAD_UNCHANGED), (5, 5), 0)
    cv2.imwrite(mask(6), smooth)
    named["anti-aliased mask"] = f"{ids[6]}_segmentation.png"
    shutil.copy(image(7), os.path.join(images, "ISIC_8888888.jpg"))
    named["orphan image"] = "ISIC_8888888.jpg"
    shutil.copy(mask(7), os.path.join(masks, "ISIC_7777777_segmentation.png"))
    named["orphan mask"] = "ISIC_7777777_segmentation.png"
    return root, named


def test_report_names_every_problem(corrupted):
    root, named = corrupted
    examples, orphans = datasets.open_dataset(root).scan("training")
    report = preflight.check_split(examples, orphans=orphans)
    text = "\n".join(str(p) for p in report.problems)
    for problem, name in named.items():
        assert name in text, problem
    assert len(report.errors) == 8 and len(report.warnings) == 1
    assert "anti-aliased" in str(report.warnings[0]) and named["anti-aliased mask"] in str(
        report.warnings[0]
    )
    assert (
        "0/1-encoded" in text
        and "does not decode as training decodes it (truncated" in text
        and "3 channels" in text
    )
    assert "is 20x20, its image" in text and "empty file" in text
    assert [e.image_id for e in report.good] == [e.image_id for e in examples[6:]]


def test_the_check_of_each_split_reports_its_progress(tiny_isic, monkeypatch):
    config = RunConfig(data_dir=tiny_isic, image_size=32, batch_size=2, select_on="validation")
    dataset = datasets.open_dataset(tiny_isic)
    lines = []
    preflight.select_data(dataset, config=config, report_progress=lines.append)
    assert lines == []  # a check shorter than CHECK_PROGRESS_SECONDS says nothing
    monkeypatch.setattr(preflight, "CHECK_PROGRESS_SECONDS", 0.0)
    preflight.select_data(dataset, config=config, report_progress=lines.append)
    assert [line.split(" pairs")[0] for line in lines] == [
        *(f"  checking the training split: {done}/8" for done in range(1, 8)),
        *(f"  checking the validation split: {done}/4" for done in range(1, 4)),
    ]


def test_pixel_limit(tiny_isic):
    example = datasets.find_split(tiny_isic, split="validation")[0]
    width, height = images.read_image_header(example.image_path)
    problems = preflight.check_example(example, max_pixels=width * height - 1)
    assert len(problems) == 1 and "over the limit" in problems[0].message
    assert preflight.check_example(example, max_pixels=width * height) == []
    with pytest.raises(images.ImageReadError, match="over the limit"):
        images.read_image_file(example.image_path, max_pixels=100)


def jpeg_bytes(height=60, width=80):
    image = (np.random.default_rng(0).random((height, width, 3)) * 255).astype(np.uint8)
    return bytearray(cv2.imencode(".jpg", image)[1].tobytes())


def write_checkable_pair(folder, image_bytes):
    """An example whose JPEG holds `image_bytes`, with a good mask of its size."""
    image_path, mask_path = folder / "ISIC_0000001.jpg", folder / "ISIC_0000001_seg.png"
    image_path.write_bytes(bytes(image_bytes))
    cv2.imwrite(str(mask_path), np.zeros((60, 80), np.uint8))
    return datasets.Example("ISIC_0000001", str(image_path), str(mask_path))


def test_jpeg_that_training_cannot_decode_is_found_before_training(tmp_path):
    # The header reads (Pillow, OpenCV's size), but TensorFlow's decoder refuses the
    # data: a Huffman table with 16 x 255 codes, then a scan naming a component
    # the frame does not have.
    for name, corrupt in (
        (
            "bogus Huffman table",
            lambda b, dht, sos: b.__setitem__(slice(dht + 5, dht + 21), bytes([255] * 16)),
        ),
        ("bad scan component", lambda b, dht, sos: b.__setitem__(sos + 5, 7)),
    ):
        payload = jpeg_bytes()
        corrupt(payload, payload.find(b"\xff\xc4"), payload.find(b"\xff\xda"))
        folder = tmp_path / name.replace(" ", "_")
        folder.mkdir()
        example = write_checkable_pair(folder, payload)
        assert images.read_image_header(example.image_path, match_extension=True) == (80, 60)
        problems = preflight.check_example(example, image_size=32)
        assert len(problems) == 1, (name, problems)
        assert "data does not decode as training decodes it" in problems[0].message, name
        assert problems[0].path == example.image_path


def test_bytes_after_the_end_of_image_marker_are_accepted(tmp_path):
    # Some writers append data after the end-of-image marker; the decoder ignores it.
    example = write_checkable_pair(tmp_path, jpeg_bytes() + bytes(4096))
    assert preflight.check_example(example, image_size=32) == []
    assert images.read_image_file(example.image_path).shape == (60, 80, 3)


def test_pixel_limit_is_the_projects_not_pillows(tmp_path):
    # A JPEG header declaring 20000 x 10000 = 200 million pixels: over Pillow's own
    # decompression-bomb limit (2 x 89.5 million), which must neither refuse it
    # when the user allows it nor stand in for the project's message.
    payload = jpeg_bytes()
    frame = payload.find(b"\xff\xc0")
    payload[frame + 5 : frame + 9] = (10000).to_bytes(2, "big") + (20000).to_bytes(2, "big")
    path = tmp_path / "ISIC_0000002.jpg"
    path.write_bytes(bytes(payload))
    assert images.read_image_header(str(path), max_pixels=300_000_000) == (20000, 10000)
    with pytest.raises(
        images.ImageReadError,
        match="20000x10000 is 200,000,000 pixels, over the limit of 100,000,000",
    ):
        images.read_image_header(str(path))


def test_png_named_jpg_is_refused(tmp_path):
    path = str(tmp_path / "ISIC_0000001.jpg")
    cv2.imwrite(str(tmp_path / "x.png"), np.zeros((8, 8, 3), np.uint8))
    os.rename(tmp_path / "x.png", path)
    with pytest.raises(
        images.ImageReadError, match=r"is a PNG file, expected a JPEG \(its name ends .jpg\)"
    ):
        images.read_image_header(path, match_extension=True)
    assert images.read_image_header(path) == (8, 8)


def test_pairs_the_check_leaves_out_can_leave_too_few_for_a_batch(corrupted):
    """The listing (`refuse_before_checking`, before TensorFlow) lets a batch of 3 pass
    on the 8 listed training pairs; the check then leaves 2 good ones and refuses."""
    root, _ = corrupted
    config = RunConfig(
        data_dir=root, batch_size=3, skip_bad_examples=True, select_on="validation", image_size=32
    )
    datasets.refuse_before_checking(config)
    with pytest.raises(
        datasets.DatasetError,
        match=r"leaves 2 usable images for training, fewer than one batch of 3; "
        r"lower --batch_size$",
    ):
        preflight.select_data(datasets.open_dataset(root), config=config)
    with pytest.raises(datasets.DatasetError, match="fewer than one batch of 9"):
        datasets.refuse_before_checking(dataclasses.replace(config, batch_size=9))


@pytest.mark.slow
def test_train_reports_all_before_training(corrupted, tmp_path):
    root, named = corrupted
    result = run_script(
        "train.py",
        f"--data_dir={root}",
        f"--model_dir={tmp_path / 'run'}",
        "--image_size=32",
        "--batch_size=2",
        "--max_epochs=1",
    )
    assert result.returncode != 0 and "Traceback" not in result.stderr
    for problem, name in named.items():
        assert name in result.stderr, problem
    assert "8 problem(s)" in result.stderr and "--skip_bad_examples" in result.stderr
    assert "Epoch 1" not in result.stdout and not (tmp_path / "run").exists()


@pytest.mark.slow
def test_skip_bad_examples_trains_on_the_rest(corrupted, tmp_path):
    root, named = corrupted
    result = run_script(
        "train.py",
        f"--data_dir={root}",
        f"--model_dir={tmp_path / 'run'}",
        "--image_size=32",
        "--batch_size=2",
        "--max_epochs=1",
        "--skip_bad_examples",
        "--select_on=validation",
    )  # 2 good pairs: no holdout
    assert result.returncode == 0, result.stderr[-3000:]
    skipped = [line for line in result.stderr.splitlines() if line.endswith("(skipped)")]
    assert len(skipped) == 8
    assert "2 training pairs; the 4 validation pairs choose the epoch" in result.stdout
    assert (tmp_path / "run" / "export" / "saved_model.pb").exists()


def test_a_fitted_held_out_share_holds_out_ten_pairs_at_most_half():
    held = {
        n: round(preflight.fitted_holdout_fraction(n, fraction=0.1) * n)
        for n in (5, 10, 20, 50, 100, 1800)
    }
    assert held == {5: 2, 10: 5, 20: 10, 50: 10, 100: 10, 1800: 180}
    assert preflight.fitted_holdout_fraction(1800, fraction=0.1) == 0.1  # unchanged
    assert preflight.fitted_holdout_fraction(50, fraction=0.3) == 0.3  # more already
