"""Serves the browser page (web/) on this computer, or takes its screenshot.

    python -m tools.web                       # prints http://127.0.0.1:8000/web/
    python -m tools.web --screenshot=docs/web_page.png --model=lesionseg_dice_ensemble_isic2017
    python -m tools.web --time=PHOTO.jpg,OTHER.jpg     # the page's timings, headless

The page runs a shipped model of web/models.json (pretrained/<name>/lesionseg_int8.tflite,
the paper's first) with LiteRT.js in a Web Worker; `npm ci` installs it from package-lock.json into
node_modules/ and bundles the worker into web/build/. The photographs a user gives never
leave the browser. Any static file server of the
repository's root serves it the same way (relative paths, no special headers).
"""

import contextlib
import functools
import http.server
import os
import sys
import threading

from absl import app, flags

import console

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PAGE = "web/"
RUNTIME = os.path.join("node_modules", "@litertjs", "core", "wasm")
WORKER = os.path.join("web", "build", "worker.js")  # bundled by `npm ci`
MODEL = os.path.join("pretrained", "lesionseg_isic2017", "lesionseg_int8.tflite")
EXAMPLES = os.path.join("examples", "ISIC-2017_Validation_Data")

_HOST = flags.DEFINE_string(
    "host", "127.0.0.1", "Address to serve on (this computer only by default)."
)
_PORT = flags.DEFINE_integer("port", 8000, "Port to serve on; 0 picks a free one.")
_SCREENSHOT = flags.DEFINE_string(
    "screenshot",
    None,
    "Instead of serving until stopped: open the page in headless Chromium, "
    "segment the three example photographs as one batch and save a PNG screenshot here.",
)
_TIME = flags.DEFINE_list(
    "time",
    [],
    "Instead of serving: segment these photographs in the page in headless "
    "Chromium, --time_repeats times each, and print the median of each step's time (file chosen "
    "to outline drawn).",
)
_TIME_REPEATS = flags.DEFINE_integer("time_repeats", 3, "For --time: runs per photograph.")
_MODEL = flags.DEFINE_string(
    "model",
    None,
    "For --screenshot and --time: the model to choose in the page first, by its name in "
    "web/models.json (default: the page's first, the paper's).",
)
_CHROMIUM = flags.DEFINE_string(
    "chromium", "/usr/bin/chromium", "For --screenshot and --time: Chromium."
)
_CHROMEDRIVER = flags.DEFINE_string(
    "chromedriver", "/usr/bin/chromedriver", "For --screenshot and --time: ChromeDriver."
)


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    """Static files of the repository, `.wasm` and `.tflite` with their types."""

    extensions_map = {
        **http.server.SimpleHTTPRequestHandler.extensions_map,
        ".wasm": "application/wasm",
        ".js": "text/javascript",
        ".tflite": "application/octet-stream",
    }

    def log_message(self, format, *args):  # pylint: disable=redefined-builtin
        pass


def start_server(host="127.0.0.1", port=0, *, on_request=None):
    """A threaded static server of the repository's root; returns `(server, page URL)`.
    `on_request(path)` is called for every request before it is answered (the tests count
    them, hold one back by sleeping, or refuse it by returning an HTTP status)."""

    class Handler(QuietHandler):
        def do_GET(self):
            refusal = on_request(self.path) if on_request is not None else None
            if refusal:
                self.send_error(refusal)
                return
            super().do_GET()

    server = http.server.ThreadingHTTPServer(
        (host, port), functools.partial(Handler, directory=REPO_ROOT)
    )
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://{host}:{server.server_address[1]}/{PAGE}"


def missing_files():
    return [
        path
        for path in (RUNTIME, WORKER, MODEL)
        if not os.path.exists(os.path.join(REPO_ROOT, path))
    ]


def chromium(chromium_path, chromedriver_path, *, width=1100, height=1000):
    """Headless Chromium driven by Selenium, with no network of its own (Debian's build)."""
    from selenium import webdriver  # pylint: disable=import-outside-toplevel
    from selenium.webdriver.chrome.service import Service  # pylint: disable=import-outside-toplevel

    options = webdriver.ChromeOptions()
    options.binary_location = chromium_path
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        f"--window-size={width},{height}",
    ):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"performance": "ALL", "browser": "ALL"})
    driver = webdriver.Chrome(service=Service(chromedriver_path), options=options)
    driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": LONG_FRAMES})
    return driver


# Installed before any of the page's own scripts: every main-thread task and animation frame
# over 50 ms, as Chromium reports them.
LONG_FRAMES = """
window.longFrames = [];
for (const type of ["longtask", "long-animation-frame"]) {
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) {
      window.longFrames.push({type, start: e.startTime, duration: e.duration});
    }
  }).observe({type, buffered: true});
}
"""


def longest_frame(driver, since):
    """The longest main-thread task or frame (ms) that began at or after `since`, the page's
    `performance.now()`; 0 if none passed 50 ms."""
    return driver.execute_script(
        "return Math.max(0, ...window.longFrames.filter((e) => e.start >= arguments[0])"
        ".map((e) => e.duration))",
        since,
    )


def wait_for_state(driver, states, timeout=120):
    """Waits until the page's `body[data-state]` is one of `states`; returns it."""
    from selenium.webdriver.support.ui import WebDriverWait  # pylint: disable=import-outside-toplevel

    WebDriverWait(driver, timeout).until(
        lambda d: d.execute_script("return document.body.dataset.state") in states
    )
    return driver.execute_script("return document.body.dataset.state")


