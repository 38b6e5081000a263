"""Segmentation metrics with the semantics of the ISIC challenge scorer.

ISIC 2017 ranks by the Jaccard index of the lesion computed per image and then
averaged over images (not pooled over pixels); where the union is empty (no
lesion in truth nor prediction) the image scores 1.0.
"""

import keras
import numpy as np
import tensorflow as tf

LESION_THRESHOLD = 128  # ISIC scorer: lesion where value > 128


@keras.saving.register_keras_serializable(package="lesionseg_tf")
class PerImageJaccard(keras.metrics.Metric):
    """Mean over images of the lesion Jaccard index, prediction = argmax of the logits.

    `y_true`: `[batch, H, W]` or `[batch, H, W, 1]` labels, lesion where > 0.
    `y_pred`: `[batch, H, W, 2]` logits or probabilities (background, lesion).
    Used as the training's validation score and early-stopping criterion
    (paper section 3.3: "trained until validation mean IoU stops improving").
    """

    def __init__(self, name="jaccard", **kwargs):
        super().__init__(name=name, **kwargs)
        self.total = self.add_variable(shape=(), initializer="zeros", name="total")
        self.count = self.add_variable(shape=(), initializer="zeros", name="count")

    def update_state(self, y_true, y_pred, sample_weight=None):
        if sample_weight is not None:
            raise ValueError("PerImageJaccard does not take sample weights")
        truth = tf.reshape(tf.convert_to_tensor(y_true) > 0, tf.shape(y_pred)[:-1])
        prediction = tf.argmax(y_pred, axis=-1) == 1
        axes = [1, 2]
        intersection = tf.reduce_sum(tf.cast(truth & prediction, tf.float32), axes)
        union = tf.reduce_sum(tf.cast(truth | prediction, tf.float32), axes)
        jaccard = tf.where(union > 0, intersection / tf.maximum(union, 1.0), 1.0)
        self.total.assign_add(tf.reduce_sum(jaccard))
        self.count.assign_add(tf.cast(tf.shape(jaccard)[0], tf.float32))

    def result(self):
        return tf.math.divide_no_nan(self.total, self.count)

    def reset_state(self):
        self.total.assign(0.0)
        self.count.assign(0.0)


# Per-image metrics of the official scorer (`isic-challenge-scoring`), in its order.
METRIC_NAMES = ("accuracy", "sensitivity", "specificity", "jaccard", "threshold_jaccard", "dice")
JACCARD_THRESHOLD = 0.65  # ISIC 2018: a Jaccard below this scores 0


def binarize(mask):
    """ISIC binarization of a mask image: lesion where value > 128."""
    return np.asarray(mask) > LESION_THRESHOLD


def confusion(truth, prediction):
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


def summarize(per_image_counts):
    """Aggregates per-image confusion counts.

    Returns:
      The unweighted mean over images of each of `METRIC_NAMES` (what ISIC
      ranks by), plus `pooled_mean_iou`: the two-class (background, lesion)
      mean IoU of all pixels pooled over the images, what `keras.metrics.MeanIoU`
      reports; the paper's "mean IoU" may be read either way.
    """
    if not per_image_counts:
        raise ValueError("no images to summarize")
    rows = [image_metrics(c) for c in per_image_counts]
    summary = {name: float(np.mean([r[name] for r in rows])) for name in METRIC_NAMES}
    total = {k: sum(c[k] for c in per_image_counts) for k in ("tp", "fp", "tn", "fn")}
    lesion_iou = _ratio(total["tp"], total["tp"] + total["fp"] + total["fn"])
    background_iou = _ratio(total["tn"], total["tn"] + total["fp"] + total["fn"])
    summary["pooled_mean_iou"] = (lesion_iou + background_iou) / 2
    summary["images"] = len(rows)
    return summary


def bootstrap_intervals(rows, *, samples=2000, seed=0, confidence=0.95):
    """Percentile bootstrap confidence intervals of the per-image means.

    Images are resampled with replacement `samples` times (seeded), and each
    metric's mean is taken over every resample; the interval is the central
    `confidence` share of those means. With 150 validation images it is several
    points wide, which is what a comparison with a published mean must allow for.

    Args:
      rows: per-image dicts holding each of `METRIC_NAMES`.

    Returns:
      `{metric: [low, high]}` for each of `METRIC_NAMES`.
    """
    if not rows:
        raise ValueError("no images to bootstrap")
    if samples < 1:
        raise ValueError(f"samples must be >= 1, got {samples}")
    values = np.array([[row[name] for name in METRIC_NAMES] for row in rows], np.float64)
    rng = np.random.default_rng(seed)
    means = np.empty((samples, len(METRIC_NAMES)))
    for start in range(0, samples, 500):  # bounded memory for large splits
        stop = min(samples, start + 500)
        picks = rng.integers(0, len(rows), size=(stop - start, len(rows)))
        means[start:stop] = values[picks].mean(axis=1)
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(means, [tail, 100 - tail], axis=0)
    return {name: [float(low[i]), float(high[i])] for i, name in enumerate(METRIC_NAMES)}


def paired_comparison(first, second, *, samples=2000, seed=0, confidence=0.95):
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
    from scipy import stats  # pylint: disable=import-outside-toplevel

    first = np.asarray(first, np.float64)
    second = np.asarray(second, np.float64)
    if first.shape != second.shape or first.ndim != 1:
        raise ValueError(f"paired scores must be two sequences of the same length, got "
                         f"{first.shape} and {second.shape}")
    if not first.size:
        raise ValueError("no images to compare")
    if samples < 1:
        raise ValueError(f"samples must be >= 1, got {samples}")
    differences = first - second
    rng = np.random.default_rng(seed)
    means = np.empty(samples)
    for start in range(0, samples, 500):
        stop = min(samples, start + 500)
        picks = rng.integers(0, differences.size, size=(stop - start, differences.size))
        means[start:stop] = differences[picks].mean(axis=1)
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(means, [tail, 100 - tail])
    p_value = None
    if np.any(differences != 0):
        p_value = float(stats.wilcoxon(first, second, zero_method="wilcox",
                                       alternative="two-sided").pvalue)
    return {"images": int(differences.size), "mean_difference": float(differences.mean()),
            "interval": [float(low), float(high)], "p_value": p_value,
            "better": int(np.sum(differences > 0)), "worse": int(np.sum(differences < 0)),
            "ties": int(np.sum(differences == 0))}


def format_comparison(comparison, first_name, second_name, *, metric="Jaccard"):
    """`paired_comparison`'s result as the lines a person reads."""
    low, high = comparison["interval"]
    p_value = ("undefined (every image scores the same)" if comparison["p_value"] is None
               else f"{comparison['p_value']:.3g}")
    return "\n".join([
        f"{first_name} minus {second_name}, per-image {metric}, {comparison['images']} images:",
        f"  mean difference   {comparison['mean_difference']:+.4f}  "
        f"(95% paired bootstrap CI {low:+.4f} to {high:+.4f})",
        f"  Wilcoxon signed-rank p (two-sided)  {p_value}",
        f"  first better on {comparison['better']}, worse on {comparison['worse']}, "
        f"equal on {comparison['ties']} images",
    ])
