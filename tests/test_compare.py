"""`python -m tools.compare`: two reports of the same images, compared as a whole and
within groups of lesion size."""

import csv
import dataclasses
import json

from lesionseg_tf import report_comparison
from lesionseg_tf.config import RunConfig
from lesionseg_tf.run_dir import RunDir
from tests.conftest import run_script

COLUMNS = ("image_id", "height", "width", "tp", "fp", "tn", "fn", "jaccard")


def write_report(path, rows):
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(COLUMNS)
        writer.writerows(rows)
    return str(path)


def reports(tmp_path, *, second_lesions=None):
    """Six 10x10 images with lesions of 2 to 60 pixels; the first model scores 0.2
    lower than the second on the three smallest, the same on the three largest."""
    lesions = [2, 4, 6, 20, 40, 60]
    second_lesions = second_lesions or lesions
    first = [
        (f"ISIC_{k}", 10, 10, n, 0, 100 - n, 0, 0.5 if n < 10 else 0.9)
        for k, n in enumerate(lesions)
    ]
    second = [
        (f"ISIC_{k}", 10, 10, n, 0, 100 - n, 0, 0.7 if lesion < 10 else 0.9)
        for k, (n, lesion) in enumerate(zip(second_lesions, lesions))
    ]
    return (
        write_report(tmp_path / "first.csv", first),
        write_report(tmp_path / "second.csv", second),
    )


def test_the_difference_is_placed_in_its_lesion_size_group(tmp_path):
    first, second = reports(tmp_path)
    result = run_script(
        "-m tools.compare", first, second, "--by_lesion_area=2", "--bootstrap=200", timeout=120
    )
    assert result.returncode == 0, result.stderr[-2000:]
    lines = result.stdout.splitlines()
    overall = lines.index(next(line for line in lines if "per-image jaccard, 6 images:" in line))
    assert "mean difference   -0.1000" in lines[overall + 1]
    small = lines.index(
        "group 1 of 2 by lesion area: lesions covering 2.0% to 6.0% of the photograph, 3 images:"
    )
    assert "mean difference   -0.2000" in lines[small + 1]
    assert "first better on 0, worse on 3, equal on 0 images" in lines[small + 3]
    large = lines.index(
        "group 2 of 2 by lesion area: lesions covering 20.0% to 60.0% of the photograph, 3 images:"
    )
    assert "mean difference   +0.0000" in lines[large + 1]


def test_reports_of_other_ground_truth_are_refused(tmp_path):
    first, second = reports(tmp_path, second_lesions=[2, 4, 6, 20, 40, 61])
    result = run_script("-m tools.compare", first, second, "--by_lesion_area=2", timeout=120)
    assert result.returncode != 0
    assert "ground-truth lesions differ on 1 images (ISIC_5)" in result.stderr
    assert not result.stdout  # nothing compared
    too_many = run_script("-m tools.compare", *reports(tmp_path), "--by_lesion_area=7", timeout=120)
    assert too_many.returncode != 0 and "cannot split 6 images into 7 groups" in too_many.stderr


