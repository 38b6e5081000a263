"""Runs train.py and SIGKILLs it at one named point, for the crash tests.

    python tests/crash_train.py POINT EPOCH -- <train.py flags>

POINT (EPOCH is 0-based where it applies):
  mid_epoch      after the first execution (of --steps_per_execution steps) of EPOCH
  checkpoint     after the best-model callback of EPOCH (whether or not it saved)
  csv            after the training log's row of EPOCH
  backup         after the backup of EPOCH
  before_export  when the export starts (training complete)
  during_export  when the export is staged, before it is moved into place
"""

import os
import runpy
import signal
import sys

import keras

from lesionseg_tf import callbacks, export, files

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _die():
    sys.stdout.flush()
    os.kill(os.getpid(), signal.SIGKILL)


def _kill_after(owner, method, when):
    original = getattr(owner, method)

    def wrapped(*args, **kwargs):
        result = original(*args, **kwargs)
        if when(*args):
            _die()
        return result

    setattr(owner, method, wrapped)


def _kill_before(owner, method):
    def wrapped(*args, **kwargs):
        _die()

    setattr(owner, method, wrapped)


def main():
    point, epoch = sys.argv[1], int(sys.argv[2])
    flags = sys.argv[sys.argv.index("--") + 1 :]
    at_epoch = lambda self, e, *rest: e == epoch  # noqa: E731
    # Today's backup callback, or Keras' own where an older train.py uses it.
    backup = getattr(callbacks, "EpochBackup", keras.callbacks.BackupAndRestore)
    if point == "mid_epoch":
        state = {"epoch": -1}
        _kill_after(
            callbacks.EpochVariable,
            "on_epoch_begin",
            lambda self, e, *rest: state.update(epoch=e) and False,
        )
        _kill_after(
            callbacks.StopOnNaN,
            "on_train_batch_end",
            lambda self, batch, *rest: state["epoch"] == epoch,
        )
    elif point == "checkpoint":
        _kill_after(callbacks.BestAndEarlyStop, "on_epoch_end", at_epoch)
    elif point == "csv":
        _kill_after(
            getattr(callbacks, "EpochLog", keras.callbacks.CSVLogger), "on_epoch_end", at_epoch
        )
    elif point == "backup":
        _kill_after(backup, "on_epoch_end", at_epoch)
    elif point == "before_export":
        _kill_before(export, "export_saved_model")
    elif point == "during_export":
        # The staged export's last file: the export is complete, not yet moved into place.
        _kill_after(files, "write_atomically", lambda path: path.endswith(export.INFO_FILE))
    else:
        raise SystemExit(f"unknown point {point}")
    sys.argv = ["train.py", *flags]
    sys.path.insert(0, REPO_ROOT)
    runpy.run_path(os.path.join(REPO_ROOT, "train.py"), run_name="__main__")


if __name__ == "__main__":
    main()
