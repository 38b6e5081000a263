"""The statistics over images of per-image scores: bootstrap intervals of a mean,
paired comparisons of two models on the same images (bootstrap interval of the mean
difference, Wilcoxon signed-rank test), equal-count groups, and their printed form.

NumPy and SciPy only: the study and the compare command use it without TensorFlow.
"""

import numpy as np

from lesionseg_tf.metrics import SCORE_NAMES


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


def paired_by_image(first, *, second, mismatch, samples=2000, seed=0):
    """`paired_comparison` of two `{image id: score}` of the same images, paired by id.

    Raises:
      ValueError: `mismatch`, where the two score different images.
    """
    if set(first) != set(second):
        raise ValueError(mismatch)
    ids = sorted(first)
    return paired_comparison(
        [first[i] for i in ids], second=[second[i] for i in ids], samples=samples, seed=seed
    )


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
