"""What the scripts show a person: progress that reads well in a terminal and in a
log file, and TensorFlow's start-up without its routine chatter.

Not a script and not part of the library: train.py, predict.py and evaluate.py call
`start_tensorflow` before they import the library modules that load TensorFlow (a
few, such as `config`, `run_dir`, `datasets` and `prediction`'s planning, need none and
refuse bad input first), so this module imports neither TensorFlow nor the library at
module level.
"""

import atexit
import logging
import os
import re
import sys
import tempfile
import textwrap
import threading
import time

# Native start-up lines TensorFlow writes on every machine, which say nothing
# about this run: absl's pre-initialization notice, the CPU-instruction note and the
# oneDNN notice.
_ROUTINE = (
    re.compile(r"All log messages before absl::InitializeLog\(\) is called"),
    re.compile(r"cpu_feature_guard\.cc.*This TensorFlow binary is optimized"),
    re.compile(r"^To enable the following instructions:"),
    re.compile(r"port\.cc.*oneDNN custom operations are on"),
)
# Native lines TensorFlow writes while it runs that say nothing about the run: oneDNN
# choosing Eigen's kernel for an int32 op on a CPU without AVX-512 (an ERROR-level line
# at the first epoch that a user reads as a failure).
_RUNTIME_ROUTINE = (
    re.compile(r"oneDNN supports DT_INT32 only on platforms with AVX-512"),
    # libjpeg's own note on a truncated JPEG: the commands name the file and the problem
    # themselves, in one line (`messages.reason`).
    re.compile(r"jpeg_mem\.cc:\d+\] Premature end of JPEG data"),
)
# No CUDA driver installed: a machine without a GPU. Only then is the failure to
# initialize CUDA that follows expected; on a machine with a driver it is kept.
_NO_DRIVER = re.compile(r"cudart_stub\.cc.*Could not find cuda drivers")
_CUINIT = re.compile(r"failed call to cuInit")


def quiet_start_lines(text):
    """Filters TensorFlow's native start-up output.

    Returns:
      `(kept lines, no_cuda_driver)`: every line that is not routine, and
      whether TensorFlow found no CUDA driver (so it runs on the CPU). A CUDA
      initialization failure is routine only when there is no driver at all:
      with a driver it can be a real GPU problem, and it is kept.
    """
    lines = [line for line in text.splitlines() if line.strip()]
    no_driver = any(_NO_DRIVER.search(line) for line in lines)
    kept = [
        line
        for line in lines
        if not any(p.search(line) for p in _ROUTINE)
        and not _NO_DRIVER.search(line)
        and not (no_driver and _CUINIT.search(line))
    ]
    return kept, no_driver


def import_tensorflow():
    """Imports TensorFlow (and Keras) and lists the devices with the process's
    native standard error captured, then filters it with `quiet_start_lines`;
    TensorFlow's and Keras' own INFO log lines are dropped from then on.

    Only physical devices are listed, so TensorFlow's runtime is not started
    (a multi-worker strategy must still be created after this).

    Returns:
      `(kept lines, no_cuda_driver)` for the script to print.
    """
    # Keras imports scikit-learn and pandas at start-up whenever they are installed
    # (isic-challenge-scoring, a tests-only dependency, installs both), for its scikit-learn
    # wrappers and DataFrame inputs, which the scripts never use: 1.5 s and 0.4 s of every
    # script's start on a 2-core VM. Marked absent, Keras skips them.
    for unused in ("sklearn", "pandas"):
        sys.modules.setdefault(unused, None)
    # Keras also imports matplotlib's pyplot at start-up, for image-gallery helpers the
    # scripts never call (0.7-1.0 s of each start on the same VM). Hidden only while Keras
    # imports, so that `evaluate.py --figures` imports it as usual later.
    deferred = [name for name in ("matplotlib", "matplotlib.pyplot") if name not in sys.modules]
    for name in deferred:
        sys.modules[name] = None
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        try:
            import keras  # noqa: F401  pylint: disable=import-outside-toplevel,unused-import
            import tensorflow as tf  # pylint: disable=import-outside-toplevel

            tf.config.list_physical_devices()
            import keras as keras_module  # pylint: disable=import-outside-toplevel,reimported

            _quiet_library_info(
                os.path.dirname(tf.__file__), os.path.dirname(keras_module.__file__)
            )
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            for name in deferred:
                if sys.modules.get(name, False) is None:
                    del sys.modules[name]
        capture.seek(0)
        text = capture.read().decode("utf-8", errors="replace")
    return quiet_start_lines(text)


