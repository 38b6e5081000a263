"""Training callbacks that survive a crash (paper section 3.3's early stopping, made resumable).

A run is checkpointed once per epoch, after everything else of that epoch is on
disk, by `EpochBackup`: the weights with the optimizer state, and in the same
atomically replaced `state.json` the epoch count and `BestAndEarlyStop`'s state
(best score, best epoch, epochs without improvement, whether training stopped).
A run killed at any moment resumes from the last epoch whose backup is complete;
`truncate_logs` drops whatever the logs gained after it, so every epoch is
logged exactly once.
"""

import csv
import glob
import io
import json
import math
import os
import time

import keras
import tensorflow as tf
from absl import logging

from lesionseg_tf import files, messages
from lesionseg_tf.run_dir import RunDir


class BestAndEarlyStop(keras.callbacks.Callback):
    """Saves the best model, stops after `patience` epochs without improvement.

    The whole model of the best epoch (by `monitor`, higher is better) is saved
    to `best_path` under a temporary name and renamed into place, so a crash
    never leaves a partial checkpoint. `state()` and `restore()` carry the rest
    across a restart (through `EpochBackup`). With `monitor` None nothing is
    compared: every epoch is the best so far, so the last one is kept, and
    training never stops early.
    """

    def __init__(self, *, monitor, patience, best_path):
        super().__init__()
        self.monitor = monitor
        self.patience = patience
        self.best_path = best_path
        self.best = -math.inf
        self.best_epoch = -1
        self.wait = 0
        self.stopped = False

    def state(self):
        return {
            "best": self.best,
            "best_epoch": self.best_epoch,
            "wait": self.wait,
            "stopped": self.stopped,
        }

    def restore(self, state):
        self.best, self.best_epoch = state["best"], state["best_epoch"]
        self.wait, self.stopped = state["wait"], state["stopped"]

    def on_epoch_end(self, epoch, logs=None):
        value = epoch if self.monitor is None else (logs or {}).get(self.monitor)
        if value is None:
            raise KeyError(f"{self.monitor} is not among the logged metrics {sorted(logs or {})}")
        loss = (logs or {}).get("loss", 0.0)
        if value > self.best and math.isfinite(float(loss)):  # never keep diverged weights
            self.best, self.best_epoch, self.wait = float(value), epoch, 0
            with files.atomic_path(self.best_path) as temporary:
                self.model.save(temporary)  # named .partial-<random>-best.keras
        else:
            self.wait += 1
            if self.wait >= self.patience:
                self.stopped = True
                self.model.stop_training = True


class EpochBackup(keras.callbacks.Callback):
    """Backs up the training state at the end of every epoch; put it last.

    Writes `epoch-<n>.weights.h5` (weights and optimizer state after n completed
    epochs) under a temporary name, renames it into place, then replaces
    `state.json` (`{"epoch": n, "weights": name, "early_stopping": {...}}`) in
    one rename, and only then removes the previous weights file. Whenever the
    process dies, `state.json` names a complete weights file of the epoch it
    states. An epoch whose loss is not finite is not backed up.
    """

    def __init__(self, backup_dir, *, early_stopping):
        super().__init__()
        self.backup_dir = backup_dir
        self.early_stopping = early_stopping

    def on_epoch_end(self, epoch, logs=None):
        if not math.isfinite(float((logs or {}).get("loss", 0.0))):
            return
        os.makedirs(self.backup_dir, exist_ok=True)
        name = f"epoch-{epoch + 1}.weights.h5"
        with files.atomic_path(os.path.join(self.backup_dir, name)) as temporary:
            self.model.save_weights(temporary)
        files.write_atomically(
            os.path.join(self.backup_dir, RunDir.BACKUP_STATE),
            payload=json.dumps(
                {"epoch": epoch + 1, "weights": name, "early_stopping": self.early_stopping.state()}
            ),
        )
        for path in glob.glob(os.path.join(self.backup_dir, "*.weights.h5")):
            if os.path.basename(path) != name:
                os.remove(path)


def restore_backup(model, *, backup_dir, state):
    """Loads the weights and optimizer state `state` (`RunDir.backup_state`) names."""
    if model.optimizer is not None and not model.optimizer.built:
        model.optimizer.build(model.trainable_variables)
    model.load_weights(os.path.join(backup_dir, state["weights"]))


class EpochSummaries(keras.callbacks.Callback):
    """TensorBoard scalars, one point per epoch and metric: `epoch_<metric>` in
    `log_dir/train` and `log_dir/validation` (Keras' layout), plus the learning
    rate. Flushed at every epoch end, so they are on disk before the backup."""

    def __init__(self, log_dir):
        super().__init__()
        self.log_dir = log_dir
        self._writers = {}

    def _writer(self, run):
        if run not in self._writers:
            self._writers[run] = tf.summary.create_file_writer(os.path.join(self.log_dir, run))
        return self._writers[run]

    def on_epoch_end(self, epoch, logs=None):
        logs = dict(logs or {})
        train = {k: v for k, v in logs.items() if not k.startswith("val_")}
        train["learning_rate"] = float(
            keras.ops.convert_to_numpy(self.model.optimizer.learning_rate)
        )
        validation = {k[len("val_") :]: v for k, v in logs.items() if k.startswith("val_")}
        for run, values in (("train", train), ("validation", validation)):
            if not values:
                continue
            writer = self._writer(run)
            with writer.as_default():
                for name, value in values.items():
                    tf.summary.scalar(f"epoch_{name}", float(value), step=epoch)
            writer.flush()

    def on_train_end(self, logs=None):
        for writer in self._writers.values():
            writer.close()
        self._writers = {}


