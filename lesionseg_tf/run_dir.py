"""A training run's folder: every name a run writes, whether a folder starts or
continues a run, and the files it records, each written atomically.

    run = RunDir("runs/lesionseg")
    run.export_dir            # runs/lesionseg/export
    run.read_ids(RunDir.TRAINING_IDS)

train.py's runs and the shipped models (`pretrained/...`, which hold `lesionseg.keras`
instead of `best.keras`) are both run folders. Imports no TensorFlow.
"""

import json
import os
import shutil
import tempfile

from lesionseg_tf import config as config_lib
from lesionseg_tf import files

SAVED_MODEL_FILE = "saved_model.pb"  # what makes a folder a SavedModel


def is_saved_model(folder):
    """Whether `folder` holds a SavedModel, as a run's `export/` does."""
    return os.path.isfile(os.path.join(folder, SAVED_MODEL_FILE))


class RunDir:
    """The files of one run folder (section 3.3's training, made resumable)."""

    CONFIG = "flags.json"  # the resolved `config.RunConfig`, and the folder
    TRAINING_IDS = "training_ids.txt"  # the image ids trained on
    HOLDOUT_IDS = "holdout_ids.txt"  # the held-out ids that selected the epoch
    BEST = "best.keras"  # whole model of the best selection epoch
    SHIPPED_MODEL = "lesionseg.keras"  # a shipped model, without optimizer state, for BEST
    BACKUP = "backup"  # the last completed epoch, until RESULT is written
    BACKUP_STATE = "state.json"  # inside BACKUP
    EXPORT = "export"  # the SavedModel
    EXPORT_INFO = os.path.join("assets.extra", "lesionseg.json")  # inside EXPORT: its input size
    RESULT = "result.json"  # written last: the run is finished
    LOG = "training_log.csv"  # one row per epoch, epochs counted from 1
    TENSORBOARD = "logs"
    CACHE = "cache"  # decoded images, keyed by content; survives a fresh start
    EVALUATION = "evaluation"  # evaluate.py's reports, one folder per split
    LEARNING_CURVES = "learning_curves.png"
    MEMBER = "member_{}"  # an ensemble's k-th network, a run folder (`--members`)

    # What a fresh start removes (not CACHE, which stays valid, nor EVALUATION).
    RUN_FILES = (
        BEST,
        EXPORT,
        EXPORT + ".old",
        BACKUP,
        RESULT,
        TENSORBOARD,
        LOG,
        HOLDOUT_IDS,
        TRAINING_IDS,
        SHIPPED_MODEL,  # an ensemble's (`--members`)
    )
    WEIGHT_FILES = (BEST, SHIPPED_MODEL)  # what a model is loaded from, in this order
    # What says how one network of an ensemble was trained: what the study and a shipped
    # model keep of each `MEMBER` (its weights live in the ensemble's).
    MEMBER_RECORD = (CONFIG, LOG, RESULT)

    def __init__(self, path):
        self.path = str(path)

    @classmethod
    def of_export(cls, export_dir):
        """The run folder an export lies in (`<run>/export`)."""
        return cls(os.path.dirname(os.path.normpath(export_dir)))

    def __repr__(self):
        return f"RunDir({self.path!r})"

    def file(self, name):
        return os.path.join(self.path, name)

    @property
    def best_path(self):
        return self.file(self.BEST)

    @property
    def backup_dir(self):
        return self.file(self.BACKUP)

    @property
    def export_dir(self):
        return self.file(self.EXPORT)

    @property
    def log_path(self):
        return self.file(self.LOG)

    @property
    def tensorboard_dir(self):
        return self.file(self.TENSORBOARD)

    def member(self, index):
        """The run folder of an ensemble's `index`-th network (from 0)."""
        return RunDir(self.file(self.MEMBER.format(index)))

    @property
    def cache_dir(self):
        return self.file(self.CACHE)

    def is_shipped_model(self):
        """A shipped model folder (`pretrained/...`, `tools.ship`, `tools.ensemble`):
        `SHIPPED_MODEL` with no network's `BEST` beside it. A `--members` run also
        holds `SHIPPED_MODEL`, but keeps each network's `BEST` in `member_<k>/`."""
        return os.path.isfile(self.file(self.SHIPPED_MODEL)) and not os.path.isfile(
            self.member(0).best_path
        )

    def weights_file(self):
        """The file the run's model loads from (`WEIGHT_FILES`), or None."""
        for name in self.WEIGHT_FILES:
            if os.path.isfile(self.file(name)):
                return self.file(name)
        return None

    # What a run records.

    def write(self, name, *, payload):
        """Writes one of the run's files atomically (str or bytes)."""
        os.makedirs(self.path, exist_ok=True)
        files.write_atomically(self.file(name), payload=payload)

    def write_json(self, name, *, values):
        self.write(name, payload=json.dumps(values, indent=2) + "\n")

    def read_json(self, name):
        """A JSON file of the run, or None when it is not there."""
        if not os.path.isfile(self.file(name)):
            return None
        with open(self.file(name)) as f:
            return json.load(f)

    def write_ids(self, name, *, examples):
        """One image id per line (`TRAINING_IDS`, `HOLDOUT_IDS`)."""
        self.write(name, payload="".join(f"{e.image_id}\n" for e in examples))

    def read_ids(self, name):
        """The ids of an ids file, or None when it is not there."""
        if not os.path.isfile(self.file(name)):
            return None
        with open(self.file(name)) as f:
            return [line.strip() for line in f if line.strip()]

    def write_config(self, config):
        """Records a `config.RunConfig` (and the folder) in `CONFIG`."""
        self.write_json(self.CONFIG, values={**config.to_dict(), "model_dir": self.path})

    def settings(self):
        """The run settings its `CONFIG` records (`config.recorded_settings`: a field
        recorded before it existed reads as what the code did then).

        Raises:
          FileNotFoundError: no `CONFIG` here.
          ValueError: `CONFIG` cannot be read (naming it and why).
        """
        try:
            recorded = self.read_json(self.CONFIG)
            if recorded is None:
                raise FileNotFoundError(f"{self.path} holds no {self.CONFIG}: not a run folder")
            return config_lib.recorded_settings(recorded)
        except (ValueError, TypeError) as e:  # json.JSONDecodeError is a ValueError
            raise ValueError(f"{self.file(self.CONFIG)}: cannot be read ({e})") from None

    def image_size(self):
        """The input side the run trained at (its `CONFIG`); for a model folder with no
        `CONFIG` but an export (an ensemble of runs, `tools.ensemble`), the input side
        its export records (`EXPORT_INFO`).

        Raises:
          FileNotFoundError: neither file is there.
        """
        if not os.path.isfile(self.file(self.CONFIG)):
            info = os.path.join(self.export_dir, self.EXPORT_INFO)
            if os.path.isfile(info):
                with open(info) as f:
                    return int(json.load(f)["image_size"])
        return int(self.settings()["image_size"])

    def members(self):
        """How many networks the run trained (`--members`): 1 where its `CONFIG` records
        none (a run from before the option) or is missing."""
        return int((self.read_json(self.CONFIG) or {}).get("members", 1))

    def backup_state(self):
        """The backup's `state.json` (`callbacks.EpochBackup`), or None."""
        path = os.path.join(self.backup_dir, self.BACKUP_STATE)
        if not os.path.exists(path):
            return None
        with open(path) as f:
            return json.load(f)

    def is_finished(self):
        return os.path.exists(self.file(self.RESULT))

    def check_start(self, config, *, overwrite=False):
        """Decides whether this folder starts a run or continues one.

        Returns:
          True when a run with the same settings (`config.run_settings()`) has
          completed epochs to continue from (its `BACKUP`); it may also have
          finished training and only need its evaluation and export. False
          means a fresh start: `overwrite`, or nothing of a completed epoch here.

        Raises:
          ValueError: the folder holds a finished run and not `overwrite`, or a
            run to continue whose settings differ.
        """
        self.refuse_before_data(config, overwrite=overwrite)  # every setting compared
        return not overwrite and self.backup_state() is not None

    def refuse_before_data(self, config, *, overwrite=False, fit_batch=False, fit_holdout=False):
        """`check_start`'s refusals, made before the data are read and checked (about
        a minute on ISIC 2017's 2000 full-size training pairs): a finished run, or a run to continue
        whose settings differ from `config`'s in any but those the data may yet fit
        (`training.run`'s `fit_batch` and `fit_holdout`: the batch, the held-out
        share), which `check_start` compares once they are known.

        Raises:
          ValueError: as `check_start`.
        """
        if overwrite:
            return
        self.refuse_finished()
        if self.backup_state() is not None:
            fitted = {"batch_size": fit_batch, "holdout_fraction": fit_holdout}
            self.check_same_settings(config, leave_out=[k for k, fit in fitted.items() if fit])

    def changed_settings(self, config, *, leave_out=()):
        """The run settings `CONFIG` records otherwise than `config`, but for those
        named in `leave_out`, as "name: then, now" texts (none where it records
        none)."""
        previous = config_lib.recorded_settings(self.read_json(self.CONFIG) or {})
        wanted = config.run_settings()
        return [
            f"{k}: {previous.get(k)!r} then, {wanted[k]!r} now"
            for k in sorted(wanted)
            if previous.get(k) != wanted[k] and k not in leave_out
        ]

    def check_same_settings(self, config, *, leave_out=()):
        """Raises ValueError where `CONFIG` records other run settings than `config`'s,
        but for those named in `leave_out` (`check_start`'s test of a run to
        continue)."""
        changed = self.changed_settings(config, leave_out=leave_out)
        if changed:
            raise ValueError(
                f"{self.path} holds an interrupted run with other flags ("
                + ", ".join(changed)
                + "); rerun with the same flags to resume, choose another --model_dir, or "
                "pass --overwrite to start again from scratch"
            )

    def refuse_finished(self, *, overwrite=False):
        """Raises ValueError where the folder holds a finished run and not `overwrite`
        (`check_start`'s first check, which needs no settings)."""
        if not overwrite and self.is_finished():
            raise ValueError(
                f"{self.path} holds a finished run ({self.RESULT}); choose another "
                "--model_dir, or pass --overwrite to train it again from scratch"
            )

    def worker_copy(self):
        """A non-chief worker's private run folder (a new temporary folder, for the
        caller to remove), seeded with this folder's resume state: the backup and
        the best model."""
        worker = RunDir(tempfile.mkdtemp(prefix="lesionseg-worker-"))
        if os.path.isdir(self.backup_dir):
            shutil.copytree(self.backup_dir, worker.backup_dir)
        if os.path.exists(self.best_path):
            shutil.copy(self.best_path, worker.path)
        return worker

    def clear(self):
        """Removes what a run writes here (`RUN_FILES` and an ensemble's members, not
        other files), for a fresh start."""
        if not os.path.isdir(self.path):
            return
        members = [n for n in os.listdir(self.path) if n.startswith(self.MEMBER.format(""))]
        for name in (*self.RUN_FILES, *members):
            path = self.file(name)
            if os.path.isdir(path):
                shutil.rmtree(path)
            elif os.path.exists(path):
                os.remove(path)


