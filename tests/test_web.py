"""The browser page (web/) in a real headless Chromium: each step of web/segment.js against
its Python twin, whole photographs against the project's own segmentation of the same
.tflite, the bad inputs' messages, and no network request after the page has loaded.

One browser for the module. Skipped, with the reason, where Chromium, ChromeDriver or the
page's runtime (`npm ci`) is absent; with LESIONSEG_REQUIRE_BROWSER=1 (CI) that is a failure.
"""

import base64
import io
import json
import os
import shutil

import cv2
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from lesionseg_tf import images, inference, pipeline, postprocess, synthetic
from tests.conftest import REPO_ROOT
from tools import web

pytestmark = pytest.mark.slow  # a browser and the network

TFLITE = os.path.join(REPO_ROOT, web.MODEL)
EXAMPLES = os.path.join(REPO_ROOT, "examples", "ISIC-2017_Validation_Data")
AGREEMENT = 0.999  # share of equal mask pixels, page against the library


def _browser_missing():
    missing = [
        path for path in ("/usr/bin/chromium", "/usr/bin/chromedriver") if not shutil.which(path)
    ] + web.missing_files()
    return ", ".join(missing)


@pytest.fixture(scope="module")
def page():
    """`(driver, requests)`: the page loaded and its model ready; `requests` lists every
    path the server was asked for."""
    missing = _browser_missing()
    if missing:
        reason = f"no browser for the page's tests: missing {missing}"
        if os.environ.get("LESIONSEG_REQUIRE_BROWSER") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    requests = []
    with web.open_page(
        "/usr/bin/chromium", "/usr/bin/chromedriver", on_request=requests.append
    ) as driver:
        yield driver, requests


def call(driver, function, *args):
    """`segment.js`'s `function(*args)` in the page; typed arrays travel as lists."""
    return driver.execute_async_script(
        """const [name, args, done] = [arguments[0], arguments[1], arguments[arguments.length - 1]];
        import("./segment.js").then(async (m) => {
          const typed = args.map((a) => a && a.typed ? new globalThis[a.typed](a.values) : a);
          const out = await m[name](...typed);
          const plain = (v) => ArrayBuffer.isView(v) ? Array.from(v) : v;
          done(out && typeof out === "object" && !ArrayBuffer.isView(out)
               ? Object.fromEntries(Object.entries(out).map(([k, v]) => [k, plain(v)]))
               : plain(out));
        }).catch((e) => done({error: String(e)}));""",
        function,
        list(args),
    )


def typed(kind, values):
    return {"typed": kind, "values": np.asarray(values).ravel().tolist()}


def test_each_step_matches_its_python_twin(page):
    driver, _ = page
    rng = np.random.default_rng(0)
    photo = rng.integers(0, 256, size=(37, 53, 3), dtype=np.uint8)
    resized = np.array(call(driver, "resizeImage", typed("Uint8Array", photo), 53, 37, 16))
    expected = pipeline.resize_image(photo[np.newaxis], image_size=16)[0].numpy()
    expected = expected.ravel().astype(int)
    assert np.abs(resized - expected).max() <= 1 and (resized == expected).mean() > 0.99
    standardized = np.array(call(driver, "standardize", typed("Uint8Array", expected)))
    np.testing.assert_allclose(
        standardized,
        pipeline.standardize(expected.reshape(16, 16, 3).astype(np.uint8)).numpy().ravel(),
        atol=1e-5,
    )
    for size, new_size in ((16, 61), (64, 3008), (64, 37)):
        taps = call(driver, "bicubicTaps", size, new_size)
        dense = np.zeros((size, new_size))
        for o in range(new_size):
            for k in range(4):
                dense[taps["indices"][o * 4 + k], o] += taps["weights"][o * 4 + k]
        np.testing.assert_allclose(
            dense, postprocess.bicubic_weights(size, new_size=new_size).numpy(), atol=2e-6
        )
    binary = rng.random((23, 31)) > 0.4
    opened = np.array(call(driver, "openWithDisk", typed("Uint8Array", binary), 31, 23))
    np.testing.assert_array_equal(
        opened.reshape(23, 31), postprocess.open_with_disk(tf.constant(binary)).numpy()
    )
    probability = cv2.GaussianBlur(rng.random((16, 16)), (0, 0), 2).astype(np.float32)
    probability = (probability - probability.min()) / np.ptp(probability)
    mask = np.array(
        call(driver, "probabilityToMask", typed("Float32Array", probability), 16, 101, 67)
    ).reshape(101, 67)
    expected_mask = postprocess.probability_to_mask(probability, height=101, width=67).numpy()
    assert (mask == expected_mask).mean() > AGREEMENT
    for name in sorted(os.listdir(EXAMPLES)):
        with open(os.path.join(EXAMPLES, name), "rb") as f:
            size = call(
                driver, "photographSize", typed("Uint8Array", np.frombuffer(f.read(), np.uint8))
            )
        assert (size["width"], size["height"]) == images.read_image_header(
            os.path.join(EXAMPLES, name)
        ), name


def segment_in_page(driver, path):
    """The page's mask of the photograph at `path`, chosen in its file input, and what the
    page reported."""
    if web.choose_file(driver, path) != "done":
        return None, driver.find_element("id", "error").text
    link = driver.find_element("id", "download")
    png = driver.execute_async_script(
        """const done = arguments[arguments.length - 1];
        fetch(arguments[0]).then((r) => r.arrayBuffer()).then((b) => {
          let s = ""; const u = new Uint8Array(b);
          for (let i = 0; i < u.length; i += 32768)
            s += String.fromCharCode(...u.subarray(i, i + 32768));
          done(btoa(s));
        });""",
        link.get_attribute("href"),
    )
    mask = np.asarray(Image.open(io.BytesIO(base64.b64decode(png))))
    return mask, {
        "download": link.get_attribute("download"),
        **driver.execute_script("return window.lesionseg.last"),
    }


