import numpy as np
import pytest

from lesionseg_tf import metrics, stats
from lesionseg_tf.keras_metrics import PerImageJaccard


def logits_for(prediction):
    """Two-class logits whose argmax is `prediction` (bool [batch, H, W])."""
    return np.stack([~prediction, prediction], axis=-1).astype(np.float32)


def test_per_image_mean_with_isic_empty_rule():
    truth = np.zeros((3, 4, 4), bool)
    prediction = np.zeros((3, 4, 4), bool)
    # image 0: both empty -> 1.0
    # image 1: truth 4 pixels, prediction 2 of them + 2 others -> 2 / 6
    truth[1, 0, :] = True
    prediction[1, 0, :2] = True
    prediction[1, 3, :2] = True
    # image 2: truth present, prediction empty -> 0
    truth[2, 1:3, 1:3] = True
    metric = PerImageJaccard()
    metric.update_state(truth[..., None].astype(np.int32), logits_for(prediction))
    assert float(metric.result()) == pytest.approx((1.0 + 2 / 6 + 0.0) / 3, abs=1e-6)


def test_accumulates_over_batches_per_image_not_per_pixel():
    rng = np.random.default_rng(0)
    truth = rng.random((6, 8, 8)) > 0.5
    prediction = rng.random((6, 8, 8)) > 0.5
    truth[0] = False
    prediction[0] = False
    expected = []
    for t, p in zip(truth, prediction):
        union = (t | p).sum()
        expected.append((t & p).sum() / union if union else 1.0)
    metric = PerImageJaccard()
    metric.update_state(truth[:4].astype(np.int32), logits_for(prediction[:4]))
    metric.update_state(truth[4:].astype(np.int32), logits_for(prediction[4:]))
    assert float(metric.result()) == pytest.approx(np.mean(expected), abs=1e-6)
    metric.reset_state()
    assert float(metric.result()) == 0.0


def write_mask(path, array):
    import cv2

    assert cv2.imwrite(str(path), array)


