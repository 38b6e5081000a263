"""The five dataset layouts: recognized, summarized, trained on and scored."""

import os
import shutil

import cv2
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from lesionseg_tf import (
    datasets,
    evaluation,
    fitting,
    images,
    inference,
    layouts,
    metrics,
    pipeline,
    prediction,
    preflight,
    run_dir,
    split_choice,
    split_scoring,
    synthetic,
    training,
)
from lesionseg_tf.config import RunConfig
from tests.conftest import REPO_ROOT

PRETRAINED = os.path.join(REPO_ROOT, "pretrained", "lesionseg_isic2017")
SUMMARIES = {
    "isic2016": "ISIC 2016 Part 1: 4 training, 2 test pairs",
    "isic2017": "ISIC 2017 Task 1: 4 training, 2 validation, 2 test pairs",
    "isic2018": "ISIC 2018 Task 1: 4 training, 2 validation, 2 test pairs",
    "ph2": "PH2: 8 pairs (no splits)",
    "folders": "image/mask folders: 8 pairs (no splits)",
}


@pytest.fixture(scope="module")
def trees(tmp_path_factory):
    """One small synthetic tree of each layout: `{layout name: top folder}`."""
    root = tmp_path_factory.mktemp("layouts")
    found = {}
    for seed, layout in enumerate(datasets.LAYOUT_NAMES):
        synthetic.write_synthetic_dataset(
            str(root / layout),
            layout=layout,
            num_training=4,
            num_validation=2,
            num_test=2,
            seed=seed,
            widths=(40, 64),
        )
        found[layout] = str(root / layout)
    return found


@pytest.mark.parametrize("layout", datasets.LAYOUT_NAMES)
def test_each_layout_is_recognized_with_its_pairs(trees, layout):
    dataset = datasets.open_dataset(trees[layout])
    assert dataset.layout.name == layout
    assert dataset.summary() == SUMMARIES[layout]
    examples = dataset.find(datasets.ALL)
    assert len(examples) == 8 - 2 * (layout == "isic2016")  # 2016 has no validation split
    for example in examples:  # ids are file stems; each mask is its photograph's
        assert os.path.splitext(os.path.basename(example.image_path))[0] == example.image_id
        assert example.image_id in os.path.basename(example.mask_path)
        mask = images.read_mask_file(example.mask_path)
        assert set(np.unique(mask)) == {0, 255}
        assert mask.shape == images.read_image_file(example.image_path).shape[:2]
    # Forcing the layout it is gives the same; forcing another is refused, naming it.
    assert datasets.open_dataset(trees[layout], dataset=layout).find(datasets.ALL) == examples
    other = "ph2" if layout != "ph2" else "isic2017"
    with pytest.raises(datasets.DatasetError, match="does not hold the .* layout; looked for"):
        datasets.open_dataset(trees[layout], dataset=other)


def test_decoys_are_not_examples(trees):
    ph2 = datasets.find_split(trees["ph2"], split=datasets.ALL)
    assert all(e.mask_path.endswith(f"{e.image_id}_lesion.bmp") for e in ph2)  # not _roi
    isic2018 = os.path.join(trees["isic2018"], "ISIC2018_Task1-2_Training_Input")
    assert {"LICENSE.txt", "ATTRIBUTION.txt"} <= set(os.listdir(isic2018))
    # PH2 may be given as the folder holding "PH2 Dataset images" or as that folder.
    inner = os.path.join(trees["ph2"], "PH2 Dataset images")
    assert datasets.find_split(inner, split=datasets.ALL) == ph2


