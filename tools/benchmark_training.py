"""The training sections of `tools.benchmark`: training images/s with the achieved and
the matrix-multiply GFLOP/s (`train`), and the input pipeline's images/s from JPEG
files with the model removed (`pipeline`)."""

import sys

if __name__ == "__main__":  # a part of tools.benchmark, not a command of its own
    print(__doc__.strip() + "\n\nRun it through: python -m tools.benchmark --help")
    sys.exit(0 if sys.argv[1:] in ([], ["--help"], ["-h"]) else 2)

import os  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from lesionseg_tf import callbacks, datasets, images, layouts, pipeline, profiling, synthetic  # noqa: E402
from lesionseg_tf.config import DEFAULT_IMAGE_SIZE, PRECISION_NAMES  # noqa: E402
from lesionseg_tf.model import build_model  # noqa: E402


def write_test_jpeg(path, height, width, seed=0):
    """A synthetic dermoscopy-like JPEG of the given size (rendered small, upscaled)."""
    image, _ = synthetic.render_example(
        np.random.default_rng(seed), height=height // 4, width=width // 4
    )
    image = cv2.resize(image, (width, height), interpolation=cv2.INTER_CUBIC)
    if not cv2.imwrite(path, image[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 95]):
        raise OSError(f"could not write {path}")


def train_runs(
    *,
    image_sizes,
    precisions,
    rounds,
    steps_per_execution_list,
    on_run,
    compare_torch=False,
    **options,
):
    """`run_train_benchmark` for each input size, round, precision and steps per
    execution, interleaved so that the machine's drift hits all (PyTorch compared on
    the first run alone, with `compare_torch`); `on_run(result)` after each. Returns the
    results."""
    runs = []
    for image_size in image_sizes:
        for _ in range(rounds):
            for precision in precisions:
                for steps_per_execution in steps_per_execution_list:
                    runs.append(
                        run_train_benchmark(
                            image_size=int(image_size),
                            mixed_precision=precision,
                            steps_per_execution=int(steps_per_execution),
                            compare_torch=compare_torch and not runs,
                            **options,
                        )
                    )
                    on_run(runs[-1])
    return runs


def conv_flops(image_size):
    """Multiply-adds x 2 of every convolution for one `image_size` image, forward.

    Returns:
      `(forward FLOPs, training FLOPs)`: training counts the forward pass, the
      weight gradients of every convolution and the input gradients of all but
      the first (whose input is the image).
    """
    layers = profiling.convolution_layers(build_model(image_size))
    forward = sum(flops for _, flops in layers)
    training = 3 * forward - layers[0][1]
    return forward, training


def matmul_gflops(dtype="float32", max_size=4096, seconds=2.0):
    """Measured dense matrix-multiply rate of this machine, GFLOP/s.

    The matrix side doubles from 512 up to `max_size` while one multiply takes
    under a tenth of `seconds`, and the timed multiplies are as many as fit in
    `seconds` (1 to 10): a precision the machine emulates (bfloat16 on most CPUs)
    costs seconds, not the half hour of a fixed 4096 x 10.
    """
    # One shape-general trace for every side (no retracing warning when called again).
    step = tf.function(lambda x: tf.linalg.matmul(x, x), reduce_retracing=True)
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
    """Training images/s of the Keras model (as `fitting.compiled_model` compiles it for a run) on
    in-memory data, with the achieved and the matrix-multiply GFLOP/s. `steps` is
    rounded up to whole executions of `steps_per_execution` steps."""
    from lesionseg_tf import fitting  # pylint: disable=import-outside-toplevel

    dataset = profiling.random_batches(image_size=image_size, batch_size=batch_size)
    model = fitting.compiled_model(
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
    peak = matmul_gflops(PRECISION_NAMES[mixed_precision])
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
        name = PRECISION_NAMES[precision]
        lines.append(f"| {size} | {batch} | {name} | {rates} | {shares} |")
    return "\n".join(lines)


def format_train(result):
    lines = [
        f"training at {result['image_size']}x{result['image_size']}, batch "
        f"{result['batch_size']}, mixed precision {result['mixed_precision']}, "
        f"XLA {result['jit_compile']}, {result['steps_per_execution']} step(s) per "
        f"execution, devices {result['devices']}",
        f"  images/s                {_number(result['images_per_s']):>10}",
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
        os.path.join(root, name) for name in layouts.ISIC2017.folders["validation"]
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


def _number(value):
    """Three significant digits, without an exponent: 0.0375, 5.3, 592, 15774."""
    return f"{value:.0f}" if value >= 100 else f"{value:.3g}"


def verdict(train_images_per_s, pipeline_images_per_s):
    """One line: training and cached-pipeline images/s, and which one bounds the run."""
    ratio = pipeline_images_per_s / train_images_per_s
    line = (
        f"verdict: training {_number(train_images_per_s)} images/s, cached input pipeline "
        f"{_number(pipeline_images_per_s)} images/s ({_number(ratio)}x): "
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
