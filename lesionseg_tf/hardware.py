"""What the CPU can do for the arithmetic of training: whether it has bfloat16 units,
read from the processor's flags (no TensorFlow).

AVX512_BF16 (AMD Zen 4 and later, Intel Cooper Lake) and AMX (Intel Sapphire Rapids
and later Xeons) compute bfloat16 products in hardware, which TensorFlow's oneDNN
kernels use for `--mixed_precision=bfloat16`; without them bfloat16 is emulated and
training in it is much slower than in float32.
"""

import dataclasses

CPUINFO = "/proc/cpuinfo"
# The /proc/cpuinfo flags of bfloat16 units, and what to call them.
BFLOAT16_FLAGS = {"avx512_bf16": "AVX512_BF16", "amx_bf16": "AMX-BF16"}


def cpu_flags(cpuinfo_text):
    """The set of flags of the first processor listed in a `/proc/cpuinfo` text (x86's
    `flags` line; ARM's `Features`)."""
    for line in cpuinfo_text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            return set(value.split())
    return set()


def read_cpu_flags(path=CPUINFO):
    """`cpu_flags` of this machine, or an empty set where `path` cannot be read."""
    try:
        with open(path) as f:
            return cpu_flags(f.read())
    except OSError:
        return set()


def bfloat16_units(flags):
    """The names of the bfloat16 units among `flags` (`BFLOAT16_FLAGS`), in order."""
    return [name for flag, name in BFLOAT16_FLAGS.items() if flag in flags]


@dataclasses.dataclass(frozen=True)
class Bfloat16Measurement:
    """--mixed_precision=bfloat16 against float32, measured on one kind of CPU
    (docs/cpu.md): training images/s, bfloat16 over float32, by input side, from
    `python -m tools.benchmark --sections=train --precisions=none,bfloat16`."""

    unit: str  # the kind of unit, as `BFLOAT16_FLAGS` names it
    measured_on: str  # the machine and the date
    speedup: dict  # input side -> bfloat16 images/s over float32 images/s


# By kind of unit: AMX multiplies bfloat16 tiles, several times AVX512_BF16's rate, so
# one figure cannot advise both.
BFLOAT16_MEASUREMENTS = (
    # Issue 40's table: 1 warm-up and 8 timed steps, batch 32 (8 at 448), one round.
    Bfloat16Measurement(
        "AMX-BF16", "a 2-core Intel Xeon VM with AMX, 2026-12-02", {64: 2.56, 128: 3.09, 448: 2.99}
    ),
    # docs/cpu.md: the ratio of the mean images/s of two interleaved runs each.
    Bfloat16Measurement(
        "AVX512_BF16",
        "a 2-core AMD EPYC VM, 2026-12-01",
        {64: 1.47, 128: 1.75, 256: 1.75, 448: 1.90},
    ),
)
# docs/study/shipped_recipe_bfloat16 against shipped_recipe_seed0, paired on the 150 images.
BFLOAT16_JACCARD_CHANGE = -0.006  # validation Jaccard, bfloat16 run minus shipped model


def bfloat16_measurement(units):
    """The measurement of the fastest kind of unit among `units` (`bfloat16_units`), or
    None where none was measured."""
    return next((m for m in BFLOAT16_MEASUREMENTS if m.unit in units), None)


def bfloat16_advice(units, *, gpu_visible, precision, precision_given, image_size):
    """The line train.py prints once at start about bfloat16 on this CPU, or None.

    Args:
      units: `bfloat16_units` of this CPU; the speed quoted is that measured on its
        fastest kind of unit (`bfloat16_measurement`).
      gpu_visible: a GPU will train (the advice is about CPUs).
      precision: the run's `--mixed_precision`; precision_given: whether it was given.
      image_size: the run's input side, for the speed measured nearest to it.
    """
    if gpu_visible:
        return None
    if not units and precision == "bfloat16":
        return (
            "this CPU has no bfloat16 units (AVX512_BF16 or AMX): --mixed_precision="
            "bfloat16 is emulated here and trains much slower than float32 (docs/cpu.md)"
        )
    measurement = bfloat16_measurement(units)
    if measurement and not precision_given:
        size = min(measurement.speedup, key=lambda s: abs(s - image_size))
        accuracy = (
            ""
            if BFLOAT16_JACCARD_CHANGE is None
            else f", validation Jaccard {BFLOAT16_JACCARD_CHANGE:+.3f} vs float32"
        )
        return (
            f"this CPU has bfloat16 units ({', '.join(units)}): --mixed_precision=bfloat16 "
            f"trained {measurement.speedup[size]:.1f}x faster at {size}x{size} on "
            f"{measurement.measured_on}{accuracy} (docs/cpu.md)"
        )
    return None
