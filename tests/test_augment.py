import numpy as np
import tensorflow as tf

from lesionseg_tf import augment


def numpy_dihedral_group(x):
    """The 8 rotations/flips of a 2-D array, by numpy."""
    rotations = [np.rot90(x, k) for k in range(4)]
    return rotations + [np.fliplr(r) for r in rotations]


def test_mask_copy_as_image_stays_aligned():
    rng = np.random.default_rng(0)
    masks = (rng.random((32, 16, 16, 1)) > 0.5).astype(np.uint8) * 255
    images = np.repeat(masks.astype(np.float32), 3, axis=-1)
    out_images, out_masks = augment.random_dihedral(images, masks=masks, seed=[3, 7])
    assert out_images.dtype == tf.float32 and out_masks.dtype == tf.uint8
    for channel in range(3):
        np.testing.assert_array_equal(
            out_images.numpy()[..., channel], out_masks.numpy()[..., 0].astype(np.float32)
        )
    # And something was actually transformed.
    assert not np.array_equal(out_masks.numpy(), masks)


def test_all_eight_transforms_occur_and_only_those():
    base = np.arange(16, dtype=np.int32).reshape(4, 4)  # no symmetry: 8 distinct images
    group = numpy_dihedral_group(base)
    assert len({g.tobytes() for g in group}) == 8
    batch = np.repeat(base[None, :, :, None], 256, axis=0)
    images, masks = augment.random_dihedral(batch, masks=batch.copy(), seed=[0, 1])
    seen = set()
    for image, mask in zip(images.numpy()[..., 0], masks.numpy()[..., 0]):
        np.testing.assert_array_equal(image, mask)
        matches = [i for i, g in enumerate(group) if np.array_equal(image, g)]
        assert len(matches) == 1
        seen.add(matches[0])
    assert seen == set(range(8))


def test_draws_are_roughly_uniform_and_seeded():
    transforms = augment.draw_transforms(8000, seed=[5, 0]).numpy()
    codes = transforms @ np.array([4, 2, 1])
    counts = np.bincount(codes, minlength=8)
    assert counts.min() > 800 and counts.max() < 1200  # 1000 expected each
    np.testing.assert_array_equal(augment.draw_transforms(64, seed=[5, 0]).numpy(), transforms[:64])
    assert not np.array_equal(augment.draw_transforms(64, seed=[5, 1]).numpy(), transforms[:64])


def standardized(images):
    return tf.image.per_image_standardization(tf.constant(images, tf.float32)).numpy()


def test_color_changes_each_image_its_own_way_and_keeps_it_standardized():
    rng = np.random.default_rng(1)
    images = standardized(np.repeat(rng.integers(0, 256, (1, 16, 16, 3)), 6, axis=0))
    out = augment.random_color(images, seed=[2, 9]).numpy()
    assert out.shape == images.shape and out.dtype == np.float32
    np.testing.assert_allclose(out.mean(axis=(1, 2, 3)), 0, atol=1e-4)
    np.testing.assert_allclose(out.std(axis=(1, 2, 3)), 1, atol=1e-2)
    # The six copies of one photograph come out six different ways, each changed.
    assert len({np.round(o, 3).tobytes() for o in out}) == 6
    assert all(np.abs(o - images[0]).mean() > 1e-3 for o in out)
    np.testing.assert_array_equal(augment.random_color(images, seed=[2, 9]).numpy(), out)
    assert not np.array_equal(augment.random_color(images, seed=[2, 10]).numpy(), out)


def test_color_with_neutral_ranges_gives_the_image_back(monkeypatch):
    """Rescaling to [0, 1] and standardizing again is exact: what changes an image is
    the draws alone."""
    monkeypatch.setattr(augment, "BRIGHTNESS_DELTA", 0.0)
    monkeypatch.setattr(augment, "CONTRAST_RANGE", (1.0, 1.0 + 1e-9))
    monkeypatch.setattr(augment, "SATURATION_RANGE", (1.0, 1.0 + 1e-9))
    monkeypatch.setattr(augment, "HUE_DELTA", 0.0)
    rng = np.random.default_rng(2)
    images = standardized(rng.integers(0, 256, (4, 8, 8, 3)))
    np.testing.assert_allclose(augment.random_color(images, seed=[0, 1]).numpy(), images, atol=2e-3)


def test_color_keeps_a_grey_image_grey_apart_from_brightness_and_contrast():
    """Saturation and hue act on the balance of the channels: a grey image has none,
    so its three channels stay equal."""
    rng = np.random.default_rng(3)
    grey = np.repeat(rng.integers(0, 256, (4, 8, 8, 1)), 3, axis=-1)
    out = augment.random_color(standardized(grey), seed=[4, 4]).numpy()
    np.testing.assert_allclose(out[..., 0], out[..., 1], atol=1e-4)
    np.testing.assert_allclose(out[..., 1], out[..., 2], atol=1e-4)


def lesion_batch(count=64, side=32):
    """Square lesions of several sizes and places, none touching the border."""
    rng = np.random.default_rng(5)
    masks = np.zeros((count, side, side, 1), np.int32)
    for k in range(count):
        extent = rng.integers(4, side // 2)
        top, left = rng.integers(1, side - extent - 1, size=2)
        masks[k, top : top + extent, left : left + extent] = 1
    return masks


def test_scale_keeps_image_and_mask_aligned_and_the_lesion_whole():
    masks = lesion_batch()
    images = standardized(np.repeat(masks * 255, 3, axis=-1))
    out_images, out_masks = augment.random_scale(images, masks=masks, seed=[1, 2])
    assert out_images.dtype == tf.float32 and out_masks.dtype == tf.int32
    out_masks = out_masks.numpy()[..., 0]
    # The mask copy, resized bilinearly, still says lesion where the mask does.
    agreement = ((out_images.numpy()[..., 0] > 0) == (out_masks > 0)).mean()
    assert agreement > 0.97, agreement
    for after in out_masks:
        # The whole lesion stays in view: each square lesion is still a square, where
        # a border cutting it would leave a rectangle.
        rows, columns = np.flatnonzero(after.any(axis=1)), np.flatnonzero(after.any(axis=0))
        height, width = rows[-1] - rows[0] + 1, columns[-1] - columns[0] + 1
        assert abs(height - width) <= 1 and after.sum() >= 0.8 * height * width
    # Zoomed both ways: lesion areas grow and shrink by up to 1.5 squared.
    ratios = out_masks.sum(axis=(1, 2)) / masks.sum(axis=(1, 2, 3))
    assert ratios.min() < 0.75 and ratios.max() > 1.4, (ratios.min(), ratios.max())
    again = augment.random_scale(images, masks=masks, seed=[1, 2])[1].numpy()[..., 0]
    np.testing.assert_array_equal(again, out_masks)


def test_zooming_out_mirrors_the_surroundings(monkeypatch):
    """Where the region reaches past the border, the mirrored image fills it, so a
    pixel pattern at the edge appears again outside it, never zeros."""
    monkeypatch.setattr(augment, "SCALE_RANGE", (1.5, 1.5 + 1e-6))
    rng = np.random.default_rng(6)
    images = standardized(rng.integers(0, 256, (8, 32, 32, 3)))
    masks = np.zeros((8, 32, 32, 1), np.int32)
    out_images, out_masks = augment.random_scale(images, masks=masks, seed=[0, 3])
    assert not out_masks.numpy().any()
    # No flat band of padding: every output row varies.
    assert out_images.numpy().std(axis=(2, 3)).min() > 0.1
