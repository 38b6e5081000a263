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