def test_splits_asked_for_and_missing_are_named(trees, tmp_path):
    with pytest.raises(
        datasets.DatasetError,
        match="ISIC 2016 Part 1 in .* has no validation split; splits there: training, test, all",
    ):
        datasets.find_split(trees["isic2016"], split="validation")
    with pytest.raises(datasets.DatasetError, match="has no training split; splits there: all"):
        datasets.find_split(trees["ph2"], split="training")
    # An ISIC 2018 copy without validation ground truth is still recognized.
    copy = tmp_path / "isic2018"
    shutil.copytree(trees["isic2018"], copy)
    shutil.rmtree(copy / "ISIC2018_Task1_Validation_GroundTruth")
    dataset = datasets.open_dataset(str(copy))
    assert dataset.summary() == (
        "ISIC 2018 Task 1: 4 training, 2 test pairs; 2 validation images without ground truth"
    )
    with pytest.raises(
        datasets.DatasetError,
        match="no validation split with ground truth "
        r"\(.*ISIC2018_Task1_Validation_GroundTruth is "
        "missing\\); splits there: training, test, all",
    ):
        dataset.find("validation")
    assert len(dataset.find(datasets.ALL)) == 6


def test_unknown_and_ambiguous_trees(trees, tmp_path):
    with pytest.raises(datasets.DatasetError) as error:
        datasets.open_dataset(str(tmp_path))
    message = str(error.value)
    for layout in datasets.LAYOUTS:  # the error lists every layout looked for
        assert layout.expected() in message
    both = tmp_path / "both"
    both.mkdir()
    for layout in ("isic2017", "isic2018"):
        for name in os.listdir(trees[layout]):
            os.symlink(os.path.join(trees[layout], name), both / name)
    with pytest.raises(
        datasets.DatasetError,
        match="several dataset layouts: ISIC 2017 Task 1 "
        r"\(--dataset=isic2017\), ISIC 2018",
    ):
        datasets.open_dataset(str(both))
    assert len(datasets.find_split(str(both), split="training", dataset="isic2018")) == 4
    with pytest.raises(datasets.DatasetError, match="unknown split 'train'"):
        datasets.find_split(trees["isic2017"], split="train")


def test_plain_folders_with_splits_and_unique_stems(tmp_path):
    rng = np.random.default_rng(0)
    for split, count in (("training", 3), ("test", 2)):
        for i in range(count):
            image, mask = synthetic.render_example(rng, height=24, width=32)
            os.makedirs(tmp_path / split / "images", exist_ok=True)
            os.makedirs(tmp_path / split / "masks", exist_ok=True)
            cv2.imwrite(str(tmp_path / split / "images" / f"{split}-{i}.bmp"), image)
            cv2.imwrite(str(tmp_path / split / "masks" / f"{split}-{i}.bmp"), mask)
    dataset = datasets.open_dataset(str(tmp_path))
    assert dataset.summary() == "image/mask folders: 3 training, 2 test pairs"
    assert dataset.training_split() == "training"
    assert [e.image_id for e in dataset.find("test")] == ["test-0", "test-1"]
    cv2.imwrite(str(tmp_path / "test" / "images" / "test-1.png"), np.zeros((8, 8, 3), np.uint8))
    with pytest.raises(
        datasets.DatasetError, match="test-1.bmp and .*test-1.png have the same stem"
    ):
        datasets.open_dataset(str(tmp_path))