def start_tensorflow():
    """`import_tensorflow`, with the lines it keeps written to standard error, then
    `filter_runtime_lines`: what every command does before it imports the library.

    Returns:
      True when TensorFlow found no CUDA driver (it runs on the CPU).
    """
    notes, no_cuda_driver = import_tensorflow()
    for line in notes:
        print(line, file=sys.stderr)
    filter_runtime_lines()
    return no_cuda_driver


def is_runtime_routine(line):
    """Whether a line of standard error is one of `_RUNTIME_ROUTINE`."""
    return any(p.search(line) for p in _RUNTIME_ROUTINE)


def filter_runtime_lines():
    """From now on, standard error (file descriptor 2, where TensorFlow's native code
    writes) passes through a thread that drops `_RUNTIME_ROUTINE` lines and forwards
    every other line at once; at exit the descriptor is restored and what is left is
    forwarded. Once per process."""
    if getattr(filter_runtime_lines, "started", False):
        return
    filter_runtime_lines.started = True
    sys.stderr.flush()
    real = os.dup(2)
    read_end, write_end = os.pipe()
    os.dup2(write_end, 2)
    os.close(write_end)

    def forward():
        with os.fdopen(read_end, "rb", buffering=0) as pipe:
            pending = b""
            while chunk := pipe.read(65536):
                pending += chunk
                *lines, pending = pending.split(b"\n")
                kept = [
                    line + b"\n"
                    for line in lines
                    if not is_runtime_routine(line.decode("utf-8", errors="replace"))
                ]
                if kept:
                    os.write(real, b"".join(kept))
            if pending:
                os.write(real, pending)

    thread = threading.Thread(target=forward, name="stderr-filter", daemon=True)
    thread.start()

    def restore():
        sys.stderr.flush()
        os.dup2(real, 2)  # closes the pipe's last write end: the thread reads to its end
        thread.join(timeout=5)

    atexit.register(restore)


_EXISTS = {"folder": os.path.isdir, "file": os.path.isfile, "file or folder": os.path.exists}


def _model_problem(path):
    """What keeps `path` from being a model `--model` takes, or None: a `.tflite` file,
    or a SavedModel folder (`saved_model.pb` inside, as train.py's export/)."""
    if not os.path.exists(path):
        return "no such file or folder"
    if os.path.isfile(path) and not path.endswith(".tflite"):
        return (
            "is a file but not a .tflite one: give a SavedModel folder (export/) or a .tflite file"
        )
    from lesionseg_tf import run_dir  # pylint: disable=import-outside-toplevel  (no TensorFlow)

    if os.path.isdir(path) and not run_dir.is_saved_model(path):
        inside = os.path.join(path, run_dir.RunDir.EXPORT)
        hint = f"; did you mean {inside}?" if os.path.isdir(inside) else ""
        return (
            f"is not a SavedModel (no {run_dir.SAVED_MODEL_FILE}): give train.py's export/ folder "
            f"or a .tflite file{hint}"
        )
    return None


def require_inputs(command, inputs):
    """Exits with one line naming the first input that is not there, before any long
    work (TensorFlow's start-up included).

    Args:
      command: the name the line starts with (`train.py`, `export`).
      inputs: `(flag, path, kind)` triples, kind "folder", "file", "file or folder" or
        "model" (a `.tflite` file or a SavedModel folder); a path that is None or empty
        (the flag not given) is skipped.
    """
    for flag, path, kind in inputs:
        if not path:
            continue
        if kind == "model":
            problem = _model_problem(path)
        else:
            problem = None if _EXISTS[kind](path) else f"no such {kind}"
        if problem:
            sys.exit(f"{command}: {flag} {path}: {problem}")


# Flag names every command understands, which its help need not list.
_HELP_FLAGS = ("--help", "-help", "-h", "-?", "--helpshort", "--helpfull", "--helpxml")


