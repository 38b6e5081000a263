import glob
import os

import cv2
import numpy as np
import pytest

from lesionseg_tf import datasets, layouts, synthetic
from tests.conftest import run_script


def test_tree_has_the_isic_layout_and_exact_masks(tiny_isic):
    for split, (image_folder, mask_folder) in layouts.ISIC2017.folders.items():
        image_dir = os.path.join(tiny_isic, image_folder)
        mask_dir = os.path.join(tiny_isic, mask_folder)
        assert os.path.isfile(os.path.join(image_dir, f"{image_folder}_metadata.csv"))
        for example in datasets.find_split(tiny_isic, split=split):
            image = cv2.imread(example.image_path, cv2.IMREAD_UNCHANGED)
            mask = cv2.imread(example.mask_path, cv2.IMREAD_UNCHANGED)
            assert image.ndim == 3 and image.shape[2] == 3
            assert mask.dtype == np.uint8 and mask.ndim == 2
            assert mask.shape == image.shape[:2]
            assert set(np.unique(mask)) == {0, 255}
            assert os.path.isfile(os.path.join(image_dir, f"{example.image_id}_superpixels.png"))
            assert os.path.dirname(example.mask_path) == mask_dir


def test_lesion_is_darker_than_skin():
    image, mask = synthetic.render_example(np.random.default_rng(3), height=120, width=160)
    grey = image.astype(float).mean(-1)
    centre = grey[mask > 0].mean()
    ring = cv2.dilate(mask, np.ones((15, 15), np.uint8)) - cv2.dilate(
        mask, np.ones((5, 5), np.uint8)
    )
    assert centre < grey[ring > 0].mean() - 20


def test_same_seed_same_data(tmp_path):
    for name in ("a", "b"):
        synthetic.write_synthetic_dataset(
            str(tmp_path / name),
            num_training=2,
            num_validation=1,
            num_test=1,
            seed=7,
            widths=(40, 60),
        )
    files = sorted(glob.glob(str(tmp_path / "a" / "*" / "*")))
    assert len(files) == 2 * 4 + 3 + 4  # images + superpixels, csvs, masks
    for f in files:
        with (
            open(f, "rb") as a,
            open(f.replace(f"{os.sep}a{os.sep}", f"{os.sep}b{os.sep}"), "rb") as b,
        ):
            assert a.read() == b.read(), f


@pytest.mark.slow
def test_command_line_default_set(tmp_path):
    out = str(tmp_path / "synthetic")
    result = run_script("-m tools.synthetic", f"--out_dir={out}")
    assert result.returncode == 0, result.stderr
    sizes = []
    for split, minimum in (("training", 16), ("validation", 8), ("test", 8)):
        examples = datasets.find_split(out, split=split)
        assert len(examples) >= minimum
        sizes += [cv2.imread(e.image_path).shape[:2] for e in examples]
    widths = [w for _, w in sizes]
    assert max(widths) > 1000 and len(set(sizes)) > len(sizes) // 2
    assert len({round(w / h, 2) for h, w in sizes}) >= 3  # several aspect ratios
