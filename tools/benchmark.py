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

import cv2  # noqa: E402
import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from lesionseg_tf import (  # noqa: E402
    callbacks,
    datasets,
    export,
    hardware,
    images,
    inference,
    pipeline,
    postprocess,
    profiling,
    synthetic,
)
from lesionseg_tf.model import build_model  # noqa: E402
from lesionseg_tf.run_dir import RunDir  # noqa: E402

TIMING_SIZE = (2848, 4288)  # height, width: a common ISIC 2017 photograph size
LARGEST_SIZE = (4499, 6748)  # the largest ISIC image


def write_test_jpeg(path, height, width, seed=0):
    """A synthetic dermoscopy-like JPEG of the given size (rendered small, upscaled)."""
    image, _ = synthetic.render_example(
        np.random.default_rng(seed), height=height // 4, width=width // 4
    )
    image = cv2.resize(image, (width, height), interpolation=cv2.INTER_CUBIC)
    if not cv2.imwrite(path, image[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 95]):
        raise OSError(f"could not write {path}")


def time_stages(segmenter, image_path, repeats):
    """Median seconds of predict.py's stages on one photograph over `repeats` runs
    (after one warm-up): decode, the export's `segment` signature, PNG encoding.
    The signature's own parts (resize + standardization, network, section 3.4
    post-processing) are timed apart, each a `tf.function` of the library
    function the export traces."""
    size = segmenter.image_size
    network = tf.saved_model.load(segmenter.path).signatures[export.LOGITS_ENDPOINT]
    preprocess = tf.function(
        lambda image: pipeline.standardize(
            pipeline.resize_image(image[tf.newaxis], image_size=size)
        )
    )
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
    write_test_jpeg(timing_jpeg, *TIMING_SIZE)
    write_test_jpeg(largest_jpeg, *LARGEST_SIZE, seed=1)
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


def conv_flops(image_size):
    """Multiply-adds x 2 of every convolution for one `image_size` image, forward.

    Returns:
      `(forward FLOPs, training FLOPs)`: training counts the forward pass, the
      weight gradients of every convolution and the input gradients of all but
      the first (whose input is the image).
    """
    model = build_model(image_size)
    forward = training = 0
    for layer in model.layers:
        if isinstance(layer, keras.layers.Conv2D):
            _, height, width, filters = layer.output.shape
            kernel = layer.kernel_size[0] * layer.kernel_size[1] * layer.input.shape[-1]
            flops = 2 * height * width * filters * kernel
            forward += flops
            training += flops * (2 if layer.name == "conv1_1" else 3)
    return forward, training


