"""The reproduction study: train.py runs of the paper's recipe on ISIC 2017 by input
size, seed and learning-rate rule, each selected on held-out training pairs and then
scored blind on the validation split.

Everything here reads the small files a run leaves in `docs/study/<run>/`
(`STUDY_FILES`: its configuration, held-out ids, training log and result, and
evaluate.py's validation report), so the table, the paired comparisons and the
figure are made again without the data or the weights (`python -m tools.study`).
Imports no TensorFlow.
"""

import dataclasses
import itertools
import json
import os

import numpy as np

from lesionseg_tf import files, metrics, report
from lesionseg_tf.report import PER_IMAGE_FILE, SUMMARY_FILE
from lesionseg_tf.run_dir import RunDir

# A run's files, and evaluate.py's report on the validation split beside them.
STUDY_FILES = (RunDir.CONFIG, RunDir.HOLDOUT_IDS, RunDir.LOG, RunDir.RESULT, PER_IMAGE_FILE,
               SUMMARY_FILE)

# Validation scores from outside this project, drawn beside the study's runs but
# never pooled with them: (label, input side, per-image mean Jaccard).
OUTSIDE_POINTS = (
    ("paper (Ramachandram & DeVries 2017), ISIC leaderboard", 448, 0.642),
    ("maintainers' PyTorch Table 1 on a GPU, constant rate, blind selection", 256, 0.686),
)


@dataclasses.dataclass(frozen=True)
class StudyRun:
    """One finished run of the study, as its files record it."""
    name: str
    config: dict
    result: dict
    summary: dict
    jaccards: dict  # validation image id -> per-image Jaccard
    holdout_ids: tuple

    @property
    def image_size(self):
        return int(self.config["image_size"])

    @property
    def seed(self):
        return int(self.config["seed"])

    @property
    def network(self):
        """The context option ("none": Table 1), absent from runs recorded before it."""
        return self.config.get("context", "none")

    @property
    def precision(self):
        return self.config.get("mixed_precision", "none")

    @property
    def recipe(self):
        """Everything that defines the run but its seed, as a label: the network and
        the arithmetic are named where they are not Table 1 in float32, so such runs
        never join the shipped recipe's mean ± SD."""
        c = self.config
        network = ", Table 1 + image-pooling context" if self.network != "none" else ""
        precision = f", {self.precision} compute" if self.precision != "none" else ""
        return (f"{c['image_size']}x{c['image_size']}{network}{precision}, {c['lr_schedule']} "
                f"rate, at most {c['max_epochs']} epochs, patience {c['patience']}")

    @property
    def validation_jaccard(self):
        return float(self.summary["summary"]["jaccard"])

    @property
    def validation_interval(self):
        return [float(v) for v in self.summary["confidence_95"]["jaccard"]]


def read_run(folder):
    """Reads one run's `STUDY_FILES` from `folder`.

    Raises:
      FileNotFoundError: a file is missing (naming it).
      ValueError: the validation report is of another split.
    """
    missing = [name for name in STUDY_FILES if not os.path.isfile(os.path.join(folder, name))]
    if missing:
        raise FileNotFoundError(f"{folder}: missing {', '.join(missing)} (a study run keeps "
                                f"{', '.join(STUDY_FILES)})")
    run = RunDir(folder)
    summary = report.read_summary(folder)
    if summary["config"]["split"] != "validation":
        raise ValueError(f"{folder}/{SUMMARY_FILE} scores the {summary['config']['split']} "
                         "split; the study scores validation")
    jaccards = {row["image_id"]: row["jaccard"]
                for row in report.read_per_image(os.path.join(folder, PER_IMAGE_FILE))}
    return StudyRun(name=os.path.basename(os.path.normpath(folder)),
                    config=run.read_json(RunDir.CONFIG), result=run.read_json(RunDir.RESULT),
                    summary=summary, jaccards=jaccards,
                    holdout_ids=tuple(run.read_ids(RunDir.HOLDOUT_IDS)))


