"""Synthetic dermoscopy-like data written in the exact layout of a dataset this
project reads: ISIC 2016, 2017 (the default) or 2018 Task 1, PH2, or plain
`images/` + `masks/` folders.

For the tests and the no-download quick start. Each photograph has a skin-toned
background under uneven illumination, sometimes the dark circular vignette of
a dermatoscope, one pigmented lesion with an irregular border and colour
variegation, hairs crossing it and sometimes an ink marker. The mask is the
lesion's exact 0/255 outline; hairs over the lesion count as lesion, as in the
ISIC ground truth. The folders also get the decoys the real archives hold (ISIC
2017's superpixel PNGs and metadata CSV, ISIC 2018's LICENSE.txt and
ATTRIBUTION.txt, PH2's `_roi` folders and text file).

    python -m tools.synthetic --out_dir=synthetic_isic
    python -m tools.synthetic --out_dir=synthetic_ph2 --layout=ph2
"""

import csv
import os

import cv2
import numpy as np
from PIL import Image

from lesionseg_tf import datasets, layouts

# Width ranges of the generated photographs; heights follow from the aspect ratio.
DEFAULT_WIDTHS = (480, 1280)
ASPECT_RATIOS = (4 / 3, 3 / 2, 1.0, 5 / 4)
SKIN_TONES = np.array([[228, 186, 160], [214, 160, 130], [238, 200, 180], [190, 135, 105]], float)
PIGMENTS = np.array(
    [[92, 58, 42], [140, 92, 66], [60, 38, 34], [120, 70, 70], [170, 120, 95]], float
)
MARKER_COLOURS = np.array([[60, 70, 170], [110, 50, 140], [40, 120, 90]], float)
FIRST_ID = 9_000_000  # keeps synthetic ids apart from the real ones (ISIC_00xxxxx)


def _smooth_field(rng, height, width, cells=4):
    """A smooth random field in [-1, 1]: a coarse grid of noise upsampled bicubically."""
    coarse = rng.uniform(-1.0, 1.0, (cells, cells)).astype(np.float32)
    return np.clip(cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC), -1.0, 1.0)


def _lesion_outline(rng, height, width):
    """Irregular closed border: a circle whose radius carries random low harmonics."""
    short = min(height, width)
    radius = rng.uniform(0.16, 0.34) * short
    cy = height / 2 + rng.uniform(-0.15, 0.15) * height
    cx = width / 2 + rng.uniform(-0.15, 0.15) * width
    theta = np.linspace(0, 2 * np.pi, 360, endpoint=False)
    r = np.ones_like(theta)
    for k in range(2, 8):
        r += rng.uniform(0.0, 0.18 / k**0.7) * np.cos(k * theta + rng.uniform(0, 2 * np.pi))
    r *= rng.uniform(0.8, 1.2, 1) * radius
    aspect = rng.uniform(0.7, 1.0)
    angle = rng.uniform(0, np.pi)
    dx, dy = r * np.cos(theta), r * np.sin(theta) * aspect
    x = cx + dx * np.cos(angle) - dy * np.sin(angle)
    y = cy + dx * np.sin(angle) + dy * np.cos(angle)
    points = np.stack([np.clip(x, 0, width - 1), np.clip(y, 0, height - 1)], axis=1)
    return np.round(points).astype(np.int32), radius


def _draw_hairs(rng, image, count):
    height, width = image.shape[:2]
    thickness = max(1, round(min(height, width) / 400))
    for _ in range(count):
        start, middle, end = rng.uniform([0, 0], [width, height], (3, 2))
        t = np.linspace(0, 1, 60)[:, None]
        curve = (1 - t) ** 2 * start + 2 * t * (1 - t) * middle + t**2 * end
        colour = tuple(float(c) for c in rng.uniform(15, 60) * np.array([1.0, 0.85, 0.75]))
        cv2.polylines(
            image,
            [np.round(curve).astype(np.int32)],
            False,
            colour,
            thickness + int(rng.integers(0, 2)),
            cv2.LINE_AA,
        )


