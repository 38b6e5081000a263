"""The reproduction study's table, comparisons and figure, from run files alone."""

import csv
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from lesionseg_tf import study, study_collect, study_ingredients, study_tables
from tests.conftest import REPO_ROOT, assert_drawn, run_script

IDS = [f"ISIC_{i:07d}" for i in range(6)]
HOLDOUT_IDS = [f"ISIC_{i:07d}" for i in range(100, 103)]


def write_run(
    root,
    name,
    *,
    image_size,
    seed,
    jaccards,
    schedule="cosine",
    epochs=30,
    held_out=0.8,
    **recorded,
):
    """A study run folder as train.py and evaluate.py leave it (only what is read)."""
    folder = root / name
    folder.mkdir(parents=True)
    (folder / "flags.json").write_text(
        json.dumps(
            {
                "image_size": image_size,
                "seed": seed,
                "lr_schedule": schedule,
                "max_epochs": epochs,
                "patience": 20,
                **recorded,
            }
        )
    )
    (folder / "holdout_ids.txt").write_text("".join(f"{i}\n" for i in HOLDOUT_IDS))
    (folder / "training_log.csv").write_text("epoch,val_jaccard\n1,0.5\n")
    (folder / "result.json").write_text(
        json.dumps({"selection_jaccard": held_out, "best_epoch": epochs - 1, "epochs_run": epochs})
    )
    with open(folder / "per_image.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["image_id", "jaccard"])
        writer.writerows(zip(IDS, jaccards))
    mean = float(np.mean(jaccards))
    (folder / "summary.json").write_text(
        json.dumps(
            {
                "summary": {"jaccard": mean},
                "confidence_95": {"jaccard": [mean - 0.05, mean + 0.05]},
                "config": {"split": "validation"},
            }
        )
    )
    return str(folder)


@pytest.fixture()
def study_dir(tmp_path):
    base = np.array([0.5, 0.6, 0.7, 0.8, 0.9, 0.4])
    write_run(tmp_path, "shipped_recipe_seed0", image_size=64, seed=0, jaccards=base, epochs=50)
    write_run(
        tmp_path, "shipped_recipe_seed1", image_size=64, seed=1, jaccards=base - 0.1, epochs=50
    )
    write_run(tmp_path, "size64", image_size=64, seed=0, jaccards=base)
    write_run(tmp_path, "size128", image_size=128, seed=0, jaccards=base - 0.02)
    return str(tmp_path)


def test_table_gives_mean_and_sd_over_seeds(study_dir):
    runs = study.read_study(study_dir)
    rows = {row["recipe"]: row for row in study_tables.table_rows(runs)}
    seeds = rows["64x64, cosine rate, at most 50 epochs, patience 20"]
    # Validation means 0.65 and 0.55: mean 0.60, sample SD 0.1 / sqrt(2).
    assert seeds["seeds"] == [0, 1]
    assert seeds["validation_mean"] == pytest.approx(0.60)
    assert seeds["validation_sd"] == pytest.approx(0.1 / np.sqrt(2))
    single = rows["128x128, cosine rate, at most 30 epochs, patience 20"]
    assert single["validation_sd"] is None and single["validation_mean"] == pytest.approx(0.63)
    table = study_tables.markdown(runs, reference="shipped_recipe_seed0")
    assert "| 64x64, cosine rate, at most 50 epochs, patience 20 | 0, 1 | 0.600 ± 0.071 |" in table
    assert "outside point: paper" in table and "0.642" in table


def test_comparisons_pair_runs_one_setting_apart_and_the_rest_with_the_reference(study_dir):
    runs = study.read_study(study_dir)
    found = {
        (c["first"], c["second"]): c
        for c in study_tables.comparisons(runs, reference="shipped_recipe_seed0")
    }
    # size64 is the shipped recipe in 30 epochs: paired with both seeds, more epochs first;
    # size128 with size64 by input size, and with the reference (size and epochs differ).
    assert set(found) == {
        ("shipped_recipe_seed0", "size64"),
        ("shipped_recipe_seed1", "size64"),
        ("size128", "size64"),
        ("shipped_recipe_seed1", "shipped_recipe_seed0"),
        ("size128", "shipped_recipe_seed0"),
    }
    assert found[("shipped_recipe_seed1", "size64")]["differs"] == ["epochs", "seed"]
    assert found[("size128", "shipped_recipe_seed0")]["differs"] == ["input size", "epochs"]
    assert found[("shipped_recipe_seed0", "size64")]["validation"]["p_value"] is None  # identical
    seed1 = found[("shipped_recipe_seed1", "shipped_recipe_seed0")]["validation"]
    assert seed1["mean_difference"] == pytest.approx(-0.1) and seed1["worse"] == 6
    assert seed1["interval"] == pytest.approx([-0.1, -0.1])
    assert all(c["holdout"] is None for c in found.values())  # no held-out reports here
    with pytest.raises(ValueError, match="no study run named"):
        study_tables.comparisons(runs, reference="nope")


def write_holdout_report(folder, jaccards, *, ids=HOLDOUT_IDS, split="training"):
    """evaluate.py's report on held-out pairs, in `folder`."""
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "per_image.csv"), "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["image_id", "jaccard"])
        writer.writerows(zip(ids, jaccards))
    mean = float(np.mean(jaccards))
    with open(os.path.join(folder, "summary.json"), "w") as f:
        json.dump(
            {
                "summary": {"jaccard": mean},
                "confidence_95": {"jaccard": [mean - 0.01, mean + 0.01]},
                "config": {
                    "split": split,
                    "data_dir": "/somewhere/isic2017_256",
                    "model": os.path.join(os.getcwd(), "pretrained", "export"),
                },
            },
            f,
        )
    return folder