def portable(value, *, runs_dir, data_dir):
    """A recorded JSON value with the paths of one machine taken out: a path under
    `runs_dir` becomes relative to it (the run's folder name first), `data_dir` (and
    paths under it) its folder name. Applied to every string, in dicts and lists."""
    if isinstance(value, dict):
        return {k: portable(v, runs_dir=runs_dir, data_dir=data_dir) for k, v in value.items()}
    if isinstance(value, list):
        return [portable(v, runs_dir=runs_dir, data_dir=data_dir) for v in value]
    if not isinstance(value, str) or not value:
        return value
    for root, keep in ((data_dir, os.path.basename(os.path.normpath(data_dir))),
                       (runs_dir, "")):
        for form in {root, os.path.abspath(root)}:
            form = os.path.normpath(form)
            if value == form or value.startswith(form + os.sep):
                return os.path.join(keep, os.path.relpath(value, form)).rstrip(os.sep + ".")
    return value


# What `collect_run` copies of a finished run: its files, the validation report, and
# the report on its held-out pairs at the photographs' resolution (under holdout/).
COLLECTED = ((RunDir.CONFIG, ""), (RunDir.HOLDOUT_IDS, ""), (RunDir.LOG, ""),
             (RunDir.RESULT, ""), (PER_IMAGE_FILE, "evaluation/validation"),
             (SUMMARY_FILE, "evaluation/validation"), (PER_IMAGE_FILE, "evaluation/holdout"),
             (SUMMARY_FILE, "evaluation/holdout"))


def collect_run(run_folder, study_dir, *, data_dir):
    """Copies a finished run's small files (`COLLECTED`) to `<study_dir>/<run name>/`,
    its JSON files `portable`, the held-out report under `holdout/`.

    Raises:
      FileNotFoundError: a file is missing (naming it).
    """
    name = os.path.basename(os.path.normpath(run_folder))
    runs_dir = os.path.dirname(os.path.abspath(run_folder))
    for file_name, source in COLLECTED:
        path = os.path.join(run_folder, source, file_name)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"{path}: missing; is the run finished and scored?")
        target = os.path.join(study_dir, name, "holdout" if source.endswith("holdout") else "",
                              file_name)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        with open(path, "rb") as f:
            payload = f.read()
        if file_name.endswith(".json"):
            payload = (json.dumps(portable(json.loads(payload), runs_dir=runs_dir,
                                           data_dir=data_dir), indent=2) + "\n").encode()
        files.write_atomically(target, payload)
    return os.path.join(study_dir, name)


def read_study(study_dir):
    """Every run folder under `study_dir` (a folder holding a `flags.json`), by name."""
    names = sorted(name for name in os.listdir(study_dir)
                   if os.path.isfile(os.path.join(study_dir, name, RunDir.CONFIG)))
    if not names:
        raise FileNotFoundError(f"{study_dir} holds no study run (folders with {RunDir.CONFIG})")
    return [read_run(os.path.join(study_dir, name)) for name in names]


def table_rows(runs):
    """One row per recipe: its seeds, and the mean and sample SD over them (None
    for one seed) of the validation and held-out Jaccard, with epochs."""
    rows = []
    for recipe, group in itertools.groupby(sorted(runs, key=lambda r: (r.image_size, r.recipe,
                                                                      r.seed)),
                                           key=lambda r: r.recipe):
        group = list(group)
        validation = [r.validation_jaccard for r in group]
        held_out = [float(r.result["selection_jaccard"]) for r in group]
        rows.append({
            "recipe": recipe,
            "runs": [r.name for r in group],
            "seeds": [r.seed for r in group],
            "validation_mean": float(np.mean(validation)),
            "validation_sd": float(np.std(validation, ddof=1)) if len(group) > 1 else None,
            "validation": validation,
            "intervals": [r.validation_interval for r in group],
            "held_out_mean": float(np.mean(held_out)),
            "held_out_sd": float(np.std(held_out, ddof=1)) if len(group) > 1 else None,
            "best_epochs": [int(r.result["best_epoch"]) for r in group],
            "epochs_run": [int(r.result["epochs_run"]) for r in group],
        })
    return rows


