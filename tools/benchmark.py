"""Benchmarks: where training and prediction time goes.

    python -m tools.benchmark                    # all sections, CPU-sized defaults
    python -m tools.benchmark --sections=train --mixed_precision=bfloat16 \\
        --train_batch_size=32
    python -m tools.benchmark --sections=train --precisions=none,bfloat16 \\
        --train_image_size=64,128,256 --train_batch_size=32

Prints a table per section and writes JSON (--output):
  train     training images/s at 448x448 from in-memory data (the executions' own
            time, each timed to its end: `callbacks.StepClock`), the achieved GFLOP/s
            (FLOPs counted from the layers) and its ratio to the matrix-multiply
            GFLOP/s measured in the same run; with --compare_torch, the same network
            in PyTorch on the same data shapes, measured in the same run.
  pipeline  input-pipeline images/s from JPEG files at ISIC sizes (the team's real
            sample when present, else synthetic 3008x2000 JPEGs), with the model
            removed: first epoch with full and with reduced-scale decoding, then
            cached epochs; and how far reduced-scale decoding moves the pixels.
  predict   prediction of one 4288x2848 photograph split into its stages, and the
            peak memory of predict.py on the largest ISIC image (6748x4499).
Without --saved_model, untrained models are used: timings do not depend on weights.
"""

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

from absl import app, flags

import common_flags
import console
from lesionseg_tf.config import DEFAULT_IMAGE_SIZE, JIT_COMPILE

_SECTIONS = flags.DEFINE_list(
    "sections", ["train", "pipeline", "predict"], "Which benchmarks to run."
)
_SAVED_MODEL = common_flags.define_model_flags(default=None)  # None: an untrained 448 export
_REPEATS = flags.DEFINE_integer("repeats", 5, "Timed prediction runs (median reported).")
_TRAIN_BATCH_SIZE = flags.DEFINE_integer("train_batch_size", 8, "Training batch.")
_TRAIN_IMAGE_SIZES = flags.DEFINE_list(
    "train_image_size",
    [str(DEFAULT_IMAGE_SIZE)],
    "Training input side, or several (64,128,256,448), each measured (the paper's 448).",
)
_PRECISIONS = flags.DEFINE_list(
    "precisions",
    [],
    "Compare these --mixed_precision choices (e.g. none,bfloat16) at each "
    "size, interleaved over --precision_rounds rounds; default: --mixed_precision alone.",
)
_PRECISION_ROUNDS = flags.DEFINE_integer(
    "precision_rounds", 2, "With --precisions: how many times each is measured, in turn."
)
_TRAIN_STEPS = flags.DEFINE_integer("train_steps", 8, "Timed training steps.")
_STEPS_PER_EXECUTION_LIST = flags.DEFINE_list(
    "steps_per_execution_list",
    ["8"],
    "Training steps per execution; several values are each measured, in this run (e.g. 1,8).",
)
_JIT_COMPILE, _MIXED_PRECISION = common_flags.define_compute_flags()
_COMPARE_TORCH = flags.DEFINE_bool(
    "compare_torch", False, "Also time the same network in PyTorch (needs torch)."
)
_SAMPLE_DIR = flags.DEFINE_string(
    "sample_dir",
    os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples"),
    "Real ISIC photographs in the official layout (default: the repository's three "
    "examples); synthetic JPEGs when absent.",
)
_OUTPUT = common_flags.define_output("benchmark.json", "Where the JSON goes.")
console.answer_help()  # before TensorFlow loads

import tensorflow as tf  # noqa: E402

from lesionseg_tf import (  # noqa: E402
    export,
    hardware,
    images,
    inference,
    postprocess,
    segment,
)
from lesionseg_tf.model import build_model  # noqa: E402
from lesionseg_tf.run_dir import RunDir  # noqa: E402
from tools import benchmark_training  # noqa: E402

TIMING_SIZE = (2848, 4288)  # height, width: a common ISIC 2017 photograph size
LARGEST_SIZE = (4499, 6748)  # the largest ISIC image


