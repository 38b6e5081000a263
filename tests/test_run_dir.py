"""The run folder: its names, the start-or-continue decision, atomic writes."""

import os
import stat

import pytest

from lesionseg_tf import files, run_dir
from lesionseg_tf.config import RunConfig
from lesionseg_tf.datasets import Example
from lesionseg_tf.run_dir import RunDir
from tests.conftest import REPO_ROOT, run_script


def test_names_are_in_the_folder(tmp_path):
    run = RunDir(tmp_path / "run")
    assert run.export_dir == str(tmp_path / "run" / "export")
    assert RunDir.of_export(str(tmp_path / "run" / "export") + "/").path == str(tmp_path / "run")
    assert run.weights_file() is None


def test_a_folder_starts_continues_or_is_refused(tmp_path):
    run = RunDir(tmp_path / "run")
    config = RunConfig(data_dir="d", seed=1)
    assert run.check_start(config) is False  # nothing there
    run.write_config(config)
    assert run.check_start(config) is False  # no completed epoch: a fresh start
    os.makedirs(run.backup_dir)
    run.write(os.path.join(RunDir.BACKUP, RunDir.BACKUP_STATE), payload='{"epoch": 2}')
    assert run.backup_state() == {"epoch": 2}
    assert run.check_start(config) is True  # the same settings: continue
    assert run.check_start(RunConfig(data_dir="d", seed=1, cache="none")) is True
    with pytest.raises(ValueError, match=r"other flags \(seed: 1 then, 2 now\); rerun"):
        run.check_start(RunConfig(data_dir="d", seed=2, holdout_seed=1))
    assert run.check_start(RunConfig(data_dir="d", seed=2), overwrite=True) is False
    run.write_json(RunDir.RESULT, values={"best_epoch": 1})
    with pytest.raises(ValueError, match="holds a finished run"):
        run.check_start(config)


def test_before_the_data_only_the_settings_the_data_may_fit_are_left_out(tmp_path):
    run = RunDir(tmp_path / "run")
    run.write_config(RunConfig(data_dir="d", seed=1, batch_size=5, holdout_fraction=0.3))
    wanted = RunConfig(data_dir="d", seed=1)  # the defaults: batch 32, held-out share 0.1
    run.refuse_before_data(wanted)  # no completed epoch: nothing to compare with
    os.makedirs(run.backup_dir)
    run.write(os.path.join(RunDir.BACKUP, RunDir.BACKUP_STATE), payload='{"epoch": 2}')
    run.refuse_before_data(wanted, fit_batch=True, fit_holdout=True)
    with pytest.raises(ValueError, match=r"other flags \(holdout_fraction: 0.3 then, 0.1 now\)"):
        run.refuse_before_data(wanted, fit_batch=True)
    with pytest.raises(ValueError, match=r"other flags \(batch_size: 5 then, 32 now\)"):
        run.refuse_before_data(wanted, fit_holdout=True)
    with pytest.raises(ValueError, match=r"\(seed: 1 then, 2 now\)"):
        run.refuse_before_data(
            RunConfig(data_dir="d", seed=2, holdout_seed=1), fit_batch=True, fit_holdout=True
        )
    run.refuse_before_data(RunConfig(data_dir="d", seed=2), overwrite=True)
    run.write_json(RunDir.RESULT, values={"best_epoch": 1})
    with pytest.raises(ValueError, match="holds a finished run"):
        run.refuse_before_data(wanted, fit_batch=True, fit_holdout=True)


def test_clear_removes_the_run_files_only(tmp_path):
    run = RunDir(tmp_path)
    for name in (RunDir.RESULT, RunDir.LOG, RunDir.TRAINING_IDS, "notes.txt"):
        run.write(name, payload="x")
    os.makedirs(run.export_dir)
    os.makedirs(run.cache_dir)
    run.clear()
    assert sorted(os.listdir(tmp_path)) == [RunDir.CACHE, "notes.txt"]


def test_ids_round_trip(tmp_path):
    run = RunDir(tmp_path)
    run.write_ids(
        RunDir.HOLDOUT_IDS, examples=[Example("a", "a.jpg", "a.png"), Example("b", "", "")]
    )
    assert run.read_ids(RunDir.HOLDOUT_IDS) == ["a", "b"]
    assert run.read_ids(RunDir.TRAINING_IDS) is None


def test_atomic_files_and_folders_get_the_umask_modes(tmp_path):
    umask = os.umask(0o027)
    try:
        files.write_atomically(str(tmp_path / "a.json"), payload="{}")
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


