"""The study's runs read back: train.py runs on ISIC 2017 by input size, seed, recipe
and option, each selected on held-out training pairs and then scored blind on the
validation split.

Everything here reads the small files a run leaves in `docs/study/<run>/`
(`STUDY_FILES`: its configuration, held-out ids, training log and result, and
evaluate.py's reports), so that `study_tables` makes the table, the paired comparisons
and the figure again without the data or the weights (`python -m tools.study`).
Imports no TensorFlow.
"""

import dataclasses
import os

from lesionseg_tf import report
from lesionseg_tf.config import SETTINGS_BEFORE_RECORDED
from lesionseg_tf.report import PER_IMAGE_FILE, SUMMARY_FILE
from lesionseg_tf.run_dir import RunDir

# A run's files, and evaluate.py's report on the validation split beside them; and the
# held-out ids of every run but a final one (`--select_on=none`, which holds none out).
STUDY_FILES = (
    RunDir.CONFIG,
    RunDir.LOG,
    RunDir.RESULT,
    PER_IMAGE_FILE,
    SUMMARY_FILE,
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
    # Held-out image id -> per-image Jaccard at the photographs' resolution, scored
    # through the export (`HOLDOUT_DIR`); None for a run whose held-out pairs were
    # not scored so.
    holdout: dict = None
    holdout_summary: dict = None
    # An ensemble's networks (`--members`): each one's `result.json`, in order.
    member_results: tuple = ()

    @property
    def selected_on(self):
        """What chose the exported epoch: "holdout" (as before it was recorded), or
        "none" for a final model trained on every pair for a fixed number of epochs."""
        return self.config.get("select_on", "holdout")

    @property
    def image_size(self):
        return int(self.config["image_size"])

    @property
    def seed(self):
        return int(self.config["seed"])

    @property
    def context(self):
        """The context option ("none": Table 1), as recorded or as before it was."""
        return self.recorded("context")

    @property
    def precision(self):
        return self.config.get("mixed_precision", "none")

    @property
    def recipe(self):
        """Everything that defines the run but its seed, as a label: the network, the
        arithmetic, the loss and the augmentation are named where they are not the
        paper's (Table 1 in float32, cross-entropy, rotations and flips), so such runs
        never join the shipped recipe's mean ± SD."""
        c = self.config
        network = ", Table 1 + image-pooling context" if self.context != "none" else ""
        precision = f", {self.precision} compute" if self.precision != "none" else ""
        loss = self.recorded("loss")
        loss = f", {loss.replace('_', ' ')} loss" if loss != "cross_entropy" else ""
        color = ", colour augmentation" if self.recorded("color_augment") else ""
        scale = ", scale augmentation" if self.recorded("scale_augment") else ""
        members = self.recorded("members")
        ensemble = f", ensemble of {members} networks" if members > 1 else ""
        schedule = (
            f"{c['lr_schedule']} rate, at most {c['max_epochs']} epochs, patience {c['patience']}"
        )
        if self.selected_on == "none":
            schedule = (
                f"{c['lr_schedule']} rate, {c['max_epochs']} epochs on every pair, no selection"
            )
        size = f"{c['image_size']}x{c['image_size']}"
        return f"{size}{network}{precision}{loss}{color}{scale}{ensemble}, {schedule}"

    @property
    def validation_jaccard(self):
        return float(self.summary["summary"]["jaccard"])

    @property
    def validation_interval(self):
        return [float(v) for v in self.summary["confidence_95"]["jaccard"]]

    @property
    def holdout_jaccard(self):
        """The held-out pairs' mean Jaccard at the photographs' resolution, or None."""
        return (
            None
            if self.holdout_summary is None
            else float(self.holdout_summary["summary"]["jaccard"])
        )

    def settings(self):
        """What defines the run besides its seed, by name: the settings `comparisons` pairs on."""
        c = self.config
        return {
            "input size": self.image_size,
            "rate": c["lr_schedule"],
            "epochs": int(c["max_epochs"]),
            "patience": int(c["patience"]),
            "network": self.context,
            "precision": self.precision,
            "loss": self.recorded("loss"),
            "colour augmentation": self.recorded("color_augment"),
            "scale augmentation": self.recorded("scale_augment"),
            "selection": self.selected_on,
            "networks": self.recorded("members"),
        }

    @property
    def epochs(self):
        """Best epoch / epochs run, as the table gives it: each network's for an ensemble."""
        results = self.member_results or (self.result,)
        return " + ".join(f"{int(r['best_epoch'])}/{int(r['epochs_run'])}" for r in results)

    @property
    def selection_jaccard(self):
        """The held-out Jaccard at the input size that chose the epoch; None for a final
        run (its pairs all trained) and an ensemble (each network chose its own)."""
        if self.selected_on == "none" or self.member_results:
            return None
        return float(self.result["selection_jaccard"])

    def recorded(self, name):
        """A run setting as `flags.json` records it, or what the code did before it was
        recorded (`config.SETTINGS_BEFORE_RECORDED`)."""
        return self.config.get(name, SETTINGS_BEFORE_RECORDED[name])


# Where a study run keeps evaluate.py's report on its held-out training pairs, scored
# at the photographs' resolution through the export: comparable across input sizes,
# unlike the held-out Jaccard of selection, computed at each run's own input size.
HOLDOUT_DIR = "holdout"


def read_report(folder, *, split, ids=None):
    """An evaluate.py report folder's per-image Jaccards (image id -> score) and
    summary, checked to score `split` (and exactly `ids`, when given).

    Raises:
      FileNotFoundError: a file of the report is missing (naming it).
      ValueError: the report scores another split or other images.
    """
    for name in (PER_IMAGE_FILE, SUMMARY_FILE):
        if not os.path.isfile(os.path.join(folder, name)):
            raise FileNotFoundError(
                f"{os.path.join(folder, name)}: missing (an evaluate.py "
                f"report keeps {PER_IMAGE_FILE} and {SUMMARY_FILE})"
            )
    summary = report.read_summary(folder)
    if summary["config"]["split"] != split:
        raise ValueError(
            f"{os.path.join(folder, SUMMARY_FILE)} scores the "
            f"{summary['config']['split']} split; {split} was expected"
        )
    jaccards = {
        row["image_id"]: row["jaccard"]
        for row in report.read_per_image(os.path.join(folder, PER_IMAGE_FILE))
    }
    if ids is not None and set(jaccards) != set(ids):
        raise ValueError(
            f"{os.path.join(folder, PER_IMAGE_FILE)} scores {len(jaccards)} "
            f"images, not the run's {len(set(ids))} held-out pairs "
            f"({len(set(jaccards) ^ set(ids))} differ)"
        )
    return jaccards, summary


def is_final_run(folder):
    """Whether the run folder's `flags.json` records `--select_on=none` (a final model,
    no pairs held out); False where it records nothing of it or is missing."""
    run = RunDir(folder)
    return (
        os.path.isfile(run.file(RunDir.CONFIG))
        and run.read_json(RunDir.CONFIG).get("select_on") == "none"
    )


def member_files(folder):
    """`(member folder, file name)` of each `RunDir.MEMBER_RECORD` of an ensemble run's networks
    (`--members`), in order; none for a run of one network."""
    members = RunDir(folder).members()
    if members == 1:
        return []
    return [
        (RunDir.MEMBER.format(k), name) for k in range(members) for name in RunDir.MEMBER_RECORD
    ]


def read_run(folder):
    """Reads one run's `STUDY_FILES` from `folder`, and its held-out report
    (`HOLDOUT_DIR`) when there is one.

    Raises:
      FileNotFoundError: a file is missing (naming it).
      ValueError: a report is of another split, or the held-out report of other
        images than the run's held-out pairs.
    """
    run = RunDir(folder)
    members = run.members()
    needed = STUDY_FILES + (() if is_final_run(folder) else (RunDir.HOLDOUT_IDS,))
    if members > 1:  # an ensemble's training logs are its networks'
        needed = tuple(name for name in needed if name != RunDir.LOG) + tuple(
            os.path.join(member, name) for member, name in member_files(folder)
        )
    missing = [name for name in needed if not os.path.isfile(os.path.join(folder, name))]
    if missing:
        raise FileNotFoundError(
            f"{folder}: missing {', '.join(missing)} (a study run keeps {', '.join(needed)})"
        )
    jaccards, summary = read_report(folder, split="validation")
    holdout_ids = tuple(run.read_ids(RunDir.HOLDOUT_IDS) or ())
    holdout, holdout_summary = None, None
    if os.path.isdir(os.path.join(folder, HOLDOUT_DIR)):
        holdout, holdout_summary = read_report(
            os.path.join(folder, HOLDOUT_DIR), split="training", ids=holdout_ids
        )
    return StudyRun(
        name=os.path.basename(os.path.normpath(folder)),
        config=run.read_json(RunDir.CONFIG),
        result=run.read_json(RunDir.RESULT),
        summary=summary,
        jaccards=jaccards,
        holdout_ids=holdout_ids,
        holdout=holdout,
        holdout_summary=holdout_summary,
        member_results=tuple(run.member(k).read_json(RunDir.RESULT) for k in range(members))
        if members > 1
        else (),
    )


def read_study(study_dir):
    """Every run folder under `study_dir` (a folder holding a `flags.json`), by name."""
    names = sorted(
        name
        for name in os.listdir(study_dir)
        if os.path.isfile(os.path.join(study_dir, name, RunDir.CONFIG))
    )
    if not names:
        raise FileNotFoundError(f"{study_dir} holds no study run (folders with {RunDir.CONFIG})")
    return [read_run(os.path.join(study_dir, name)) for name in names]
