"""Figures for a report: per-image Jaccard histogram, best/median/worst contact
sheet, and a run's learning curves, written as PNG with matplotlib.

    python -m tools.learning_curves --run_dir=runs/lesionseg

evaluate.py --figures writes the other two beside its summary.json.
"""

import csv
import io
import os

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402  pylint: disable=wrong-import-position
from matplotlib.ticker import MaxNLocator  # noqa: E402  pylint: disable=wrong-import-position
import numpy as np  # noqa: E402  pylint: disable=wrong-import-position

from lesionseg_tf import files  # noqa: E402  pylint: disable=wrong-import-position

HISTOGRAM_FILE = "jaccard_histogram.png"
CONTACT_SHEET_FILE = "best_median_worst.png"


def _save(figure, path):
    """Writes a figure as PNG atomically (a reader never sees half a file)."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    plt.close(figure)
    files.write_atomically(path, buffer.getvalue())
    return path


def jaccard_histogram(jaccards, path, *, title, reference=None, reference_label=None):
    """Histogram of per-image Jaccard indices, with their mean (and an optional
    reference value, such as the paper's) marked."""
    values = np.asarray(jaccards, np.float64)
    figure, axis = plt.subplots(figsize=(6, 3.6))
    axis.hist(values, bins=np.linspace(0, 1, 21), color="#4c72b0", edgecolor="white")
    axis.axvline(values.mean(), color="black", linestyle="-",
                 label=f"mean {values.mean():.3f} ({len(values)} images)")
    if reference is not None:
        axis.axvline(reference, color="#c44e52", linestyle="--",
                     label=reference_label or f"{reference:.3f}")
    axis.set_xlabel("per-image Jaccard")
    axis.set_ylabel("images")
    axis.set_xlim(0, 1)
    axis.set_title(title)
    axis.legend(loc="upper left")
    return _save(figure, path)


def contact_sheet(panels, path, *, title):
    """Pictures side by side, each titled.

    Args:
      panels: `(caption, picture)` pairs; picture `[h, w, 3]` uint8 RGB (for
        example `inference.overlay` output turned to RGB).
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
    # Logs written before epochs were counted from 1 here (Keras' CSVLogger) start at 0.
    columns["epoch"] = [e + 1 for e in epochs] if epochs[0] == 0 else epochs
    return columns


def learning_curves(csv_path, path, *, title, selection_label="held-out"):
    """Loss and per-image Jaccard per epoch, training and selection set, from a
    run's `training_log.csv`; the best selection epoch is marked."""
    log = read_training_log(csv_path)
    best = int(np.argmax(log["val_jaccard"]))
    figure, (loss_axis, jaccard_axis) = plt.subplots(1, 2, figsize=(10, 3.6))
    for axis, metric, label in ((loss_axis, "loss", "cross-entropy loss"),
                                (jaccard_axis, "jaccard", "per-image Jaccard")):
        axis.plot(log["epoch"], log[metric], label="training", color="#4c72b0")
        axis.plot(log["epoch"], log[f"val_{metric}"], label=selection_label, color="#dd8452")
        axis.axvline(log["epoch"][best], color="grey", linestyle=":",
                     label=f"best {selection_label} epoch ({log['epoch'][best]})")
        axis.set_xlabel("epoch")
        axis.xaxis.set_major_locator(MaxNLocator(integer=True))
        axis.set_ylabel(label)
        axis.grid(alpha=0.3)
    loss_axis.set_yscale("log")
    jaccard_axis.set_ylim(0, 1)
    jaccard_axis.legend(loc="lower right")
    figure.suptitle(title)
    return _save(figure, path)
