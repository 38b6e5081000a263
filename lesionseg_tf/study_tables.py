"""The study's table, paired comparisons and figure points, from the runs `study`
reads (`python -m tools.study` writes them to `docs/study/`). Imports no TensorFlow."""

import itertools
import os

import numpy as np

from lesionseg_tf import figures, files, stats, study, study_ingredients
from lesionseg_tf.config import PAPER_JACCARD, SETTINGS_BEFORE_RECORDED
from lesionseg_tf.study import HOLDOUT_DIR
from lesionseg_tf.table1 import TABLE_1, receptive_field

TABLE_FILE = "table.md"
FIGURE_FILE = "validation_jaccard_by_input_size.png"

# Validation scores from outside this project, drawn beside the study's runs but
# never pooled with them: (label, input side, per-image mean Jaccard).
OUTSIDE_POINTS = (
    ("paper (Ramachandram & DeVries 2017), ISIC leaderboard", 448, PAPER_JACCARD),
    ("maintainers' PyTorch Table 1 on a GPU, constant rate, blind selection", 256, 0.686),
)


def _mean_sd(values):
    return float(np.mean(values)), (float(np.std(values, ddof=1)) if len(values) > 1 else None)


def table_rows(runs):
    """One row per recipe: its runs and seeds; the mean and sample SD over them
    (None for one seed) of the validation and the held-out (selection) Jaccard;
    each run's held-out Jaccard at the photographs' resolution (None where not
    scored); best epoch / epochs run of each (`StudyRun.epochs`)."""
    rows = []
    for recipe, group in itertools.groupby(
        sorted(runs, key=lambda r: (r.image_size, r.recipe, r.seed)), key=lambda r: r.recipe
    ):
        group = list(group)
        validation = [r.validation_jaccard for r in group]
        held_out = [r.selection_jaccard for r in group if r.selection_jaccard is not None]
        rows.append(
            {
                "recipe": recipe,
                "runs": [r.name for r in group],
                "seeds": [r.seed for r in group],
                **dict(zip(("validation_mean", "validation_sd"), _mean_sd(validation))),
                "validation": validation,
                "intervals": [r.validation_interval for r in group],
                **dict(
                    zip(
                        ("held_out_mean", "held_out_sd"),
                        _mean_sd(held_out) if held_out else (None, None),
                    )
                ),
                "holdout": [r.holdout_jaccard for r in group],
                "epochs": [r.epochs for r in group],
            }
        )
    return rows


def compare_runs(first, *, second, split="validation", samples=2000, seed=0):
    """`stats.paired_comparison` of two runs' per-image Jaccards on `split`:
    "validation", or "holdout" (the held-out pairs at the photographs' resolution).

    Raises:
      ValueError: the two runs were scored on different images, or a run's
        held-out pairs were not scored.
    """
    if split not in ("validation", "holdout"):
        raise ValueError(f"split must be validation or holdout, got {split!r}")
    scores = []
    for run in (first, second):
        values = run.jaccards if split == "validation" else run.holdout
        if values is None:
            raise ValueError(f"{run.name}: its held-out pairs were not scored ({HOLDOUT_DIR}/)")
        scores.append(values)
    return stats.paired_by_image(
        scores[0],
        second=scores[1],
        mismatch=f"{first.name} and {second.name} were scored on different images ({split})",
        samples=samples,
        seed=seed,
    )


def _differences(a, b):
    """The settings (and the seed) in which two runs differ, by name."""
    first, second = a.settings(), b.settings()
    return [k for k in first if first[k] != second[k]] + (["seed"] if a.seed != b.seed else [])


def _comes_first(setting, value):
    """Orders a pair that differs in one setting: the larger input, the more epochs,
    the context network, the other precision, the other loss, the added augmentation,
    the final model without selection first (first minus second)."""
    if setting in ("network", "precision"):
        return value != "none"
    if setting == "loss":
        return value != SETTINGS_BEFORE_RECORDED["loss"]
    if setting == "selection":  # the final model, trained on every pair, first
        return value == "none"
    return value


def comparisons(runs, *, reference):
    """The study's paired comparisons: every two runs that differ in one setting
    alone (`StudyRun.settings`; their seeds may differ), the larger value (or the
    non-default network or precision) first; then every other run against
    `reference` (a run name). Ordered by the first run's name, then the second's.

    Returns:
      `[{"first", "second", "differs", "validation", "holdout"}]`: the run names,
      what differs between them, and the `stats.paired_comparison` on the
      validation images and on the held-out pairs at the photographs' resolution
      (None unless both runs were scored there).
    """
    by_name = {r.name: r for r in runs}
    if reference not in by_name:
        raise ValueError(f"no study run named {reference!r}; there are {', '.join(by_name)}")
    pairs = []
    for a, b in itertools.combinations(runs, 2):
        settings = [k for k in _differences(a, b) if k != "seed"]
        if len(settings) == 1:
            setting = settings[0]
            a_first = _comes_first(setting, a.settings()[setting]) > _comes_first(
                setting, b.settings()[setting]
            )
            pairs.append((a, b) if a_first else (b, a))
    paired = {frozenset((a.name, b.name)) for a, b in pairs}
    pairs += [
        (r, by_name[reference])
        for r in runs
        if r.name != reference and frozenset((r.name, reference)) not in paired
    ]
    return [
        {
            "first": a.name,
            "second": b.name,
            "differs": _differences(a, b),
            "validation": compare_runs(a, second=b),
            "holdout": (
                compare_runs(a, second=b, split="holdout")
                if a.holdout is not None and b.holdout is not None
                else None
            ),
        }
        for a, b in sorted(pairs, key=lambda pair: (pair[0].name, pair[1].name))
    ]


