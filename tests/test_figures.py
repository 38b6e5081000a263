"""The report figures: what they show, not how they look."""

import numpy as np
import pytest

from lesionseg_tf import figures


def test_the_histogram_counts_images_in_whole_numbers():
    # Few images: matplotlib would otherwise put ticks at 0.5, 1.5, 2.5.
    _, axis = figures.histogram_figure([0.55, 0.56, 0.9], title="t", reference=0.642)
    ticks = axis.get_yticks()
    assert len(ticks) >= 2 and np.all(ticks == np.round(ticks)), ticks
    heights = [patch.get_height() for patch in axis.patches]
    assert sorted(h for h in heights if h) == [1, 2]  # 0.55 and 0.56 share a bin


def test_study_runs_stand_centred_on_their_own_size():
    # (size, jaccard, low, high, recipe, seed, network): three recipes at 64, one at 128.
    points = [
        (64, 0.74, 0.7, 0.78, "a", 0, "none"),
        (64, 0.74, 0.7, 0.78, "a", 1, "none"),
        (64, 0.73, 0.7, 0.77, "b", 0, "none"),
        (64, 0.73, 0.7, 0.77, "c", 0, "image_pooling"),
        (128, 0.70, 0.66, 0.75, "d", 0, "none"),
    ]
    x = figures.study_positions(points, step=0.03, seed_step=0.012)
    assert x[4] == 128  # alone at its size: on the tick, whatever 64 holds
    assert x[2] == 64 and x[0] == pytest.approx(64 * 0.97)  # recipes centred on 64
    assert x[3] == pytest.approx(64 * 1.03)
    assert x[1] == pytest.approx(64 * (0.97 + 0.012))  # a second seed beside the first


@pytest.mark.parametrize("count", [3, 10, 18, 20])
def test_recipes_side_by_side_never_share_a_hue(count):
    import colorsys  # pylint: disable=import-outside-toplevel

    import matplotlib.colors  # pylint: disable=import-outside-toplevel

    colours = [matplotlib.colors.to_rgb(c) for c in figures.distinct_colours(count)]
    assert len(set(colours)) == count  # one each
    hues = [colorsys.rgb_to_hsv(*c)[0] for c in colours]
    for a, b in zip(hues, hues[1:]):  # the grey shades (no hue) differ from any hue
        assert min(abs(a - b), 1 - abs(a - b)) > 0.02 or a == b == 0.0, (a, b)


def test_each_input_side_is_labelled_with_the_share_the_field_covers():
    assert figures.size_tick_label(64, receptive_field=77) == "64\n100%"
    assert figures.size_tick_label(96, receptive_field=77) == "96\n80%"
    assert figures.size_tick_label(448, receptive_field=77) == "448\n17%"
    assert figures.size_tick_label(448) == "448"