def run(main, *, groups=()):
    """`absl.app.run(main)`, with a help that helps (`answer_help`)."""
    answer_help(groups=groups)
    from absl import app  # pylint: disable=import-outside-toplevel

    app.run(main)


def answer_help(*, groups=()):
    """When the command line asks for help: prints the command's docstring and every
    flag the command defines (its own and those of `common_flags`), under the
    headings of `groups` (`(heading, [flag names])`), the rest after them, and
    exits 0. A command that imports TensorFlow at its top calls this first, after
    defining its flags, so that its help answers at once."""
    if any(arg in _HELP_FLAGS for arg in sys.argv[1:]):
        print(command_help(sys.modules["__main__"], groups=groups))
        sys.exit(0)


def command_help(module, *, groups=()):
    """The text `run` prints for `--help`."""
    from absl import flags  # pylint: disable=import-outside-toplevel

    registry = flags.FLAGS
    own = sorted(
        {
            name
            for name, flag in registry._flags().items()  # pylint: disable=protected-access
            if name == flag.name
            and not (registry.find_module_defining_flag(name) or "").startswith("absl")
        }
    )
    listed = [name for _, names in groups for name in names]
    unknown = sorted(set(listed) - set(own))
    if unknown:
        raise ValueError(f"help groups name flags the command does not define: {unknown}")
    sections = [*groups, ("other" if groups else "", [n for n in own if n not in listed])]
    lines = [textwrap.dedent(module.__doc__ or "").strip(), ""]
    for heading, names in sections:
        if not names:
            continue
        lines.append(f"{heading} flags:" if heading else "flags:")
        for name in names:
            flag = registry[name]
            text = " ".join(flag.help.split())
            if flag.default not in (None, "", []) and not text.startswith("Alias for"):
                text += f" (default: {flag.default_as_str.strip(chr(39))})"
            lines += textwrap.wrap(
                text, width=96, initial_indent=f"  --{name}: ", subsequent_indent="      "
            )
        lines.append("")
    return "\n".join(lines).rstrip()


class _LibraryInfoFilter(logging.Filter):
    """Drops INFO (and lower) records logged from inside the given folders."""

    def __init__(self, folders):
        super().__init__()
        self.folders = tuple(os.path.join(folder, "") for folder in folders)

    def filter(self, record):
        return record.levelno >= logging.WARNING or not record.pathname.startswith(self.folders)


def _quiet_library_info(*folders):
    """TensorFlow's and Keras' own INFO lines (SavedModel writing, signature
    renaming) are routine too: drop them, keep their warnings and errors, and keep
    every line of this project's. They log through absl and Python logging alike."""
    from absl import logging as absl_logging  # pylint: disable=import-outside-toplevel

    quiet = _LibraryInfoFilter(folders)
    absl_logging.get_absl_handler().addFilter(quiet)
    logging.getLogger("tensorflow").addFilter(quiet)


class LineProgress:
    """Progress as plain lines, for a log file: one line every `every` items and
    at the end, with the count and the rate (`update(done)` as Keras' Progbar)."""

    def __init__(self, total, *, unit, stream, every):
        self.total, self.unit, self.stream, self.every = total, unit, stream, every
        self._start = time.perf_counter()

    def update(self, done):
        if done % self.every and done != self.total:
            return
        elapsed = time.perf_counter() - self._start
        rate = done / elapsed if elapsed > 0 else 0.0
        print(
            f"{done}/{self.total} {self.unit}s, {rate:.2f} {self.unit}s/s, {elapsed:.0f} s",
            file=self.stream,
            flush=True,
        )


def make_progress(total, *, unit="image", stream=None, every=None):
    """A progress reporter with `update(done)`: Keras' bar in a terminal, else
    `LineProgress` (by default a line per tenth of the work, at least every 50)."""
    stream = stream or sys.stdout
    if stream.isatty():
        import keras  # pylint: disable=import-outside-toplevel

        return keras.utils.Progbar(total, unit_name=unit)
    every = every or max(1, min(50, -(-total // 10)))
    return LineProgress(total, unit=unit, stream=stream, every=every)
