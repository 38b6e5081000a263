"""Where a training step's time goes: runs `fitting.compiled_model`'s steps under
TensorFlow's profiler (`tf.profiler.experimental`) and sums the recorded ops' own time
by part of the step (`PARTS`). The command is `tools.profile_step`."""

import collections
import glob
import json
import os
import re
import time

import keras
import numpy as np
import tensorflow as tf

# TensorFlow's own reader of profiles (what TensorBoard's profile tab shows).
from tensorflow.python.profiler.internal import _pywrap_profiler_plugin

from lesionseg_tf import callbacks, fitting, pipeline
from lesionseg_tf.config import PRECISION_NAMES
from lesionseg_tf.model import build_model

# The parts of a training step, in the order they are printed.
PARTS = (
    "convolution (forward)",
    "convolution (input gradient)",
    "convolution (filter gradient)",
    "atrous reshuffle",
    "batch normalization",
    "mirror padding",
    "ReLU",
    "depth-to-space",
    "casts",
    "augmentation",
    "loss",
    "metric",
    "optimizer",
    "gradient sums",
    "input pipeline",
    "other",
)


def part_of(op_type, *, op_name):
    """Which part of a training step (`PARTS`) an op of the profile belongs to, from its
    type (`Conv2DBackpropInput`, or oneDNN's `_MklNativeConv2DBackpropInput`) and its
    name in the step's graph (`gradient_tape/lesionseg_1/conv3_1_bn_1/moments/Tile`: Keras
    may add `_1` to a layer's scope)."""
    if op_type == "Dataset" or op_name.startswith("Iterator::"):
        return "input pipeline"
    if "Conv2D" in op_type:
        if "BackpropInput" in op_type:
            return "convolution (input gradient)"
        if "BackpropFilter" in op_type:
            return "convolution (filter gradient)"
        return "convolution (forward)"
    if op_type in ("SpaceToBatchND", "BatchToSpaceND"):
        return "atrous reshuffle"
    if op_type == "Cast":
        return "casts"
    scopes = [re.sub(r"_\d+$", "", scope) for scope in op_name.split("/")[:-1]]
    if op_type in ("AddN", "TemporaryVariable", "DestroyTemporaryVariable") or "AddN" in scopes:
        return "gradient sums"
    for scope in scopes:
        for suffix, part in (
            ("_bn", "batch normalization"),
            ("_pad", "mirror padding"),
            ("_relu", "ReLU"),
        ):
            if scope.endswith(suffix):
                return part
    for scope, part in (
        ("depth_to_space", "depth-to-space"),
        ("augment", "augmentation"),
        ("compile_loss", "loss"),
        ("jaccard", "metric"),
        ("adam", "optimizer"),
    ):
        if scope in scopes:
            return part
    return "other"


def read_op_stats(logdir):
    """The ops of the trace under `logdir`: a list of `(type, name, self-time in
    microseconds)`, idle time left out, from the profiler's framework op statistics."""
    paths = sorted(glob.glob(os.path.join(logdir, "**", "*.xplane.pb"), recursive=True))
    if not paths:
        raise FileNotFoundError(f"no profile (*.xplane.pb) was written under {logdir}")
    data, ok = _pywrap_profiler_plugin.xspace_to_tools_data([paths[-1]], "framework_op_stats", {})
    if not ok:
        raise RuntimeError(f"TensorFlow could not read the profile {paths[-1]}: {data[:200]!r}")
    table = json.loads(data)[0]
    columns = [column["id"] for column in table["cols"]]
    ops = []
    for row in table["rows"]:
        cells = dict(zip(columns, [cell.get("v") if cell else None for cell in row["c"]]))
        if cells["type"] != "IDLE":  # the name without the training function's own scope
            name = re.sub(r"^StatefulPartitionedCall/", "", cells["operation"])
            ops.append((cells["type"], name, float(cells["total_self_time"])))
    return ops


def summarize(ops):
    """`ops` from `read_op_stats` -> `(shares by part, [(share, type, name), ...] by
    self-time)`, shares of the ops' total self-time; parts without time are left out."""
    total = sum(us for _, _, us in ops)
    if total <= 0:
        raise ValueError("the profile holds no op time")
    parts = collections.Counter()
    for op_type, name, us in ops:
        parts[part_of(op_type, op_name=name)] += us
    shares = {part: parts[part] / total for part in PARTS if parts[part]}
    top = sorted(((us / total, op_type, name) for op_type, name, us in ops), reverse=True)
    return shares, top


