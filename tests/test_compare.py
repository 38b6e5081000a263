"""`python -m tools.compare`: two reports of the same images, compared as a whole and
within groups of lesion size."""

import csv

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