def matmul_gflops(dtype="float32", max_size=4096, seconds=2.0):
    """Measured dense matrix-multiply rate of this machine, GFLOP/s.

    The matrix side doubles from 512 up to `max_size` while one multiply takes
    under a tenth of `seconds`, and the timed multiplies are as many as fit in
    `seconds` (1 to 10): a precision the machine emulates (bfloat16 on most CPUs)
    costs seconds, not the half hour of a fixed 4096 x 10.
    """
    step = tf.function(lambda x: tf.linalg.matmul(x, x))
    size = 512
    while True:
        a = tf.cast(tf.random.normal([size, size], dtype=tf.float32), dtype)
        step(a).numpy()  # traces, and warms up
        start = time.perf_counter()
        step(a).numpy()
        once = time.perf_counter() - start
        if once >= seconds / 10 or size >= max_size:
            break
        size *= 2
    repeats = int(min(10, max(1, seconds // max(once, 1e-9))))
    start = time.perf_counter()
    for _ in range(repeats):
        result = step(a)
    result.numpy()
    return 2 * size**3 * repeats / (time.perf_counter() - start) / 1e9


def run_train_benchmark(
    image_size=DEFAULT_IMAGE_SIZE,
    batch_size=8,
    steps=8,
    mixed_precision="none",
    jit_compile="auto",
    compare_torch=False,
    steps_per_execution=1,
):
    """Training images/s of the Keras model (as `training.compiled_model` compiles it for a run) on
    in-memory data, with the achieved and the matrix-multiply GFLOP/s. `steps` is
    rounded up to whole executions of `steps_per_execution` steps."""
    from lesionseg_tf import training  # pylint: disable=import-outside-toplevel

    dataset = profiling.random_batches(image_size=image_size, batch_size=batch_size)
    model = training.compiled_model(
        learning_rate=1e-3,
        jit_compile=jit_compile,
        mixed_precision=mixed_precision,
        steps_per_execution=steps_per_execution,
    )
    steps = -(-steps // steps_per_execution) * steps_per_execution
    model.fit(
        dataset, epochs=1, steps_per_epoch=steps_per_execution, verbose=0, shuffle=False
    )  # warm up: traces the execution
    clock = callbacks.StepClock()  # each execution timed to its end, and only it
    model.fit(dataset, epochs=1, steps_per_epoch=steps, verbose=0, shuffle=False, callbacks=[clock])
    seconds = sum(clock.seconds)
    forward, per_image = conv_flops(image_size)
    images_per_s = steps * batch_size / seconds
    achieved = images_per_s * per_image / 1e9
    peak = matmul_gflops(
        {"none": "float32", "float16": "float16", "bfloat16": "bfloat16"}[mixed_precision]
    )
    result = {
        "image_size": image_size,
        "batch_size": batch_size,
        "steps": steps,
        "mixed_precision": mixed_precision,
        "jit_compile": str(model.jit_compile),
        "steps_per_execution": steps_per_execution,
        "devices": [d.device_type for d in tf.config.list_physical_devices()],
        "forward_gflop_per_image": forward / 1e9,
        "train_gflop_per_image": per_image / 1e9,
        "images_per_s": images_per_s,
        "achieved_gflops": achieved,
        "matmul_gflops": peak,
        "ratio_to_matmul": achieved / peak,
    }
    if compare_torch:
        from tools import torch_reference  # pylint: disable=import-outside-toplevel

        result["torch_images_per_s"] = torch_reference.train_images_per_s(
            image_size, batch_size, steps
        )
    return result


def precision_table(runs):
    """The training runs as a Markdown table: per size and precision, images/s of each
    run and the share of the same precision's measured matrix-multiply peak."""
    lines = [
        "| size | batch | precision | images/s (each run) | share of the matmul peak |",
        "| --- | --- | --- | --- | --- |",
    ]
    keys = sorted(
        {(r["image_size"], r["batch_size"], r["mixed_precision"]) for r in runs},
        key=lambda k: (k[0], k[2] != "none", k[2]),
    )
    for size, batch, precision in keys:
        same = [
            r
            for r in runs
            if (r["image_size"], r["batch_size"], r["mixed_precision"]) == (size, batch, precision)
        ]
        rates = ", ".join(f"{r['images_per_s']:.2f}" for r in same)
        shares = ", ".join(f"{r['ratio_to_matmul']:.0%}" for r in same)
        name = "float32" if precision == "none" else precision
        lines.append(f"| {size} | {batch} | {name} | {rates} | {shares} |")
    return "\n".join(lines)


def format_train(result):
    lines = [
        f"training at {result['image_size']}x{result['image_size']}, batch "
        f"{result['batch_size']}, mixed precision {result['mixed_precision']}, "
        f"XLA {result['jit_compile']}, {result['steps_per_execution']} step(s) per "
        f"execution, devices {result['devices']}",
        f"  images/s                {_figure(result['images_per_s']):>10}",
        f"  GFLOP per image (train) {result['train_gflop_per_image']:10.1f}"
        f"   (forward {result['forward_gflop_per_image']:.1f})",
        f"  achieved GFLOP/s        {result['achieved_gflops']:10.1f}",
        f"  matmul GFLOP/s          {result['matmul_gflops']:10.1f}",
        f"  achieved / matmul       {result['ratio_to_matmul']:10.1%}",
    ]
    if "torch_images_per_s" in result:
        ratio = result["images_per_s"] / result["torch_images_per_s"]
        lines.append(
            f"  PyTorch images/s        {result['torch_images_per_s']:10.2f}"
            f"   (Keras/PyTorch {ratio:.2f}x)"
        )
    return "\n".join(lines)


def sample_examples(sample_dir, workdir, count=12):
    """The real sample's validation pairs, or synthetic 3008x2000 ones if it is absent."""
    if sample_dir and os.path.isdir(sample_dir):
        return (
            datasets.find_split(sample_dir, split="validation"),
            f"real ISIC sample ({sample_dir})",
        )
    root = os.path.join(workdir, "synthetic")
    image_dir, mask_dir = (
        os.path.join(root, name) for name in datasets.ISIC2017.folders["validation"]
    )
    os.makedirs(image_dir, exist_ok=True)
    os.makedirs(mask_dir, exist_ok=True)
    for i in range(count):
        image_id = f"ISIC_{9_500_000 + i:07d}"
        write_test_jpeg(os.path.join(image_dir, f"{image_id}.jpg"), 2000, 3008, seed=i)
        cv2.imwrite(
            os.path.join(mask_dir, f"{image_id}_segmentation.png"), np.zeros((2000, 3008), np.uint8)
        )
    return datasets.find_split(root, split="validation"), "synthetic 3008x2000 JPEGs"


def _epoch_seconds(dataset, epoch, value):
    epoch.assign(value)
    start = time.perf_counter()
    for _ in dataset:
        pass
    return time.perf_counter() - start


# Below this ratio of cached-pipeline to training throughput, the input pipeline
# cannot keep the accelerator fed with margin: the run is input-bound.
INPUT_BOUND_RATIO = 1.5


def _figure(value):
    """Three significant digits, without an exponent: 0.0375, 5.3, 592, 15774."""
    return f"{value:.0f}" if value >= 100 else f"{value:.3g}"


def verdict(train_images_per_s, pipeline_images_per_s):
    """One line: training and cached-pipeline images/s, and which one bounds the run."""
    ratio = pipeline_images_per_s / train_images_per_s
    line = (
        f"verdict: training {_figure(train_images_per_s)} images/s, cached input pipeline "
        f"{_figure(pipeline_images_per_s)} images/s ({_figure(ratio)}x): "
    )
    if ratio >= INPUT_BOUND_RATIO:
        return line + "compute-bound; the input pipeline is not the limit"
    return line + (
        "input-bound; keep --cache=memory (or --cache=disk), give tf.data more CPU "
        "cores, and store the images pre-resized to the training size"
    )


def run_pipeline_benchmark(
    sample_dir=None, image_size=DEFAULT_IMAGE_SIZE, repeat=4, batch_size=8, workdir=None
):
    """Input-pipeline images/s (no model): first epoch, full vs reduced-scale decode,
    then cached epochs; plus the pixel difference reduced-scale decoding makes."""
    workdir = workdir or tempfile.mkdtemp(prefix="lesionseg-bench-")
    examples, source = sample_examples(sample_dir, workdir)
    examples = examples * repeat  # more images per epoch, each decoded as if new
    result = {"source": source, "images_per_epoch": len(examples), "image_size": image_size}
    used = len(examples) // batch_size * batch_size
    first = {False: [], True: []}
    for _ in range(2):  # alternate the two decodings, keep each one's best first epoch
        for reduced in (False, True):
            epoch = tf.Variable(0, dtype=tf.int64)
            dataset = pipeline.make_dataset(
                examples,
                image_size=image_size,
                batch_size=batch_size,
                is_training=True,
                epoch=epoch,
                cache="memory",
                reduced_decode=reduced,
            )
            first[reduced].append(_epoch_seconds(dataset, epoch, 0))
    cached = min(_epoch_seconds(dataset, epoch, e) for e in (1, 2, 3))
    result["first_epoch_full_decode_images_per_s"] = len(examples) / min(first[False])
    result["first_epoch_reduced_decode_images_per_s"] = len(examples) / min(first[True])
    result["cached_epoch_images_per_s"] = used / cached
    result["reduced_decode_speedup"] = (
        result["first_epoch_reduced_decode_images_per_s"]
        / result["first_epoch_full_decode_images_per_s"]
    )
    differences = []
    for example in examples[: len(examples) // repeat]:
        full = pipeline.resize_image(images.decode_image(example.image_path), image_size=image_size)
        reduced = pipeline.decode_resized_jpeg(example.image_path, image_size=image_size)
        differences.append(
            float(
                np.mean(
                    np.abs(full.numpy().astype(np.float32) - reduced.numpy().astype(np.float32))
                )
            )
        )
    result["reduced_decode_mean_abs_difference"] = float(np.mean(differences))
    result["reduced_decode_max_image_mean_abs_difference"] = float(np.max(differences))
    return result


def format_pipeline(result):
    r = result
    return "\n".join(
        [
            f"input pipeline, {r['images_per_epoch']} images per epoch from {r['source']}, "
            f"resized to {r['image_size']}, no model",
            f"  first epoch, full decode     {r['first_epoch_full_decode_images_per_s']:8.1f}"
            " images/s",
            f"  first epoch, reduced decode  {r['first_epoch_reduced_decode_images_per_s']:8.1f}"
            f" images/s   ({r['reduced_decode_speedup']:.2f}x)",
            f"  cached epochs                {r['cached_epoch_images_per_s']:8.1f} images/s",
            f"  reduced vs full decode: mean |difference| "
            f"{r['reduced_decode_mean_abs_difference']:.2f} grey levels (worst image "
            f"{r['reduced_decode_max_image_mean_abs_difference']:.2f})",
        ]
    )


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    result = {}
    if "train" in _SECTIONS.value:
        units = hardware.bfloat16_units(hardware.read_cpu_flags())
        result["cpu_bfloat16_units"] = units
        print(f"CPU bfloat16 units ({hardware.CPUINFO}): {', '.join(units) or 'none'}", flush=True)
        precisions = _PRECISIONS.value or [_MIXED_PRECISION.value]
        rounds = _PRECISION_ROUNDS.value if _PRECISIONS.value else 1
        runs = []
        for image_size in _TRAIN_IMAGE_SIZES.value:
            for _ in range(rounds):
                for precision in precisions:  # interleaved: the machine's drift hits all
                    for steps_per_execution in _STEPS_PER_EXECUTION_LIST.value:
                        runs.append(
                            run_train_benchmark(
                                image_size=int(image_size),
                                batch_size=_TRAIN_BATCH_SIZE.value,
                                steps=_TRAIN_STEPS.value,
                                mixed_precision=precision,
                                jit_compile=JIT_COMPILE[_JIT_COMPILE.value],
                                compare_torch=_COMPARE_TORCH.value and not runs,
                                steps_per_execution=int(steps_per_execution),
                            )
                        )
                        print(format_train(runs[-1]), flush=True)
        result["train"] = max(runs, key=lambda r: r["images_per_s"])
        result["train_runs"] = runs
        if _PRECISIONS.value:
            print(precision_table(runs), flush=True)
    if "pipeline" in _SECTIONS.value:
        result["pipeline"] = run_pipeline_benchmark(_SAMPLE_DIR.value)
        print(format_pipeline(result["pipeline"]), flush=True)
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
            verdict(
                result["train"]["images_per_s"], result["pipeline"]["cached_epoch_images_per_s"]
            )
        )


if __name__ == "__main__":
    console.run(main)
