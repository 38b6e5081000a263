"""Profiles training steps and says where their time goes, op by op.

    python -m tools.profile_step                         # 448x448, batch 8, float32 and bfloat16
    python -m tools.profile_step --image_size=64 --batch_size=32 --precisions=none
    python -m tools.profile_step --batch_norms=keras,fused     # what the fused batch norm saves
    python -m tools.profile_step --precisions=bfloat16 --kernels   # each convolution alone

Builds `fitting.compiled_model` (no XLA, one step per execution) on random images in
memory, runs --warm_up_steps, then records --steps with TensorFlow's profiler
(`lesionseg_tf.profiling`) and reads the recorded ops back. Prints, per precision, the
wall-clock seconds of a step and the share of the ops' own time (time inside nested
ops excluded; idle time left out) taken by each part of the step: the convolutions
(forward, input and filter gradients), the atrous convolutions' space-to-batch
reshuffles, batch normalization, mirror padding, ReLU, casts, the augmentation, the
loss, the metric, the optimizer; then the --top ops. Keep the trace with --logdir to
open it in TensorBoard's profile tab.

The profile sums each op's own time, and the step runs some ops side by side (a
layer's input and filter gradients): a share is of that sum, not of the wall clock.
--kernels then times each convolution's forward pass, input gradient and filter
gradient alone, one after another (`profiling.time_convolutions`), and prints each
one's GFLOP/s with its share of the same precision's dense matrix-multiply peak,
measured here (`tools.benchmark`'s): which kernel falls short of the peak, and how
much of the step the convolutions take when nothing runs beside them.
"""

import os
import shutil
import tempfile

from absl import app, flags

import console
from lesionseg_tf.config import PRECISION_NAMES, PRECISION_POLICIES

_IMAGE_SIZE = flags.DEFINE_integer("image_size", 448, "Training input side (the paper's 448).")
_BATCH_SIZE = flags.DEFINE_integer("batch_size", 8, "Training batch.")
_PRECISIONS = flags.DEFINE_list(
    "precisions", ["none", "bfloat16"], "--mixed_precision choices to profile, one after another."
)
_BATCH_NORMS = flags.DEFINE_list(
    "batch_norms",
    ["fused"],
    "Batch-norm layers to profile: fused (the model's, one kernel), "
    "keras (Keras' own, separate ops); e.g. keras,fused to see what fusing saves.",
)
_WARM_UP_STEPS = flags.DEFINE_integer("warm_up_steps", 2, "Steps run before recording.")
_STEPS = flags.DEFINE_integer("steps", 2, "Steps recorded.")
_TOP = flags.DEFINE_integer("top", 12, "How many single ops to list.")
_KERNELS = flags.DEFINE_bool(
    "kernels",
    False,
    "Also time each convolution's three kernels alone, with their share of the matrix-multiply "
    "peak.",
)
_LOGDIR = flags.DEFINE_string(
    "logdir",
    None,
    "Keep the traces here (one folder per "
    "precision and batch norm); default: a temporary folder, removed.",
)
console.answer_help()  # before TensorFlow loads
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")  # not the profiler's INFO lines


def format_profile(title, seconds, shares, top, count):
    lines = [f"{title}: {seconds:.2f} s a step", f"  {'part of the step':<32}{'share':>7}"]
    lines += [f"  {part:<32}{share:>7.1%}" for part, share in shares.items()]
    lines.append(f"  top {count} ops (share, type, name)")
    lines += [f"  {share:>6.1%}  {op_type:<34} {name}" for share, op_type, name in top[:count]]
    return "\n".join(lines)


def format_kernels(rows, *, peak_gflops, precision_name, step_seconds):
    """`profiling.time_convolutions`' rows as a table: each kernel's GFLOP/s and share of
    `peak_gflops`, then the seconds of each kind summed, against the step's."""
    kernels = tuple(rows[0]["seconds"])  # forward, input gradient, filter gradient
    lines = [
        f"  each convolution alone: GFLOP/s (share of the {precision_name} matmul peak, "
        f"{peak_gflops:.0f} GFLOP/s)",
        f"  {'layer':<10}{'input':<18}" + "".join(f"{k:>18}" for k in kernels),
    ]
    totals = dict.fromkeys(kernels, 0.0)
    for row in rows:
        cells = []
        for kernel in kernels:
            seconds = row["seconds"][kernel]
            if seconds is None:
                cells.append(f"{'-':>18}")
                continue
            totals[kernel] += seconds
            gflops = row["flops"] / seconds / 1e9
            cells.append(f"{gflops:>10.0f} ({gflops / peak_gflops:>4.0%})")
        shape = "x".join(str(d) for d in row["input_shape"])
        lines.append(f"  {row['layer']:<10}{shape:<18}" + "".join(cells))
    lines.append(f"  {'seconds':<28}" + "".join(f"{totals[k]:>18.3f}" for k in kernels))
    total = sum(totals.values())
    lines.append(
        f"  the convolutions alone, one after another: {total:.3f} s of the step's "
        f"{step_seconds:.3f} s ({total / step_seconds:.0%})"
    )
    return "\n".join(lines)


for _flag, _allowed in ((_BATCH_NORMS, ("fused", "keras")), (_PRECISIONS, PRECISION_POLICIES)):
    flags.register_validator(
        _flag.name,
        lambda values, allowed=_allowed: set(values) <= set(allowed),
        message=f"--{_flag.name} takes {', '.join(_allowed)}",
    )


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    console.start_tensorflow()
    from lesionseg_tf import profiling  # pylint: disable=import-outside-toplevel

    keep = _LOGDIR.value
    root = keep or tempfile.mkdtemp(prefix="lesionseg-profile-")
    try:
        for precision in _PRECISIONS.value:
            for batch_norm in _BATCH_NORMS.value:
                logdir = os.path.join(root, f"{precision}-{batch_norm}")
                seconds = profiling.profile_steps(
                    image_size=_IMAGE_SIZE.value,
                    batch_size=_BATCH_SIZE.value,
                    mixed_precision=precision,
                    warm_up_steps=_WARM_UP_STEPS.value,
                    steps=_STEPS.value,
                    logdir=logdir,
                    fused_batch_norm=batch_norm == "fused",
                )
                shares, top = profiling.summarize(profiling.read_op_stats(logdir))
                name = PRECISION_NAMES[precision]
                print(
                    format_profile(
                        f"{_IMAGE_SIZE.value}x{_IMAGE_SIZE.value}, batch {_BATCH_SIZE.value}, "
                        f"{name}, {batch_norm} batch norm",
                        seconds,
                        shares,
                        top,
                        _TOP.value,
                    ),
                    flush=True,
                )
            if _KERNELS.value:
                from tools import benchmark_training  # pylint: disable=import-outside-toplevel

                rows = profiling.time_convolutions(
                    image_size=_IMAGE_SIZE.value,
                    batch_size=_BATCH_SIZE.value,
                    mixed_precision=precision,
                )
                print(
                    format_kernels(
                        rows,
                        peak_gflops=benchmark_training.matmul_gflops(PRECISION_NAMES[precision]),
                        precision_name=PRECISION_NAMES[precision],
                        step_seconds=seconds,
                    ),
                    flush=True,
                )
        if keep:
            print(f"traces: {keep} (TensorBoard: tensorboard --logdir={keep}, tab 'profile')")
    finally:
        if not keep:
            shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    console.run(main)