def render_example(rng, *, height, width):
    """Draws one synthetic dermoscopy photograph and its lesion mask.

    Returns:
      `(image, mask)`: `[height, width, 3]` uint8 RGB and `[height, width]` uint8
      in {0, 255}.
    """
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    skin = SKIN_TONES[rng.integers(len(SKIN_TONES))] * rng.uniform(0.92, 1.05, 3)
    light = 1.0 + 0.12 * _smooth_field(rng, height, width, 3)
    gx, gy = rng.uniform(-0.15, 0.15, 2)
    light += gx * (xx / width - 0.5) + gy * (yy / height - 0.5)
    image = skin[None, None, :] * light[..., None]
    image += 4.0 * _smooth_field(rng, height, width, 24)[..., None]  # skin texture

    outline, radius = _lesion_outline(rng, height, width)
    mask = np.zeros((height, width), np.uint8)
    cv2.fillPoly(mask, [outline], 255)
    dark, light_pigment = PIGMENTS[rng.choice(len(PIGMENTS), 2, replace=False)]
    blend = 0.5 + 0.5 * _smooth_field(rng, height, width, 6)
    pigment = dark * blend[..., None] + light_pigment * (1 - blend[..., None])
    sigma = max(1.0, 0.04 * radius)  # soft lesion edge in the photograph only
    alpha = cv2.GaussianBlur(mask.astype(np.float32) / 255.0, (0, 0), sigma)
    alpha *= rng.uniform(0.75, 0.95)
    image = image * (1 - alpha[..., None]) + pigment * alpha[..., None]

    if rng.random() < 0.3:  # ink marker beside the lesion
        colour = MARKER_COLOURS[rng.integers(len(MARKER_COLOURS))]
        centre = (int(rng.uniform(0.05, 0.25) * width), int(rng.uniform(0.05, 0.95) * height))
        axes = (max(2, int(0.03 * width)), max(2, int(0.015 * height)))
        cv2.ellipse(
            image,
            centre,
            axes,
            float(rng.uniform(0, 180)),
            0,
            360,
            tuple(float(c) for c in colour),
            -1,
            cv2.LINE_AA,
        )
    _draw_hairs(rng, image, int(rng.integers(0, 9)))
    if rng.random() < 0.5:  # dermatoscope vignette
        dist = np.hypot((xx - width / 2) / (width / 2), (yy - height / 2) / (height / 2))
        edge = rng.uniform(0.95, 1.25)
        image *= np.clip((edge - dist) / 0.08, 0.05, 1.0)[..., None]
    image += rng.normal(0, 2.0, image.shape)
    return np.clip(np.round(image), 0, 255).astype(np.uint8), mask


