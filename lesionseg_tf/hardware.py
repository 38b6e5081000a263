"""What the CPU can do for the arithmetic of training: whether it has bfloat16 units,
read from the processor's flags (no TensorFlow).

AVX512_BF16 (AMD Zen 4 and later, Intel Cooper Lake) and AMX (Intel Sapphire Rapids
and later Xeons) compute bfloat16 products in hardware, which TensorFlow's oneDNN
kernels use for `--mixed_precision=bfloat16`; without them bfloat16 is emulated and
training in it is much slower than in float32.
"""

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


# --mixed_precision=bfloat16 against float32 on a CPU with bfloat16 units, measured
# (docs/cpu.md): training images/s, bfloat16 over float32, by input side, from
# `python -m tools.benchmark --sections=train --precisions=none,bfloat16`; and the
# shipped recipe's validation Jaccard in bfloat16 minus the shipped (float32) model's.
MEASURED_ON = "a 2-core AMD EPYC VM, 2026-12-01"
# The ratio of the mean images/s of two interleaved runs each (docs/cpu.md); batch 32, 8 at 448.
BFLOAT16_SPEEDUP = {64: 1.47, 128: 1.75, 256: 1.75, 448: 1.90}
# docs/study/shipped_recipe_bfloat16 against shipped_recipe_seed0, paired on the 150 images.
BFLOAT16_JACCARD_CHANGE = -0.006  # validation Jaccard, bfloat16 run minus shipped model


def bfloat16_advice(units, *, gpu_visible, precision, precision_given, image_size):
    """The line train.py prints once at start about bfloat16 on this CPU, or None.

    Args:
      units: `bfloat16_units` of this CPU.
      gpu_visible: a GPU will train (the advice is about CPUs).
      precision: the run's `--mixed_precision`; precision_given: whether it was given.
      image_size: the run's input side, for the speed measured nearest to it.
    """
    if gpu_visible:
        return None
    if not units and precision == "bfloat16":
        return ("this CPU has no bfloat16 units (AVX512_BF16 or AMX): --mixed_precision="
                "bfloat16 is emulated here and trains much slower than float32 (docs/cpu.md)")
    if units and not precision_given and BFLOAT16_SPEEDUP:
        size = min(BFLOAT16_SPEEDUP, key=lambda s: abs(s - image_size))
        accuracy = ("" if BFLOAT16_JACCARD_CHANGE is None else
                    f", validation Jaccard {BFLOAT16_JACCARD_CHANGE:+.3f} vs float32")
        return (f"this CPU has bfloat16 units ({', '.join(units)}): --mixed_precision=bfloat16 "
                f"trained {BFLOAT16_SPEEDUP[size]:.1f}x faster at {size}x{size} on "
                f"{MEASURED_ON}{accuracy} (docs/cpu.md)")
    return None
