import fcntl
import json
import os
import subprocess
import sys

import pytest

from lesionseg_tf import layouts, synthetic

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

SMALL_WIDTHS = (48, 96)


@pytest.fixture(scope="session")
def tiny_isic(tmp_path_factory):
    """A small synthetic ISIC tree, shared read-only by the tests that only read it."""
    root = tmp_path_factory.mktemp("isic")
    synthetic.write_synthetic_dataset(
        str(root), num_training=8, num_validation=4, num_test=4, seed=1, widths=SMALL_WIDTHS
    )
    return str(root)


def script_env(**extra):
    """The environment the tests start the project's scripts in."""
    return dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=REPO_ROOT, **extra)


def run_script(script, *args, timeout=600):
    """Runs one of the top-level scripts in a fresh interpreter, as a user would."""
    env = script_env()
    return subprocess.run(
        [sys.executable, *script.split(), *args],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def assert_drawn(path, *, min_width):
    """A PNG figure that exists, is at least `min_width` wide and shows data: dark
    pixels (axes, text) and coloured ones (curves, bars, points, photographs), where a
    blank figure, or empty axes, would have no colour."""
    import cv2  # pylint: disable=import-outside-toplevel

    picture = cv2.imread(str(path))
    assert picture is not None, f"{path}: not an image"
    assert picture.shape[1] >= min_width, f"{path}: {picture.shape[1]} pixels wide"
    dark = (picture.max(axis=2) < 100).mean()
    coloured = (picture.max(axis=2).astype(int) - picture.min(axis=2) > 60).mean()
    assert dark > 0.001 and coloured > 0.002, (
        f"{path}: {dark:.2%} of the pixels dark, {coloured:.2%} coloured: blank?"
    )


TRAINED_EPOCHS = 6


@pytest.fixture(scope="session")
def training_only_isic(tiny_isic, tmp_path_factory):
    """The tiny tree's training split alone: no validation or test folders."""
    root = tmp_path_factory.mktemp("isic_training_only")
    for name in layouts.ISIC2017.folders["training"]:
        os.symlink(os.path.join(tiny_isic, name), root / name)
    return str(root)


@pytest.fixture(scope="session")
def trained_run(training_only_isic, tmp_path_factory, worker_id):
    """train.py run once on the tiny tree's training split alone (selecting on a
    held-out part, the default): `(model_dir, completed process)`.

    Trained once per test session, not once per pytest-xdist worker: the first
    worker that needs it trains under a file lock, the others wait and read it
    (the workers' tiny trees are identical: same seed).
    """
    base = tmp_path_factory.getbasetemp()
    shared = base if worker_id == "master" else base.parent  # this session's, not older ones
    model_dir, record = shared / "trained_run", shared / "trained_run.json"
    with open(shared / "trained_run.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not record.exists():
            result = run_script(
                "train.py",
                f"--data_dir={training_only_isic}",
                f"--model_dir={model_dir}",
                "--image_size=32",
                "--batch_size=4",
                f"--max_epochs={TRAINED_EPOCHS}",
                f"--patience={TRAINED_EPOCHS}",
                "--seed=3",
                "--holdout_seed=4",
            )
            record.write_text(
                json.dumps(
                    {
                        "args": result.args,
                        "returncode": result.returncode,
                        "stdout": result.stdout,
                        "stderr": result.stderr,
                    }
                )
            )
    result = subprocess.CompletedProcess(**json.loads(record.read_text()))
    assert result.returncode == 0, result.stderr[-3000:]
    return str(model_dir), result


# The modules that take longest, longest first (python -m pytest -q --durations=60, idle, the
# project's 2-core x86_64 CPU VM, 2026-12-03 19:49 UTC: 150, 121, 105, 77, 50, 45, 44, 42 and
# 35 s of about 900 s in all).
LONGEST_MODULES = (
    "test_predict.py",
    "test_resume.py",
    "test_distribute.py",
    "test_ensemble.py",
    "test_accelerators.py",
    "test_train.py",
    "test_context.py",
    "test_fine_tuning.py",
    "test_training_options.py",
    "test_learning.py",
)


def pytest_collection_modifyitems(items):
    """The longest modules first, then the others with slow tests, then the rest:
    pytest-xdist's --dist loadfile (with --no-loadscope-reorder, pytest.ini) hands modules
    to the workers in collection order, and longest-first balances the two workers."""
    slow_modules = {item.fspath for item in items if item.get_closest_marker("slow")}

    def rank(item):
        name = os.path.basename(str(item.fspath))
        if name in LONGEST_MODULES:
            return LONGEST_MODULES.index(name)
        return len(LONGEST_MODULES) + (item.fspath not in slow_modules)

    items.sort(key=rank)  # stable within a module
