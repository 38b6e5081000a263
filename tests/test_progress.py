"""Progress inside a long epoch, in a log file (`callbacks.EpochProgress`)."""

import pytest

from lesionseg_tf import callbacks, messages


class FakeClock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def run_epoch(progress, clock, *, epoch, steps, steps_per_execution, seconds_per_step):
    """Calls the hooks as Keras' `fit` does: the last step of each execution, from 0."""
    progress.on_epoch_begin(epoch)
    for end in range(steps_per_execution - 1, steps + steps_per_execution - 1, steps_per_execution):
        end = min(end, steps - 1)
        clock.now += seconds_per_step * (end % steps_per_execution + 1)
        progress.on_train_batch_end(end)


def test_a_long_epoch_says_its_steps_time_and_what_is_left():
    clock, lines = FakeClock(), []
    progress = callbacks.EpochProgress(
        steps_per_epoch=50, report=lines.append, every_seconds=60, clock=clock
    )
    # 17 s a step in executions of 8 (448x448 on the project's CPU VM): 136 s each.
    run_epoch(progress, clock, epoch=2, steps=50, steps_per_execution=8, seconds_per_step=17)
    assert lines == [
        "  epoch 3: 8/50 steps in 2 min 16 s, about 11 min 54 s of steps to go",
        "  epoch 3: 16/50 steps in 4 min 32 s, about 9 min 38 s of steps to go",
        "  epoch 3: 24/50 steps in 6 min 48 s, about 7 min 22 s of steps to go",
        "  epoch 3: 32/50 steps in 9 min 4 s, about 5 min 6 s of steps to go",
        "  epoch 3: 40/50 steps in 11 min 20 s, about 2 min 50 s of steps to go",
        "  epoch 3: 48/50 steps in 13 min 36 s, about 34 s of steps to go",
    ]  # none at the epoch's last step: Keras' epoch line follows at once


def test_lines_are_a_minute_apart_and_each_epoch_counts_from_its_start():
    clock, lines = FakeClock(), []
    progress = callbacks.EpochProgress(
        steps_per_epoch=40, report=lines.append, every_seconds=60, clock=clock
    )
    run_epoch(progress, clock, epoch=0, steps=40, steps_per_execution=1, seconds_per_step=25)
    assert [line.split(" steps")[0] for line in lines] == [
        "  epoch 1: 3/40", "  epoch 1: 6/40", "  epoch 1: 9/40", "  epoch 1: 12/40",
        "  epoch 1: 15/40", "  epoch 1: 18/40", "  epoch 1: 21/40", "  epoch 1: 24/40",
        "  epoch 1: 27/40", "  epoch 1: 30/40", "  epoch 1: 33/40", "  epoch 1: 36/40",
        "  epoch 1: 39/40",
    ]  # fmt: skip
    lines.clear()
    clock.now += 3600  # the held-out scoring, a pause: not counted in the next epoch
    run_epoch(progress, clock, epoch=1, steps=40, steps_per_execution=1, seconds_per_step=25)
    assert lines[0] == "  epoch 2: 3/40 steps in 1 min 15 s, about 15 min 25 s of steps to go"


def test_an_epoch_shorter_than_a_minute_says_nothing_more():
    clock, lines = FakeClock(), []
    progress = callbacks.EpochProgress(steps_per_epoch=50, report=lines.append, clock=clock)
    assert progress.every_seconds == messages.PROGRESS_EVERY_SECONDS == 60
    run_epoch(progress, clock, epoch=0, steps=50, steps_per_execution=8, seconds_per_step=1.1)
    assert lines == []


def test_hours_read_as_hours():
    clock, lines = FakeClock(), []
    progress = callbacks.EpochProgress(
        steps_per_epoch=10, report=lines.append, every_seconds=60, clock=clock
    )
    run_epoch(progress, clock, epoch=0, steps=10, steps_per_execution=1, seconds_per_step=1800)
    assert lines[0] == "  epoch 1: 1/10 steps in 30 min 0 s, about 4 h 30 min of steps to go"


def test_any_long_loop_says_so_with_its_own_label_and_unit():
    """The data check's lines (`preflight.check_progress`): 2000 full-size pairs at
    62.5 ms each, a line every 20 s."""
    clock, lines = FakeClock(), []
    progress = messages.TimedProgress(
        2000,
        label="checking the training split",
        unit="pairs",
        report=lines.append,
        every_seconds=20,
        clock=clock,
    )
    for done in range(1, 2001):
        clock.now += 0.0625
        progress.update(done)
    assert [line.split(" pairs")[0] for line in lines] == [
        f"  checking the training split: {done}/2000" for done in (320, 640, 960, 1280, 1600, 1920)
    ]  # none at the end, at 125 s: the caller's own line follows
    assert lines[0] == (
        "  checking the training split: 320/2000 pairs in 20 s, about 1 min 45 s to go"
    )


@pytest.mark.slow
def test_a_run_written_to_a_log_file_reports_progress_inside_its_epochs(
    tiny_isic, tmp_path, monkeypatch
):
    """training.run as train.py calls it in a log file (verbose=2), every execution
    reported (the least time between lines set to 0)."""
    from lesionseg_tf import training  # pylint: disable=import-outside-toplevel
    from lesionseg_tf.config import RunConfig  # pylint: disable=import-outside-toplevel

    monkeypatch.setattr(messages, "PROGRESS_EVERY_SECONDS", 0.0)
    config = RunConfig(
        data_dir=tiny_isic,
        image_size=32,
        batch_size=2,
        max_epochs=1,
        patience=1,
        select_on="validation",
        steps_per_execution=1,
    )
    lines = []
    training.run(
        config,
        model_dir=str(tmp_path / "run"),
        verbose=2,
        report=lambda line, _: lines.append(line),
    )
    progress = [line.split(" steps")[0] for line in lines if line.startswith("  epoch ")]
    assert progress == ["  epoch 1: 1/4", "  epoch 1: 2/4", "  epoch 1: 3/4"]
