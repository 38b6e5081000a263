"""The ISIC 2017 pairs on disk and the tf.data pipeline that reads them (section 3.2)."""

import os
import shutil

import cv2
import numpy as np
import pytest
import tensorflow as tf

from lesionseg_tf import datasets, images, layouts, pipeline, synthetic


def test_finds_exactly_the_pairs(tiny_isic):
    examples = datasets.find_split(tiny_isic, split="training")
    image_dir = os.path.join(tiny_isic, "ISIC-2017_Training_Data")
    # The folder also holds superpixel PNGs and a metadata CSV, which are not examples.
    assert any(n.endswith("_superpixels.png") for n in os.listdir(image_dir))
    assert any(n.endswith("_metadata.csv") for n in os.listdir(image_dir))
    expected = sorted(n[:-4] for n in os.listdir(image_dir) if n.endswith(".jpg"))
    assert [e.image_id for e in examples] == expected and len(expected) == 8
    for e in examples:
        assert e.image_path == os.path.join(image_dir, e.image_id + ".jpg")
        assert os.path.basename(e.mask_path) == e.image_id + "_segmentation.png"
    assert len(datasets.find_split(tiny_isic, split="validation")) == 4
    assert len(datasets.find_split(tiny_isic, split="test")) == 4


def test_holdout_split_is_a_seeded_partition():
    examples = [datasets.Example(f"ISIC_{i:07d}", f"{i}.jpg", f"{i}.png") for i in range(200)]
    train, held = datasets.split_holdout(examples[::-1], fraction=0.1, seed=5)
    assert len(held) == 20 and len(train) == 180
    assert sorted(train + held, key=lambda e: e.image_id) == examples
    assert [e.image_id for e in held] == sorted(e.image_id for e in held)
    # The same seed draws the same pairs whatever the input order; another seed others.
    assert datasets.split_holdout(examples, fraction=0.1, seed=5)[1] == held
    assert datasets.split_holdout(examples, fraction=0.1, seed=6)[1] != held
    with pytest.raises(ValueError, match="between 0 and 1"):
        datasets.split_holdout(examples, fraction=1.0, seed=0)
    with pytest.raises(datasets.DatasetError, match="cannot spare"):
        datasets.split_holdout(examples[:1], fraction=0.5, seed=0)


@pytest.fixture
def isic_copy(tiny_isic, tmp_path):
    copy = str(tmp_path / "isic")
    shutil.copytree(tiny_isic, copy)
    return copy


def test_accepts_the_2016_mask_spelling(isic_copy):
    mask_dir = os.path.join(isic_copy, "ISIC-2017_Validation_Part1_GroundTruth")
    name = sorted(os.listdir(mask_dir))[0]
    os.rename(
        os.path.join(mask_dir, name),
        os.path.join(mask_dir, name.replace("_segmentation", "_Segmentation")),
    )
    assert len(datasets.find_split(isic_copy, split="validation")) == 4


def test_image_without_mask_is_named(isic_copy):
    mask_dir = os.path.join(isic_copy, "ISIC-2017_Training_Part1_GroundTruth")
    victim = sorted(os.listdir(mask_dir))[2]
    os.remove(os.path.join(mask_dir, victim))
    with pytest.raises(datasets.DatasetError) as error:
        datasets.find_split(isic_copy, split="training")
    message = str(error.value)
    assert victim.replace("_segmentation.png", "") in message
    assert "have no mask" in message and "ISIC_<7 digits>_segmentation.png" in message


def test_mask_without_image_is_named(isic_copy):
    image_dir = os.path.join(isic_copy, "ISIC-2017_Test_v2_Data")
    victim = sorted(n for n in os.listdir(image_dir) if n.endswith(".jpg"))[0]
    os.remove(os.path.join(image_dir, victim))
    with pytest.raises(datasets.DatasetError, match=f"have no image.*{victim[:-4]}"):
        datasets.find_split(isic_copy, split="test")


