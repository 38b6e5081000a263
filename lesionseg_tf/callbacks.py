"""Training callbacks that survive a crash (paper section 3.3's early stopping, made resumable).

Keras' `BackupAndRestore` brings back the weights, the optimizer state and the
epoch counter after a crash, but not the state of `ModelCheckpoint` and
`EarlyStopping`: after a restart they would forget the best score so far.
`BestAndEarlyStop` keeps that state in a file saved at every epoch end, keyed by
epoch, so a resumed run continues exactly where the last completed epoch left it.
"""

import json
import math
import os
import tempfile

import keras
from absl import logging

from lesionseg_tf import files


class BestAndEarlyStop(keras.callbacks.Callback):
    """Saves the best model, stops after `patience` epochs without improvement.

    The whole model of the best epoch (by `monitor`, higher is better) is saved
    to `best_path` under a temporary name and renamed into place, so a crash
    never leaves a partial checkpoint. Its state (best value, best epoch, epochs
    without improvement) is written to `state_path` after every epoch and read
    back when training starts at a later epoch.
    """

    def __init__(self, *, monitor, patience, best_path, state_path):
        super().__init__()
        self.monitor = monitor
        self.patience = patience
        self.best_path = best_path
        self.state_path = state_path
        self.best = -math.inf
        self.best_epoch = -1
        self.wait = 0
        self._history = {}
        self._started = False

    def on_epoch_begin(self, epoch, logs=None):
        if self._started:
            return
        self._started = True
        if epoch == 0 or not os.path.exists(self.state_path):
            return
        with open(self.state_path) as f:
            self._history = json.load(f)
        state = self._history.get(str(epoch - 1))
        if state is None:
            raise RuntimeError(f"{self.state_path} has no state for epoch {epoch}, where "
                               "training resumes; remove the model directory's backup/ "
                               "folder to start over")
        self.best, self.best_epoch, self.wait = state["best"], state["best_epoch"], state["wait"]
        logging.info("resuming at epoch %d: best %s %.4f at epoch %d, %d epochs without "
                     "improvement", epoch + 1, self.monitor, self.best, self.best_epoch + 1,
                     self.wait)

    def on_epoch_end(self, epoch, logs=None):
        value = (logs or {}).get(self.monitor)
        if value is None:
            raise KeyError(f"{self.monitor} is not among the logged metrics "
                           f"{sorted(logs or {})}")
        loss = (logs or {}).get("loss", 0.0)
        if value > self.best and math.isfinite(float(loss)):  # never keep diverged weights
            self.best, self.best_epoch, self.wait = float(value), epoch, 0
            handle, temporary = tempfile.mkstemp(
                prefix=".partial-", suffix=".keras", dir=os.path.dirname(self.best_path))
            os.close(handle)
            self.model.save(temporary, overwrite=True)
            os.replace(temporary, self.best_path)
        else:
            self.wait += 1
            if self.wait >= self.patience:
                self.model.stop_training = True
        # Keep the last few epochs' states: a crash after this write but before the
        # weights backup makes the run resume one epoch earlier than this state.
        self._history[str(epoch)] = {"best": self.best, "best_epoch": self.best_epoch,
                                     "wait": self.wait}
        self._history = {k: v for k, v in self._history.items() if int(k) >= epoch - 2}
        files.write_atomically(self.state_path, json.dumps(self._history))


class EpochVariable(keras.callbacks.Callback):
    """Writes the epoch number into a variable the input pipeline reads (`data.make_dataset`)."""

    def __init__(self, variable):
        super().__init__()
        self.variable = variable

    def on_epoch_begin(self, epoch, logs=None):
        self.variable.assign(epoch)


class StopOnNaN(keras.callbacks.Callback):
    """Stops training at the first batch whose loss is NaN or infinite, remembering where."""

    def __init__(self):
        super().__init__()
        self.where = None
        self._epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            self.where = (self._epoch + 1, batch + 1)
            self.model.stop_training = True
