"""A run's configuration, validated once, and the flags' single home."""

import dataclasses
import os
import subprocess
import sys

import pytest

from lesionseg_tf import config, datasets
from lesionseg_tf.config import RunConfig
from tests.conftest import REPO_ROOT, run_script


def test_defaults_are_the_papers():
    c = RunConfig(data_dir="ISIC2017")
    assert (c.image_size, c.batch_size, c.learning_rate, c.lr_schedule) == (
        448,
        32,
        1e-3,
        "constant",
    )
    assert c.image_size == config.DEFAULT_IMAGE_SIZE == 448 and config.UPSCALE == 4


def test_holdout_seed_defaults_to_the_seed_and_is_recorded_resolved():
    assert RunConfig(data_dir="d", seed=5).holdout_seed == 5
    assert RunConfig(data_dir="d", seed=5, holdout_seed=0).holdout_seed == 0
    recorded = RunConfig(data_dir="d", seed=5).to_dict()
    assert recorded["holdout_seed"] == 5
    assert RunConfig(**recorded) == RunConfig(data_dir="d", seed=5)


@pytest.mark.parametrize(
    "changes,message",
    [
        ({"image_size": 30}, "image_size must be a positive multiple of 4, got 30"),
        ({"batch_size": 0}, "batch_size must be >= 1, got 0"),
        ({"patience": -1}, "patience must be >= 0"),
        ({"learning_rate": 0.0}, "learning_rate must be > 0"),
        ({"holdout_fraction": 1.0}, "holdout_fraction must be between 0 and 1"),
        ({"lr_schedule": "step"}, "lr_schedule must be one of constant, cosine, got 'step'"),
        ({"jit_compile": True}, "jit_compile must be one of auto, true, false"),
        ({"members": 0}, "members must be >= 1, got 0"),
        ({"members": 2, "init_from": "runs/a"}, "members 2 trains an ensemble from scratch"),
        ({"members": 2, "strategy": "multi_worker"}, "join them with python -m tools.ensemble"),
    ],
)
def test_settings_that_cannot_train_are_refused_on_construction(changes, message):
    with pytest.raises(ValueError, match=message):
        RunConfig(data_dir="d", **changes)


def test_run_settings_leave_out_how_a_run_executes():
    settings = RunConfig(data_dir="d").run_settings()
    assert "holdout_seed" in settings and "seed" in settings and "image_size" in settings
    for how in ("cache", "jit_compile", "steps_per_execution", "strategy"):
        assert how not in settings
    assert set(settings) | {"cache", "jit_compile", "steps_per_execution", "strategy"} == {
        f.name for f in dataclasses.fields(RunConfig)
    }


def _python_succeeds(code):
    """Runs `code` in a fresh Python with the repository importable; fails the test
    with the child's error output if it does not exit 0."""
    result = run_script("-c", code, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]


def test_the_flags_and_the_data_modules_import_without_tensorflow():
    """--help and a bad flag answer before TensorFlow loads; so do the study and the
    compare command, which read reports."""
    code = (
        "import sys, common_flags\n"
        "from lesionseg_tf import config, datasets, run_dir, report, metrics, study\n"
        "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules\n"
        "assert common_flags.datasets is datasets and common_flags.config is config\n"
    )
    _python_succeeds(code)


def test_flag_choices_come_from_the_library():
    import common_flags  # pylint: disable=import-outside-toplevel

    assert common_flags.datasets is datasets or (
        common_flags.datasets.LAYOUT_NAMES == datasets.LAYOUT_NAMES
    )
    assert common_flags.config.JIT_COMPILE == config.JIT_COMPILE