def test_missing_split_and_missing_dir(isic_copy, tmp_path):
    shutil.rmtree(os.path.join(isic_copy, "ISIC-2017_Validation_Data"))
    with pytest.raises(datasets.DatasetError, match="ISIC-2017_Validation_Data is missing"):
        datasets.find_split(isic_copy, split="validation")
    with pytest.raises(datasets.DatasetError, match="does not exist"):
        datasets.find_split(str(tmp_path / "nowhere"), split="training")
    with pytest.raises(datasets.DatasetError, match="unknown split"):
        datasets.find_split(isic_copy, split="train")


def test_empty_split_is_an_error(tmp_path):
    for folder in layouts.ISIC2017.folders["training"]:
        os.makedirs(tmp_path / folder)
    with pytest.raises(datasets.DatasetError, match="training split: no images found in"):
        datasets.find_split(str(tmp_path), split="training")


def test_resize_mask_stays_binary():
    mask = np.zeros((37, 53, 1), np.uint8)
    mask[10:30, 5:40] = 255
    resized = pipeline.resize_mask(mask, image_size=16).numpy()
    assert resized.shape == (16, 16, 1) and set(np.unique(resized)) == {0, 255}


def test_mask_to_label_uses_the_isic_threshold():
    labels = pipeline.mask_to_label(np.array([0, 1, 128, 129, 255], np.uint8)).numpy()
    np.testing.assert_array_equal(labels, [0, 0, 0, 1, 1])


def test_training_dataset(tiny_isic):
    examples = datasets.find_split(tiny_isic, split="training")
    dataset = pipeline.make_dataset(examples, image_size=32, batch_size=3, is_training=True, seed=0)
    batches = list(dataset)
    assert len(batches) == 2  # 8 examples, last partial batch dropped
    images, labels = batches[0]
    assert images.shape == (3, 32, 32, 3) and images.dtype == tf.float32
    assert labels.shape == (3, 32, 32, 1) and labels.dtype == tf.int32
    assert set(np.unique(labels.numpy())) == {0, 1}
    for image in images.numpy():  # per-image standardization
        assert abs(image.mean()) < 1e-4 and abs(image.std() - 1) < 1e-3


def test_training_order_is_shuffled_and_seeded(tiny_isic):
    examples = datasets.find_split(tiny_isic, split="training")

    def first_labels(seed):
        ds = pipeline.make_dataset(
            examples, image_size=32, batch_size=8, is_training=True, seed=seed
        )
        return next(iter(ds))[1].numpy()

    np.testing.assert_array_equal(first_labels(3), first_labels(3))
    assert not np.array_equal(first_labels(3), first_labels(4))


def test_evaluation_dataset_keeps_order_and_remainder(tiny_isic):
    examples = datasets.find_split(tiny_isic, split="validation")
    dataset = pipeline.make_dataset(examples, image_size=32, batch_size=3, is_training=False)
    labels = np.concatenate([label.numpy() for _, label in dataset])
    assert labels.shape == (4, 32, 32, 1)
    for label, example in zip(labels, examples):
        mask = pipeline.load_mask(tf.constant(example.mask_path))
        expected = pipeline.mask_to_label(pipeline.resize_mask(mask, image_size=32)).numpy()
        np.testing.assert_array_equal(label, expected)


def as_arrays(dataset):
    images, labels = zip(*[(image.numpy(), label.numpy()) for image, label in dataset])
    return np.concatenate(images), np.concatenate(labels)


@pytest.mark.parametrize("is_training", [True, False])
def test_cached_and_uncached_pipelines_agree(tiny_isic, tmp_path, is_training):
    examples = datasets.find_split(tiny_isic, split="training")
    epoch = tf.Variable(0, dtype=tf.int64)
    kwargs = dict(image_size=32, batch_size=2, is_training=is_training, seed=5, epoch=epoch)
    plain = pipeline.make_dataset(examples, **kwargs)
    in_memory = pipeline.make_dataset(examples, cache="memory", **kwargs)
    on_disk = pipeline.make_dataset(examples, cache=str(tmp_path / "cache"), **kwargs)
    for e in (0, 1, 2):  # the second and later passes read the caches
        epoch.assign(e)
        expected = as_arrays(plain)
        for cached in (in_memory, on_disk):
            got = as_arrays(cached)
            np.testing.assert_array_equal(got[0], expected[0])
            np.testing.assert_array_equal(got[1], expected[1])