def compare_runs(first, second, *, samples=2000, seed=0):
    """`metrics.paired_comparison` of two runs' validation Jaccards, image by image.

    Raises:
      ValueError: the two runs were scored on different images.
    """
    if set(first.jaccards) != set(second.jaccards):
        raise ValueError(f"{first.name} and {second.name} were scored on different images")
    ids = sorted(first.jaccards)
    return metrics.paired_comparison([first.jaccards[i] for i in ids],
                                     [second.jaccards[i] for i in ids], samples=samples,
                                     seed=seed)


def comparisons(runs, *, reference):
    """The study's paired comparisons: every run against `reference` (a run name),
    and every two runs that differ in their input size alone (same rule, epochs,
    seed), the larger input first.

    Returns:
      `[(first name, second name, paired_comparison result)]`.
    """
    by_name = {r.name: r for r in runs}
    if reference not in by_name:
        raise ValueError(f"no study run named {reference!r}; there are {', '.join(by_name)}")
    pairs = [(r, by_name[reference]) for r in runs if r.name != reference]

    def same_but_size(r):
        c = r.config
        return (c["lr_schedule"], c["max_epochs"], c["patience"], r.seed, r.network,
                r.precision)

    for a, b in itertools.combinations(runs, 2):
        if same_but_size(a) == same_but_size(b) and a.image_size != b.image_size:
            pairs.append((a, b) if a.image_size > b.image_size else (b, a))
    return [(a.name, b.name, compare_runs(a, b)) for a, b in pairs]


def _figure(value, sd=None):
    return f"{value:.3f}" + (f" ± {sd:.3f}" if sd is not None else "")


def markdown(runs, *, reference):
    """The study as Markdown: the table by recipe, the runs, the paired comparisons."""
    lines = ["| recipe | seeds | validation Jaccard (mean ± SD over seeds) | held-out Jaccard "
             "(selection) | best epoch / epochs run |", "| --- | --- | --- | --- | --- |"]
    for row in table_rows(runs):
        epochs = ", ".join(f"{b}/{e}" for b, e in zip(row["best_epochs"], row["epochs_run"]))
        lines.append(f"| {row['recipe']} | {', '.join(map(str, row['seeds']))} | "
                     f"{_figure(row['validation_mean'], row['validation_sd'])} | "
                     f"{_figure(row['held_out_mean'], row['held_out_sd'])} | {epochs} |")
    for label, size, value in OUTSIDE_POINTS:
        lines.append(f"| outside point: {label}, {size}x{size} | - | {value:.3f} | - | - |")
    lines += ["", "| run | seed | validation Jaccard (95% bootstrap CI over images) |",
              "| --- | --- | --- |"]
    for r in sorted(runs, key=lambda r: r.name):
        low, high = r.validation_interval
        lines.append(f"| {r.name} | {r.seed} | {r.validation_jaccard:.4f} ({low:.4f}-{high:.4f}) |")
    lines += ["", "Paired comparisons on the 150 validation images (first minus second; "
              "95% paired bootstrap interval, 2000 resamples, seed 0; two-sided Wilcoxon "
              "signed-rank test):", "",
              "| first | second | mean difference (95% CI) | Wilcoxon p | first better / worse / "
              "equal |", "| --- | --- | --- | --- | --- |"]
    for first, second, c in comparisons(runs, reference=reference):
        low, high = c["interval"]
        p_value = "undefined" if c["p_value"] is None else f"{c['p_value']:.3g}"
        lines.append(f"| {first} | {second} | {c['mean_difference']:+.4f} ({low:+.4f} to "
                     f"{high:+.4f}) | {p_value} | {c['better']} / {c['worse']} / {c['ties']} |")
    return "\n".join(lines) + "\n"


def size_points(runs):
    """What the figure draws: per run `(image_size, Jaccard, low, high, recipe, seed,
    network)`, the network its context option ("none": Table 1)."""
    return [(r.image_size, r.validation_jaccard, *r.validation_interval, r.recipe, r.seed,
             r.network)
            for r in sorted(runs, key=lambda r: (r.image_size, r.recipe, r.seed))]

