"""Benchmarks: where the time of full-resolution prediction goes.

    python -m lesionseg_tf.benchmark --saved_model=runs/lesionseg/export

Without --saved_model an untrained 448x448 model is exported to a temporary
folder (timings do not depend on the weights). Prints a table and writes JSON.
The prediction is split into its stages: JPEG decode, resize + standardization,
network, post-processing (bicubic upscaling + threshold + opening) and PNG
encoding; then the peak resident memory of a predict.py process on the largest
ISIC image size is measured in a child process.
"""

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import cv2
import numpy as np

from lesionseg_tf import data, export, inference, postprocess, synthetic
from lesionseg_tf.model import DEFAULT_IMAGE_SIZE, build_model

TIMING_SIZE = (2848, 4288)  # height, width: a common ISIC 2017 photograph size
LARGEST_SIZE = (4499, 6748)  # the largest ISIC image


def write_test_jpeg(path, height, width, seed=0):
    """A synthetic dermoscopy-like JPEG of the given size (rendered small, upscaled)."""
    image, _ = synthetic.render_example(np.random.default_rng(seed), height // 4, width // 4)
    image = cv2.resize(image, (width, height), interpolation=cv2.INTER_CUBIC)
    if not cv2.imwrite(path, image[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 95]):
        raise OSError(f"could not write {path}")


def time_stages(segmenter, image_path, repeats):
    """Median seconds of each prediction stage over `repeats` runs (after one warm-up)."""
    stages = {name: [] for name in ("decode", "resize", "network", "postprocess", "png_encode")}
    for run in range(repeats + 1):
        ticks = [time.perf_counter()]
        image = data.read_image_file(image_path)
        ticks.append(time.perf_counter())
        inputs = segmenter.preprocess(image).numpy()
        ticks.append(time.perf_counter())
        probability = segmenter.probability(inputs)
        ticks.append(time.perf_counter())
        mask = postprocess.probability_to_mask(probability, *image.shape[:2])
        ticks.append(time.perf_counter())
        inference.encode_png(mask)
        ticks.append(time.perf_counter())
        if run:  # the first run traces the tf.functions
            for name, start, end in zip(stages, ticks, ticks[1:]):
                stages[name].append(end - start)
    return {name: statistics.median(values) for name, values in stages.items()}


def peak_memory_of_predict(saved_model, image_path, output_dir):
    """Runs predict.py on one image in a child process; returns its peak RSS in bytes."""
    script = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                          "predict.py")
    child = subprocess.Popen(
        [sys.executable, script, f"--saved_model={saved_model}", f"--input={image_path}",
         f"--output_dir={output_dir}"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    # wait4 gives this child's own resource usage (not the maximum over all children).
    stderr = child.stderr.read()
    _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    child.stderr.close()
    if child.returncode:
        raise RuntimeError(f"predict.py failed:\n{stderr.decode(errors='replace')[-2000:]}")
    peak = usage.ru_maxrss
    return peak * 1024  # ru_maxrss is in KiB on Linux


def run_predict_benchmark(saved_model=None, repeats=5, workdir=None):
    """Returns a dict of the prediction benchmark's figures."""
    workdir = workdir or tempfile.mkdtemp(prefix="lesionseg-bench-")
    if saved_model is None:
        saved_model = export.export_saved_model(
            build_model(), os.path.join(workdir, "export"), image_size=DEFAULT_IMAGE_SIZE)
    timing_jpeg = os.path.join(workdir, "ISIC_9999991.jpg")
    largest_jpeg = os.path.join(workdir, "ISIC_9999992.jpg")
    write_test_jpeg(timing_jpeg, *TIMING_SIZE)
    write_test_jpeg(largest_jpeg, *LARGEST_SIZE, seed=1)
    segmenter = inference.Segmenter(saved_model)
    stages = time_stages(segmenter, timing_jpeg, repeats)
    total = sum(stages.values())
    return {
        "image": f"{TIMING_SIZE[1]}x{TIMING_SIZE[0]} JPEG",
        "network_input": segmenter.image_size,
        "stages_s": stages,
        "total_s": total,
        "postprocess_share": stages["postprocess"] / total,
        "largest_image": f"{LARGEST_SIZE[1]}x{LARGEST_SIZE[0]} JPEG",
        "predict_peak_rss_bytes": peak_memory_of_predict(
            saved_model, largest_jpeg, os.path.join(workdir, "masks")),
    }


def format_predict(result):
    lines = [f"prediction of one {result['image']} (network input {result['network_input']})",
             f"{'stage':<14}{'seconds':>10}{'share':>9}"]
    for name, seconds in result["stages_s"].items():
        lines.append(f"{name:<14}{seconds:>10.4f}{seconds / result['total_s']:>9.1%}")
    lines.append(f"{'total':<14}{result['total_s']:>10.4f}")
    lines.append(f"post-processing share: {result['postprocess_share']:.1%}")
    lines.append(f"predict.py peak resident memory on a {result['largest_image']}: "
                 f"{result['predict_peak_rss_bytes'] / 2**30:.2f} GiB")
    return "\n".join(lines)


if __name__ == "__main__":
    from absl import app, flags

    _SAVED_MODEL = flags.DEFINE_string(
        "saved_model", None, "Export to time; default: an untrained 448x448 model.")
    _REPEATS = flags.DEFINE_integer("repeats", 5, "Timed runs per stage (median reported).")
    _OUTPUT = flags.DEFINE_string("output", "benchmark.json", "Where the JSON goes.")

    def main(argv):
        if len(argv) > 1:
            raise app.UsageError(f"unexpected arguments: {argv[1:]}")
        result = {"predict": run_predict_benchmark(_SAVED_MODEL.value, _REPEATS.value)}
        print(format_predict(result["predict"]))
        with open(_OUTPUT.value, "w") as f:
            json.dump(result, f, indent=2)
        print(f"written: {_OUTPUT.value}")

    app.run(main)