def make_pairs(rng):
    """>= 30 truth/prediction masks covering the scorer's corner cases."""
    pairs = []
    sizes = [(17, 23), (64, 48), (120, 200), (333, 250), (5, 5)]
    for i in range(24):
        h, w = sizes[i % len(sizes)]
        truth = np.zeros((h, w), np.uint8)
        truth[
            rng.integers(0, h // 2) : rng.integers(h // 2 + 1, h + 1),
            rng.integers(0, w // 2) : rng.integers(w // 2 + 1, w + 1),
        ] = 255
        prediction = np.where(rng.random((h, w)) < 0.2, 255 - truth, truth).astype(np.uint8)
        pairs.append((truth, prediction))
    zeros, full = np.zeros((40, 30), np.uint8), np.full((40, 30), 255, np.uint8)
    half = zeros.copy()
    half[:20] = 255
    pairs += [
        (zeros, zeros),  # both empty: Jaccard, Dice, sensitivity 1.0
        (zeros, half),  # truth empty
        (half, zeros),  # prediction empty
        (full, full),  # all lesion: specificity 1.0
        (full, half),
        (half // 255, half),  # truth stored as 0/1: all background under > 128
        (half, half // 255),  # prediction stored as 0/1
        (np.where(half > 0, 129, 128).astype(np.uint8), half),  # 129 is lesion, 128 is not
        (half, np.where(half > 0, 128, 0).astype(np.uint8)),
        (
            rng.integers(0, 256, (50, 70)).astype(np.uint8),
            rng.integers(0, 256, (50, 70)).astype(np.uint8),
        ),
    ]
    return pairs


def test_parity_with_the_official_scorer(tmp_path):
    from isic_challenge_scoring.segmentation import SegmentationScore

    from lesionseg_tf import evaluation, images

    truth_dir, pred_dir = tmp_path / "truth", tmp_path / "pred"
    truth_dir.mkdir()
    pred_dir.mkdir()
    rows = []
    pairs = make_pairs(np.random.default_rng(0))
    assert len(pairs) >= 30
    for i, (truth, prediction) in enumerate(pairs):
        image_id = f"ISIC_{i:07d}"
        write_mask(truth_dir / f"{image_id}_segmentation.png", truth)
        write_mask(pred_dir / f"{image_id}_segmentation.png", prediction)
        rows.append(
            evaluation.score_image(
                image_id,
                truth=images.read_mask_file(str(truth_dir / f"{image_id}_segmentation.png")),
                prediction=images.read_mask_file(str(pred_dir / f"{image_id}_segmentation.png")),
            )
        )
    ours = metrics.summarize(rows)
    official = SegmentationScore.from_dir(truth_dir, pred_dir).macro_average
    for name in ("accuracy", "sensitivity", "specificity", "jaccard", "threshold_jaccard", "dice"):
        assert abs(ours[name] - official[name]) <= 1e-9, name
    # The corner cases really are in play: some images score exactly 1 and exactly 0.
    jaccards = [row["jaccard"] for row in rows]
    assert 1.0 in jaccards and 0.0 in jaccards


def test_empty_denominators_score_one():
    from lesionseg_tf import metrics

    empty = np.zeros((4, 4), bool)
    scores = metrics.image_metrics(metrics.confusion(empty, prediction=empty))
    assert scores == {
        "accuracy": 1.0,
        "sensitivity": 1.0,
        "specificity": 1.0,
        "jaccard": 1.0,
        "threshold_jaccard": 1.0,
        "dice": 1.0,
    }
    truth = np.zeros((4, 4), bool)
    truth[0, :3] = True
    prediction = truth.copy()
    prediction[0, 3] = True  # Jaccard 3/4, above the 0.65 threshold
    scores = metrics.image_metrics(metrics.confusion(truth, prediction=prediction))
    assert scores["jaccard"] == scores["threshold_jaccard"] == 0.75
    prediction[1, :] = True  # Jaccard 3/8, below it
    scores = metrics.image_metrics(metrics.confusion(truth, prediction=prediction))
    assert scores["jaccard"] == 3 / 8 and scores["threshold_jaccard"] == 0.0


def test_pooled_mean_iou_pools_pixels():
    from lesionseg_tf import metrics

    a = {"tp": 10, "fp": 0, "fn": 0, "tn": 90}
    b = {"tp": 0, "fp": 0, "fn": 10, "tn": 90}
    summary = metrics.summarize([{**c, **metrics.image_metrics(c)} for c in (a, b)])
    assert summary["jaccard"] == 0.5  # per image: 1 and 0
    lesion, background = 10 / 20, 180 / 190
    assert summary["pooled_mean_iou"] == pytest.approx((lesion + background) / 2, abs=1e-12)


def test_grey_rgb_prediction_is_converted_and_colour_refused(tmp_path):
    from lesionseg_tf import images

    grey = np.zeros((6, 7), np.uint8)
    grey[2:4] = 255
    write_mask(tmp_path / "grey.png", np.dstack([grey] * 3))
    np.testing.assert_array_equal(images.read_mask_file(str(tmp_path / "grey.png")), grey)
    colour = np.dstack([grey, grey, 255 - grey])
    write_mask(tmp_path / "colour.png", colour)
    with pytest.raises(images.ImageReadError, match="colour.png.*not single-channel"):
        images.read_mask_file(str(tmp_path / "colour.png"))
    (tmp_path / "broken.png").write_bytes(b"not a png")
    with pytest.raises(images.ImageReadError, match="broken.png"):
        images.read_mask_file(str(tmp_path / "broken.png"))


def test_size_mismatch_names_the_file_and_both_sizes():
    from lesionseg_tf import evaluation

    with pytest.raises(
        ValueError,
        match=r"pred.png: prediction is 5x4 \(WxH\), ground truth is "
        r"6x4",
    ):
        evaluation.score_image(
            "ISIC_0000001",
            truth=np.zeros((4, 6), np.uint8),
            prediction=np.zeros((4, 5), np.uint8),
            prediction_name="pred.png",
        )


def test_default_report_folders_never_share_and_never_enter_a_shipped_model(tmp_path):
    import os

    from lesionseg_tf import report

    run = tmp_path / "runs" / "a"
    (run / "export").mkdir(parents=True)
    shipped = tmp_path / "pretrained" / "m"
    (shipped / "export").mkdir(parents=True)
    (shipped / "lesionseg.keras").write_bytes(b"")
    folder = report.default_output_dir
    assert folder(model=f"{run}/export/", data_dir="data/ISIC2017", split="test") == os.path.join(
        run, "evaluation", "ISIC2017-test"
    )
    assert folder(model=f"{run}/export", data_dir="PH2/", split="all") == os.path.join(
        run, "evaluation", "PH2-all"
    )
    assert folder(
        model=f"{run}/export", data_dir="d", split="training", ids_file=f"{run}/holdout_ids.txt"
    ) == os.path.join(run, "evaluation", "d-training-holdout_ids")
    assert folder(
        model=f"{shipped}/export", data_dir="examples", split="validation"
    ) == os.path.join("runs", "evaluation", "m", "examples-validation")
    assert folder(
        model=f"{shipped}/lesionseg_int8.tflite", data_dir="examples", split="validation"
    ) == os.path.join("runs", "evaluation", "m", "lesionseg_int8", "examples-validation")
    assert folder(
        model=f"{run}/export", pred_dir="sub/", data_dir="d", split="validation"
    ) == os.path.join("sub_evaluation", "d-validation")
    # A --members run holds lesionseg.keras too, and each network's best.keras: a run.
    members = tmp_path / "runs" / "two"
    (members / "member_0").mkdir(parents=True)
    (members / "lesionseg.keras").write_bytes(b"")
    (members / "member_0" / "best.keras").write_bytes(b"")
    assert folder(model=f"{members}/export", data_dir="d", split="test") == os.path.join(
        members, "evaluation", "d-test"
    )
    os.remove(members / "member_0" / "best.keras")  # shipped (tools.ship): network records only
    assert folder(model=f"{members}/export", data_dir="d", split="test") == os.path.join(
        "runs", "evaluation", "two", "d-test"
    )


def test_summary_averages_boundary_distances_where_defined_and_counts_the_rest():
    from lesionseg_tf import evaluation

    square = np.zeros((20, 20), np.uint8)
    square[5:10, 5:10] = 255
    shifted = np.roll(square, 2, axis=1)
    empty = np.zeros_like(square)
    rows = [
        evaluation.score_image("a", truth=square, prediction=square),
        evaluation.score_image("b", truth=square, prediction=shifted),
        evaluation.score_image("c", truth=empty, prediction=empty),
        evaluation.score_image("d", truth=square, prediction=empty),
    ]
    summary = metrics.summarize(rows)
    assert summary["hd95"] == pytest.approx((0 + 2) / 2)  # not 4 images, not inf
    assert summary["boundary_undefined"] == {
        "empty_truth": 0,
        "empty_prediction": 1,
        "both_empty": 1,
    }
    intervals = stats.bootstrap_intervals(rows, samples=200, seed=0)
    assert 0 <= intervals["hd95"][0] <= intervals["hd95"][1] <= 2
    table = evaluation.format_table(summary, title="t", intervals=intervals)
    assert "HD95" in table and "1 empty prediction, 1 both empty" in table
