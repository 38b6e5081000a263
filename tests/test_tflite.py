"""The network in LiteRT: TensorFlow and ai_edge_litert in one process, each variant
against the Keras model, and a .tflite file scored through the library's own
pre- and post-processing."""

import numpy as np
import pytest
import tensorflow as tf

from lesionseg_tf import export, inference, synthetic, tflite
from lesionseg_tf.model import build_model
from lesionseg_tf.pipeline import resize_image, standardize
from tests.conftest import run_script

SIZE = 32


@pytest.fixture(scope="module")
def model():
    tf.keras.utils.set_random_seed(1)
    return build_model()


def standardized(count, seed=0):
    rng = np.random.default_rng(seed)
    photos = [synthetic.render_example(rng, height=60, width=80)[0] for _ in range(count)]
    return np.concatenate(
        [standardize(resize_image(p[np.newaxis], image_size=SIZE)).numpy() for p in photos]
    )


@pytest.mark.parametrize("variant,atol", [("float32", 1e-4), ("float16", 0.05)])
def test_float_variants_reproduce_the_keras_network(model, variant, atol, tmp_path):
    path = tmp_path / f"n_{variant}.tflite"
    path.write_bytes(tflite.convert(model, image_size=SIZE, variant=variant))
    network = tflite.LiteNetwork(str(path))  # LiteRT, in the process that runs TensorFlow
    assert network.image_size == SIZE
    images = standardized(3)
    expected = model(images, training=False).numpy()
    got = network(images).numpy()
    assert got.shape == expected.shape == (3, SIZE, SIZE, 2)
    assert np.abs(got - expected).max() < atol * max(1.0, np.abs(expected).max())


def test_int8_is_calibrated_and_agrees_on_the_decision(model, tmp_path):
    data = tflite.convert(
        model, image_size=SIZE, variant="int8", calibration_images=standardized(16, seed=1)
    )
    float32 = tflite.convert(model, image_size=SIZE, variant="float32")
    assert len(data) < 0.4 * len(float32)  # int8 weights: about a quarter
    path = tmp_path / "n_int8.tflite"
    path.write_bytes(data)
    images = standardized(4, seed=2)
    expected = model(images, training=False).numpy()
    got = tflite.LiteNetwork(str(path))(images).numpy()
    # Quantized activations move the logits a little; the lesion decision barely.
    agree = (np.argmax(got, -1) == np.argmax(expected, -1)).mean()
    assert agree > 0.9, agree
    with pytest.raises(ValueError, match="int8 needs calibration images"):
        tflite.convert(model, image_size=SIZE, variant="int8")
    with pytest.raises(ValueError, match="variant must be one of"):
        tflite.convert(model, image_size=SIZE, variant="int4")


def test_lite_segmenter_gives_the_saved_models_mask(model, tmp_path):
    """Only the network differs: the same `segment.segment_photograph` around it."""
    export_dir = export.export_saved_model(
        model, export_dir=str(tmp_path / "export"), image_size=SIZE
    )
    path = tmp_path / "lesionseg_float32.tflite"
    path.write_bytes(tflite.convert(model, image_size=SIZE, variant="float32"))
    lite = inference.load_segmenter(str(path))
    saved = inference.load_segmenter(export_dir)
    assert isinstance(lite, inference.LiteSegmenter) and lite.image_size == SIZE
    rng = np.random.default_rng(5)
    for height, width in ((90, 120), (301, 257)):
        photo = synthetic.render_example(rng, height=height, width=width)[0]
        for tta in (False, True):
            a = lite.segment(photo, tta=tta)
            b = saved.segment(photo, tta=tta)
            assert a.shape == (height, width)
            assert (a == b).mean() > 0.999  # float32 rounding may flip a pixel at 0.5
    with pytest.raises(ValueError, match="no such TFLite file"):
        inference.load_segmenter(str(tmp_path / "missing.tflite"))


@pytest.mark.slow
def test_the_export_command_writes_an_int8_file_calibrated_on_trained_photographs(
    trained_run, tiny_isic, tmp_path
):
    run_dir, _ = trained_run
    result = run_script(
        "-m tools.export",
        f"--run_dir={run_dir}",
        "--tflite=int8",
        f"--tflite_dir={tmp_path}",
        f"--data_dir={tiny_isic}",
        "--calibration_images=6",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    path = tmp_path / "lesionseg_int8.tflite"
    assert f"TFLite int8: {path} (" in result.stdout
    assert "calibrated on 6 training photographs" in result.stdout
    photograph = np.random.default_rng(3).integers(0, 256, (40, 52, 3)).astype(np.uint8)
    lite = inference.LiteSegmenter(str(path)).segment(photograph)
    assert lite.shape == (40, 52) and set(np.unique(lite)) <= {0, 255}
