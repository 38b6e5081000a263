"""The report figures: what they show, not how they look."""

import numpy as np

from lesionseg_tf import figures


def test_the_histogram_counts_images_in_whole_numbers():
    # Few images: matplotlib would otherwise put ticks at 0.5, 1.5, 2.5.
    _, axis = figures.histogram_figure([0.55, 0.56, 0.9], title="t", reference=0.642)
    ticks = axis.get_yticks()
    assert len(ticks) >= 2 and np.all(ticks == np.round(ticks)), ticks
    heights = [patch.get_height() for patch in axis.patches]
    assert sorted(h for h in heights if h) == [1, 2]  # 0.55 and 0.56 share a bin
