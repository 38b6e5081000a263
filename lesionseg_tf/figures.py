"""Figures for a report: per-image Jaccard histogram, best/median/worst contact
sheet, and a run's learning curves, written as PNG with matplotlib.

    python -m tools.learning_curves --run_dir=runs/lesionseg

evaluate.py --figures writes the other two beside its summary.json.
"""

import csv
import io
import os
import textwrap

import cv2
import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402  pylint: disable=wrong-import-position
import numpy as np  # noqa: E402  pylint: disable=wrong-import-position
from matplotlib.ticker import MaxNLocator  # noqa: E402  pylint: disable=wrong-import-position

from lesionseg_tf import files  # noqa: E402  pylint: disable=wrong-import-position

HISTOGRAM_FILE = "jaccard_histogram.png"
CONTACT_SHEET_FILE = "best_median_worst.png"


def _save(figure, path):
    """Writes a figure as PNG atomically (a reader never sees half a file)."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    plt.close(figure)
    files.write_atomically(path, payload=buffer.getvalue())
    return path


def jaccard_histogram(jaccards, *, path, title, reference=None, reference_label=None):
    """Histogram of per-image Jaccard indices, with their mean (and an optional
    reference value, such as the paper's) marked, written to `path`."""
    figure, _ = histogram_figure(
        jaccards, title=title, reference=reference, reference_label=reference_label
    )
    return _save(figure, path)


def histogram_figure(jaccards, *, title, reference=None, reference_label=None):
    """`jaccard_histogram`'s `(figure, axis)`, not yet saved."""
    values = np.asarray(jaccards, np.float64)
    figure, axis = plt.subplots(figsize=(6, 3.6))
    axis.hist(values, bins=np.linspace(0, 1, 21), color="#4c72b0", edgecolor="white")
    axis.axvline(
        values.mean(),
        color="black",
        linestyle="-",
        label=f"mean {values.mean():.3f} ({len(values)} images)",
    )
    if reference is not None:
        axis.axvline(
            reference, color="#c44e52", linestyle="--", label=reference_label or f"{reference:.3f}"
        )
    axis.set_xlabel("per-image Jaccard")
    axis.set_ylabel("images")
    axis.yaxis.set_major_locator(MaxNLocator(integer=True))  # counts are whole numbers
    axis.set_xlim(0, 1)
    axis.set_title(title)
    axis.legend(loc="upper left")
    return figure, axis


def contact_sheet(panels, *, path, title):
    """Pictures side by side, each titled.

    Args:
      panels: `(caption, picture)` pairs; picture `[h, w, 3]` uint8 RGB (for
        example `overlay` output turned to RGB).
    """
    figure, axes = plt.subplots(1, len(panels), figsize=(4 * len(panels), 4.4))
    for axis, (caption, picture) in zip(np.atleast_1d(axes), panels):
        axis.imshow(picture)
        axis.set_title(caption, fontsize=10)
        axis.axis("off")
    figure.suptitle(title + "\npredicted outline green, ground truth magenta", fontsize=11)
    return _save(figure, path)


def read_training_log(csv_path):
    """`training_log.csv` -> `{column: [values by epoch]}` (epochs 1-based)."""
    if not os.path.exists(csv_path):
        raise FileNotFoundError(f"{csv_path}: no training log (is this a train.py run folder?)")
    with open(csv_path, newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        raise ValueError(f"{csv_path}: no epochs logged yet")
    columns = {key: [float(row[key]) for row in rows] for key in rows[0]}
    epochs = [int(e) for e in columns["epoch"]]
    # Logs of Keras' CSVLogger count epochs from 0; this project's from 1.
    columns["epoch"] = [e + 1 for e in epochs] if epochs[0] == 0 else epochs
    return columns


def learning_curves(csv_path, *, path, title, selection_label="held-out"):
    """Loss and per-image Jaccard per epoch, training and selection set, from a
    run's `training_log.csv`; the best selection epoch is marked."""
    log = read_training_log(csv_path)
    best = int(np.argmax(log["val_jaccard"]))
    figure, (loss_axis, jaccard_axis) = plt.subplots(1, 2, figsize=(10, 3.6))
    for axis, metric, label in (
        (loss_axis, "loss", "cross-entropy loss"),
        (jaccard_axis, "jaccard", "per-image Jaccard"),
    ):
        axis.plot(log["epoch"], log[metric], label="training", color="#4c72b0")
        axis.plot(log["epoch"], log[f"val_{metric}"], label=selection_label, color="#dd8452")
        axis.axvline(
            log["epoch"][best],
            color="grey",
            linestyle=":",
            label=f"best {selection_label} epoch ({log['epoch'][best]})",
        )
        axis.set_xlabel("epoch")
        axis.xaxis.set_major_locator(MaxNLocator(integer=True))
        axis.set_ylabel(label)
        axis.grid(alpha=0.3)
    loss_axis.set_yscale("log")
    jaccard_axis.set_ylim(0, 1)
    jaccard_axis.legend(loc="lower right")
    figure.suptitle(title)
    return _save(figure, path)


def study_positions(points, *, step=0.03, seed_step=0.012):
    """Where `study_figure` draws each run on its log-scale size axis: the recipes
    present at one size side by side (in the order of `points`) and centred on it,
    the seeds of one recipe a smaller step apart, so a size with one run draws it
    on its tick whatever other sizes hold.

    Args:
      points: as `study_figure`'s; only the size (0) and recipe (4) are read.
      step, seed_step: the gaps between recipes and between seeds, as shares of
        the size.

    Returns:
      the x of each point, in their order.
    """
    at_size = {}  # size -> its recipes in the order they come
    for point in points:
        at_size.setdefault(point[0], {})[point[4]] = None
    drawn = {}  # (size, recipe) -> runs drawn there so far
    positions = []
    for point in points:
        size, recipe = point[0], point[4]
        recipes = list(at_size[size])
        shift = drawn.get((size, recipe), 0)
        drawn[(size, recipe)] = shift + 1
        positions.append(
            size * (1 + step * (recipes.index(recipe) - (len(recipes) - 1) / 2) + seed_step * shift)
        )
    return positions


def study_figure(points, *, outside, path, title, receptive_field=None):
    """Validation Jaccard against the network's input side, one point per run with
    its 95% interval (runs of one recipe share a colour, seeds side by side; circles
    for Table 1, squares for the network with the context branch), the outside points
    as open diamonds labelled beside them, and the legend below the axes.

    Args:
      points: `(image_size, jaccard, low, high, recipe, seed, network)` per run
        (`study.size_points`).
      outside: `(label, image_size, jaccard)` of results not made here.
      receptive_field: when given, each size is labelled with the share of the
        input side one output pixel sees.
    """
    figure, axis = plt.subplots(figsize=(8, 4.8))
    recipes = list(dict.fromkeys(p[4] for p in points))
    colours = distinct_colours(len(recipes))
    labelled = set()
    for (_, value, low, high, recipe, _, network), x in zip(points, study_positions(points)):
        axis.errorbar(
            [x],
            [value],
            yerr=[[value - low], [high - value]],
            fmt="o" if network == "none" else "s",
            color=colours[recipes.index(recipe)],
            capsize=3,
            label=None if recipe in labelled else recipe,
        )
        labelled.add(recipe)
    for label, size, value in outside:
        axis.plot(
            [size], [value], marker="D", markerfacecolor="none", color="black", linestyle="none"
        )
        axis.annotate(
            textwrap.fill(label, 30),
            (size, value),
            textcoords="offset points",
            xytext=(-7, 0),
            ha="right",
            va="center",
            fontsize=7.5,
        )
    _size_axes(axis, points, outside=outside, receptive_field=receptive_field)
    axis.grid(alpha=0.3)
    axis.legend(loc="upper center", bbox_to_anchor=(0.5, -0.2), fontsize=8, frameon=False)
    axis.set_title(title)
    return _save(figure, path)


def distinct_colours(count):
    """`count` colours for as many recipes, one each: matplotlib's ten default ones,
    or for more tab20's ten dark shades then its ten light ones, so that recipes side
    by side in the legend never share a hue (tab20 in its own order pairs each dark
    shade with its light one); past twenty they repeat."""
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    if count > len(colours):
        tab20 = list(plt.get_cmap("tab20").colors)
        colours = tab20[0::2] + tab20[1::2]
    return [colours[i % len(colours)] for i in range(count)]


def size_tick_label(size, *, receptive_field=None):
    """The label of an input side on `study_figure`'s axis: the side, and below it
    the share of it a `receptive_field`-pixel field covers (the axis title says so)."""
    if receptive_field is None:
        return str(size)
    return f"{size}\n{min(1.0, receptive_field / size):.0%}"


def _size_axes(axis, points, *, outside, receptive_field):
    """`study_figure`'s axes: the input sides on a log scale, each labelled with the
    share the receptive field covers where given, and the Jaccard range shown."""
    sizes = sorted({p[0] for p in points} | {o[1] for o in outside})
    axis.set_xscale("log", base=2)
    axis.set_xticks(sizes)
    axis.set_xticklabels([size_tick_label(s, receptive_field=receptive_field) for s in sizes])
    axis.set_xlim(sizes[0] / 1.3, sizes[-1] * 1.3)
    lowest = min([p[2] for p in points] + [o[2] for o in outside])
    highest = max([p[3] for p in points] + [o[2] for o in outside])
    axis.set_ylim(lowest - 0.03, highest + 0.02)
    axis.set_xlabel(
        "network input side (pixels)"
        + (
            f"; the share of it a {receptive_field}-pixel receptive field covers"
            if receptive_field
            else ""
        )
    )
    axis.set_ylabel("validation per-image mean Jaccard")


def overlay(image, *, predicted, truth=None, max_side=2000):
    """A picture for a person: the photograph with the predicted lesion outline in
    green and, when given, the ground-truth outline in magenta.

    Args:
      image: `[H, W, 3]` uint8 RGB. predicted, truth: `[H, W]` uint8 0/255.
      max_side: the picture is shrunk so its longer side is at most this.

    Returns:
      `[h, w, 3]` uint8 BGR (OpenCV's order, for `cv2.imencode`).
    """
    height, width = image.shape[:2]
    scale = min(1.0, max_side / max(height, width))
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    picture = cv2.resize(image[..., ::-1], size, interpolation=cv2.INTER_AREA)
    thickness = max(2, round(max(size) / 400))
    outlines = [(truth, (255, 0, 255)), (predicted, (0, 255, 0))]
    for mask, colour in outlines:
        if mask is None:
            continue
        small = cv2.resize(mask, size, interpolation=cv2.INTER_NEAREST)
        contours, _ = cv2.findContours(small, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
        cv2.drawContours(picture, contours, -1, colour, thickness, cv2.LINE_AA)
    return np.ascontiguousarray(picture)