@pytest.mark.parametrize(
    "script,args,message",
    [
        ("train.py", ["--image_size=30"], "image_size must be a positive multiple of 4"),
        ("train.py", ["--lr_schedule=step"], "value should be one of <constant|cosine>"),
        ("train.py", ["--dataset=isic2019"], "value should be one of <isic2016|isic2017|"),
        ("evaluate.py", ["--bootstrap=-1"], "--bootstrap=-1: --bootstrap must be >= 0"),
        ("predict.py", [], "--input is required"),
        (
            "evaluate.py",
            ["--largest_component", "--central_component"],
            "give --largest_component or --central_component, not both",
        ),
        ("train.py", ["--loss=focal"], "value should be one of <cross_entropy|soft_jaccard|"),
        ("tools/compare.py", ["only_one.csv"], "give two per_image.csv files"),
    ],
)
def test_a_bad_flag_is_refused_before_tensorflow(script, args, message, tmp_path):
    env = dict(os.environ, PYTHONPATH=REPO_ROOT, PYTHONPROFILEIMPORTTIME="1")
    command = ["-m", script[:-3].replace("/", ".")] if script.startswith("tools/") else [script]
    result = subprocess.run(
        [
            sys.executable,
            *command,
            f"--model_dir={tmp_path / 'run'}" if script == "train.py" else "--verbosity=0",
            *args,
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert result.returncode != 0 and message in result.stderr
    imported = {
        line.split("|")[-1].strip()
        for line in result.stderr.splitlines()
        if line.startswith("import time:")
    }
    assert "tensorflow" not in imported and "absl.flags" in imported
    assert not (tmp_path / "run").exists()


def test_train_py_has_a_flag_for_every_run_setting():
    """train.py builds RunConfig from one holder per field: a field without a flag would
    silently keep its default."""
    code = (
        "import dataclasses, train\n"
        "from lesionseg_tf.config import RunConfig\n"
        "fields = {f.name for f in dataclasses.fields(RunConfig)}\n"
        "assert set(train._CONFIG_HOLDERS) == fields, set(train._CONFIG_HOLDERS) ^ fields\n"
    )
    _python_succeeds(code)


def test_a_recipe_sets_what_no_flag_gives_and_is_recorded(tmp_path):
    """`--recipe` fills the settings no flag gave from `config.RECIPES` (here a recipe
    added for the test), says so, and the name is in the RunConfig; an explicit flag wins."""
    script = f"""
import sys
sys.argv = ["train.py", "--recipe=trial", "--image_size=32", "--data_dir={tmp_path}"]
from lesionseg_tf import config
config.RECIPES["trial"] = {{"loss": "soft_jaccard", "image_size": 96, "lr_schedule": "cosine"}}
import train
train.flags.FLAGS(sys.argv)
run, notes = train.run_config()
print(run.recipe, run.loss, run.image_size, run.lr_schedule)
print("|".join(notes))
"""
    result = run_script("-c", script)
    assert result.returncode == 0, result.stderr
    values, notes = result.stdout.splitlines()[:2]
    assert values == "trial soft_jaccard 32 cosine"  # --image_size given: the flag wins
    assert notes.split("|") == [
        "--loss=soft_jaccard, from --recipe=trial",
        "--lr_schedule=cosine, from --recipe=trial",
    ]


@pytest.mark.parametrize("name", sorted(config.RECIPES))
def test_every_recipe_is_a_run_that_can_train(name):
    """Each named recipe's values are `RunConfig` fields that validate together."""
    values = config.RECIPES[name]
    fields = {f.name for f in dataclasses.fields(RunConfig)}
    assert set(values) <= fields - {"data_dir", "recipe"}, set(values) - fields
    run = RunConfig(data_dir="d", recipe=name, **values)
    assert {k: getattr(run, k) for k in values} == values


def test_recipe_is_recorded_and_old_runs_read_as_the_papers():
    recorded = config.RunConfig(data_dir="d").to_dict()
    assert recorded["recipe"] == "paper" and "recipe" in config.RUN_FIELDS
    del recorded["recipe"]  # a flags.json written before the field existed
    assert config.recorded_settings(recorded)["recipe"] == "paper"
    with pytest.raises(ValueError, match="recipe must be one of paper"):
        config.RunConfig(data_dir="d", recipe="unknown")
