"""The context option end to end: a tiny run of the Table-1 network with the image-level
feature, killed after its first epoch and resumed, then run through every export."""

import json
import os
import signal
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from lesionseg_tf import export, inference, segment, synthetic, tflite
from lesionseg_tf import model as model_lib
from lesionseg_tf.pipeline import resize_image, standardize
from tests.conftest import REPO_ROOT, run_script, script_env

pytestmark = pytest.mark.slow  # trains

SIZE = 32


@pytest.fixture(scope="module")
def context_run(tmp_path_factory):
    data = str(tmp_path_factory.mktemp("context_isic"))
    synthetic.write_synthetic_dataset(
        data, num_training=10, num_validation=2, num_test=1, seed=6, widths=(48, 64)
    )
    model_dir = tmp_path_factory.mktemp("context_run") / "run"
    args = [
        f"--data_dir={data}",
        f"--model_dir={model_dir}",
        f"--image_size={SIZE}",
        "--batch_size=3",
        "--max_epochs=2",
        "--patience=2",
        "--seed=2",
        "--context=image_pooling",
    ]
    killed = subprocess.run(
        [sys.executable, os.path.join("tests", "crash_train.py"), "backup", "0", "--", *args],
        cwd=REPO_ROOT,
        env=script_env(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    resumed = run_script("train.py", *args)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    return model_dir, resumed


def test_resumes_with_the_option_recorded(context_run):
    model_dir, resumed = context_run
    assert "resuming after epoch 1 of 2" in resumed.stdout
    with open(model_dir / "flags.json") as f:
        assert json.load(f)["context"] == "image_pooling"
    with open(model_dir / "training_log.csv") as f:
        assert [line.split(",")[0] for line in f.read().splitlines()[1:]] == ["1", "2"]


def photographs():
    rng = np.random.default_rng(3)
    return [synthetic.render_example(rng, height=h, width=w)[0] for h, w in ((40, 56), (33, 71))]


def test_every_export_runs_the_context_network(context_run, tmp_path):
    model_dir, _ = context_run
    keras_model = model_lib.load(str(model_dir / "best.keras"))
    assert model_lib.context_of(keras_model) == "image_pooling"
    assert "context_pool" in [layer.name for layer in keras_model.layers]
    # The SavedModel: the raw network and the photograph-to-mask signature.
    assert export.read_info(str(model_dir / "export"))["context"] == "image_pooling"
    loaded = tf.saved_model.load(str(model_dir / "export"))
    segmenter = inference.load_segmenter(str(model_dir / "export"))
    # The .tflite of the same weights, in LiteRT.
    path = tmp_path / "context.tflite"
    path.write_bytes(tflite.convert(keras_model, image_size=SIZE, variant="float32"))
    lite = inference.load_segmenter(str(path))
    for photograph in photographs():
        inputs = standardize(resize_image(photograph[np.newaxis], image_size=SIZE)).numpy()
        expected = keras_model(inputs, training=False).numpy()
        got = loaded.logits(images=tf.constant(inputs))["logits"].numpy()
        np.testing.assert_allclose(got, expected, atol=1e-4)
        lite_logits = tflite.LiteNetwork(str(path))(inputs).numpy()
        np.testing.assert_allclose(
            lite_logits, expected, atol=1e-4 * max(1, np.abs(expected).max())
        )
        mask = segment.segment_photograph(
            lambda x: keras_model(x, training=False), image=tf.constant(photograph), image_size=SIZE
        ).numpy()
        assert mask.shape == photograph.shape[:2]
        np.testing.assert_array_equal(segmenter.segment(photograph), mask)
        assert (lite.segment(photograph) == mask).mean() > 0.999