def random_batches(*, image_size, batch_size):
    """An endless dataset of one batch of random standardized-like images and masks
    (30% lesion) held in memory: timings of the training step alone, without the input
    pipeline. `([batch, side, side, 3] float32, [batch, side, side, 1] int32)`."""
    rng = np.random.default_rng(0)
    images = rng.normal(size=(batch_size, image_size, image_size, 3)).astype(np.float32)
    labels = (rng.random((batch_size, image_size, image_size, 1)) > 0.7).astype(np.int32)
    dataset = tf.data.Dataset.from_tensors((images, labels)).repeat()
    return dataset.with_options(pipeline.training_options())  # as training reads its data


def profile_steps(
    *, image_size, batch_size, mixed_precision, warm_up_steps, steps, logdir, fused_batch_norm=True
):
    """Runs training steps of `fitting.compiled_model` (no XLA, one step per execution)
    on random images in memory, and records the last `steps` under `logdir`.

    Returns:
      Median wall-clock seconds of a recorded step.
    """
    dataset = random_batches(image_size=image_size, batch_size=batch_size)
    model = fitting.compiled_model(
        learning_rate=1e-3,
        jit_compile=False,
        mixed_precision=mixed_precision,
        fused_batch_norm=fused_batch_norm,
    )
    model.fit(dataset, epochs=1, steps_per_epoch=warm_up_steps, verbose=0, shuffle=False)
    clock = callbacks.StepClock()
    tf.profiler.experimental.start(logdir)
    try:
        model.fit(
            dataset, epochs=1, steps_per_epoch=steps, verbose=0, shuffle=False, callbacks=[clock]
        )
    finally:
        tf.profiler.experimental.stop()
    return float(np.median(clock.seconds))


def convolution_layers(model):
    """The model's convolutions in order, the first taking the image:
    `[(layer, forward FLOPs of one image)]`, FLOPs counted as 2 x the multiply-adds of
    the layer's output (bias left out)."""
    rows = []
    for layer in model.layers:
        if isinstance(layer, keras.layers.Conv2D):
            _, height, width, filters = layer.output.shape
            kernel = layer.kernel_size[0] * layer.kernel_size[1] * layer.input.shape[-1]
            rows.append((layer, 2 * height * width * filters * kernel))
    return rows


def convolution_kernels(layer, *, x, dy, image_input=False):
    """The three kernels of one convolution `layer` in a training step, "forward",
    "input gradient" and "filter gradient", each a function of no argument that runs
    that kernel alone on the layer's input `x` and the gradient `dy` of its output
    (the layer's kernel cast to their dtype), as the training step runs it: through
    the layer's own `convolution_op` (an atrous layer keeps its space-to-batch
    reshuffles), the gradients from a tape that watches only the input or only the
    kernel. Each returns its whole result. The input gradient of a layer
    whose input is the image (`image_input`, conv1_1) is None: the step never computes
    it."""
    kernel = tf.cast(layer.kernel, x.dtype)

    def gradient(of):
        with tf.GradientTape() as tape:
            tape.watch(of)
            y = layer.convolution_op(x, kernel)
        return tape.gradient(y, of, output_gradients=dy)

    return {
        "forward": tf.function(lambda: layer.convolution_op(x, kernel)),
        "input gradient": None if image_input else tf.function(lambda: gradient(x)),
        "filter gradient": tf.function(lambda: gradient(kernel)),
    }


def time_convolutions(*, image_size, batch_size, mixed_precision, repeats=3):
    """Each convolution of the network timed alone, kernel by kernel
    (`convolution_kernels`): the fastest of `repeats` runs after one warm-up, each to
    its end. Alone, a kernel has both cores to itself; in the step, the input and the
    filter gradients of a layer may run side by side and the profile then counts both
    in full.

    Returns:
      `[{"layer": name, "input_shape": (batch, height, width, channels), "flops": the
      forward FLOPs of the batch, "seconds": {kernel: seconds, or None where the step
      has no such kernel}}]`, in the network's order.
    """
    compute_dtype = PRECISION_NAMES[mixed_precision]
    rng = np.random.default_rng(0)

    def random(shape):
        values = rng.normal(size=(batch_size, *shape[1:])).astype(np.float32)
        return tf.cast(values, compute_dtype)

    rows = []
    for index, (layer, flops) in enumerate(convolution_layers(build_model(image_size))):
        seconds = {}
        kernels = convolution_kernels(
            layer,
            x=random(layer.input.shape),
            dy=random(layer.output.shape),
            image_input=index == 0,
        )
        for name, run in kernels.items():
            if run is None:
                seconds[name] = None
                continue
            run()  # traces, and warms up
            times = []
            for _ in range(repeats):
                start = time.perf_counter()
                np.asarray(tf.reshape(run(), [-1])[:1])  # waits for the kernel's end
                times.append(time.perf_counter() - start)
            seconds[name] = min(times)
        rows.append(
            {
                "layer": layer.name,
                "input_shape": (batch_size, *layer.input.shape[1:]),
                "flops": flops * batch_size,
                "seconds": seconds,
            }
        )
    return rows
