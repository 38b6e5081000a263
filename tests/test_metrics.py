import numpy as np
import pytest

from lesionseg_tf.metrics import PerImageJaccard


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
