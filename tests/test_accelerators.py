"""The GPU options run end to end on the CPU: mixed precision (bfloat16, float16 with
loss scaling), XLA, several steps per execution, and no per-step host reads."""

import csv
import json
import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from lesionseg_tf import callbacks, export, fitting
from tests.conftest import run_script

OPTIONS = {
    "bfloat16_xla": (
        ["--mixed_precision=bfloat16", "--jit_compile=true"],
        {"compute_dtype": "bfloat16", "loss_scaling": False, "jit_compile": True},
    ),
}


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(OPTIONS))
def test_option_trains_and_exports(name, training_only_isic, tiny_isic, tmp_path):
    args, expected = OPTIONS[name]
    model_dir = tmp_path / name
    result = run_script(
        "train.py",
        f"--data_dir={training_only_isic}",
        f"--model_dir={model_dir}",
        "--image_size=32",
        "--batch_size=4",
        "--max_epochs=2",
        "--patience=2",
        *args,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    with open(model_dir / "result.json") as f:
        ran = json.load(f)
    # The model really ran with the option (an option silently dropped fails here).
    assert {key: ran[key] for key in expected} == expected
    with open(model_dir / "training_log.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 2 and all(math.isfinite(float(row["loss"])) for row in rows)
    loaded = tf.saved_model.load(str(model_dir / "export"))
    photo = np.random.default_rng(0).integers(0, 256, size=(45, 70, 3), dtype=np.uint8)
    mask = loaded.signatures["serving_default"](image=tf.constant(photo))["mask"]
    assert mask.dtype == tf.uint8 and tuple(mask.shape) == (45, 70)
    assert set(np.unique(mask.numpy())) <= {0, 255}
    logits = loaded.logits(tf.zeros([1, 32, 32, 3]))["logits"]
    assert logits.dtype == tf.float32 and tuple(logits.shape) == (1, 32, 32, 2)


def test_float16_trains_with_loss_scaling_and_float32_logits():
    """float16 (for GPUs; train.py's whole path is proven above with bfloat16): float16
    compute, Keras' loss scaling, float32 logits, a finite step."""
    model = fitting.compiled_model(learning_rate=1e-3, mixed_precision="float16", jit_compile=False)
    assert model.get_layer("conv1_1").compute_dtype == "float16"
    assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
    rng = np.random.default_rng(0)
    images = rng.normal(size=(2, 32, 32, 3)).astype(np.float32)
    labels = (rng.random((2, 32, 32, 1)) > 0.5).astype(np.int32)
    history = model.fit(tf.data.Dataset.from_tensors((images, labels)), verbose=0, shuffle=False)
    assert math.isfinite(history.history["loss"][0])
    assert model(images, training=False).dtype == "float32"
    assert keras.mixed_precision.global_policy().name == "float32"  # restored


def test_export_tolerance_follows_the_precision():
    assert export.export_tolerance("float32", largest_logit=40.0) == export.FLOAT32_ATOL
    # One rounding of bfloat16 at a logit of 4 is 4 * 2**-8 = 0.0156: eight of them pass.
    assert export.export_tolerance("bfloat16", largest_logit=4.0) == pytest.approx(8 * 4 * 2**-8)
    assert export.export_tolerance("float16", largest_logit=4.0) == pytest.approx(8 * 4 * 2**-11)
    assert export.export_tolerance("bfloat16", largest_logit=0.1) == pytest.approx(8 * 2**-8)


@pytest.mark.slow
def test_no_per_step_host_reads(tmp_path):
    """With 4 steps per execution, 8 steps read the loss on the host twice."""
    model = fitting.compiled_model(learning_rate=1e-3, steps_per_execution=4)
    rng = np.random.default_rng(0)
    images = rng.normal(size=(16, 16, 16, 3)).astype(np.float32)
    labels = (rng.random((16, 16, 16, 1)) > 0.5).astype(np.int32)
    dataset = tf.data.Dataset.from_tensor_slices((images, labels)).batch(2)

    class CountingGuard(callbacks.StopOnNaN):
        host_reads = 0

        def on_train_batch_end(self, batch, logs=None):
            CountingGuard.host_reads += "loss" in (logs or {})
            super().on_train_batch_end(batch, logs)

    guard = CountingGuard()
    best = callbacks.BestAndEarlyStop(
        monitor="val_jaccard", patience=5, best_path=str(tmp_path / "best.keras")
    )
    project = [
        callbacks.EpochVariable(tf.Variable(0, dtype=tf.int64)),
        guard,
        best,
        callbacks.EpochSummaries(str(tmp_path / "logs")),
        callbacks.EpochBackup(str(tmp_path / "backup"), early_stopping=best),
    ]
    model.fit(
        dataset, validation_data=dataset, epochs=2, verbose=0, callbacks=project, shuffle=False
    )
    assert guard.host_reads == 2 * 2  # 2 executions per epoch, 2 epochs
    assert int(model.optimizer.iterations) == 16
    # The project's other callbacks have no per-step hooks at all.
    for callback in project:
        if callback is guard:
            continue
        for hook in ("on_train_batch_begin", "on_train_batch_end"):
            assert getattr(type(callback), hook) is getattr(keras.callbacks.Callback, hook), (
                type(callback).__name__,
                hook,
            )


@pytest.mark.slow
def test_nan_guard_names_the_steps_of_the_execution():
    # Seeded: fit's shuffle is a random op, refused without a seed once a test of this
    # worker has turned on op determinism (test_training_options.py does, for the process).
    keras.utils.set_random_seed(0)
    model = fitting.compiled_model(learning_rate=1e30, steps_per_execution=3)
    rng = np.random.default_rng(0)
    images = rng.normal(size=(12, 16, 16, 3)).astype(np.float32)
    labels = (rng.random((12, 16, 16, 1)) > 0.5).astype(np.int32)
    guard = callbacks.StopOnNaN()
    model.fit(images, labels, batch_size=2, epochs=3, verbose=0, callbacks=[guard])
    assert guard.where is not None
    epoch, first, last = guard.where
    assert last - first == 2 or last == 6  # one whole execution, or the epoch's last
    assert first % 3 == 1