def test_held_out_reports_are_compared_and_tabled(study_dir, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    report = write_holdout_report(str(tmp_path / "report"), [0.8, 0.9, 0.7])
    target = study_collect.collect_holdout_report(
        report,
        study_run=os.path.join(study_dir, "shipped_recipe_seed0"),
        data_dir="/somewhere/isic2017_256",
    )
    recorded = json.loads(open(os.path.join(target, "summary.json")).read())["config"]
    # The data by its folder name, a path under the working folder relative to it.
    assert recorded["data_dir"] == "isic2017_256"
    assert recorded["model"] == os.path.join("pretrained", "export")
    write_holdout_report(os.path.join(study_dir, "size128", "holdout"), [0.7, 0.9, 0.65])
    runs = study.read_study(study_dir)
    found = {
        (c["first"], c["second"]): c
        for c in study_tables.comparisons(runs, reference="shipped_recipe_seed0")
    }
    held_out = found[("size128", "shipped_recipe_seed0")]["holdout"]
    assert held_out["mean_difference"] == pytest.approx(-0.05)
    assert (held_out["better"], held_out["worse"], held_out["ties"]) == (0, 2, 1)
    assert found[("size128", "size64")]["holdout"] is None  # size64 was not scored so
    table = study_tables.markdown(runs, reference="shipped_recipe_seed0")
    assert "| 0.600 ± 0.071 | 0.800 ± 0.000 | 0.800 (seed 0) | 49/50, 49/50 |" in table
    assert "| size128 | 0 | 0.6300 (0.5800-0.6800) | 0.7500 (0.7400-0.7600) |" in table
    held_out_table = table.split("held-out training pairs scored")[1]
    assert "| size128 | shipped_recipe_seed0 | input size, epochs | -0.0500" in held_out_table
    assert "size64" not in held_out_table


def test_held_out_reports_of_other_images_or_splits_are_refused(study_dir, tmp_path):
    run = os.path.join(study_dir, "size128")
    for report, problem in (
        (
            write_holdout_report(str(tmp_path / "other"), [0.8, 0.9], ids=HOLDOUT_IDS[:2]),
            "scores 2 images, not the run's 3 held-out pairs",
        ),
        (
            write_holdout_report(str(tmp_path / "validation"), [0.8, 0.9, 0.7], split="validation"),
            "scores the validation split",
        ),
    ):
        with pytest.raises(ValueError, match=problem):
            study_collect.collect_holdout_report(report, study_run=run, data_dir=str(tmp_path))
        assert not os.path.exists(os.path.join(run, "holdout"))  # nothing copied
    # A report already in the study folder is checked when the study is read.
    write_holdout_report(os.path.join(run, "holdout"), [0.8, 0.9], ids=HOLDOUT_IDS[:2])
    with pytest.raises(ValueError, match="size128/holdout/per_image.csv scores 2 images"):
        study.read_study(study_dir)


def test_missing_files_are_named(tmp_path):
    folder = write_run(tmp_path, "run", image_size=64, seed=0, jaccards=[0.5] * 6)
    os.remove(os.path.join(folder, "summary.json"))
    with pytest.raises(FileNotFoundError, match="missing summary.json"):
        study.read_run(folder)


@pytest.mark.slow
def test_study_command_writes_the_table_and_a_figure(study_dir, tmp_path):
    out = tmp_path / "out"
    result = run_script("-m tools.study", f"--study_dir={study_dir}", f"--output_dir={out}")
    assert result.returncode == 0, result.stderr[-3000:]
    table = (out / "table.md").read_text()
    assert table in result.stdout and "| size128 | size64 |" in table
    assert_drawn(out / "validation_jaccard_by_input_size.png", min_width=400)
    again = tmp_path / "again"
    run_script("-m tools.study", f"--study_dir={study_dir}", f"--output_dir={again}")
    assert (again / "table.md").read_bytes() == table.encode()
    assert (again / "validation_jaccard_by_input_size.png").read_bytes() == (
        out / "validation_jaccard_by_input_size.png"
    ).read_bytes()


def test_other_networks_and_precisions_never_join_the_recipe(study_dir, tmp_path):
    base = np.array([0.5, 0.6, 0.7, 0.8, 0.9, 0.4])
    write_run(
        tmp_path,
        "context64",
        image_size=64,
        seed=2,
        jaccards=base + 0.05,
        epochs=50,
        context="image_pooling",
    )
    write_run(
        tmp_path,
        "bfloat16_64",
        image_size=64,
        seed=2,
        jaccards=base,
        epochs=50,
        mixed_precision="bfloat16",
    )
    write_run(
        tmp_path, "context128", image_size=128, seed=0, jaccards=base, context="image_pooling"
    )
    runs = study.read_study(study_dir)
    rows = {row["recipe"]: row["runs"] for row in study_tables.table_rows(runs)}
    assert rows["64x64, cosine rate, at most 50 epochs, patience 20"] == [
        "shipped_recipe_seed0",
        "shipped_recipe_seed1",
    ]
    assert rows[
        "64x64, Table 1 + image-pooling context, cosine rate, at most 50 epochs, patience 20"
    ] == ["context64"]
    assert rows["64x64, bfloat16 compute, cosine rate, at most 50 epochs, patience 20"] == [
        "bfloat16_64"
    ]
    # The figure's points carry the network (a square marker for the context branch).
    networks = {(p[0], p[4]): p[6] for p in study_tables.size_points(runs)}
    assert (
        networks[
            (
                128,
                "128x128, Table 1 + image-pooling context, cosine rate, at most 30 "
                "epochs, patience 20",
            )
        ]
        == "image_pooling"
    )
    assert networks[(128, "128x128, cosine rate, at most 30 epochs, patience 20")] == "none"
    # Pairs differ in one setting: context128 pairs with size128 (the network), not with
    # size64 (network and size) nor context64 (size and epochs); context first.
    pairs = {
        (c["first"], c["second"])
        for c in study_tables.comparisons(runs, reference="shipped_recipe_seed0")
    }
    assert {
        ("size128", "size64"),
        ("context128", "size128"),
        ("context64", "shipped_recipe_seed0"),
        ("context64", "shipped_recipe_seed1"),
        ("bfloat16_64", "shipped_recipe_seed1"),
    } <= pairs
    assert not {frozenset(("context128", "size64")), frozenset(("context128", "context64"))} & {
        frozenset(pair) for pair in pairs
    }


def test_other_losses_and_colour_augmentation_never_join_the_recipe(study_dir, tmp_path):
    base = np.array([0.5, 0.6, 0.7, 0.8, 0.9, 0.4])
    write_run(
        tmp_path,
        "jaccard64",
        image_size=64,
        seed=0,
        jaccards=base + 0.01,
        epochs=50,
        loss="soft_jaccard",
    )
    write_run(
        tmp_path,
        "color64",
        image_size=64,
        seed=1,
        jaccards=base + 0.02,
        epochs=50,
        color_augment=True,
    )
    write_run(
        tmp_path,
        "baseline64",
        image_size=64,
        seed=1,
        jaccards=base,
        epochs=50,
        loss="cross_entropy",
        color_augment=False,
        scale_augment=False,
    )
    write_run(
        tmp_path, "scale64", image_size=64, seed=0, jaccards=base, epochs=50, scale_augment=True
    )
    runs = study.read_study(study_dir)
    rows = {row["recipe"]: row["runs"] for row in study_tables.table_rows(runs)}
    # A run that records the paper's settings pools with one recorded before them.
    assert rows["64x64, cosine rate, at most 50 epochs, patience 20"] == [
        "shipped_recipe_seed0",
        "baseline64",
        "shipped_recipe_seed1",
    ]
    assert rows["64x64, soft jaccard loss, cosine rate, at most 50 epochs, patience 20"] == [
        "jaccard64"
    ]
    assert rows["64x64, colour augmentation, cosine rate, at most 50 epochs, patience 20"] == [
        "color64"
    ]
    found = {
        (c["first"], c["second"]): c["differs"]
        for c in study_tables.comparisons(runs, reference="shipped_recipe_seed0")
    }
    assert found[("jaccard64", "shipped_recipe_seed0")] == ["loss"]
    assert found[("color64", "baseline64")] == ["colour augmentation"]
    assert found[("color64", "shipped_recipe_seed1")] == ["colour augmentation"]
    assert found[("scale64", "shipped_recipe_seed0")] == ["scale augmentation"]
    assert rows["64x64, scale augmentation, cosine rate, at most 50 epochs, patience 20"] == [
        "scale64"
    ]
    assert ("jaccard64", "color64") not in found and ("color64", "jaccard64") not in found


def test_collecting_a_run_keeps_its_files_and_drops_this_machines_paths(tmp_path):
    runs, data = tmp_path / "runs", tmp_path / "data" / "isic2017_256"
    run = runs / "size256"
    write_run(
        runs,
        "size256",
        image_size=256,
        seed=0,
        jaccards=[0.5] * 6,
        data_dir=str(data),
        model_dir=str(run),
    )
    (run / "evaluation" / "validation").mkdir(parents=True)
    for name in ("per_image.csv", "summary.json"):
        (run / "evaluation" / "validation" / name).write_bytes((run / name).read_bytes())
    write_holdout_report(str(run / "evaluation" / "holdout"), [0.8, 0.9, 0.7])
    (run / "result.json").write_text(
        json.dumps(
            {
                "selection_jaccard": 0.8,
                "best_epoch": 3,
                "epochs_run": 5,
                "export_dir": str(run / "export"),
            }
        )
    )
    folder = study_collect.collect_run(
        str(run), study_dir=str(tmp_path / "docs"), data_dir=str(data)
    )
    collected = study.read_run(folder)
    assert collected.image_size == 256 and collected.validation_jaccard == 0.5
    assert collected.config["data_dir"] == "isic2017_256"
    assert collected.config["model_dir"] == "size256"
    assert collected.result["export_dir"] == "size256/export"
    assert os.path.isfile(os.path.join(folder, "holdout", "per_image.csv"))
    text = "".join(open(os.path.join(folder, n)).read() for n in ("flags.json", "result.json"))
    assert str(tmp_path) not in text
    os.remove(run / "evaluation" / "holdout" / "summary.json")
    with pytest.raises(FileNotFoundError, match="holdout/summary.json: missing"):
        study_collect.collect_run(str(run), study_dir=str(tmp_path / "docs2"), data_dir=str(data))


def test_a_final_run_without_held_out_pairs_is_collected_and_tabled_apart(study_dir, tmp_path):
    """A final model (`--select_on=none`) holds nothing out: it is collected without
    held-out files, its selection score (on pairs it trained on) is never shown as
    held-out, and it never pools with the held-out runs of the same settings."""
    runs, data = tmp_path / "runs", tmp_path / "data" / "isic2017_256"
    base = [0.5, 0.6, 0.7, 0.8, 0.9, 0.4]
    run = runs / "final64_seed0"
    write_run(
        runs,
        "final64_seed0",
        image_size=64,
        seed=0,
        jaccards=base,
        epochs=50,
        select_on="none",
        held_out=0.95,
    )
    os.remove(run / "holdout_ids.txt")
    (run / "evaluation" / "validation").mkdir(parents=True)
    for name in ("per_image.csv", "summary.json"):
        (run / "evaluation" / "validation" / name).write_bytes((run / name).read_bytes())
    folder = study_collect.collect_run(str(run), study_dir=study_dir, data_dir=str(data))
    assert not os.path.exists(os.path.join(folder, "holdout_ids.txt"))
    final = study.read_run(folder)
    assert final.selected_on == "none" and final.holdout_ids == ()
    rows = {row["recipe"]: row for row in study_tables.table_rows(study.read_study(study_dir))}
    row = rows["64x64, cosine rate, 50 epochs on every pair, no selection"]
    assert row["runs"] == ["final64_seed0"] and row["held_out_mean"] is None
    assert rows["64x64, cosine rate, at most 50 epochs, patience 20"]["runs"] == [
        "shipped_recipe_seed0",
        "shipped_recipe_seed1",
    ]
    assert "| 64x64, cosine rate, 50 epochs on every pair, no selection | 0 | 0.650 | - |" in (
        study_tables.markdown(study.read_study(study_dir), reference="shipped_recipe_seed0")
    )
    found = {
        (c["first"], c["second"]): c["differs"]
        for c in study_tables.comparisons(
            study.read_study(study_dir), reference="shipped_recipe_seed0"
        )
    }
    assert found[("final64_seed0", "shipped_recipe_seed0")] == ["selection"]


def test_an_ensemble_run_is_collected_with_its_networks_and_tabled_apart(study_dir, tmp_path):
    """A `--members=2` run: its networks' files collected in member_<k>/ (no log of its
    own), its recipe named an ensemble and never pooled with single networks, each
    network's epochs in the table, no held-out score at the input size of its own."""
    runs, data = tmp_path / "runs", tmp_path / "data" / "isic2017_256"
    run = runs / "ensemble64_seed0"
    write_run(
        runs, "ensemble64_seed0", image_size=64, seed=0, jaccards=[0.9] * 6, epochs=50, members=2
    )
    os.remove(run / "training_log.csv")
    (run / "result.json").write_text(json.dumps({"members": [], "epochs_run": 50}))
    (run / "evaluation" / "validation").mkdir(parents=True)
    for name in ("per_image.csv", "summary.json"):
        (run / "evaluation" / "validation" / name).write_bytes((run / name).read_bytes())
    write_holdout_report(str(run / "evaluation" / "holdout"), [0.8, 0.9, 0.7])
    for k, best in ((0, 44), (1, 47)):
        write_run(run, f"member_{k}", image_size=64, seed=k, jaccards=[0.5] * 6, epochs=50)
        (run / f"member_{k}" / "result.json").write_text(
            json.dumps({"selection_jaccard": 0.8, "best_epoch": best, "epochs_run": 50})
        )
    os.remove(run / "member_1" / "training_log.csv")
    with pytest.raises(FileNotFoundError, match="member_1/training_log.csv: missing"):
        study_collect.collect_run(str(run), study_dir=study_dir, data_dir=str(data))
    (run / "member_1" / "training_log.csv").write_text("epoch,val_jaccard\n1,0.5\n")
    folder = study_collect.collect_run(str(run), study_dir=study_dir, data_dir=str(data))
    assert sorted(os.listdir(os.path.join(folder, "member_1"))) == [
        "flags.json",
        "result.json",
        "training_log.csv",
    ]
    ensemble = study.read_run(folder)
    assert [r["best_epoch"] for r in ensemble.member_results] == [44, 47]
    assert ensemble.epochs == "44/50 + 47/50" and ensemble.selection_jaccard is None
    runs_read = study.read_study(study_dir)
    rows = {row["recipe"]: row for row in study_tables.table_rows(runs_read)}
    row = rows["64x64, ensemble of 2 networks, cosine rate, at most 50 epochs, patience 20"]
    assert row["runs"] == ["ensemble64_seed0"] and row["held_out_mean"] is None
    assert row["holdout"] == [pytest.approx(0.8)]
    assert "| 0.900 | - | 0.800 | 44/50 + 47/50 |" in study_tables.markdown(
        runs_read, reference="shipped_recipe_seed0"
    )
    found = {
        (c["first"], c["second"]): c["differs"]
        for c in study_tables.comparisons(runs_read, reference="shipped_recipe_seed0")
    }
    assert found[("ensemble64_seed0", "shipped_recipe_seed0")] == ["networks"]


RUN_STUDY = os.path.join(REPO_ROOT, "docs", "study", "run_study.sh")

CHECK_FLAGS = """
import sys
import train
for line in sys.stdin:
    name, *args = line.split()
    train.flags.FLAGS.unparse_flags()
    train.flags.FLAGS(["train.py", *args])
    config, _ = train.run_config()
    print(name, config.image_size, config.seed, config.members, config.mixed_precision)
"""


def test_every_group_of_the_study_script_gives_train_py_flags_it_takes(tmp_path):
    """Each group of docs/study/run_study.sh, dry-run: every run's flags parse into a
    RunConfig before a long queue starts, and no two runs share a name."""
    with open(RUN_STUDY) as f:
        groups = re.findall(r"^  ([a-z0-9_]+)\)", f.read(), flags=re.MULTILINE)
    assert {"beyond_baseline", "beyond_round1", "beyond_round2", "beyond_round3", "size448"} <= set(
        groups
    )
    lines = []
    for group in groups:
        listed = subprocess.run(
            ["bash", RUN_STUDY, group, str(tmp_path), str(tmp_path / "runs"), REPO_ROOT],
            env=dict(os.environ, RUN_STUDY_DRY_RUN="1"),
            capture_output=True,
            text=True,
        )
        assert listed.returncode == 0 and listed.stdout, (group, listed.stderr)
        lines += listed.stdout.splitlines()
    assert not os.path.exists(tmp_path / "runs")  # a dry run writes nothing
    names = [line.split()[0] for line in lines]
    assert len(names) == len(set(names)), names
    checked = subprocess.run(
        [sys.executable, "-c", CHECK_FLAGS],
        input="\n".join(lines) + "\n",
        cwd=REPO_ROOT,
        env=dict(os.environ, PYTHONPATH=REPO_ROOT),
        capture_output=True,
        text=True,
    )
    assert checked.returncode == 0, checked.stderr[-3000:]
    parsed = {line.split()[0]: line.split()[1:] for line in checked.stdout.splitlines()}
    assert set(parsed) == set(names)
    assert parsed["size448_cosine50"] == ["448", "0", "1", "bfloat16"]
    assert parsed["size96_seed1"] == ["96", "1", "1", "none"]
    assert parsed["cedice_ensemble64_seeds23"] == ["64", "2", "2", "none"]
    assert parsed["dice_ensemble_all64_seed0"] == ["64", "0", "2", "none"]
    assert parsed["cedice_ensemble64_seeds45"] == ["64", "4", "2", "none"]


def test_ingredients_are_judged_by_rule_5_from_the_runs_files(tmp_path):
    """Each arm averaged over its seeds, paired against the two baseline runs averaged:
    kept only at +0.003 or more with the interval above zero; one seed is not judged."""
    base = np.array([0.80, 0.70, 0.90])
    settings = {"image_size": 64, "epochs": 50}

    def run(name, seed, held_out, **recorded):
        folder = write_run(tmp_path, name, seed=seed, jaccards=[0.7] * 6, **settings, **recorded)
        write_holdout_report(os.path.join(folder, "holdout"), held_out)

    run("baseline64_seed0", 0, base)
    run("baseline64_seed1", 1, base + 0.02)
    run("color64_seed0", 0, base + 0.05, color_augment=True)
    run("color64_seed1", 1, base + 0.07, color_augment=True)  # +0.05 on every image
    run("jaccard64_seed0", 0, base + [0.03, -0.03, 0.01], loss="soft_jaccard")
    run("jaccard64_seed1", 1, base + [0.05, -0.01, 0.03], loss="soft_jaccard")
    run("scale64_seed0", 0, base + 0.05, scale_augment=True)  # one seed: not judged
    runs = study.read_study(str(tmp_path))
    rows = {row["differs"][0]: row for row in study_ingredients.ingredient_rows(runs)}
    assert set(rows) == {"colour augmentation", "loss"}
    colour = rows["colour augmentation"]
    assert colour["runs"] == ["color64_seed0", "color64_seed1"] and colour["kept"]
    assert colour["comparison"]["mean_difference"] == pytest.approx(0.05)
    assert colour["comparison"]["interval"] == pytest.approx([0.05, 0.05])
    loss = rows["loss"]  # +0.03, -0.03, +0.01: the interval reaches below zero
    assert loss["comparison"]["mean_difference"] == pytest.approx(0.01 / 3)
    assert loss["comparison"]["interval"][0] < 0 and not loss["kept"]
    table = study_tables.markdown(runs, reference="baseline64_seed0")
    assert "| colour augmentation | +0.0500 (+0.0500 to +0.0500) | yes |" in table
    assert "| loss | +0.0033 (" in table and ") | no |" in table
    del runs[0]  # without the baseline, nothing is judged
    assert study_ingredients.ingredient_rows(runs) == []


def test_ingredients_onto_the_ensemble_are_judged_by_rule_6(tmp_path):
    """Two draws of the paper's recipe as an ensemble of two networks judge the ensemble
    by rule 5 ("networks") and are rule 6's baseline for an ingredient's ensembles;
    single networks are never an arm of rule 6, nor an ensemble of another loss one of
    rule 5's."""
    base = np.array([0.80, 0.70, 0.90])
    settings = {"image_size": 64, "epochs": 50}

    def run(name, seed, held_out, members=1, **recorded):
        folder = write_run(
            tmp_path, name, seed=seed, jaccards=[0.7] * 6, members=members, **settings, **recorded
        )
        write_holdout_report(os.path.join(folder, "holdout"), held_out)
        for k in range(members if members > 1 else 0):
            write_run(Path(folder), f"member_{k}", image_size=64, seed=seed + k, jaccards=[0.5] * 6)

    run("baseline64_seed0", 0, base)
    run("baseline64_seed1", 1, base + 0.02)
    run("ensemble64_seeds01", 0, base + 0.01, members=2)
    run("ensemble64_seeds23", 2, base + 0.03, members=2)
    run("color64_seed0", 0, base + 0.05, color_augment=True)
    run("color64_seed1", 1, base + 0.05, color_augment=True)
    run("color_ensemble64_seeds01", 0, base + 0.04, members=2, color_augment=True)
    run("color_ensemble64_seeds23", 2, base + 0.04, members=2, color_augment=True)
    runs = study.read_study(str(tmp_path))
    rule5 = {row["differs"][0]: row for row in study_ingredients.ingredient_rows(runs)}
    assert set(rule5) == {"colour augmentation", "networks"}
    assert rule5["networks"]["runs"] == ["ensemble64_seeds01", "ensemble64_seeds23"]
    assert rule5["networks"]["comparison"]["mean_difference"] == pytest.approx(0.01)
    rule6 = study_ingredients.ingredient_rows(
        runs, baseline=study_ingredients.ENSEMBLE_BASELINE, same=("networks",)
    )
    assert [row["runs"] for row in rule6] == [
        ["color_ensemble64_seeds01", "color_ensemble64_seeds23"]
    ]
    assert rule6[0]["comparison"]["mean_difference"] == pytest.approx(0.02) and rule6[0]["kept"]
    table = study_tables.markdown(runs, reference="baseline64_seed0")
    assert "| networks | +0.0100 (+0.0100 to +0.0100) | yes |" in table
    assert table.index("rule 6") < table.rindex("| colour augmentation | +0.0200 (")


def test_an_interval_end_near_zero_keeps_its_sign_in_the_table():
    """cedice64's lower end, +0.0000144, decides "kept": the table must not print it as zero."""
    assert study_ingredients._bound(1.4377e-05) == "+0.00001"
    assert study_ingredients._bound(-2e-05) == "-0.00002"
    assert study_ingredients._bound(0.012934) == "+0.0129"
    assert study_ingredients._bound(0.0) == "+0.0000"


def test_a_run_collected_but_without_its_folder_is_not_trained_again(tmp_path):
    """run_study.sh on a machine that lost the run folders: the runs whose files are
    collected under DOCS_DIR are skipped and named in the log; none is started."""
    worktree, data, runs, docs = (tmp_path / d for d in ("worktree", "data", "runs", "docs"))
    worktree.mkdir()
    data.mkdir()
    git = ["git", "-C", str(worktree), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "commit", "-q", "--allow-empty", "-m", "pinned"], check=True)
    names = ["size96_seed0", "context96_seed0", "size96_seed1", "context96_seed1"]
    for name in names:
        (docs / name).mkdir(parents=True)
        (docs / name / "result.json").write_text("{}")
    done = subprocess.run(
        ["bash", RUN_STUDY, "beyond_round2", str(data), str(runs), str(worktree), str(docs)],
        capture_output=True,
        text=True,
    )
    log = (runs / "queue.log").read_text()
    assert done.returncode == 0, (done.stderr, log)
    assert [line.split()[2].rstrip(":") for line in log.splitlines() if " skip " in line] == names
    assert "start" not in log and "group beyond_round2 done" in log
    assert sorted(os.listdir(runs)) == ["beyond_round2.commit", "queue.log"]