def test_a_run_recorded_before_the_options_resumes_as_the_papers_recipe(tmp_path):
    """The study's 256x256 run, and every run folder written before `context` existed,
    has no such key: it reads as "none" (Table 1), so it continues, and only as that."""
    run = RunDir(tmp_path / "old")
    recorded = RunConfig(data_dir="d", image_size=256).to_dict()
    for name in ("context", "loss", "color_augment", "scale_augment", "batch_norm", "members"):
        del recorded[name]
    run.write_json(RunDir.CONFIG, values={**recorded, "model_dir": run.path})
    os.makedirs(run.backup_dir)
    run.write(os.path.join(RunDir.BACKUP, RunDir.BACKUP_STATE), payload='{"epoch": 7}')
    assert run.settings()["context"] == "none"
    assert run.settings()["loss"] == "cross_entropy" and run.settings()["color_augment"] is False
    assert run.settings()["members"] == 1
    assert run.check_start(RunConfig(data_dir="d", image_size=256)) is True
    with pytest.raises(ValueError, match="loss: 'cross_entropy' then, 'soft_jaccard' now"):
        run.check_start(RunConfig(data_dir="d", image_size=256, loss="soft_jaccard"))
    with pytest.raises(ValueError, match="context: 'none' then, 'image_pooling' now"):
        run.check_start(RunConfig(data_dir="d", image_size=256, context="image_pooling"))


def test_fine_tuning_takes_the_size_and_network_of_the_run_it_starts_from(tmp_path):
    shipped = RunDir(tmp_path / "shipped")
    shipped.write_config(RunConfig(data_dir="d", image_size=64, context="image_pooling"))
    shipped.write(RunDir.SHIPPED_MODEL, payload=b"weights")
    expected = {"image_size": 64, "context": "image_pooling"}
    assert run_dir.inherited_settings(shipped.path) == expected
    assert run_dir.inherited_settings(shipped.file(RunDir.SHIPPED_MODEL)) == expected
    assert run_dir.init_weights_file(shipped.path) == shipped.file(RunDir.SHIPPED_MODEL)
    loose = tmp_path / "loose.keras"
    loose.write_bytes(b"weights")
    assert run_dir.inherited_settings(str(loose)) == {}
    shipped.write(RunDir.CONFIG, payload="{not json")
    with pytest.raises(ValueError, match="flags.json: cannot be read"):
        run_dir.inherited_settings(shipped.path)
    ensemble = RunDir(tmp_path / "ensemble")
    ensemble.write_config(RunConfig(data_dir="d", image_size=64, members=2))
    # A shipped ensemble: its networks only inside its one model.
    with pytest.raises(ValueError, match="2 networks.*holds no network's own weights"):
        run_dir.inherited_settings(ensemble.path)
    # A train.py --members run: each network a run folder with its weights.
    ensemble.member(0).write(RunDir.BEST, payload=b"weights")
    with pytest.raises(ValueError, match="an ensemble of 2 networks.*ensemble/member_0"):
        run_dir.inherited_settings(ensemble.path)


def test_train_py_says_which_settings_it_took_from_the_run(tmp_path):
    """Fine-tuning the shipped 64x64 model trains at 64 unless told otherwise, and says
    so once; the answer comes before TensorFlow loads (the data folder is missing)."""
    shipped = os.path.join(REPO_ROOT, "pretrained", "lesionseg_isic2017")
    missing = str(tmp_path / "clinic")
    taken = run_script(
        "train.py",
        f"--data_dir={missing}",
        f"--init_from={shipped}",
        f"--model_dir={tmp_path / 'run'}",
    )
    assert taken.returncode == 1
    assert taken.stdout.count("--image_size=64, as ") == 1 and "--context" not in taken.stdout
    assert (
        taken.stderr.strip().splitlines()[-1] == f"train.py: --data_dir {missing}: no such folder"
    )
    given = run_script(
        "train.py", f"--data_dir={missing}", f"--init_from={shipped}", "--image_size=128"
    )
    assert given.stdout.count("--image_size=128, while ") == 1
    assert "was trained at --image_size=64" in given.stdout
    same = run_script(
        "train.py", f"--data_dir={missing}", f"--init_from={shipped}", "--image_size=64"
    )
    assert "image_size" not in same.stdout


def test_a_finished_run_is_refused_before_the_data_are_read(tmp_path):
    from lesionseg_tf import training  # pylint: disable=import-outside-toplevel

    run = RunDir(tmp_path / "finished")
    run.write_json(RunDir.RESULT, values={"best_epoch": 3})
    empty = tmp_path / "no_dataset_here"
    empty.mkdir()
    with pytest.raises(ValueError, match="holds a finished run"):
        training.run(RunConfig(data_dir=str(empty)), model_dir=run.path)