def _superpixels(height, width):
    """A decoy like ISIC's superpixel files: cell labels packed into RGB."""
    labels = (np.arange(height)[:, None] // 32) * 1000 + np.arange(width)[None, :] // 32
    return np.stack([labels & 255, (labels >> 8) & 255, (labels >> 16) & 255], -1).astype(np.uint8)


def _write(path, array):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    if not cv2.imwrite(path, array):
        raise OSError(f"could not write {path}")


def _draw(rng, widths):
    width = int(rng.integers(widths[0], widths[1] + 1))
    height = max(16, round(width / ASPECT_RATIOS[rng.integers(len(ASPECT_RATIOS))]))
    if rng.random() < 0.3:  # some portrait photographs
        height, width = width, height
    return render_example(rng, height=height, width=width)


def _write_isic(out_dir, layout, counts, rng, widths):
    next_id = FIRST_ID
    written = {}
    for split, count in counts.items():
        if split not in layout.folders:
            continue
        image_dir, mask_dir = (os.path.join(out_dir, name) for name in layout.folders[split])
        os.makedirs(image_dir, exist_ok=True)
        os.makedirs(mask_dir, exist_ok=True)
        rows = []
        for _ in range(count):
            image_id = f"ISIC_{next_id:07d}"
            next_id += 1
            image, mask = _draw(rng, widths)
            _write(os.path.join(image_dir, f"{image_id}.jpg"), image[..., ::-1])
            _write(os.path.join(mask_dir, f"{image_id}{layout.mask_suffix}.png"), mask)
            if layout.name == "isic2017":
                _write(
                    os.path.join(image_dir, f"{image_id}_superpixels.png"),
                    _superpixels(*mask.shape),
                )
            rows.append((image_id, int(rng.integers(20, 85)), rng.choice(["male", "female"])))
        if layout.name == "isic2017":
            with open(
                os.path.join(image_dir, f"{layout.folders[split][0]}_metadata.csv"), "w", newline=""
            ) as f:
                writer = csv.writer(f)
                writer.writerow(["image_id", "age_approximate", "sex"])
                writer.writerows(rows)
        elif layout.name == "isic2018":
            for name in ("LICENSE.txt", "ATTRIBUTION.txt"):
                with open(os.path.join(image_dir, name), "w") as f:
                    f.write("synthetic images, no licence needed\n")
        written[split] = count
    return written


def _write_ph2(out_dir, total, rng, widths):
    root = os.path.join(out_dir, layouts.Ph2Layout.FOLDER)
    for number in range(1, total + 1):
        case = f"IMD{number:03d}"
        image, mask = _draw(rng, widths)
        _write(
            os.path.join(root, case, f"{case}_Dermoscopic_Image", f"{case}.bmp"), image[..., ::-1]
        )
        # Binary masks: 1-bit BMPs (which read as 0/255) and 8-bit ones.
        mask_path = os.path.join(root, case, f"{case}_lesion", f"{case}_lesion.bmp")
        os.makedirs(os.path.dirname(mask_path), exist_ok=True)
        Image.fromarray(mask).convert("1" if number % 2 else "L").save(mask_path)
        _write(
            os.path.join(root, case, f"{case}_roi", f"{case}_R1_Label4.bmp"), 255 - mask
        )  # a decoy: region-of-interest masks are not lesion masks
    with open(os.path.join(out_dir, "PH2_dataset.txt"), "w") as f:
        f.write("synthetic PH2-layout data\n")
    return {datasets.ALL: total}


def _write_folders(out_dir, total, rng, widths):
    for number in range(total):
        name = f"clinic photo {number:03d}"  # a clinic's own names, spaces and all
        image, mask = _draw(rng, widths)
        extension = ".png" if number % 3 == 2 else ".jpg"
        _write(os.path.join(out_dir, "images", name + extension), image[..., ::-1])
        _write(os.path.join(out_dir, "masks", name + ".png"), mask)
    return {datasets.ALL: total}


def write_synthetic_dataset(
    out_dir,
    *,
    layout="isic2017",
    num_training=16,
    num_validation=8,
    num_test=8,
    seed=0,
    widths=DEFAULT_WIDTHS,
):
    """Writes a synthetic dataset in the folder layout of a real one.

    Args:
      out_dir: created if missing; existing files of the same names are replaced.
      layout: one of `datasets.LAYOUT_NAMES`. ISIC 2016 has no validation split;
        PH2 and the folders have no splits and get all the pairs.
      num_training, num_validation, num_test: image/mask pairs per split.
      seed: everything drawn depends on it alone.
      widths: `(min, max)` image width in pixels.

    Returns:
      `{split: number of pairs written}`.
    """
    if layout not in datasets.LAYOUT_NAMES:
        raise ValueError(
            f"unknown layout {layout!r}; choose one of {', '.join(datasets.LAYOUT_NAMES)}"
        )
    rng = np.random.default_rng(seed)
    counts = {"training": num_training, "validation": num_validation, "test": num_test}
    if layout == "ph2":
        return _write_ph2(out_dir, sum(counts.values()), rng, widths)
    if layout == "folders":
        return _write_folders(out_dir, sum(counts.values()), rng, widths)
    return _write_isic(out_dir, datasets.layout_named(layout), counts, rng, widths)


def write_if_missing(data_dir, *, seed=0):
    """The quick start's dataset (train.py --generate_synthetic): 64 training, 16
    validation and 16 test pairs in the ISIC 2017 layout, written to `data_dir`
    where it does not exist. Returns whether it was written."""
    if os.path.exists(data_dir):
        return False
    write_synthetic_dataset(data_dir, num_training=64, num_validation=16, num_test=16, seed=seed)
    return True