# What a run started from another (`--init_from`) takes from it unless given: the
# network's input size and its architecture.
INHERITED_SETTINGS = ("image_size", "context")


def inherited_settings(init_from):
    """The `INHERITED_SETTINGS` of the run `init_from` names (a run folder, a shipped
    model, or a weights file inside one), or `{}` for a weights file outside any run
    folder.

    Raises:
      ValueError: the run folder's `flags.json` cannot be read, or records an ensemble.
    """
    folder = init_from if os.path.isdir(init_from) else os.path.dirname(init_from) or "."
    run = RunDir(folder)
    if not os.path.isfile(run.file(RunDir.CONFIG)):
        return {}
    settings = run.settings()
    if settings["members"] > 1:
        member = run.member(0)
        if member.weights_file() is not None:  # a run folder: its networks are runs
            hint = f"fine-tune one network of it, e.g. {member.path}"
        else:  # a shipped folder keeps its networks only together, in one model
            hint = "it holds no network's own weights: fine-tune a single network's run or model"
        raise ValueError(
            f"--init_from {init_from}: an ensemble of {settings['members']} networks "
            f"(--members); {hint}"
        )
    return {name: settings[name] for name in INHERITED_SETTINGS}


def init_weights_file(init_from):
    """The weights file `--init_from` names: a file (`.keras`, `.weights.h5`), or a
    run folder's or a shipped model's (`RunDir.weights_file`).

    Raises:
      FileNotFoundError: none of these is there.
    """
    if os.path.isfile(init_from) and init_from.endswith((".keras", ".weights.h5")):
        return init_from
    if os.path.isdir(init_from) and RunDir(init_from).weights_file():
        return RunDir(init_from).weights_file()
    raise FileNotFoundError(
        f"--init_from {init_from}: expected a .keras or .weights.h5 file, or a folder holding "
        f"{' or '.join(RunDir.WEIGHT_FILES)} (a train.py run or a shipped model)"
    )