@contextlib.contextmanager
def open_page(
    chromium_path, chromedriver_path, *, on_request=None, height=1000, ready=True, model=None
):
    """The page served from this repository and loaded in headless Chromium, its model
    ready (or still loading, with `ready=False`), `model` chosen first if given (a name of
    web/models.json): yields the driver; the browser and the server stop at the end.

    Raises:
      RuntimeError: the page could not load its model (the page's message).
    """
    server, url = start_server(on_request=on_request)
    driver = chromium(chromium_path, chromedriver_path, height=height)
    try:
        driver.set_script_timeout(300)
        driver.get(url)
        if ready and wait_for_state(driver, ("ready", "error")) != "ready":
            raise RuntimeError(driver.find_element("id", "load-error").text)
        if model and choose_model(driver, model) != "ready":
            raise RuntimeError(driver.find_element("id", "load-error").text)
        yield driver
    finally:
        driver.quit()
        server.shutdown()


def choose_files(driver, paths, *, timeout=300, wait=True):
    """Chooses `paths` (one or several) in the page's file input, as a user does, and waits
    until the page is done with them: "done", or "error" with its messages on the page."""
    paths = [paths] if isinstance(paths, str) else paths
    driver.execute_script("document.body.dataset.state = 'chosen'")  # no earlier state counts
    driver.find_element("id", "file").send_keys("\n".join(os.path.abspath(p) for p in paths))
    if wait:
        return wait_for_state(driver, ("done", "error"), timeout=timeout)
    return None


def choose_model(driver, name, *, timeout=300):
    """Chooses the model `name` (its name in web/models.json) in the page's model choice,
    as a user does (nothing to choose when it is already the chosen one), and waits until
    the page has loaded it: "ready", or "error" when it could not.

    Raises:
      RuntimeError: the page offers no model of that name.
    """
    # pylint: disable-next=import-outside-toplevel
    from selenium.webdriver.support.ui import Select, WebDriverWait

    choice = Select(driver.find_element("id", "model"))
    names = [option.text.split(":")[0] for option in choice.options]
    if name not in names:
        raise RuntimeError(f"the page offers no model {name} (it offers {', '.join(names)})")
    if choice.first_selected_option.text.split(":")[0] != name:
        choice.select_by_index(names.index(name))

    def settled(d):
        loaded = d.execute_script("return window.lesionseg.model")
        return loaded == name or bool(d.find_element("id", "load-error").text)

    WebDriverWait(driver, timeout).until(settled)
    return "ready" if driver.execute_script("return window.lesionseg.model") == name else "error"


def take_screenshot(path, *, chromium_path, chromedriver_path, model=None):
    """The page after a batch: the three example photographs chosen at once, by `model`
    (a name of web/models.json; None: the page's first)."""
    folder = os.path.join(REPO_ROOT, EXAMPLES)
    photographs = [os.path.join(folder, name) for name in sorted(os.listdir(folder))]
    with open_page(chromium_path, chromedriver_path, height=1300, model=model) as driver:
        if choose_files(driver, photographs) != "done":
            raise RuntimeError(driver.find_element("id", "error").text)
        driver.save_screenshot(path)


def time_page(paths, *, repeats, chromium_path, chromedriver_path, model=None):
    """`{path: {step: median milliseconds}}` of the page segmenting each photograph with
    `model` (a name of web/models.json; None: the page's first)."""
    import statistics  # pylint: disable=import-outside-toplevel

    results = {}
    with open_page(chromium_path, chromedriver_path, model=model) as driver:
        for path in paths:
            runs = []
            frames = []
            for _ in range(repeats):
                since = driver.execute_script("return performance.now()")
                if choose_files(driver, path, timeout=600) != "done":
                    raise RuntimeError(driver.find_element("id", "error").text)
                runs.append(driver.execute_script("return window.lesionseg.last"))
                frames.append(longest_frame(driver, since))
            results[path] = {
                "size": f"{runs[0]['width']}x{runs[0]['height']}",
                **{
                    step: statistics.median(r["times"][step] for r in runs)
                    for step in runs[0]["times"]
                },
                "longest_frame": max(frames),
            }
    return results


def timing_table(results):
    """`time_page`'s results as the lines of a Markdown table."""
    lines = [
        "| photograph | size | decode | network input | network | post-processing | "
        "drawing | file chosen to outline drawn | longest main-thread frame |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for path, t in results.items():
        lines.append(
            f"| {os.path.basename(path)} | {t['size']} | {t['decode']:.0f} ms | "
            f"{t['resize']:.0f} ms | {t['network']:.0f} ms | {t['postprocess']:.0f} ms | "
            f"{t['draw']:.0f} ms | {t['total'] / 1000:.2f} s | {t['longest_frame']:.0f} ms |"
        )
    return lines


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    missing = missing_files()
    if missing:
        sys.exit(f"web: missing {', '.join(missing)}; run `npm ci` in {REPO_ROOT} first")
    if _TIME.value:
        try:
            results = time_page(
                _TIME.value,
                repeats=_TIME_REPEATS.value,
                chromium_path=_CHROMIUM.value,
                chromedriver_path=_CHROMEDRIVER.value,
                model=_MODEL.value,
            )
        except (RuntimeError, OSError) as e:
            sys.exit(f"web: {e}")
        print("\n".join(timing_table(results)))
        return
    if _SCREENSHOT.value:
        try:
            take_screenshot(
                _SCREENSHOT.value,
                chromium_path=_CHROMIUM.value,
                chromedriver_path=_CHROMEDRIVER.value,
                model=_MODEL.value,
            )
        except (RuntimeError, OSError) as e:
            sys.exit(f"web: {e}")
        print(f"screenshot: {_SCREENSHOT.value}")
        return
    server, url = start_server(_HOST.value, _PORT.value)
    print(f"serving the page at {url} (Ctrl-C stops)", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        server.shutdown()


if __name__ == "__main__":
    console.run(main)
