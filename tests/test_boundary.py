"""HD95 and ASSD (`metrics.boundary_distances`): worked out by hand on small masks, and
held to DeepMind's `surface-distance` (a test-only dependency) on the example masks and
on random ones."""

import glob
import os
import warnings

import cv2
import numpy as np
import pytest

from lesionseg_tf import images, metrics
from tests.conftest import REPO_ROOT

with warnings.catch_warnings():  # its scipy.ndimage.morphology import is deprecated
    warnings.simplefilter("ignore", DeprecationWarning)
    import surface_distance


def square(top, left, side, shape=(40, 40)):
    mask = np.zeros(shape, bool)
    mask[top : top + side, left : left + side] = True
    return mask


def reference(truth, prediction):
    """DeepMind's HD95, and the mean of its two directed average distances."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        distances = surface_distance.compute_surface_distances(truth, prediction, (1.0, 1.0))
        hd95 = surface_distance.compute_robust_hausdorff(distances, 95)
        assd = np.mean(surface_distance.compute_average_surface_distance(distances))
    return hd95, assd


def test_identical_masks_are_zero_apart():
    mask = square(5, 7, 12)
    assert metrics.boundary_distances(mask, prediction=mask) == {
        "hd95": 0.0,
        "assd": 0.0,
        "boundary_undefined": None,
    }


@pytest.mark.parametrize("k", [1, 3, 7])
def test_one_pixel_shifted_by_k(k):
    """One pixel's border is its 4 corners, each carrying half a diagonal. Shifted k to
    the right, two corners are k from the other's nearest corner and two are k - 1:
    the directed averages are both k - 0.5 and the 95th percentile is k."""
    distances = metrics.boundary_distances(square(10, 10, 1), prediction=square(10, 10 + k, 1))
    assert distances["hd95"] == pytest.approx(k)
    assert distances["assd"] == pytest.approx(k - 0.5)


@pytest.mark.parametrize("k", [1, 2, 4])
def test_square_shifted_by_k(k):
    """A 10-pixel square against itself shifted k (< 5) to the right: no border point
    is farther than k from the other border, and the two trailing sides (11 corners
    each, a quarter of the contour) are exactly k away, so HD95 is k."""
    distances = metrics.boundary_distances(square(10, 10, 10), prediction=square(10, 10 + k, 10))
    assert distances["hd95"] == pytest.approx(k)
    assert 0 < distances["assd"] < k


def test_square_inside_a_square_by_hand():
    """A 6-pixel square centred in a 10-pixel one (2 pixels of margin).
    Inner border to outer: every corner point is 2 away. Outer to inner: of the 40
    corner points, 28 side points (length 1 each) are 2 away, the 8 next to a corner
    (length 1) sqrt(5), the 4 corners (half a diagonal each) 2*sqrt(2). So the outer
    directed average is (28*2 + 8*sqrt(5) + 4*(sqrt(2)/2)*2*sqrt(2)) / (36 + 2*sqrt(2)),
    its 95th percentile falls among the corners (36 / (36 + 2*sqrt(2)) < 0.95):
    HD95 = 2*sqrt(2)."""
    outer, inner = square(10, 10, 10), square(12, 12, 6)
    outer_average = (28 * 2 + 8 * np.sqrt(5) + 4 * 2.0) / (36 + 2 * np.sqrt(2))
    for truth, prediction in ((outer, inner), (inner, outer)):
        distances = metrics.boundary_distances(truth, prediction=prediction)
        assert distances["hd95"] == pytest.approx(2 * np.sqrt(2))
        assert distances["assd"] == pytest.approx((outer_average + 2.0) / 2)


def test_disk_inside_a_larger_disk():
    """Concentric disks of radii 20 and 14: the borders are 6 apart, to within the
    pixel grid's staircase."""
    yy, xx = np.mgrid[:64, :64]
    radius = np.hypot(yy - 31.5, xx - 31.5)
    distances = metrics.boundary_distances(radius < 20, prediction=radius < 14)
    assert abs(distances["hd95"] - 6) <= 1 and abs(distances["assd"] - 6) <= 0.5


@pytest.mark.parametrize(
    "truth,prediction,why",
    [
        (np.zeros((8, 8), bool), square(1, 1, 3, (8, 8)), "empty_truth"),
        (square(1, 1, 3, (8, 8)), np.zeros((8, 8), bool), "empty_prediction"),
        (np.zeros((8, 8), bool), np.zeros((8, 8), bool), "both_empty"),
    ],
)
def test_an_empty_mask_leaves_the_distances_undefined_and_says_why(truth, prediction, why):
    assert metrics.boundary_distances(truth, prediction=prediction) == {
        "hd95": None,
        "assd": None,
        "boundary_undefined": why,
    }


def test_agrees_with_surface_distance_on_the_example_masks():
    paths = sorted(glob.glob(os.path.join(REPO_ROOT, "examples", "*GroundTruth", "*.png")))
    assert len(paths) == 3
    for path in paths:
        truth = metrics.binarize(images.read_mask_file(path))
        # Predictions unlike the truth in several ways: eroded, shifted, and both.
        eroded = cv2.erode(truth.astype(np.uint8), np.ones((15, 15), np.uint8)) > 0
        shifted = np.roll(truth, (9, -23), axis=(0, 1))
        for prediction in (eroded, shifted, np.roll(eroded, 40, axis=1)):
            distances = metrics.boundary_distances(truth, prediction=prediction)
            hd95, assd = reference(truth, prediction)
            assert distances["hd95"] == pytest.approx(hd95, rel=1e-9), path
            assert distances["assd"] == pytest.approx(assd, rel=1e-9), path


def test_agrees_with_surface_distance_on_random_masks():
    rng = np.random.default_rng(7)
    for trial in range(40):
        shape = tuple(rng.integers(5, 50, size=2))
        # Blobs of several sizes, some touching the image's edge.
        truth, prediction = (
            cv2.GaussianBlur(rng.random(shape), (0, 0), rng.uniform(0.5, 4)) > rng.uniform(0.4, 0.6)
            for _ in range(2)
        )
        if not (truth.any() and prediction.any()):
            continue
        distances = metrics.boundary_distances(truth, prediction=prediction)
        hd95, assd = reference(truth, prediction)
        assert distances["hd95"] == pytest.approx(hd95, rel=1e-9), trial
        assert distances["assd"] == pytest.approx(assd, rel=1e-9), trial