def _number(value, sd=None):
    if value is None:
        return "-"
    return f"{value:.3f}" + (f" ± {sd:.3f}" if sd is not None else "")


def _holdout_cell(row):
    """The held-out Jaccard at the photographs' resolution of a recipe's runs: the
    mean ± SD when every seed was scored so, else each scored seed's value."""
    scored = [
        (seed, value) for seed, value in zip(row["seeds"], row["holdout"]) if value is not None
    ]
    if not scored:
        return "-"
    if len(scored) == len(row["seeds"]):
        return _number(*_mean_sd([value for _, value in scored]))
    return ", ".join(f"{value:.3f} (seed {seed})" for seed, value in scored)


def _comparison_rows(found, split):
    lines = [
        "| first | second | differs in | mean difference (95% CI) | Wilcoxon p | first "
        "better / worse / equal |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for pair in found:
        c = pair[split]
        if c is None:
            continue
        low, high = c["interval"]
        p_value = "undefined" if c["p_value"] is None else f"{c['p_value']:.3g}"
        lines.append(
            f"| {pair['first']} | {pair['second']} | {', '.join(pair['differs'])} | "
            f"{c['mean_difference']:+.4f} ({low:+.4f} to {high:+.4f}) | {p_value} | "
            f"{c['better']} / {c['worse']} / {c['ties']} |"
        )
    return lines


def _run_rows(runs):
    """The table of runs, one row each by name: validation and held-out Jaccard with
    their 95% intervals."""
    lines = [
        "| run | seed | validation Jaccard (95% bootstrap CI over images) | held-out "
        "Jaccard at the photographs' resolution (95% CI) |",
        "| --- | --- | --- | --- |",
    ]
    for r in sorted(runs, key=lambda r: r.name):
        low, high = r.validation_interval
        holdout = "-"
        if r.holdout_summary is not None:
            h_low, h_high = r.holdout_summary["confidence_95"]["jaccard"]
            holdout = f"{r.holdout_jaccard:.4f} ({h_low:.4f}-{h_high:.4f})"
        lines.append(
            f"| {r.name} | {r.seed} | {r.validation_jaccard:.4f} ({low:.4f}-{high:.4f}) "
            f"| {holdout} |"
        )
    return lines


def markdown(runs, *, reference):
    """The study as Markdown: the table by recipe, the runs, the paired comparisons
    on the validation images and on the held-out pairs."""
    lines = [
        "| recipe | seeds | validation Jaccard (mean ± SD over seeds) | held-out Jaccard "
        "at the input size (selection) | held-out Jaccard at the photographs' resolution "
        "(export) | best epoch / epochs run |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for row in table_rows(runs):
        epochs = ", ".join(row["epochs"])
        lines.append(
            f"| {row['recipe']} | {', '.join(map(str, row['seeds']))} | "
            f"{_number(row['validation_mean'], row['validation_sd'])} | "
            f"{_number(row['held_out_mean'], row['held_out_sd'])} | "
            f"{_holdout_cell(row)} | {epochs} |"
        )
    for label, size, value in OUTSIDE_POINTS:
        lines.append(f"| outside point: {label}, {size}x{size} | - | {value:.3f} | - | - | - |")
    lines += ["", *_run_rows(runs)]
    found = comparisons(runs, reference=reference)
    method = (
        "first minus second; 95% paired bootstrap interval, 2000 resamples, seed 0; "
        "two-sided Wilcoxon signed-rank test"
    )
    lines += ["", f"Paired comparisons on the 150 validation images ({method}):", ""]
    lines += _comparison_rows(found, "validation")
    lines += [
        "",
        "The same on the held-out training pairs scored at the photographs' "
        f"resolution through each export, where both runs were ({method}):",
        "",
    ]
    lines += _comparison_rows(found, "holdout")
    return "\n".join(lines + study_ingredients.markdown_lines(runs)) + "\n"


def size_points(runs):
    """What the figure draws: per run `(image_size, Jaccard, low, high, recipe, seed,
    network)`, the network its context option ("none": Table 1)."""
    return [
        (r.image_size, r.validation_jaccard, *r.validation_interval, r.recipe, r.seed, r.context)
        for r in sorted(runs, key=lambda r: (r.image_size, r.recipe, r.seed))
    ]


def write_table_and_figure(study_dir, *, output_dir, reference):
    """Reads every run under `study_dir` and writes `TABLE_FILE` (`markdown`) and
    `FIGURE_FILE` (validation Jaccard by input size) to `output_dir`: `(table, table
    path, figure path)`.

    Raises:
      OSError, ValueError: no run, an unreadable run, or an unknown `reference`.
    """
    runs = study.read_study(study_dir)
    table = markdown(runs, reference=reference)
    os.makedirs(output_dir, exist_ok=True)
    table_path = os.path.join(output_dir, TABLE_FILE)
    files.write_atomically(table_path, payload=table)
    figure = figures.study_figure(
        size_points(runs),
        outside=OUTSIDE_POINTS,
        path=os.path.join(output_dir, FIGURE_FILE),
        title="LesionSeg on ISIC 2017 validation, selected blind (95% CI over images)",
        receptive_field=receptive_field(TABLE_1),
    )
    return table, table_path, figure
