"""Segmentation metrics with the semantics of the ISIC challenge scorer, and boundary
distances. The statistics over images (intervals, paired comparisons) are `stats`.

ISIC 2017 ranks by the Jaccard index of the lesion computed per image and then
averaged over images (not pooled over pixels); where the union is empty (no
lesion in truth nor prediction) the image scores 1.0.

NumPy and SciPy only: the study and the compare command use it without TensorFlow.
The training's Keras metric is `keras_metrics.PerImageJaccard`.
"""

import numpy as np

LESION_THRESHOLD = 128  # ISIC scorer: lesion where value > 128


# Per-image metrics of the official scorer (`isic-challenge-scoring`), in its order.
METRIC_NAMES = ("accuracy", "sensitivity", "specificity", "jaccard", "threshold_jaccard", "dice")
JACCARD_THRESHOLD = 0.65  # ISIC 2018: a Jaccard below this scores 0


def binarize(mask):
    """ISIC binarization of a mask image: lesion where value > 128."""
    return np.asarray(mask) > LESION_THRESHOLD


def _boolean_pair(truth, prediction):
    """Two masks as boolean arrays, refused unless their shapes are equal."""
    truth = np.asarray(truth, bool)
    prediction = np.asarray(prediction, bool)
    if truth.shape != prediction.shape:
        raise ValueError(f"mask shapes differ: truth {truth.shape}, prediction {prediction.shape}")
    return truth, prediction


def confusion(truth, *, prediction):
    """Pixel counts `{"tp", "fp", "tn", "fn"}` of two boolean masks of equal shape."""
    truth, prediction = _boolean_pair(truth, prediction)
    tp = int(np.count_nonzero(truth & prediction))
    truth_count = int(np.count_nonzero(truth))
    prediction_count = int(np.count_nonzero(prediction))
    fn = truth_count - tp
    fp = prediction_count - tp
    return {"tp": tp, "fp": fp, "fn": fn, "tn": truth.size - tp - fp - fn}


def _ratio(numerator, denominator):
    # The scorer's rule: an undefined ratio (empty denominator) is a free 1.0.
    return numerator / denominator if denominator else 1.0


def image_metrics(counts):
    """The scorer's six per-image metrics from `confusion` counts."""
    tp, fp, tn, fn = counts["tp"], counts["fp"], counts["tn"], counts["fn"]
    jaccard = _ratio(tp, tp + fp + fn)
    return {
        "accuracy": (tp + tn) / (tp + tn + fp + fn),
        "sensitivity": _ratio(tp, tp + fn),
        "specificity": _ratio(tn, tn + fp),
        "jaccard": jaccard,
        "threshold_jaccard": jaccard if jaccard >= JACCARD_THRESHOLD else 0.0,
        "dice": _ratio(2 * tp, 2 * tp + fp + fn),
    }


# Boundary distances, in pixels of the scored masks; None where undefined.
BOUNDARY_NAMES = ("hd95", "assd")
# Why a boundary distance is undefined for an image (it is then left out of the means).
BOUNDARY_UNDEFINED = ("empty_truth", "empty_prediction", "both_empty")
# The per-image scores a summary averages and the bootstrap resamples.
SCORE_NAMES = METRIC_NAMES + BOUNDARY_NAMES

# Contour length inside one 2x2 cell of pixels, by the cell's code (top left 8, top
# right 4, bottom left 2, bottom right 1; a set bit is a lesion pixel): marching
# squares' segments, in pixels. One pixel in or out cuts a corner (half a diagonal);
# two side by side, a straight unit; two diagonal, two corners; none or all, no border.
_HALF_DIAGONAL = 0.5 * np.sqrt(2.0)
_CONTOUR_LENGTH = np.array(
    [
        0.0,
        _HALF_DIAGONAL,
        _HALF_DIAGONAL,
        1.0,
        _HALF_DIAGONAL,
        1.0,
        2 * _HALF_DIAGONAL,
        _HALF_DIAGONAL,
        _HALF_DIAGONAL,
        2 * _HALF_DIAGONAL,
        1.0,
        _HALF_DIAGONAL,
        1.0,
        _HALF_DIAGONAL,
        _HALF_DIAGONAL,
        0.0,
    ]
)


def _border(mask):
    """The border of a cropped, zero-padded bool mask on the grid of pixel corners:
    `(is border [h-1, w-1] bool, contour length there)`."""
    m = mask.astype(np.uint8)
    code = 8 * m[:-1, :-1] + 4 * m[:-1, 1:] + 2 * m[1:, :-1] + m[1:, 1:]
    return (code != 0) & (code != 15), _CONTOUR_LENGTH[code]


