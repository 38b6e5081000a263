"""The browser page (web/) in a real headless Chromium: each step of web/segment.js against
its Python twin, whole photographs against the project's own segmentation of the same
.tflite, the bad inputs' messages, photographs chosen before the model is ready or several at
once, the page's thread never blocked, and no network request after the page has loaded.

One browser for the module. Skipped, with the reason, where Chromium, ChromeDriver or the
page's runtime (`npm ci`) is absent; with LESIONSEG_REQUIRE_BROWSER=1 (CI) that is a failure.
"""

import base64
import io
import json
import os
import shutil
import time
import zipfile

import cv2
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from lesionseg_tf import config, images, inference, pipeline, postprocess, synthetic
from tests.conftest import REPO_ROOT
from tools import web

pytestmark = pytest.mark.slow  # a browser and the network

TFLITE = os.path.join(REPO_ROOT, web.MODEL)
EXAMPLES = os.path.join(REPO_ROOT, web.EXAMPLES)
AGREEMENT = 0.999  # share of equal mask pixels, page against the library


def _browser_missing():
    missing = [
        path for path in ("/usr/bin/chromium", "/usr/bin/chromedriver") if not shutil.which(path)
    ] + web.missing_files()
    return ", ".join(missing)


def _require_browser():
    missing = _browser_missing()
    if missing:
        reason = f"no browser for the page's tests: missing {missing}"
        if os.environ.get("LESIONSEG_REQUIRE_BROWSER") == "1":
            pytest.fail(reason)
        pytest.skip(reason)


@pytest.fixture(scope="module")
def page():
    """`(driver, requests)`: the page loaded and its model ready; `requests` lists every
    path the server was asked for."""
    _require_browser()
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


def fetch_bytes(driver, url):
    """The bytes behind a URL of the page (a blob: link)."""
    encoded = driver.execute_async_script(
        """const done = arguments[arguments.length - 1];
        fetch(arguments[0]).then((r) => r.arrayBuffer()).then((b) => {
          let s = ""; const u = new Uint8Array(b);
          for (let i = 0; i < u.length; i += 32768)
            s += String.fromCharCode(...u.subarray(i, i + 32768));
          done(btoa(s));
        });""",
        url,
    )
    return base64.b64decode(encoded)


def png_pixels(data):
    return np.asarray(Image.open(io.BytesIO(data)))


def test_the_pages_limits_are_the_librarys(page):
    driver, _ = page
    constants = driver.execute_async_script(
        """const done = arguments[arguments.length - 1];
        import("./segment.js").then(
          (m) => done({pixels: m.MAX_PIXELS, threshold: m.BINARY_THRESHOLD}));"""
    )
    assert constants == {
        "pixels": config.DEFAULT_MAX_PIXELS,
        "threshold": postprocess.BINARY_THRESHOLD,
    }


def segment_in_page(driver, path):
    """The page's mask of the photograph at `path`, chosen in its file input, and what the
    page reported."""
    if web.choose_files(driver, path) != "done":
        return None, driver.find_element("id", "error").text
    link = driver.find_element("id", "download")
    mask = png_pixels(fetch_bytes(driver, link.get_attribute("href")))
    return mask, {
        "download": link.get_attribute("download"),
        **driver.execute_script("return window.lesionseg.last"),
    }


@pytest.fixture(scope="module")
def awkward(tmp_path_factory):
    """Synthetic photographs of awkward sizes: odd sides, very wide, very small, and the
    largest ISIC 2017 size; PNG (lossless, so browser and TensorFlow decode the same
    pixels) but the largest, a JPEG as the archive's, rendered at a quarter of its side
    and upscaled (`tools.benchmark_training.write_test_jpeg`'s way, seconds instead of
    half a minute). Written once for the module."""
    folder = str(tmp_path_factory.mktemp("awkward"))
    rng = np.random.default_rng(3)
    paths = []
    for height, width, extension in (
        (167, 251, ".png"),
        (37, 1201, ".png"),
        (9, 11, ".png"),
        (4499, 6748, ".jpg"),
    ):
        large = height * width > 10**6
        image, _ = synthetic.render_example(
            rng, height=height // 4 if large else height, width=width // 4 if large else width
        )
        if large:
            image = cv2.resize(image, (width, height), interpolation=cv2.INTER_CUBIC)
        path = os.path.join(folder, f"synthetic_{width}x{height}{extension}")
        cv2.imwrite(path, image[..., ::-1])
        paths.append(path)
    return paths


def test_page_masks_agree_with_the_library_on_real_and_awkward_photographs(page, awkward):
    driver, _ = page
    segmenter = inference.LiteSegmenter(TFLITE)
    assert driver.execute_script("return window.lesionseg.inputSize") == segmenter.image_size
    paths = [os.path.join(EXAMPLES, n) for n in sorted(os.listdir(EXAMPLES))]
    paths += awkward
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
        assert info["model"] == "lesionseg_isic2017"
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