def time_stages(segmenter, image_path, repeats):
    """Median seconds of predict.py's stages on one photograph over `repeats` runs
    (after one warm-up): decode, the export's `segment` signature, PNG encoding.
    The signature's own parts (resize + standardization, network, section 3.4
    post-processing) are timed apart, each a `tf.function` of the library
    function the export traces."""
    size = segmenter.image_size
    network = tf.saved_model.load(segmenter.path).signatures[export.LOGITS_ENDPOINT]
    preprocess = tf.function(lambda image: segment.network_input(image, image_size=size))
    probability = tf.function(
        lambda inputs: postprocess.lesion_probability(network(images=inputs)["logits"])[0]
    )
    to_mask = tf.function(postprocess.probability_to_mask)
    stages = {
        name: []
        for name in (
            "decode",
            "segment",
            "png_encode",
            "in_segment:resize",
            "in_segment:network",
            "in_segment:postprocess",
        )
    }
    for run in range(repeats + 1):
        ticks = [time.perf_counter()]
        image = images.read_image_file(image_path)
        ticks.append(time.perf_counter())
        mask = segmenter.segment(image)
        ticks.append(time.perf_counter())
        images.encode_png(mask)
        ticks.append(time.perf_counter())
        image_tensor = tf.constant(image)
        ticks.append(time.perf_counter())
        inputs = preprocess(image_tensor).numpy()
        ticks.append(time.perf_counter())
        lesion = probability(tf.constant(inputs)).numpy()
        ticks.append(time.perf_counter())
        to_mask(
            tf.constant(lesion), tf.constant(image.shape[0]), tf.constant(image.shape[1])
        ).numpy()
        ticks.append(time.perf_counter())
        if run:  # the first run traces the tf.functions
            spans = [end - start for start, end in zip(ticks, ticks[1:])]
            del spans[3]  # the host-to-tensor copy between the two halves
            for name, seconds in zip(stages, spans):
                stages[name].append(seconds)
    return {name: statistics.median(values) for name, values in stages.items()}


# Runs a script and, at exit, writes its own peak resident memory (VmHWM, kB) to a file.
# Measured inside the child: the rusage of a child started by fork/vfork from a large
# parent (this benchmark) carries the parent's peak into its own.
_PEAK_MEMORY_WRAPPER = """
import atexit, runpy, sys
def report(path=sys.argv[1]):
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            open(path, "w").write(line.split()[1])
atexit.register(report)
sys.argv = sys.argv[2:]
runpy.run_path(sys.argv[0], run_name="__main__")
"""


def peak_memory_of_predict(saved_model, image_path, output_dir):
    """Runs predict.py on one image in a child process; returns its peak RSS in bytes."""
    script = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "predict.py")
    report = os.path.join(output_dir + "-peak-kb")
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            _PEAK_MEMORY_WRAPPER,
            report,
            script,
            f"--saved_model={saved_model}",
            f"--input={image_path}",
            f"--output_dir={output_dir}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    if result.returncode:
        raise RuntimeError(f"predict.py failed:\n{result.stderr[-2000:]}")
    with open(report) as f:
        return int(f.read()) * 1024