def test_seeds_of_an_arm_are_averaged_image_by_image(tmp_path):
    first, second = reports(tmp_path)
    rows = [
        (f"ISIC_{k}", 10, 10, n, 0, 100 - n, 0, 0.3 if n < 10 else 0.9)
        for k, n in enumerate([2, 4, 6, 20, 40, 60])
    ]
    other_seed = write_report(tmp_path / "first_seed1.csv", rows)
    # The first arm averages 0.5 and 0.3 on the three smallest: 0.4, 0.3 below the second.
    result = run_script(
        "-m tools.compare", f"{first},{other_seed}", second, "--bootstrap=200", timeout=120
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "mean difference   -0.1500" in result.stdout
    stray = write_report(tmp_path / "stray.csv", rows[:5])
    refused = run_script("-m tools.compare", f"{first},{stray}", second, timeout=120)
    assert refused.returncode != 0 and "stray.csv scores other images than" in refused.stderr


def scored_run(folder, config, *, report_dir, summary=None):
    """A run folder with its `flags.json` and a report (`per_image.csv`, and
    `summary.json` where given) in `report_dir` below it."""
    RunDir(str(folder)).write_config(config)
    target = folder / report_dir
    target.mkdir(parents=True, exist_ok=True)
    if summary is not None:
        (target / "summary.json").write_text(json.dumps({"config": summary}))
    return write_report(target / "per_image.csv", [("ISIC_0", 10, 10, 5, 0, 95, 0, 0.5)])


def test_the_run_settings_of_each_report_are_found_where_reports_lie(tmp_path):
    base = RunConfig(data_dir="/data/a", image_size=256, seed=0)
    # A run collected with its reports (docs/study/): beside it, and one folder up.
    study = scored_run(tmp_path / "study", base, report_dir=".")
    holdout = scored_run(tmp_path / "study", base, report_dir="holdout")
    # evaluate.py's own folder, its summary naming the export; and without a summary.
    run = tmp_path / "runs" / "r"
    named = scored_run(
        run, base, report_dir="evaluation/ISIC-validation", summary={"model": str(run / "export")}
    )
    tflite = scored_run(run, base, report_dir="evaluation/model/ISIC-validation")
    # A shipped model's report lies outside its folder: found through the summary only.
    shipped = tmp_path / "pretrained" / "m"
    RunDir(str(shipped)).write_config(dataclasses.replace(base, image_size=64))
    elsewhere = tmp_path / "runs" / "evaluation" / "m" / "ISIC-validation"
    elsewhere.mkdir(parents=True)
    (elsewhere / "summary.json").write_text(
        json.dumps({"config": {"model": str(shipped / "export")}})
    )
    outside = write_report(elsewhere / "per_image.csv", [("ISIC_0", 10, 10, 5, 0, 95, 0, 0.5)])
    for path in (study, holdout, named, tflite):
        assert report_comparison.training_settings(path)["image_size"] == 256, path
    assert report_comparison.training_settings(outside)["image_size"] == 64
    # A predictions folder's report: no model known, whatever flags.json lies above.
    masks = scored_run(
        tmp_path / "subs", base, report_dir="pred_evaluation", summary={"pred_dir": "pred"}
    )
    assert report_comparison.training_settings(masks) is None
    assert report_comparison.settings_line(masks, study) is None


def test_the_settings_the_arms_were_trained_with_differently_are_named(tmp_path):
    def arm(name, **changes):
        config = RunConfig(data_dir=f"/data/{name}", **{"image_size": 64, **changes})
        return scored_run(tmp_path / name, config, report_dir=".")

    paper, paper1 = arm("paper"), arm("paper1", seed=1)
    bf16 = arm("bf16", image_size=448, mixed_precision="bfloat16")
    dice, dice1 = (
        arm("dice", loss="cross_entropy_dice"),
        arm("dice1", loss="cross_entropy_dice", seed=1),
    )
    line = report_comparison.settings_line(bf16, paper)
    assert line == (
        "run settings that differ (each run's flags.json): image_size 448 vs 64; "
        "mixed_precision bfloat16 vs none"
    )
    # Seeds of one recipe in each arm: the same seeds on both sides are no difference.
    assert report_comparison.settings_line(f"{dice},{dice1}", f"{paper},{paper1}") == (
        "run settings that differ (each run's flags.json): loss cross_entropy_dice vs cross_entropy"
    )
    assert report_comparison.settings_line(dice, dice1).endswith("seed 0 vs 1; holdout_seed 0 vs 1")
    assert report_comparison.settings_line(paper, paper) == (
        "run settings (each run's flags.json): the same"
    )
    result = run_script("-m tools.compare", bf16, paper, "--bootstrap=50", timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.splitlines()[0] == line