def shown(driver):
    """What the page shows of its latest photograph: the view's size, the details' rows and
    whether the mask's link is offered."""
    return driver.execute_script(
        """const $ = (id) => document.getElementById(id);
        return [$("view").width, $("view").height, $("result").rows.length,
                !$("download").hidden];"""
    )


def test_bad_inputs_get_a_message_not_a_frozen_tab(page, tmp_path):
    driver, _ = page
    mask, info = segment_in_page(driver, os.path.join(EXAMPLES, "ISIC_0009995.jpg"))
    assert mask is not None, info
    assert shown(driver)[0] > 0 and shown(driver)[2:] == [4, True]
    messages = {}
    for path, expected in bad_inputs(str(tmp_path)).items():
        mask, message = segment_in_page(driver, path)
        assert mask is None, path
        assert message.startswith(expected), (message, expected)
        # The photograph before is no longer on screen, where it could pass for this one's.
        assert shown(driver) == [0, 0, 0, False], path
        messages[os.path.basename(path)] = message
    print("messages:", json.dumps(messages, indent=1))
    # The page still works after them.
    mask, info = segment_in_page(driver, os.path.join(EXAMPLES, "ISIC_0014608.jpg"))
    assert mask is not None, info


def test_no_network_request_after_the_page_has_loaded(page, awkward):
    """The photograph never leaves: neither the page's server nor Chromium's own network
    log sees a request while a photograph is segmented."""
    driver, requests = page
    # The worker's requests reach the same server: it fetched itself, the runtime and the model.
    for fetched in ("/web/build/worker.js", "litert_wasm", ".tflite"):
        assert any(fetched in r for r in requests), (fetched, requests)
    path = awkward[0]
    driver.get_log("performance")  # drain what loading the page asked for
    before = len(requests)
    assert web.choose_files(driver, path, timeout=120) == "done"
    sent = [json.loads(entry["message"])["message"] for entry in driver.get_log("performance")]
    urls = [
        m["params"]["request"]["url"] for m in sent if m["method"] == "Network.requestWillBeSent"
    ]
    print("requests after load:", requests[before:], urls)
    assert requests[before:] == []
    assert [u for u in urls if not u.startswith(("blob:", "data:"))] == []


# LiteRT.js's own console lines (its wasm runtime's logging, no WebGPU on a headless CPU):
# not of the page's making.
RUNTIME_NOISE = ("litert_wasm", "WebGPU", "No available adapters")


def test_the_console_stays_clean(page, awkward):
    driver, _ = page
    path = awkward[0]
    assert web.choose_files(driver, path) == "done"
    entries = [
        e
        for e in driver.get_log("browser")
        if e["level"] in ("WARNING", "SEVERE") and not any(n in e["message"] for n in RUNTIME_NOISE)
    ]
    assert entries == []


def test_the_same_file_chosen_twice_is_segmented_twice(page, awkward):
    driver, _ = page
    path = awkward[0]
    count = driver.execute_script("return window.lesionseg.count")
    for _ in range(2):
        assert web.choose_files(driver, path) == "done"
        assert driver.find_element("id", "file").get_attribute("value") == ""
    assert driver.execute_script("return window.lesionseg.count") == count + 2


def test_a_batch_gives_each_mask_and_one_zip_and_names_the_bad_file(page, tmp_path, awkward):
    driver, _ = page
    truncated = [p for p in bad_inputs(str(tmp_path)) if p.endswith("truncated.jpg")]
    paths = [os.path.join(EXAMPLES, n) for n in sorted(os.listdir(EXAMPLES))][:2]
    paths += truncated + awkward[:2]
    assert web.choose_files(driver, paths, timeout=600) == "done"
    errors = driver.find_element("id", "error").text.splitlines()
    assert errors == ["truncated.jpg: the JPEG is cut short (truncated)"]
    assert driver.find_element("id", "status").text == (
        "Done: 4 masks of 5 photographs, 1 refused (above)."
    )
    links = driver.find_elements("css selector", "#masks a")
    good = [p for p in paths if p not in truncated]
    names = [os.path.splitext(os.path.basename(p))[0] + "_segmentation.png" for p in good]
    assert [a.get_attribute("download") for a in links] == names
    zip_link = driver.find_element("id", "zip")
    assert zip_link.is_displayed() and zip_link.get_attribute("download") == "lesionseg_masks.zip"
    archive = zipfile.ZipFile(io.BytesIO(fetch_bytes(driver, zip_link.get_attribute("href"))))
    assert archive.namelist() == names
    segmenter = inference.LiteSegmenter(TFLITE)
    for path, name, link in zip(good, names, links):
        mask = png_pixels(archive.read(name))
        np.testing.assert_array_equal(
            mask, png_pixels(fetch_bytes(driver, link.get_attribute("href")))
        )
        expected = segmenter.segment(images.read_image_file(path))
        assert mask.shape == expected.shape and (mask == expected).mean() >= AGREEMENT, name


