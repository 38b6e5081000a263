"""The SavedModel export: each weight stored once, and the bytes signature TF Serving's
REST API calls."""

import base64
import glob
import io
import json
import os

import cv2
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from lesionseg_tf import export, images, synthetic
from lesionseg_tf.model import build_model
from tests.conftest import REPO_ROOT

EXAMPLES = os.path.join(REPO_ROOT, "examples", "ISIC-2017_Validation_Data")


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    tf.keras.utils.set_random_seed(0)
    model = build_model()
    export_dir = export.export_saved_model(
        model,
        export_dir=str(tmp_path_factory.mktemp("e") / "export"),
        image_size=32,
        max_pixels=200_000,
    )
    return model, export_dir, tf.saved_model.load(export_dir)


def encoded(picture, extension):
    ok, data = cv2.imencode(extension, picture[..., ::-1])
    assert ok
    return data.tobytes()


def test_each_weight_is_stored_once(exported):
    model, export_dir, _ = exported
    weights = sum(int(np.prod(w.shape)) * 4 for w in model.weights)
    stored = sum(
        os.path.getsize(p)
        for p in glob.glob(os.path.join(export_dir, "variables", "variables.data-*"))
    )
    assert weights <= stored <= 1.03 * weights, (stored, weights)


def serve_rest(signature, body):
    """What TF Serving does with a REST `predict` body for a one-input, one-output
    signature: `{"b64": ...}` values become bytes, stacked along the first dimension
    (the row form's `instances` or the columnar form's `inputs`); an output whose name
    ends in `_bytes` goes back base64-encoded, as `predictions` (row form) or `outputs`."""
    request = json.loads(body)
    (input_name,) = signature.structured_input_signature[1]
    rows = "instances" in request
    values = request["instances"] if rows else request["inputs"]
    if isinstance(values, dict):
        values = values[input_name]
    values = [v[input_name] if isinstance(v, dict) and input_name in v else v for v in values]
    batch = tf.constant([base64.b64decode(v["b64"]) for v in values])
    ((output_name, output),) = signature(**{input_name: batch}).items()
    assert output_name.endswith("_bytes")
    encoded_outputs = [{"b64": base64.b64encode(o).decode()} for o in output.numpy()]
    return json.dumps({"predictions" if rows else "outputs": encoded_outputs})


@pytest.mark.parametrize("form", ["row", "row_named", "columnar"])
def test_rest_round_trip_gives_the_segment_mask(exported, form):
    _, _, loaded = exported
    rng = np.random.default_rng(3)
    photos = [
        synthetic.render_example(rng, height=90, width=120)[0],
        synthetic.render_example(rng, height=75, width=61)[0],
    ]
    payloads = [encoded(photos[0], ".jpg"), encoded(photos[1], ".png")]
    b64 = [{"b64": base64.b64encode(p).decode()} for p in payloads]
    body = {
        "row": {"signature_name": "segment_bytes", "instances": b64},
        "row_named": {
            "signature_name": "segment_bytes",
            "instances": [{"image_bytes": v} for v in b64],
        },
        "columnar": {"signature_name": "segment_bytes", "inputs": {"image_bytes": b64}},
    }[form]
    answer = json.loads(serve_rest(loaded.signatures[body["signature_name"]], json.dumps(body)))
    masks = answer["predictions" if form.startswith("row") else "outputs"]
    assert len(masks) == 2
    for payload, item in zip(payloads, masks):
        mask = np.asarray(Image.open(io.BytesIO(base64.b64decode(item["b64"]))))
        photo = images.decode_bytes(payload)  # the project's decoding of the bytes
        expected = loaded.signatures["serving_default"](image=photo)["mask"].numpy()
        assert mask.dtype == np.uint8 and mask.shape == expected.shape
        np.testing.assert_array_equal(mask, expected)


def test_bytes_signature_refuses_bad_requests_with_a_message(exported):
    _, _, loaded = exported
    segment = loaded.signatures["segment_bytes"]
    photo = encoded(
        synthetic.render_example(np.random.default_rng(0), height=80, width=100)[0], ".jpg"
    )
    with pytest.raises(tf.errors.InvalidArgumentError, match="not a JPEG, PNG or BMP image"):
        segment(image_bytes=tf.constant([b"<html>not an image</html>"]))
    with pytest.raises(tf.errors.InvalidArgumentError, match="(?i)jpeg"):
        segment(image_bytes=tf.constant([photo[: len(photo) // 2]]))  # truncated data
    # A PNG header claiming 1000x1000 pixels, over this export's 200,000, refused before
    # any decoding (the rest of the file is not even there).
    header = encoded(np.zeros((1000, 1000, 3), np.uint8), ".png")[:33]
    with pytest.raises(
        tf.errors.InvalidArgumentError,
        match=r"the photograph is.*1000.*x.*1000.*pixels, over the limit of"
        r".*200000",
    ):
        segment(image_bytes=tf.constant([header]))
    with pytest.raises(tf.errors.InvalidArgumentError, match="header is cut short"):
        segment(image_bytes=tf.constant([header[:20]]))


def test_header_size_matches_the_file_reader_on_real_photographs(tmp_path):
    """The graph's header parser and `images.read_image_header` (Pillow) agree."""
    size = tf.function(images.photograph_size)
    paths = sorted(glob.glob(os.path.join(EXAMPLES, "*.jpg")))
    assert len(paths) == 3
    picture = synthetic.render_example(np.random.default_rng(1), height=37, width=53)[0]
    for extension in (".png", ".bmp"):
        path = tmp_path / f"synthetic{extension}"
        path.write_bytes(encoded(picture, extension))
        paths.append(str(path))
    top_down = tmp_path / "top_down.bmp"  # a BMP whose header stores a negative height
    Image.fromarray(picture).save(top_down)
    data = bytearray(top_down.read_bytes())
    height = int.from_bytes(data[22:26], "little", signed=True)
    data[22:26] = (-height).to_bytes(4, "little", signed=True)
    top_down.write_bytes(bytes(data))
    for path in paths:
        with open(path, "rb") as f:
            height, width = (int(v) for v in size(tf.constant(f.read())))
        assert (width, height) == images.read_image_header(path), path
    with open(top_down, "rb") as f:
        assert [int(v) for v in size(tf.constant(f.read()))] == [37, 53]