def test_cache_means_no_second_decode(tiny_isic, tmp_path):
    root = tmp_path / "isic"
    shutil.copytree(tiny_isic, root)
    examples = datasets.find_split(str(root), split="training")
    epoch = tf.Variable(0, dtype=tf.int64)
    dataset = pipeline.make_dataset(
        examples, image_size=32, batch_size=4, is_training=True, seed=0, epoch=epoch, cache="memory"
    )
    first = as_arrays(dataset)
    for e in examples:  # the sources are gone: only the cache can serve epoch 2
        os.remove(e.image_path)
        os.remove(e.mask_path)
    epoch.assign(1)
    second = as_arrays(dataset)
    assert second[0].shape == first[0].shape
    assert not np.array_equal(second[0], first[0])  # a new order, from the cache


def test_epoch_order_depends_on_seed_and_epoch_only(tiny_isic):
    examples = datasets.find_split(tiny_isic, split="training")

    def labels(seed, at_epoch):
        epoch = tf.Variable(at_epoch, dtype=tf.int64)
        ds = pipeline.make_dataset(
            examples,
            image_size=32,
            batch_size=8,
            is_training=True,
            seed=seed,
            epoch=epoch,
            cache="memory",
        )
        return as_arrays(ds)[1]

    np.testing.assert_array_equal(labels(1, 3), labels(1, 3))
    assert not np.array_equal(labels(1, 3), labels(1, 4))
    assert not np.array_equal(labels(1, 3), labels(2, 3))


def test_reduced_scale_decode_stays_close(tmp_path):
    rng = np.random.default_rng(0)
    differences = []
    for i, (height, width) in enumerate([(600, 800), (1000, 1500), (530, 530)]):
        image, _ = synthetic.render_example(rng, height=height, width=width)
        path = str(tmp_path / f"{i}.jpg")
        cv2.imwrite(path, image[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 95])
        full = pipeline.resize_image(images.decode_image(path), image_size=64).numpy().astype(float)
        reduced = pipeline.decode_resized_jpeg(path, image_size=64).numpy().astype(float)
        assert reduced.shape == (64, 64, 3)
        differences.append(np.abs(full - reduced).mean())
    assert max(differences) < 2.0  # mean absolute difference in grey levels


@pytest.mark.parametrize("global_seed", [0, 7])
def test_epoch_order_ignores_the_global_seed(tiny_isic, global_seed):
    examples = datasets.find_split(tiny_isic, split="training")
    tf.random.set_seed(global_seed)
    try:
        ds = pipeline.make_dataset(examples, image_size=32, batch_size=8, is_training=True, seed=2)
        got = as_arrays(ds)[1]
    finally:
        tf.random.set_seed(None)
    expected = as_arrays(
        pipeline.make_dataset(examples, image_size=32, batch_size=8, is_training=True, seed=2)
    )[1]
    np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("is_training", [True, False])
def test_training_and_selection_data_are_read_without_autotuning(tiny_isic, is_training):
    # tf.data's autotuning stalled training steps on 2 cores (pipeline.training_options);
    # a dataset derived from the pipeline's keeps the option.
    examples = datasets.find_split(tiny_isic, split="training")
    dataset = pipeline.make_dataset(examples, image_size=32, batch_size=3, is_training=is_training)
    assert dataset.options().autotune.enabled is False
    assert dataset.options().experimental_distribute.auto_shard_policy == (
        tf.data.experimental.AutoShardPolicy.DATA
    )
