"""Copying a finished study run's small files into `docs/study/` (`collect_run`), and a
held-out report made later (`collect_holdout_report`), with the paths of the machine
that made them taken out (`portable`), so that `study` reads them anywhere.
Imports no TensorFlow.
"""

import json
import os

from lesionseg_tf import files, study
from lesionseg_tf.report import PER_IMAGE_FILE, SUMMARY_FILE
from lesionseg_tf.run_dir import RunDir


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
    for root, keep in ((data_dir, os.path.basename(os.path.normpath(data_dir))), (runs_dir, "")):
        for form in {root, os.path.abspath(root)}:
            form = os.path.normpath(form)
            if value == form or value.startswith(form + os.sep):
                return os.path.join(keep, os.path.relpath(value, form)).rstrip(os.sep + ".")
    return value


# What `collect_run` copies of a finished run, as (file, folder in the run, folder in
# the study's copy): its files, the validation report, and the held-out report (the last
# three not for a final run, `--select_on=none`, which holds no pairs out).
COLLECTED = (
    (RunDir.CONFIG, "", ""),
    (RunDir.HOLDOUT_IDS, "", ""),
    (RunDir.LOG, "", ""),
    (RunDir.RESULT, "", ""),
    (PER_IMAGE_FILE, "evaluation/validation", ""),
    (SUMMARY_FILE, "evaluation/validation", ""),
    (PER_IMAGE_FILE, "evaluation/holdout", study.HOLDOUT_DIR),
    (SUMMARY_FILE, "evaluation/holdout", study.HOLDOUT_DIR),
)


def copy_portably(pairs, *, runs_dir, data_dir, hint=""):
    """Copies `(source, target)` files, JSON ones made `portable`. Every source is
    checked first, so a missing one leaves nothing copied.

    Raises:
      FileNotFoundError: a source is missing (naming it).
    """
    for source, _ in pairs:
        if not os.path.isfile(source):
            raise FileNotFoundError(f"{source}: missing{hint}")
    for source, target in pairs:
        with open(source, "rb") as f:
            payload = f.read()
        if source.endswith(".json"):
            payload = (
                json.dumps(
                    portable(json.loads(payload), runs_dir=runs_dir, data_dir=data_dir), indent=2
                )
                + "\n"
            ).encode()
        os.makedirs(os.path.dirname(target), exist_ok=True)
        files.write_atomically(target, payload=payload)


def collect_run(run_folder, *, study_dir, data_dir):
    """Copies a finished run's small files (`COLLECTED`) to `<study_dir>/<run name>/`,
    its JSON files `portable`, the held-out report under `study.HOLDOUT_DIR`; an
    ensemble's (`--members`) with each network's `RunDir.MEMBER_RECORD` in `member_<k>/`.

    Raises:
      FileNotFoundError: a file is missing (naming it).
      ValueError: a report scores another split, or the held-out one other images
        than the run's held-out pairs. Nothing is copied then.
    """
    name = os.path.basename(os.path.normpath(run_folder))
    target = os.path.join(study_dir, name)
    final = study.is_final_run(run_folder)
    collected = [c for c in COLLECTED if not (final and _held_out(c))]
    members = study.member_files(run_folder)
    if members:  # an ensemble: its networks' files in member_<k>/, their logs no top one
        collected = [c for c in collected if c[0] != RunDir.LOG] + [
            (name, member, member) for member, name in members
        ]
    ids = RunDir(run_folder).read_ids(RunDir.HOLDOUT_IDS)
    if ids is not None:  # else named missing below
        study.read_report(os.path.join(run_folder, "evaluation", "validation"), split="validation")
        study.read_report(
            os.path.join(run_folder, "evaluation", "holdout"), split="training", ids=ids
        )
    copy_portably(
        [
            (os.path.join(run_folder, source, file_name), os.path.join(target, kept, file_name))
            for file_name, source, kept in collected
        ],
        runs_dir=os.path.dirname(os.path.abspath(run_folder)),
        data_dir=data_dir,
        hint="; is the run finished and scored?",
    )
    return target


def _held_out(entry):
    """Whether a `COLLECTED` entry is of the held-out pairs."""
    file_name, source, _ = entry
    return file_name == RunDir.HOLDOUT_IDS or source == "evaluation/holdout"


def collect_holdout_report(report_folder, *, study_run, data_dir):
    """Copies evaluate.py's report on a study run's held-out pairs into
    `<study_run>/study.HOLDOUT_DIR/`: for a run collected before its held-out pairs were
    scored at the photographs' resolution (the shipped model, scored from its
    export). Paths under the working folder are recorded relative to it.

    Raises:
      FileNotFoundError: `study_run` has no held-out ids, or the report a file.
      ValueError: the report scores another split or other images than the run's
        held-out pairs; nothing is copied then.
    """
    ids = RunDir(study_run).read_ids(RunDir.HOLDOUT_IDS)
    if ids is None:
        raise FileNotFoundError(f"{study_run}: no {RunDir.HOLDOUT_IDS}; not a study run")
    study.read_report(report_folder, split="training", ids=ids)
    target = os.path.join(study_run, study.HOLDOUT_DIR)
    copy_portably(
        [
            (os.path.join(report_folder, name), os.path.join(target, name))
            for name in (PER_IMAGE_FILE, SUMMARY_FILE)
        ],
        runs_dir=os.getcwd(),
        data_dir=data_dir,
    )
    return target