def _directed(border_from, lengths_from, border_to):
    """Distances from each border point of one mask to the nearest point of the other's
    border, sorted, with the contour lengths they carry. Exact Euclidean distances,
    the values of a distance transform of the other border read at these points
    (`surface-distance` computes them so), found with a k-d tree of the border
    points: a border has thousands of points where the photograph has millions."""
    # Imported here: scipy.spatial's import (0.3-0.5 s) would slow the start of every
    # command, and only the boundary distances need it.
    from scipy import spatial  # pylint: disable=import-outside-toplevel

    distances, _ = spatial.cKDTree(np.argwhere(border_to)).query(np.argwhere(border_from))
    weights = lengths_from[border_from]
    order = np.argsort(distances, kind="stable")
    return distances[order], weights[order]


def _weighted_percentile(distances, weights, percent):
    cumulative = np.cumsum(weights) / np.sum(weights)
    index = int(np.searchsorted(cumulative, percent / 100.0))
    return float(distances[min(index, distances.size - 1)])


def boundary_distances(truth, *, prediction):
    """HD95 and ASSD of two bool masks, in pixels, and why they are undefined.

    The definition of DeepMind's `surface-distance` (`compute_surface_distances`
    in 2D, unit spacing), which the tests hold it to: each mask's border is the set
    of pixel corners whose 2x2 cell is neither all lesion nor all background
    (pixels outside the image count as background), each carrying the length of
    the contour through its cell; distances to the other border come from SciPy's
    exact Euclidean distances (the values of its distance transform, found with a k-d
    tree of the border points). HD95 is the larger of the two directed
    95th percentiles (weighted by contour length); ASSD is the mean of the two
    directed averages (each weighted by contour length), not the average over both
    borders' points pooled.

    Returns:
      `{"hd95": float or None, "assd": float or None, "boundary_undefined": one of
      BOUNDARY_UNDEFINED or None}`: None where a mask is empty (no border to measure
      from), the case named, so that it is counted rather than averaged in.
    """
    truth, prediction = _boolean_pair(truth, prediction)
    has_truth, has_prediction = truth.any(), prediction.any()
    if not (has_truth and has_prediction):
        why = (
            "both_empty"
            if not (has_truth or has_prediction)
            else "empty_truth"
            if not has_truth
            else "empty_prediction"
        )
        return {"hd95": None, "assd": None, "boundary_undefined": why}
    # Only the union's bounding box (and a background frame) holds border points.
    rows = np.flatnonzero((truth | prediction).any(axis=1))
    cols = np.flatnonzero((truth | prediction).any(axis=0))
    box = np.s_[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    borders = [_border(np.pad(mask[box], 1)) for mask in (truth, prediction)]
    forward = _directed(*borders[0], borders[1][0])
    backward = _directed(*borders[1], borders[0][0])
    hd95 = max(_weighted_percentile(*forward, 95), _weighted_percentile(*backward, 95))
    averages = [np.sum(d * w) / np.sum(w) for d, w in (forward, backward)]
    return {"hd95": hd95, "assd": float(np.mean(averages)), "boundary_undefined": None}


def summarize(rows):
    """Aggregates per-image rows (`evaluation.score_image`).

    Returns:
      The unweighted mean over images of each of `METRIC_NAMES` (what ISIC ranks
      by) and of `BOUNDARY_NAMES` over the images where they are defined;
      `pooled_mean_iou`: the two-class (background, lesion) mean IoU of all pixels
      pooled over the images (from the rows' tp/fp/tn/fn), what
      `keras.metrics.MeanIoU` reports (the paper's "mean IoU" may be read either
      way); `images`; and `boundary_undefined`, the count of each reason a boundary
      distance was undefined. A row without boundary columns (a report written
      before they existed) leaves them out.
    """
    if not rows:
        raise ValueError("no images to summarize")
    summary = {name: float(np.mean([row[name] for row in rows])) for name in METRIC_NAMES}
    total = {k: sum(int(row[k]) for row in rows) for k in ("tp", "fp", "tn", "fn")}
    lesion_iou = _ratio(total["tp"], total["tp"] + total["fp"] + total["fn"])
    background_iou = _ratio(total["tn"], total["tn"] + total["fp"] + total["fn"])
    summary["pooled_mean_iou"] = (lesion_iou + background_iou) / 2
    summary["images"] = len(rows)
    if all(name in row for row in rows for name in BOUNDARY_NAMES):
        for name in BOUNDARY_NAMES:
            defined = [row[name] for row in rows if row[name] is not None]
            summary[name] = float(np.mean(defined)) if defined else None
        summary["boundary_undefined"] = {
            why: sum(row.get("boundary_undefined") == why for row in rows)
            for why in BOUNDARY_UNDEFINED
        }
    return summary


def lesion_share(counts):
    """The share of the image the ground-truth lesion covers, from a per-image row's
    `tp`, `fn`, `height` and `width` (a `per_image.csv` row, `report.read_per_image`)."""
    return (counts["tp"] + counts["fn"]) / (counts["height"] * counts["width"])