def test_no_main_thread_frame_over_150_ms_on_the_largest_photograph(page, awkward):
    driver, _ = page
    path = awkward[3]
    assert path.endswith("synthetic_6748x4499.jpg")
    since = driver.execute_script("return performance.now()")
    assert web.choose_files(driver, path, timeout=600) == "done"
    longest = web.longest_frame(driver, since)
    print(f"longest main-thread task or frame while 6748x4499 was segmented: {longest:.0f} ms")
    assert longest < 150


def test_a_photograph_chosen_while_the_model_loads_waits_and_a_second_model_can_be_chosen(
    awkward,
):
    """One page for two behaviours (a browser start saved). The model's bytes held back,
    then refused once: a photograph chosen meanwhile waits, the failure says how to
    retry, and Retry segments it. Then the page offers the second shipped model of
    web/models.json, loads it when chosen, says which model made each mask, and gives
    that model's own mask."""
    _require_browser()
    with open(os.path.join(REPO_ROOT, "web", "models.json")) as f:
        models = json.load(f)
    assert len(models) == 2, "the paper's model and the second recipe's"
    second = models[1]
    model_requests, seen = [], []

    first_url, second_url = ("/" + os.path.normpath(f"web/{m['tflite']}") for m in models[:2])

    def slow_model(path):  # the first model's requests held back; the first one refused
        seen.append(path)
        if path == first_url:
            model_requests.append(path)
            time.sleep(3)
            return 503 if len(model_requests) == 1 else None
        return None

    path = awkward[0]
    with web.open_page(
        "/usr/bin/chromium",
        "/usr/bin/chromedriver",
        on_request=slow_model,
        ready=False,
    ) as driver:
        web.choose_files(driver, path, wait=False)
        assert web.wait_for_state(driver, ("waiting",), timeout=10) == "waiting"
        assert "1 photograph will be segmented once it is ready" in (
            driver.find_element("id", "status").text
        )
        assert web.wait_for_state(driver, ("error",), timeout=60) == "error"
        assert "press Retry" in driver.find_element("id", "load-error").text
        assert driver.find_element("id", "status").text == "1 photograph waits for the model."
        driver.find_element("id", "retry").click()
        assert web.wait_for_state(driver, ("waiting",), timeout=10) == "waiting"
        assert web.wait_for_state(driver, ("done", "error"), timeout=120) == "done"
        assert len(model_requests) == 2
        mask = png_pixels(
            fetch_bytes(driver, driver.find_element("id", "download").get_attribute("href"))
        )
        assert driver.execute_script("return window.lesionseg.last.model") == models[0]["name"]
        assert web.choose_model(driver, models[0]["name"]) == "ready"  # already the chosen one
        # The second model, chosen.
        assert driver.find_element("id", "model").is_displayed()
        assert web.choose_model(driver, second["name"]) == "ready"
        assert web.choose_files(driver, path) == "done"
        assert driver.execute_script("return window.lesionseg.last.model") == second["name"]
        assert f"by {second['name']}" in driver.find_element("id", "masks").text
        second_mask = png_pixels(
            fetch_bytes(driver, driver.find_element("id", "download").get_attribute("href"))
        )
    assert len(model_requests) == 2 and second_url in seen
    photo = images.read_image_file(path)
    expected = inference.LiteSegmenter(TFLITE).segment(photo)
    assert (mask == expected).mean() >= AGREEMENT
    second_tflite = os.path.join(REPO_ROOT, second_url.lstrip("/"))
    expected = inference.LiteSegmenter(second_tflite).segment(photo)
    assert (second_mask == expected).mean() >= AGREEMENT


def test_a_folder_gives_its_photographs_and_names_what_it_skipped(page, tmp_path):
    driver, _ = page
    folder = tmp_path / "study"
    folder.mkdir()
    names = sorted(os.listdir(EXAMPLES))[:2]
    for name in names:
        shutil.copy(os.path.join(EXAMPLES, name), folder / name)
    (folder / "notes.txt").write_text("not a photograph")
    driver.execute_script("document.body.dataset.state = 'chosen'")
    driver.find_element("id", "folder").send_keys(str(folder))
    assert web.wait_for_state(driver, ("done", "error")) == "done"
    assert driver.find_element("id", "status").text == "Done: 2 masks of 2 photographs."
    assert driver.find_element("id", "error").text == (
        "1 file of the folder skipped: not .jpg, .jpeg, .png or .bmp"
    )
    links = driver.find_elements("css selector", "#masks a")
    assert [a.get_attribute("download") for a in links] == [
        n.replace(".jpg", "_segmentation.png") for n in names
    ]
