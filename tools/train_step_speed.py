"""Times the training step alone, for comparing two versions of the code on one machine:
448x448 random images in memory, batch 8, `compiled_model` (no XLA, one step per
execution), 2 warm-up steps, then 8 timed, each to its end; prints one line of images/s.

    python -m tools.train_step_speed                      # this tree
    PYTHONPATH=/path/to/other/tree python tools/train_step_speed.py   # another tree

It imports only `compiled_model`, from `lesionseg_tf.fitting` where it is (since
2026-12-03) or `lesionseg_tf.training` (2026-11-25 to 2026-12-03), so the same file times
them all. Run the versions interleaved, one
process each, to see the machine's drift apart from the code's.
"""

import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

if any(arg in ("--help", "-h", "-help", "--helpfull", "-?") for arg in sys.argv[1:]):
    print(__doc__.strip())  # no flags: the settings are fixed so that versions compare
    sys.exit(0)
if len(sys.argv) > 1:
    sys.exit(f"train_step_speed: takes no arguments, got {' '.join(sys.argv[1:])}")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

try:  # where compiled_model is: fitting in newer trees, training in older ones
    from lesionseg_tf import fitting as training  # noqa: E402
except ImportError:
    from lesionseg_tf import training  # noqa: E402

IMAGE_SIZE, BATCH, WARM_UP, TIMED = 448, 8, 2, 8


def main():
    rng = np.random.default_rng(0)
    images = rng.normal(size=(BATCH, IMAGE_SIZE, IMAGE_SIZE, 3)).astype(np.float32)
    labels = (rng.random((BATCH, IMAGE_SIZE, IMAGE_SIZE, 1)) > 0.7).astype(np.int32)
    dataset = tf.data.Dataset.from_tensors((images, labels)).repeat()
    model = training.compiled_model(learning_rate=1e-3, jit_compile=False)
    model.fit(dataset, epochs=1, steps_per_epoch=WARM_UP, verbose=0, shuffle=False)
    steps = []

    class Clock(keras.callbacks.Callback):
        # Each step timed to its end (reading its loss waits for it), not what `fit` does
        # between steps (docs/benchmarks.md); the library's own is `callbacks.StepClock`,
        # which older versions lack.
        def on_train_batch_begin(self, batch, logs=None):
            self.start = time.perf_counter()

        def on_train_batch_end(self, batch, logs=None):
            float(logs["loss"])
            steps.append(time.perf_counter() - self.start)

    model.fit(
        dataset, epochs=1, steps_per_epoch=TIMED, verbose=0, shuffle=False, callbacks=[Clock()]
    )
    seconds = sum(steps)
    print(
        f"{TIMED * BATCH / seconds:.3f} images/s ({TIMED} steps of {BATCH} in {seconds:.1f} s; "
        f"{training.__file__}; threads intra "
        f"{tf.config.threading.get_intra_op_parallelism_threads()}"
        f" inter {tf.config.threading.get_inter_op_parallelism_threads()})",
        flush=True,
    )


if __name__ == "__main__":
    sys.exit(main())