def awkward_photographs(folder):
    """Synthetic photographs of awkward sizes: odd sides, very wide, very small, and the
    largest ISIC 2017 size; PNG (lossless, so browser and TensorFlow decode the same
    pixels) but the largest, a JPEG as the archive's."""
    rng = np.random.default_rng(3)
    paths = []
    for height, width, extension in (
        (167, 251, ".png"),
        (37, 1201, ".png"),
        (9, 11, ".png"),
        (4499, 6748, ".jpg"),
    ):
        image, _ = synthetic.render_example(rng, height=height, width=width)
        path = os.path.join(folder, f"synthetic_{width}x{height}{extension}")
        cv2.imwrite(path, image[..., ::-1])
        paths.append(path)
    return paths


def test_page_masks_agree_with_the_library_on_real_and_awkward_photographs(page, tmp_path):
    driver, _ = page
    segmenter = inference.LiteSegmenter(TFLITE)
    assert driver.execute_script("return window.lesionseg.inputSize") == segmenter.image_size
    paths = [os.path.join(EXAMPLES, n) for n in sorted(os.listdir(EXAMPLES))]
    paths += awkward_photographs(str(tmp_path))
    agreements = {}
    for path in paths:
        mask, info = segment_in_page(driver, path)
        assert mask is not None, info
        expected = segmenter.segment(images.read_image_file(path))
        assert mask.shape == expected.shape and mask.dtype == np.uint8, path
        assert set(np.unique(mask)) <= {0, 255}
        stem = os.path.splitext(os.path.basename(path))[0]
        assert info["download"] == f"{stem}_segmentation.png"
        assert info["area"] == int((mask > 0).sum())
        agreements[os.path.basename(path)] = float((mask == expected).mean())
    print(
        "share of equal mask pixels, page against LiteSegmenter:",
        json.dumps(agreements, indent=1),
        "minimum",
        min(agreements.values()),
    )
    assert min(agreements.values()) >= AGREEMENT, agreements


def test_exif_rotation_is_ignored_as_predict_py_ignores_it(page, tmp_path):
    driver, _ = page
    image, _ = synthetic.render_example(np.random.default_rng(5), height=90, width=140)
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 clockwise to display"
    path = str(tmp_path / "rotated.jpg")
    Image.fromarray(image).save(path, exif=exif, quality=95)
    mask, info = segment_in_page(driver, path)
    assert mask is not None, info
    assert mask.shape == images.read_image_file(path).shape[:2] == (90, 140)


def bad_inputs(folder):
    with open(os.path.join(EXAMPLES, "ISIC_0012965.jpg"), "rb") as f:
        jpeg = f.read()

    def header(w, h):
        return (
            b"\x89PNG\r\n\x1a\n"
            + b"\x00\x00\x00\x0dIHDR"
            + w.to_bytes(4, "big")
            + h.to_bytes(4, "big")
            + b"\x08\x02\x00\x00\x00"
        )

    files = {
        "notes.jpg": (
            b"these are a clinician's notes, not a photograph\n",
            "notes.jpg: not a JPEG, PNG or BMP image",
        ),
        "truncated.jpg": (
            jpeg[: len(jpeg) // 2],
            "truncated.jpg: the JPEG is cut short (truncated)",
        ),
        "huge.png": (
            header(20000, 20000),
            "huge.png: 20000x20000 is 400,000,000 pixels, over the limit of 100,000,000",
        ),
        "wide.png": (header(40000, 100), "wide.png: 40000x100: wider or taller than 32767 pixels"),
    }
    one = io.BytesIO()
    Image.new("RGB", (1, 1), (200, 120, 90)).save(one, format="PNG")
    files["dot.png"] = (one.getvalue(), "dot.png: 1x1 pixels is too small to segment")
    for name, (payload, _) in files.items():
        with open(os.path.join(folder, name), "wb") as f:
            f.write(payload)
    return {os.path.join(folder, name): message for name, (_, message) in files.items()}


def test_bad_inputs_get_a_message_not_a_frozen_tab(page, tmp_path):
    driver, _ = page
    messages = {}
    for path, expected in bad_inputs(str(tmp_path)).items():
        mask, message = segment_in_page(driver, path)
        assert mask is None, path
        assert message.startswith(expected), (message, expected)
        assert not driver.find_element("id", "download").is_displayed()
        messages[os.path.basename(path)] = message
    print("messages:", json.dumps(messages, indent=1))
    # The page still works after them.
    mask, info = segment_in_page(driver, os.path.join(EXAMPLES, "ISIC_0014608.jpg"))
    assert mask is not None, info


def test_no_network_request_after_the_page_has_loaded(page, tmp_path):
    """The photograph never leaves: neither the page's server nor Chromium's own network
    log sees a request while a photograph is segmented."""
    driver, requests = page
    path = awkward_photographs(str(tmp_path))[0]
    driver.get_log("performance")  # drain what loading the page asked for
    before = len(requests)
    assert web.choose_file(driver, path, timeout=120) == "done"
    sent = [json.loads(entry["message"])["message"] for entry in driver.get_log("performance")]
    urls = [
        m["params"]["request"]["url"] for m in sent if m["method"] == "Network.requestWillBeSent"
    ]
    print("requests after load:", requests[before:], urls)
    assert requests[before:] == []
    assert [u for u in urls if not u.startswith(("blob:", "data:"))] == []
