"""What the scripts print: TensorFlow's routine start-up lines filtered, plain progress."""

import io

import pytest

import console
from tests.conftest import run_script

NO_GPU_START = """\
WARNING: All log messages before absl::InitializeLog() is called are written to STDERR
I0000 00:00:1795663636.732142    3154 cudart_stub.cc:31] Could not find cuda drivers on your machine, GPU will not be used.
E0000 00:00:1795663638.897309    3154 cuda_platform.cc:52] failed call to cuInit: INTERNAL: CUDA error: Failed call to cuInit: UNKNOWN ERROR (303)
I0000 00:00:1795663487.015109    2172 cpu_feature_guard.cc:227] This TensorFlow binary is optimized to use available CPU instructions in performance-critical operations.
To enable the following instructions: AVX2 FMA, in other operations, rebuild TensorFlow with the appropriate compiler flags.
I0000 00:00:1796091861.520772   21235 port.cc:153] oneDNN custom operations are on. You may see slightly different numerical results due to floating-point round-off errors from different computation orders. To turn them off, set the environment variable `TF_ENABLE_ONEDNN_OPTS=0`.
"""


def test_routine_start_up_lines_are_dropped_on_a_machine_without_a_driver():
    kept, no_driver = console.quiet_start_lines(NO_GPU_START + "W0000 something unusual\n")
    assert no_driver
    assert kept == ["W0000 something unusual"]


def test_a_cuda_failure_with_a_driver_installed_is_kept():
    text = "\n".join(line for line in NO_GPU_START.splitlines() if "cudart_stub" not in line)
    kept, no_driver = console.quiet_start_lines(text)
    assert not no_driver
    assert len(kept) == 1 and "failed call to cuInit" in kept[0]


def test_line_progress_prints_every_n_and_the_last():
    stream = io.StringIO()
    progress = console.make_progress(25, stream=stream, every=10)
    for done in range(1, 26):
        progress.update(done)
    lines = stream.getvalue().splitlines()
    assert [line.split()[0] for line in lines] == ["10/25", "20/25", "25/25"]
    assert all("images/s" in line for line in lines)


def test_default_line_interval_is_a_tenth_capped_at_50():
    assert console.make_progress(150, stream=io.StringIO()).every == 15
    assert console.make_progress(2000, stream=io.StringIO()).every == 50
    assert console.make_progress(3, stream=io.StringIO()).every == 1


@pytest.mark.slow  # a fresh interpreter that imports TensorFlow
def test_the_commands_start_without_the_libraries_they_seldom_use():
    """TensorFlow and the commands' library modules load neither scikit-learn nor pandas
    (Keras would), nor matplotlib (Keras's gallery helpers, the figures), scipy.spatial
    (boundary distances) or scipy.ndimage (an option off by default); each still imports
    where it is used."""
    code = (
        "import sys, console\n"
        "console.import_tensorflow()\n"
        "from lesionseg_tf import evaluation, fitting, inference, prediction, split_scoring\n"
        "from lesionseg_tf import training\n"
        "unused = ('sklearn', 'pandas', 'matplotlib', 'scipy.spatial', 'scipy.ndimage')\n"
        "loaded = [n for n in unused if sys.modules.get(n) is not None]\n"
        "assert 'keras' in sys.modules and not loaded, loaded\n"
        "from lesionseg_tf import figures\n"
        "assert figures.plt.figure() is not None\n"
        "print('ok')\n"
    )
    result = run_script("-c", code, timeout=300)
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr[-3000:]