def test_bmp_masks_are_read_as_0_and_255_and_other_values_refused(tmp_path):
    mask = np.zeros((9, 11), np.uint8)
    mask[2:6, 3:8] = 255
    for mode in ("1", "L"):  # a 1-bit BMP reads as 0/255 too
        path = str(tmp_path / f"mask_{mode}.bmp")
        Image.fromarray(mask).convert(mode).save(path)
        np.testing.assert_array_equal(images.read_mask_file(path), mask)
        mask_tensor = pipeline.load_mask(tf.constant(path))  # as training reads it
        np.testing.assert_array_equal(mask_tensor.numpy()[..., 0], mask)
    for values, named in ((mask // 255, "0, 1"), (np.where(mask, 128, 0), "0, 128")):
        path = str(tmp_path / "odd.bmp")
        cv2.imwrite(path, values.astype(np.uint8))
        with pytest.raises(
            images.ImageReadError,
            match=f"odd.bmp: BMP mask holds the values {named}; a binary mask",
        ):
            images.read_mask_file(path)
        photo = str(tmp_path / "odd_photo.bmp")
        cv2.imwrite(photo, np.full((9, 11, 3), 90, np.uint8))
        problems = preflight.check_example(datasets.Example("odd", photo, path), image_size=8)
        assert [p.is_error for p in problems] == [True] and named in problems[0].message


def test_bmp_and_png_photographs_train_as_they_read(trees):
    # Training decodes BMP (PH2) and PNG photographs whole, JPEGs at reduced scale.
    examples = datasets.find_split(trees["folders"], split=datasets.ALL)
    assert {os.path.splitext(e.image_path)[1] for e in examples} == {".jpg", ".png"}
    for example in examples + datasets.find_split(trees["ph2"], split=datasets.ALL)[:2]:
        expected = pipeline.resize_image(
            images.read_image_file(example.image_path), image_size=32
        ).numpy()
        got = pipeline.decode_resized_image(tf.constant(example.image_path), image_size=32).numpy()
        if example.image_path.endswith(".jpg"):
            assert np.abs(got.astype(int) - expected).mean() < 3
        else:
            np.testing.assert_array_equal(got, expected)


def test_colour_palette_bmp_photographs_are_refused_not_misread(tmp_path):
    # TensorFlow's BMP decoder returns the palette indices of such a file as grey.
    rgb = np.zeros((8, 8, 3), np.uint8)
    rgb[:4], rgb[4:] = (200, 30, 10), (10, 180, 60)
    path = str(tmp_path / "IMD001.bmp")
    Image.fromarray(rgb).convert("P", palette=Image.ADAPTIVE, colors=4).save(path)
    for read in (images.read_image_file, images.read_image_header):
        with pytest.raises(images.ImageReadError, match="IMD001.bmp: is a colour-palette BMP"):
            read(path)
    Image.fromarray(rgb).save(path)  # 24-bit: read as it is
    np.testing.assert_array_equal(images.read_image_file(path), rgb)


@pytest.mark.slow
def test_every_layout_trains_a_step_and_is_scored(trees):
    """Discovery, one training step and the evaluation on each layout, in one model."""
    model = fitting.compiled_model(learning_rate=1e-3, jit_compile=False)
    segmenter = inference.Segmenter(os.path.join(PRETRAINED, "export"))
    for layout, root in trees.items():
        dataset = datasets.open_dataset(root)
        train_examples, selection, problems = preflight.select_data(
            dataset,
            config=RunConfig(data_dir=root, batch_size=2, holdout_fraction=0.25, image_size=32),
        )
        assert problems == [] and len(train_examples) + len(selection) == len(
            dataset.find(dataset.training_split())
        ), layout
        history = model.fit(
            pipeline.make_dataset(train_examples, image_size=32, batch_size=2, is_training=True),
            epochs=1,
            steps_per_epoch=1,
            shuffle=False,
            verbose=0,
        )
        assert np.isfinite(history.history["loss"][0]), layout

        examples = dataset.find(datasets.ALL)

        def predict(example):
            image = images.read_image_file(example.image_path)
            return segmenter.segment(image), example.image_path

        rows, failed = evaluation.evaluate(examples, predict=predict, on_error=pytest.fail)
        assert failed == [] and [r["image_id"] for r in rows] == [e.image_id for e in examples]
        summary = metrics.summarize(rows)
        assert 0.3 < summary["jaccard"] <= 1, (layout, summary)  # the model finds lesions


def test_predict_finds_photographs_and_truth_in_every_layout(trees, tmp_path):
    for layout, root in trees.items():
        jobs, found = prediction.plan(root, output_dir=str(tmp_path / layout))
        examples = {e.image_id: e for e in datasets.find_split(root, split=datasets.ALL)}
        title = datasets.open_dataset(root).layout.title
        assert (
            found == f"{title} ({root}): {len(examples)} photograph(s), {len(examples)} with "
            "ground truth"
        ), layout
        assert len(jobs) == len(examples), layout
        for job in jobs:
            stem = os.path.splitext(os.path.basename(job.image_path))[0]
            assert job.mask_path == str(tmp_path / layout / f"{stem}_segmentation.png")
            assert job.truth_path == examples[stem].mask_path
    # One split's image folder: its photographs, the truth found beside them.
    images = os.path.join(trees["isic2018"], "ISIC2018_Task1-2_Test_Input")
    jobs, _ = prediction.plan(images, output_dir=str(tmp_path / "test"))
    assert [j.truth_path for j in jobs] == [
        e.mask_path for e in datasets.find_split(trees["isic2018"], split="test")
    ]
    jobs, _ = prediction.plan(
        os.path.join(trees["folders"], "images"), output_dir=str(tmp_path / "f")
    )
    assert jobs[0].truth_path.startswith(os.path.join(trees["folders"], "masks"))


def test_predictions_are_matched_by_stem(tmp_path):
    ids = ["a", "a_b", "IMD002", "ISIC_0000001", "clinic photo 7"]
    examples = [datasets.Example(i, f"{i}.jpg", f"{i}.png") for i in ids]
    for name in (
        "a_segmentation.png",
        "a_b_segmentation.png",
        "IMD002.bmp",
        "ISIC_0000001_segmentation.png",
        "ISIC_0000001_old.png",
        "notes.txt",
        "clinic photo 7_segmentation.png",
    ):
        (tmp_path / name).write_bytes(b"")
    paths, problems = split_choice.match_predictions(examples, pred_dir=str(tmp_path))
    assert paths == {
        "a": str(tmp_path / "a_segmentation.png"),
        "a_b": str(tmp_path / "a_b_segmentation.png"),
        "IMD002": str(tmp_path / "IMD002.bmp"),
        "clinic photo 7": str(tmp_path / "clinic photo 7_segmentation.png"),
    }
    assert problems == [
        f"{tmp_path}: several predictions for ISIC_0000001: "
        "ISIC_0000001_old.png, ISIC_0000001_segmentation.png"
    ]


def test_shipped_training_ids_are_the_training_split_without_the_holdout():
    with open(os.path.join(PRETRAINED, "training_ids.txt")) as f:
        trained = f.read().split()
    with open(os.path.join(PRETRAINED, "holdout_ids.txt")) as f:
        held_out = set(f.read().split())
    assert len(trained) == 1620 and len(held_out) == 180 and not held_out & set(trained)
    assert trained == sorted(trained)


def test_overlap_with_the_shipped_training_ids(trees, tmp_path):
    """An ISIC 2016 tree reusing an id the shipped model was trained on (as the
    editions do) is found to overlap (evaluate.py's warning: test_predict.py)."""
    with open(os.path.join(PRETRAINED, "training_ids.txt")) as f:
        trained = f.read().split()
    root = tmp_path / "isic2016"
    shutil.copytree(trees["isic2016"], root)
    example = datasets.find_split(str(root), split="test")[0]
    os.rename(example.image_path, root / "ISBI2016_ISIC_Part1_Test_Data" / f"{trained[5]}.jpg")
    os.rename(
        example.mask_path,
        root / "ISBI2016_ISIC_Part1_Test_GroundTruth" / f"{trained[5]}_Segmentation.png",
    )
    export_dir = os.path.join(PRETRAINED, "export")
    overlap, ids_file = split_scoring.training_overlap(
        datasets.find_split(str(root), split=datasets.ALL), saved_model=export_dir
    )
    assert overlap == [trained[5]] and ids_file == os.path.join(PRETRAINED, "training_ids.txt")
    assert split_scoring.training_overlap(
        datasets.find_split(trees["isic2016"], split=datasets.ALL), saved_model=export_dir
    ) == ([], ids_file)
    assert split_scoring.training_overlap([], saved_model=str(tmp_path / "export")) == ([], None)


@pytest.mark.slow
def test_fine_tunes_from_the_shipped_model_on_plain_folders(trees, tmp_path):
    model_dir = str(tmp_path / "run")
    training.run(
        RunConfig(
            data_dir=trees["folders"],
            image_size=32,
            batch_size=2,
            learning_rate=1e-7,
            max_epochs=1,
            holdout_fraction=0.25,
            jit_compile="false",
            init_from=PRETRAINED,
        ),
        model_dir=model_dir,
        verbose=0,
    )
    # Started from the shipped weights (a learning rate of 1e-7 barely moves them) with a
    # fresh optimizer (3 steps: 6 training pairs in batches of 2).
    import keras  # pylint: disable=import-outside-toplevel

    tuned = keras.models.load_model(os.path.join(model_dir, "best.keras"))
    shipped = keras.saving.load_model(os.path.join(PRETRAINED, "lesionseg.keras"))
    kernel = tuned.get_layer("conv2_2").kernel.numpy()
    assert np.abs(kernel - shipped.get_layer("conv2_2").kernel.numpy()).max() < 1e-4
    assert np.abs(kernel).max() > 1e-2
    assert int(tuned.optimizer.iterations.numpy()) == 3
    # A wrong --init_from is refused before any data is read (train.py: one line).
    with pytest.raises(
        FileNotFoundError,
        match=f"--init_from {tmp_path}: expected a .keras or "
        ".weights.h5 file, or a folder holding best.keras "
        "or lesionseg.keras",
    ):
        run_dir.init_weights_file(str(tmp_path))


def test_training_without_a_training_split_says_what_to_do(trees, tmp_path):
    copy = tmp_path / "isic2017_validation_only"
    copy.mkdir()
    for name in layouts.ISIC2017.folders["validation"]:
        os.symlink(os.path.join(trees["isic2017"], name), copy / name)
    with pytest.raises(
        datasets.DatasetError,
        match=r"has no training split; splits there: "
        r"validation, all\. train.py trains on .* pass that folder as --data_dir",
    ):
        datasets.open_dataset(str(copy)).training_split()


def test_flat_folders_take_isic_mask_names_too(tmp_path):
    """images/ + masks/ whose masks carry ISIC's `_segmentation` suffix pair up."""
    for i in range(3):
        image, mask = synthetic.render_example(np.random.default_rng(i), height=40, width=48)
        (tmp_path / "images").mkdir(exist_ok=True)
        (tmp_path / "masks").mkdir(exist_ok=True)
        cv2.imwrite(str(tmp_path / "images" / f"case{i}.jpg"), image[..., ::-1])
        cv2.imwrite(str(tmp_path / "masks" / f"case{i}_segmentation.png"), mask)
    found = datasets.find_split(str(tmp_path), split=datasets.ALL)
    assert [e.image_id for e in found] == ["case0", "case1", "case2"]
    assert found[0].mask_path.endswith("case0_segmentation.png")
    cv2.imwrite(str(tmp_path / "masks" / "case0.png"), mask)  # a second mask of case0
    with pytest.raises(datasets.DatasetError, match="are both masks of case0"):
        datasets.find_split(str(tmp_path), split=datasets.ALL)


@pytest.mark.slow
def test_resize_dataset_makes_the_studys_kind_of_copy(tiny_isic, tmp_path):
    from tests.conftest import run_script  # pylint: disable=import-outside-toplevel

    out = tmp_path / "isic2017_32"
    result = run_script(
        "-m tools.resize_dataset", f"--data_dir={tiny_isic}", f"--output_dir={out}", "--size=32"
    )
    assert result.returncode == 0, result.stderr[-3000:]
    copy = datasets.open_dataset(str(out))
    assert copy.summary() == datasets.open_dataset(tiny_isic).summary()
    for original, small in zip(
        datasets.find_split(tiny_isic, split="validation"), copy.find("validation"), strict=True
    ):
        assert small.image_id == original.image_id
        image = images.read_image_file(small.image_path)
        mask = images.read_mask_file(small.mask_path)
        assert image.shape == (32, 32, 3) and mask.shape == (32, 32)
        assert set(np.unique(mask)) <= {0, 255}
        # The lesion's share of the picture survives the squash.
        full = images.read_mask_file(original.mask_path) > 127
        assert abs((mask > 127).mean() - full.mean()) < 0.05
