"""The run folder: its names, the start-or-continue decision, atomic writes."""

import os
import stat

import pytest

from lesionseg_tf import files
from lesionseg_tf.config import RunConfig
from lesionseg_tf.datasets import Example
from lesionseg_tf.run_dir import RunDir


def test_names_are_in_the_folder(tmp_path):
    run = RunDir(tmp_path / "run")
    assert run.export_dir == str(tmp_path / "run" / "export")
    assert run.evaluation_dir("validation") == str(tmp_path / "run" / "evaluation" / "validation")
    assert RunDir.of_export(str(tmp_path / "run" / "export") + "/").path == str(tmp_path / "run")
    assert run.weights_file() is None


def test_a_folder_starts_continues_or_is_refused(tmp_path):
    run = RunDir(tmp_path / "run")
    config = RunConfig(data_dir="d", seed=1)
    assert run.check_start(config) is False  # nothing there
    run.write_config(config)
    assert run.check_start(config) is False  # no completed epoch: a fresh start
    os.makedirs(run.backup_dir)
    run.write(os.path.join(RunDir.BACKUP, RunDir.BACKUP_STATE), '{"epoch": 2}')
    assert run.backup_state() == {"epoch": 2}
    assert run.check_start(config) is True  # the same settings: continue
    assert run.check_start(RunConfig(data_dir="d", seed=1, cache="none")) is True
    with pytest.raises(ValueError, match=r"other flags \(seed: 1 then, 2 now\); rerun"):
        run.check_start(RunConfig(data_dir="d", seed=2, holdout_seed=1))
    assert run.check_start(RunConfig(data_dir="d", seed=2), overwrite=True) is False
    run.write_json(RunDir.RESULT, {"best_epoch": 1})
    with pytest.raises(ValueError, match="holds a finished run"):
        run.check_start(config)


def test_clear_removes_the_run_files_only(tmp_path):
    run = RunDir(tmp_path)
    for name in (RunDir.RESULT, RunDir.LOG, RunDir.TRAINING_IDS, "notes.txt"):
        run.write(name, "x")
    os.makedirs(run.export_dir)
    os.makedirs(run.cache_dir)
    run.clear()
    assert sorted(os.listdir(tmp_path)) == [RunDir.CACHE, "notes.txt"]


def test_ids_round_trip(tmp_path):
    run = RunDir(tmp_path)
    run.write_ids(RunDir.HOLDOUT_IDS, [Example("a", "a.jpg", "a.png"), Example("b", "", "")])
    assert run.read_ids(RunDir.HOLDOUT_IDS) == ["a", "b"]
    assert run.read_ids(RunDir.TRAINING_IDS) is None


def test_atomic_files_and_folders_get_the_umask_modes(tmp_path):
    umask = os.umask(0o027)
    try:
        files.write_atomically(str(tmp_path / "a.json"), "{}")
        with files.atomic_path(str(tmp_path / "folder")) as temporary:
            os.makedirs(temporary)
            open(os.path.join(temporary, "x"), "w").close()
    finally:
        os.umask(umask)
    assert stat.S_IMODE(os.stat(tmp_path / "a.json").st_mode) == 0o640
    assert stat.S_IMODE(os.stat(tmp_path / "folder").st_mode) == 0o750
    assert os.listdir(tmp_path / "folder") == ["x"]


def test_atomic_path_replaces_a_folder_and_clears_debris(tmp_path):
    target = tmp_path / "export"
    target.mkdir()
    (target / "old").write_text("old")
    (tmp_path / ".partial-dead0001-export").mkdir()  # a killed write of the same target
    with files.atomic_path(str(target)) as temporary:
        os.makedirs(temporary)
        with open(os.path.join(temporary, "new"), "w") as f:
            f.write("new")
    assert os.listdir(target) == ["new"]
    assert sorted(os.listdir(tmp_path)) == ["export"]
    with pytest.raises(RuntimeError):
        with files.atomic_path(str(target)) as temporary:
            os.makedirs(temporary)
            raise RuntimeError("killed")
    assert os.listdir(target) == ["new"] and sorted(os.listdir(tmp_path)) == ["export"]
