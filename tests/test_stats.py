"""The statistics over images (`stats`): bootstrap intervals, paired comparisons,
equal-count groups."""

import numpy as np
import pytest

from lesionseg_tf import metrics, stats


def _rows(jaccards):
    return [
        {
            name: (j if name in ("jaccard", "threshold_jaccard", "dice") else 1.0)
            for name in metrics.METRIC_NAMES
        }
        for j in jaccards
    ]


def test_bootstrap_interval_matches_the_normal_approximation():
    values = np.random.default_rng(0).beta(5, 2, size=150)
    intervals = stats.bootstrap_intervals(_rows(values), samples=4000, seed=1)
    low, high = intervals["jaccard"]
    half_width = 1.96 * values.std(ddof=1) / np.sqrt(len(values))
    assert low < values.mean() < high
    assert abs((high - low) / 2 - half_width) < 0.1 * half_width
    assert abs((low + high) / 2 - values.mean()) < 0.2 * half_width
    assert intervals["accuracy"] == [1.0, 1.0]  # a constant has no spread


def test_bootstrap_is_seeded_and_narrows_with_more_images():
    values = np.random.default_rng(2).uniform(size=600)
    a = stats.bootstrap_intervals(_rows(values[:150]), samples=500, seed=3)
    assert a == stats.bootstrap_intervals(_rows(values[:150]), samples=500, seed=3)
    assert a != stats.bootstrap_intervals(_rows(values[:150]), samples=500, seed=4)
    b = stats.bootstrap_intervals(_rows(values), samples=500, seed=3)
    width = lambda interval: interval[1] - interval[0]  # noqa: E731
    assert width(b["jaccard"]) < 0.7 * width(a["jaccard"])
    with pytest.raises(ValueError, match="no images"):
        stats.bootstrap_intervals([], samples=10)


def test_paired_comparison_of_identical_predictions_is_zero_and_untestable():
    scores = [0.2, 0.9, 0.55, 0.0, 1.0]
    result = stats.paired_comparison(scores, second=list(scores), samples=200, seed=0)
    assert result["mean_difference"] == 0.0 and result["interval"] == [0.0, 0.0]
    assert result["p_value"] is None  # undefined, not a number
    assert (result["better"], result["worse"], result["ties"]) == (0, 0, 5)
    assert "undefined" in stats.format_comparison(result, first_name="a", second_name="b")


def test_paired_comparison_by_hand():
    # Better on every one of 5 images, by distinct amounts: the mean difference is
    # 0.03; every resample's mean lies between the smallest and largest difference, so
    # the interval is positive; Wilcoxon's exact two-sided p for 5 positive ranks is
    # 2 / 2**5 = 0.0625.
    second = [0.50, 0.60, 0.70, 0.20, 0.90]
    differences = [0.01, 0.02, 0.03, 0.04, 0.05]
    first = [s + d for s, d in zip(second, differences)]
    result = stats.paired_comparison(first, second=second, samples=500, seed=1)
    assert result["mean_difference"] == pytest.approx(0.03)
    low, high = result["interval"]
    assert 0.01 - 1e-12 <= low < 0.03 < high <= 0.05 + 1e-12
    assert result["p_value"] == pytest.approx(0.0625)
    assert (result["better"], result["worse"], result["ties"]) == (5, 0, 0)
    # Swapped, the same evidence the other way.
    swapped = stats.paired_comparison(second, second=first, samples=500, seed=1)
    assert swapped["mean_difference"] == pytest.approx(-0.03)
    assert swapped["interval"][1] < 0 and swapped["p_value"] == pytest.approx(0.0625)
    with pytest.raises(ValueError, match="same length"):
        stats.paired_comparison([0.1, 0.2], second=[0.1])


def test_images_are_grouped_by_lesion_share_in_equal_counts():
    # A 10x20 image whose lesion has 30 pixels found and 10 missed covers 20% of it.
    assert metrics.lesion_share({"tp": 30, "fn": 10, "fp": 99, "height": 10, "width": 20}) == 0.2
    shares = [0.5, 0.1, 0.3, 0.2, 0.4]
    (small, low_1, high_1), (large, low_2, high_2) = stats.equal_count_groups(shares, groups=2)
    assert list(small) == [1, 3, 2] and (low_1, high_1) == (0.1, 0.3)  # the three smallest
    assert list(large) == [4, 0] and (low_2, high_2) == (0.4, 0.5)
    singles = stats.equal_count_groups(shares, groups=5)
    assert [list(g[0]) for g in singles] == [[1], [3], [2], [4], [0]]
    for groups in (0, 6):
        with pytest.raises(ValueError, match=f"cannot split 5 images into {groups} groups"):
            stats.equal_count_groups(shares, groups=groups)