def run_predict_benchmark(saved_model=None, repeats=5, workdir=None):
    """Returns a dict of the prediction benchmark's figures."""
    workdir = workdir or tempfile.mkdtemp(prefix="lesionseg-bench-")
    if saved_model is None:
        saved_model = export.export_saved_model(
            build_model(), export_dir=RunDir(workdir).export_dir, image_size=DEFAULT_IMAGE_SIZE
        )
    timing_jpeg = os.path.join(workdir, "ISIC_9999991.jpg")
    largest_jpeg = os.path.join(workdir, "ISIC_9999992.jpg")
    benchmark_training.write_test_jpeg(timing_jpeg, *TIMING_SIZE)
    benchmark_training.write_test_jpeg(largest_jpeg, *LARGEST_SIZE, seed=1)
    segmenter = inference.Segmenter(saved_model)
    stages = time_stages(segmenter, timing_jpeg, repeats)
    total = stages["decode"] + stages["segment"] + stages["png_encode"]
    return {
        "image": f"{TIMING_SIZE[1]}x{TIMING_SIZE[0]} JPEG",
        "network_input": segmenter.image_size,
        "stages_s": stages,
        "total_s": total,
        "postprocess_share": stages["in_segment:postprocess"] / total,
        "largest_image": f"{LARGEST_SIZE[1]}x{LARGEST_SIZE[0]} JPEG",
        "predict_peak_rss_bytes": peak_memory_of_predict(
            saved_model, largest_jpeg, os.path.join(workdir, "masks")
        ),
    }


def format_predict(result):
    lines = [
        f"prediction of one {result['image']} (network input {result['network_input']})",
        f"{'stage':<24}{'seconds':>10}{'share':>9}",
    ]
    for name, seconds in result["stages_s"].items():
        label = "  " + name.split(":")[1] if ":" in name else name
        lines.append(f"{label:<24}{seconds:>10.4f}{seconds / result['total_s']:>9.1%}")
    lines.append(f"{'total':<24}{result['total_s']:>10.4f}")
    lines.append(f"section 3.4 post-processing share: {result['postprocess_share']:.1%}")
    lines.append(
        f"predict.py peak resident memory on a {result['largest_image']}: "
        f"{result['predict_peak_rss_bytes'] / 2**30:.2f} GiB"
    )
    return "\n".join(lines)


def train_section():
    """The train section, printed as it runs: its part of the JSON."""
    units = hardware.bfloat16_units(hardware.read_cpu_flags())
    print(f"CPU bfloat16 units ({hardware.CPUINFO}): {', '.join(units) or 'none'}", flush=True)
    runs = benchmark_training.train_runs(
        image_sizes=_TRAIN_IMAGE_SIZES.value,
        precisions=_PRECISIONS.value or [_MIXED_PRECISION.value],
        rounds=_PRECISION_ROUNDS.value if _PRECISIONS.value else 1,
        steps_per_execution_list=_STEPS_PER_EXECUTION_LIST.value,
        on_run=lambda run: print(benchmark_training.format_train(run), flush=True),
        batch_size=_TRAIN_BATCH_SIZE.value,
        steps=_TRAIN_STEPS.value,
        jit_compile=JIT_COMPILE[_JIT_COMPILE.value],
        compare_torch=_COMPARE_TORCH.value,
    )
    if _PRECISIONS.value:
        print(benchmark_training.precision_table(runs), flush=True)
    best = max(runs, key=lambda r: r["images_per_s"])
    return {"cpu_bfloat16_units": units, "train": best, "train_runs": runs}


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    result = {}
    if "train" in _SECTIONS.value:
        result.update(train_section())
    if "pipeline" in _SECTIONS.value:
        result["pipeline"] = benchmark_training.run_pipeline_benchmark(_SAMPLE_DIR.value)
        print(benchmark_training.format_pipeline(result["pipeline"]), flush=True)
        if "train" in result:
            ratio = (
                result["pipeline"]["cached_epoch_images_per_s"] / result["train"]["images_per_s"]
            )
            result["cached_pipeline_over_training"] = ratio
    if "predict" in _SECTIONS.value:
        result["predict"] = run_predict_benchmark(_SAVED_MODEL.value, _REPEATS.value)
        print(format_predict(result["predict"]), flush=True)
    with open(_OUTPUT.value, "w") as f:
        json.dump(result, f, indent=2)
    print(f"written: {_OUTPUT.value}")
    if "train" in result and "pipeline" in result:
        print(
            benchmark_training.verdict(
                result["train"]["images_per_s"], result["pipeline"]["cached_epoch_images_per_s"]
            )
        )


if __name__ == "__main__":
    console.run(main)
