"""Two arms scored on the same images, compared image by image (`tools.compare`): each
arm one evaluate.py report (`per_image.csv`) or several of the same images (seeds of one
recipe, averaged per image), the paired difference over all images and within groups by
lesion area (`stats.paired_comparison`), and the run settings in which the arms' models
were trained differently, where their `flags.json` can be found. Loads no TensorFlow.
"""

import json
import os

from lesionseg_tf import config as config_lib
from lesionseg_tf import messages, metrics, report, stats
from lesionseg_tf.run_dir import RunDir


def read_rows(path, metric):
    """Image id -> row of a report, which must have a `metric` column."""
    rows = report.read_per_image(path)
    if not rows or metric not in rows[0]:
        raise ValueError(f"{path}: not a {report.PER_IMAGE_FILE} with a {metric} column")
    return {row["image_id"]: row for row in rows}


def seed_mean(scores, *, names):
    """Each image's mean score over several runs of one recipe (seeds), from their
    `{image id: score}`; undefined (None) where any run leaves it undefined.

    Raises:
      ValueError: a run scores other images than the first (`names` name them).
    """
    for name, run in zip(names[1:], scores[1:]):
        if set(run) != set(scores[0]):
            raise ValueError(f"{name} scores other images than {names[0]}")
    means = {}
    for image_id in scores[0]:
        values = [run[image_id] for run in scores]
        means[image_id] = None if None in values else sum(values) / len(values)
    return means


def read_arm(paths, metric):
    """Image id -> row of one arm: a report, or several comma-separated reports of the
    same images (seeds of one recipe), whose `metric` is then each image's mean over
    them (`seed_mean`); the other columns are the first report's.

    Raises:
      ValueError: a report is unreadable, or the reports score different images.
    """
    names = paths.split(",")
    reports = [read_rows(path, metric) for path in names]
    means = seed_mean(
        [{i: row[metric] for i, row in rows.items()} for rows in reports], names=names
    )
    return {image_id: {**row, metric: means[image_id]} for image_id, row in reports[0].items()}


def lesion_shares(first, second, ids, *, names):
    """The ground-truth lesion's share of each image, which both reports must agree on
    (the same masks scored at the same size)."""
    for path, rows in zip(names, (first, second)):
        if any(c not in rows[ids[0]] for c in ("tp", "fn", "height", "width")):
            raise ValueError(f"{path}: no tp, fn, height and width columns to measure lesions by")
    shares = [metrics.lesion_share(first[i]) for i in ids]
    differ = [
        i for i, share in zip(ids, shares) if abs(metrics.lesion_share(second[i]) - share) > 1e-3
    ]
    if differ:
        raise ValueError(
            f"the two reports' ground-truth lesions differ on {len(differ)} images "
            f"({messages.list_some(differ, limit=3)}): scored at other sizes or with other masks"
        )
    return shares


def training_settings(path):
    """The run settings (`config.recorded_settings`) of the model a `per_image.csv`
    scored, or None where they cannot be known: from the run folder of the model its
    `summary.json` names (`<run>/export`, a `.tflite` in `<run>`), else a `flags.json`
    beside the report or one folder up (a run collected with its reports, as under
    docs/study/), else the run folder above `<run>/evaluation/`. None for the report of
    a predictions folder (masks of no known model).
    """
    folder = os.path.dirname(os.path.abspath(path))
    try:
        scored = report.read_summary(folder).get("config", {})
    except (OSError, ValueError):
        scored = {}
    if scored.get("pred_dir"):
        return None
    candidates = [RunDir.of_export(scored["model"])] if scored.get("model") else []
    candidates += [RunDir(folder), RunDir(os.path.dirname(folder))]
    parts = folder.split(os.sep)
    if RunDir.EVALUATION in parts[:-1]:
        last = len(parts) - 1 - parts[::-1].index(RunDir.EVALUATION)
        candidates.append(RunDir(os.sep.join(parts[:last])))
    for run in candidates:
        if os.path.isfile(run.file(RunDir.CONFIG)):
            return run.settings()
    return None


# Run settings that name where a run's files were, not how it trained.
_NOT_COMPARED = ("data_dir", "dataset")


def settings_line(first_paths, second_paths):
    """The line saying in which run settings the two arms' models were trained
    differently (each arm's values over its reports: `0/1` for two seeds), or the same;
    None where a report's settings cannot be found (`training_settings`).
    """
    arms = []
    for paths in (first_paths, second_paths):
        settings = [training_settings(path) for path in paths.split(",")]
        if None in settings:
            return None
        arms.append(
            {
                name: "/".join(dict.fromkeys(_shown(s[name]) for s in settings))
                for name in config_lib.RUN_FIELDS
                if name not in _NOT_COMPARED
            }
        )
    first, second = arms
    differ = [
        f"{name} {first[name]} vs {second[name]}" for name in first if first[name] != second[name]
    ]
    if not differ:
        return "run settings (each run's flags.json): the same"
    return "run settings that differ (each run's flags.json): " + "; ".join(differ)


def _shown(value):
    return value if isinstance(value, str) else json.dumps(value)


def compare_reports(first_paths, second_paths, *, metric, samples, lesion_area_groups=0):
    """The lines `tools.compare` prints: the run settings the arms' models were
    trained with differently (`settings_line`, where known), which images were left
    out (where `metric` is undefined in either arm), the comparison over the rest, then
    one per group of `lesion_area_groups` (0: none) of equal count by the ground-truth
    lesion's share.

    Raises:
      ValueError: a report is unreadable, the arms score different images, or `metric`
        is undefined on every image.
    """
    first, second = (read_arm(paths, metric) for paths in (first_paths, second_paths))
    if set(first) != set(second):
        only = sorted(set(first) ^ set(second))
        raise ValueError(
            f"the files score different images ({len(only)} in one only: "
            f"{messages.list_some(only, limit=3)})"
        )
    ids = sorted(i for i in first if first[i][metric] is not None and second[i][metric] is not None)
    if not ids:
        raise ValueError(f"{metric} is undefined on every image in one report or both")
    groups = []
    if lesion_area_groups:
        shares = lesion_shares(first, second, ids, names=(first_paths, second_paths))
        groups = stats.equal_count_groups(shares, groups=lesion_area_groups)
    lines = []
    settings = settings_line(first_paths, second_paths)
    if settings:
        lines.append(settings)
    if len(ids) < len(first):
        lines.append(
            f"{len(first) - len(ids)} of {len(first)} images left out: {metric} is "
            "undefined there (an empty mask) in one report or both"
        )

    def compare(chosen, heading=None):
        comparison = stats.paired_comparison(
            [first[i][metric] for i in chosen],
            second=[second[i][metric] for i in chosen],
            samples=samples,
            seed=0,
        )
        return stats.format_comparison(
            comparison,
            first_name=first_paths,
            second_name=second_paths,
            metric=metric,
            heading=heading,
        )

    lines.append(compare(ids))
    for number, (indices, lowest, highest) in enumerate(groups, start=1):
        heading = (
            f"group {number} of {len(groups)} by lesion area: lesions covering "
            f"{lowest:.1%} to {highest:.1%} of the photograph, {len(indices)} images:"
        )
        lines.append(compare([ids[k] for k in indices], heading=heading))
    return lines