def truncate_logs(csv_path, *, log_dir, epochs):
    """Keeps what the logs hold of the first `epochs` epochs and drops the rest, which
    a resumed run trains and logs again: the CSV rows after epoch `epochs` (counted
    from 1, as `EpochLog` writes them), and the TensorBoard events of those steps
    (counted from 0, as Keras'). Files are rewritten atomically.

    Returns:
      The number of CSV rows and TensorBoard events dropped.
    """
    dropped = 0
    if os.path.exists(csv_path):
        with open(csv_path, newline="") as f:
            rows = list(csv.reader(f))
        if rows:
            header, body = rows[0], rows[1:]
            column = header.index("epoch")
            kept = [row for row in body if int(row[column]) <= epochs]
            if len(kept) != len(body):
                dropped += len(body) - len(kept)
                text = io.StringIO()
                csv.writer(text, lineterminator="\n").writerows([header] + kept)
                files.write_atomically(csv_path, payload=text.getvalue())
    for path in sorted(glob.glob(os.path.join(log_dir, "*", "events.out.tfevents.*"))):
        records = [r.numpy() for r in tf.data.TFRecordDataset(path)]
        kept = []
        for record in records:
            event = tf.compat.v1.Event.FromString(record)
            if event.HasField("summary") and event.step >= epochs:
                continue
            kept.append(record)
        if len(kept) != len(records):
            dropped += len(records) - len(kept)
            with files.atomic_path(path) as temporary:
                with tf.io.TFRecordWriter(temporary) as writer:
                    for record in kept:
                        writer.write(record)
    if dropped:
        logging.info("dropped %d log entries of epochs not in the backup", dropped)
    return dropped


class EpochLog(keras.callbacks.Callback):
    """`training_log.csv`: one row per epoch, the epoch counted from 1 (as
    `result.json`'s `best_epoch`) and then every logged metric in name order,
    lines ended by a newline alone. A row is appended and flushed at each epoch's
    end, so the file never holds a partial row when the backup is taken."""

    def __init__(self, path):
        super().__init__()
        self.path = path

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        names = sorted(logs)
        new_file = not os.path.exists(self.path) or os.path.getsize(self.path) == 0
        if not new_file:
            with open(self.path, newline="") as f:
                header = next(csv.reader(f))
            if header[1:] != names:
                raise ValueError(f"{self.path} logs {header[1:]}, this epoch {names}")
        text = io.StringIO()
        writer = csv.writer(text, lineterminator="\n")
        if new_file:
            writer.writerow(["epoch"] + names)
        writer.writerow([epoch + 1] + [repr(float(logs[name])) for name in names])
        with open(self.path, "a", newline="") as f:
            f.write(text.getvalue())
            f.flush()
            os.fsync(f.fileno())


class EpochVariable(keras.callbacks.Callback):
    """Writes the epoch number into a variable the input pipeline reads
    (`pipeline.make_dataset`)."""

    def __init__(self, variable):
        super().__init__()
        self.variable = variable

    def on_epoch_begin(self, epoch, logs=None):
        self.variable.assign(epoch)


class StopOnNaN(keras.callbacks.Callback):
    """Stops training at the first execution whose loss is NaN or infinite.

    Keras calls `on_train_batch_end` once per execution of `steps_per_execution`
    steps, so the loss is read on the host once per execution, never per step
    when executions are longer; `where` records the epoch and the steps that
    execution covered. Keras' logged loss is the epoch's running mean, which
    stays non-finite once a step's loss was.
    """

    def __init__(self):
        super().__init__()
        self.where = None
        self._epoch = 0
        self._first_step = 0

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_begin(self, batch, logs=None):
        self._first_step = batch

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is None:
            return
        if not math.isfinite(float(loss)):
            self.where = (self._epoch + 1, self._first_step + 1, batch + 1)
            self.model.stop_training = True


class StepClock(keras.callbacks.Callback):
    """Wall-clock seconds of each training execution, in `seconds` (for benchmarks).

    Each is timed from its start to its end (reading its loss waits for it), so what
    happens between executions is not counted, such as `fit` waiting for a 10.24 s
    wake-up of tf.data's autotuning (docs/benchmarks.md).
    """

    def __init__(self):
        super().__init__()
        self.seconds = []
        self._start = None

    def on_train_batch_begin(self, batch, logs=None):
        self._start = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        float((logs or {}).get("loss", 0.0))
        self.seconds.append(time.perf_counter() - self._start)


class EpochProgress(keras.callbacks.Callback):
    """Lines of progress inside a long epoch, for a log file: where Keras writes one
    line per epoch (`verbose=2`), an epoch of 17 minutes (448x448 on a CPU) would
    otherwise say nothing between its "Epoch 3/50" and its end.

    After a training execution that ends at least `every_seconds` after the epoch's
    start or the last such line, `report(line)` is given the steps done, the time the
    epoch has taken and the time its steps should still take at that pace (the
    held-out scoring after them not counted). An epoch shorter than `every_seconds`
    gets no line. Reads nothing from the device: the time and the step count only.
    """

    def __init__(self, *, steps_per_epoch, report, every_seconds=None, clock=time.monotonic):
        super().__init__()
        self.steps_per_epoch = steps_per_epoch
        self.report = report
        self.every_seconds = (
            messages.PROGRESS_EVERY_SECONDS if every_seconds is None else every_seconds
        )
        self.clock = clock
        self._steps = None  # this epoch's `messages.TimedProgress`

    def on_epoch_begin(self, epoch, logs=None):
        self._steps = messages.TimedProgress(
            self.steps_per_epoch,
            label=f"epoch {epoch + 1}",
            unit="steps",
            rest="of steps to go",
            report=self.report,
            every_seconds=self.every_seconds,
            clock=self.clock,
        )

    def on_train_batch_end(self, batch, logs=None):
        self._steps.update(batch + 1)  # Keras gives the execution's last step, counted from 0
