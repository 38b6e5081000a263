"""Segmentation metrics with the semantics of the ISIC challenge scorer, boundary
distances, and the statistics over images (bootstrap intervals, paired comparisons).

ISIC 2017 ranks by the Jaccard index of the lesion computed per image and then
averaged over images (not pooled over pixels); where the union is empty (no
lesion in truth nor prediction) the image scores 1.0.

NumPy and SciPy only: the study and the compare command use it without TensorFlow.
The training's Keras metric is `keras_metrics.PerImageJaccard`.
"""

import numpy as np
from scipy import spatial

LESION_THRESHOLD = 128  # ISIC scorer: lesion where value > 128


# Per-image metrics of the official scorer (`isic-challenge-scoring`), in its order.
METRIC_NAMES = ("accuracy", "sensitivity", "specificity", "jaccard", "threshold_jaccard", "dice")
JACCARD_THRESHOLD = 0.65  # ISIC 2018: a Jaccard below this scores 0


def binarize(mask):
    """ISIC binarization of a mask image: lesion where value > 128."""
    return np.asarray(mask) > LESION_THRESHOLD


def confusion(truth, *, prediction):
    """Pixel counts `{"tp", "fp", "tn", "fn"}` of two boolean masks of equal shape."""
    truth = np.asarray(truth, bool)
    prediction = np.asarray(prediction, bool)
    if truth.shape != prediction.shape:
        raise ValueError(f"mask shapes differ: truth {truth.shape}, prediction {prediction.shape}")
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
    truth = np.asarray(truth, bool)
    prediction = np.asarray(prediction, bool)
    if truth.shape != prediction.shape:
        raise ValueError(f"mask shapes differ: truth {truth.shape}, prediction {prediction.shape}")
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


def _bootstrap_means(values, *, samples, seed):
    """`samples` means over images resampled with replacement (seeded): `values`
    `[images, k]` float64 (NaN where undefined, left out of its mean) ->
    `[samples, k]`. The one resampling of the intervals and the comparisons."""
    if samples < 1:
        raise ValueError(f"samples must be >= 1, got {samples}")
    rng = np.random.default_rng(seed)
    means = np.empty((samples, values.shape[1]))
    for start in range(0, samples, 500):  # bounded memory for large splits
        stop = min(samples, start + 500)
        picks = values[rng.integers(0, len(values), size=(stop - start, len(values)))]
        defined = ~np.isnan(picks)
        counts = defined.sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            means[start:stop] = np.where(defined, picks, 0.0).sum(axis=1) / counts
    return means


def _percentile_interval(means, confidence):
    tail = (1 - confidence) / 2 * 100
    return np.nanpercentile(means, [tail, 100 - tail], axis=0)


def bootstrap_intervals(rows, *, samples=2000, seed=0, confidence=0.95):
    """Percentile bootstrap confidence intervals of the per-image means.

    Images are resampled with replacement `samples` times (seeded), and each
    score's mean is taken over every resample (a boundary distance over the
    images of the resample where it is defined); the interval is the central
    `confidence` share of those means. With 150 validation images it is several
    points wide, which is what a comparison with a published mean must allow for.

    Args:
      rows: per-image dicts holding each of `METRIC_NAMES`, and of
        `BOUNDARY_NAMES` (None where undefined) when they were scored.

    Returns:
      `{score: [low, high]}` for each score the rows hold.
    """
    if not rows:
        raise ValueError("no images to bootstrap")
    names = [name for name in SCORE_NAMES if all(name in row for row in rows)]
    values = np.array(
        [[np.nan if row[name] is None else row[name] for name in names] for row in rows], np.float64
    )
    low, high = _percentile_interval(
        _bootstrap_means(values, samples=samples, seed=seed), confidence
    )
    return {name: [float(low[i]), float(high[i])] for i, name in enumerate(names)}


def paired_comparison(first, *, second, samples=2000, seed=0, confidence=0.95):
    """Compares two models scored on the same images: is the first better?

    Args:
      first, second: per-image scores (for example the Jaccard) of the same
        images in the same order, each a sequence of floats.

    Returns:
      `{"images", "mean_difference", "interval", "p_value", "better", "worse", "ties"}`:
      the mean over images of first - second; its percentile bootstrap interval
      (images resampled with replacement, the pairs kept together, seeded); the
      two-sided Wilcoxon signed-rank p-value of the per-image differences
      (scipy's, zero differences dropped), None where every difference is zero
      and the test is undefined; and the number of images on which the first
      scores higher, lower, the same.

    Raises:
      ValueError: no images, or sequences of different lengths.
    """
    from scipy import stats  # pylint: disable=import-outside-toplevel (its import is slow)

    first = np.asarray(first, np.float64)
    second = np.asarray(second, np.float64)
    if first.shape != second.shape or first.ndim != 1:
        raise ValueError(
            f"paired scores must be two sequences of the same length, got "
            f"{first.shape} and {second.shape}"
        )
    if not first.size:
        raise ValueError("no images to compare")
    differences = first - second
    low, high = _percentile_interval(
        _bootstrap_means(differences[:, np.newaxis], samples=samples, seed=seed), confidence
    )[:, 0]
    p_value = None
    if np.any(differences != 0):
        p_value = float(
            stats.wilcoxon(first, second, zero_method="wilcox", alternative="two-sided").pvalue
        )
    return {
        "images": int(differences.size),
        "mean_difference": float(differences.mean()),
        "interval": [float(low), float(high)],
        "p_value": p_value,
        "better": int(np.sum(differences > 0)),
        "worse": int(np.sum(differences < 0)),
        "ties": int(np.sum(differences == 0)),
    }


def lesion_share(counts):
    """The share of the image the ground-truth lesion covers, from a per-image row's
    `tp`, `fn`, `height` and `width` (a `per_image.csv` row, `report.read_per_image`)."""
    return (counts["tp"] + counts["fn"]) / (counts["height"] * counts["width"])


def equal_count_groups(values, *, groups):
    """Splits images into `groups` groups of equal count (within one) by rank of a
    per-image value, such as `lesion_share`: the smallest values first. Images with
    the same value may fall on either side of a boundary.

    Returns:
      `[(indices, lowest, highest)]` per group: the positions in `values` and the
      range of the values the group holds.

    Raises:
      ValueError: `groups` below 1 or above the number of images.
    """
    values = np.asarray(values, np.float64)
    if not 1 <= groups <= values.size:
        raise ValueError(f"cannot split {values.size} images into {groups} groups")
    order = np.argsort(values, kind="stable")
    return [
        (indices, float(values[indices].min()), float(values[indices].max()))
        for indices in np.array_split(order, groups)
    ]


def format_comparison(comparison, *, first_name, second_name, metric="Jaccard", heading=None):
    """`paired_comparison`'s result as the lines a person reads; `heading`, when
    given, stands in the first line instead of the names."""
    low, high = comparison["interval"]
    p_value = (
        "undefined (every image scores the same)"
        if comparison["p_value"] is None
        else f"{comparison['p_value']:.3g}"
    )
    return "\n".join(
        [
            heading
            or (
                f"{first_name} minus {second_name}, per-image {metric}, "
                f"{comparison['images']} images:"
            ),
            f"  mean difference   {comparison['mean_difference']:+.4f}  "
            f"(95% paired bootstrap CI {low:+.4f} to {high:+.4f})",
            f"  Wilcoxon signed-rank p (two-sided)  {p_value}",
            f"  first better on {comparison['better']}, worse on {comparison['worse']}, "
            f"equal on {comparison['ties']} images",
        ]
    )
