"""The tf.data input pipeline (paper section 3.2): decoding at the training size,
resizing, per-image standardization, per-epoch order and batching.

What the files are and where they are is `datasets`; reading whole files for
prediction and evaluation is `images`.
"""

import hashlib
import os

import numpy as np
import tensorflow as tf

from lesionseg_tf import messages
from lesionseg_tf.datasets import DatasetError
from lesionseg_tf.images import (
    JPEG_DCT_METHOD,
    ImageReadError,
    decode_bytes,
    decode_image,
    is_jpeg,
    read_mask_file,
)
from lesionseg_tf.metrics import LESION_THRESHOLD


def load_mask(path):
    """`read_mask_file` as a graph op (OpenCV reads 1-bit BMPs, which TensorFlow's
    BMP decoder cannot): `[H, W, 1]` uint8. Training, the dataset check and the
    evaluation so read every mask the same way."""
    mask = tf.numpy_function(
        lambda p: read_mask_file(os.fsdecode(np.asarray(p).item())),
        [path],
        tf.uint8,
        stateful=False,
    )
    mask.set_shape([None, None])
    return mask[..., None]


def resize_image(image, *, image_size):
    """Resizes `[..., H, W, 3]` uint8 to `[..., image_size, image_size, 3]` uint8.

    Bilinear with antialiasing, so downscaling a 3000-pixel photograph averages
    over its pixels instead of sampling them. Shared by training, evaluation and
    the export so that all see the same input.
    """
    resized = tf.image.resize(image, [image_size, image_size], method="bilinear", antialias=True)
    return tf.cast(tf.clip_by_value(tf.round(resized), 0.0, 255.0), tf.uint8)


def resize_mask(mask, *, image_size):
    """Nearest-neighbour resize of `[..., H, W, 1]`, so a binary mask stays binary."""
    return tf.image.resize(mask, [image_size, image_size], method="nearest")


def standardize(image):
    """Per-image standardization (paper section 3.2): `[..., H, W, 3]` uint8 -> float32."""
    return tf.image.per_image_standardization(image)


def mask_to_label(mask):
    """`[..., H, W, 1]` uint8 mask -> int32 class (1 = lesion where value > 128, as ISIC)."""
    return tf.cast(mask > LESION_THRESHOLD, tf.int32)


def decode_resized_jpeg(path, *, image_size):
    """Reads a JPEG and resizes it to `[image_size, image_size, 3]` uint8, cheaply.

    Where the photograph is at least twice the target size on its shorter side,
    libjpeg decodes it at 1/2, 1/4 or 1/8 scale in the DCT domain (the largest
    ratio that still leaves at least `image_size` pixels), so a 3008x2000
    photograph is decoded at 752x500 before `resize_image`. The result stays close
    to a full decode + resize (the tests bound the difference).
    """
    return _resized_jpeg(tf.io.read_file(path), image_size)


def _resized_jpeg(raw, image_size):
    shape = tf.io.extract_jpeg_shape(raw)
    scale = tf.minimum(shape[0], shape[1]) // image_size
    branch = (
        tf.cast(scale >= 2, tf.int32)
        + tf.cast(scale >= 4, tf.int32)
        + tf.cast(scale >= 8, tf.int32)
    )
    image = tf.switch_case(
        branch,
        [
            lambda ratio=ratio: tf.io.decode_jpeg(
                raw, channels=3, ratio=ratio, dct_method=JPEG_DCT_METHOD
            )
            for ratio in (1, 2, 4, 8)
        ],
    )
    return resize_image(image, image_size=image_size)


def decode_resized_image(path, *, image_size):
    """Reads a photograph as training does: a JPEG (known by its first bytes, whatever
    its name) through `decode_resized_jpeg`, a PNG or BMP (PH2's photographs) decoded
    whole; then resized to `[image_size, image_size, 3]` uint8."""
    raw = tf.io.read_file(path)
    return tf.cond(
        is_jpeg(raw),
        lambda: _resized_jpeg(raw, image_size),
        lambda: resize_image(decode_bytes(raw), image_size=image_size),
    )


_TRAINING_DECODERS = {}


def training_decoder(image_size):
    """`decode_resized_image` for `image_size` as one traced function of a path
    (made once per size; call it before using `check_image_decodes` from threads)."""
    if image_size not in _TRAINING_DECODERS:
        _TRAINING_DECODERS[image_size] = tf.function(
            lambda path: decode_resized_image(path, image_size=image_size),
            input_signature=[tf.TensorSpec([], tf.string)],
            autograph=False,
        )
    return _TRAINING_DECODERS[image_size]


def check_image_decodes(path, *, image_size):
    """Decodes a photograph as the training pipeline does (`decode_resized_image`),
    so a file whose header reads but whose data TensorFlow refuses (a truncated
    JPEG, a bogus Huffman table, a 1-bit BMP, ...) is found before training rather
    than in the middle of an epoch. Bytes after a JPEG's end-of-image marker are
    fine, as for the decoder.

    Raises:
      ImageReadError: TensorFlow cannot decode it.
    """
    try:
        training_decoder(image_size)(tf.constant(path))
    except tf.errors.OpError as e:
        raise ImageReadError(
            f"{path}: image data does not decode as training decodes it "
            f"(truncated or corrupt: {messages.reason(e)})"
        ) from None


def make_dataset(
    examples,
    *,
    image_size,
    batch_size,
    is_training,
    seed=0,
    epoch=None,
    cache=None,
    reduced_decode=True,
):
    """The input pipeline (paper section 3.2).

        decode + resize to uint8 -> [cache] -> per-epoch order -> standardize -> batch

    Each photograph is decoded and resized once; with `cache`, the resized uint8
    images and masks are kept (in memory, or in a cache file) and later epochs
    never decode a JPEG again. Standardization runs after the cache, and the
    random rotations/flips at the start of each training step on the device
    (`LesionSegNet.train_step`).

    For training, each epoch visits the examples in an order drawn from
    `(seed, epoch)` alone, so a run resumed at epoch k sees the batches an
    uninterrupted run would have seen, and drops the last partial batch.

    Args:
      examples: `Example`s (`datasets.open_dataset(...).find(split)`).
      image_size: side of the square network input.
      batch_size: examples per batch.
      is_training: shuffle per epoch and drop the remainder.
      seed: shuffle seed.
      epoch: for training, an int64 `tf.Variable` holding the current epoch, read
        each time an iteration over the dataset starts (`EpochVariable` callback
        sets it); None means epoch 0.
      cache: None (decode every epoch), "memory", or a cache file path prefix.
      reduced_decode: decode large JPEGs at reduced scale (`decode_resized_image`).

    Returns:
      A dataset of `(images, labels)`: `[batch, image_size, image_size, 3]`
      float32 standardized and `[batch, image_size, image_size, 1]` int32 in {0, 1}.
    """
    if not examples:
        raise DatasetError("no examples to build a dataset from")
    count = len(examples)

    def load(image_path, mask_path):
        if reduced_decode:
            image = decode_resized_image(image_path, image_size=image_size)
        else:
            image = resize_image(decode_image(image_path), image_size=image_size)
        return image, resize_mask(load_mask(mask_path), image_size=image_size)

    resized = tf.data.Dataset.from_tensor_slices(
        ([e.image_path for e in examples], [e.mask_path for e in examples])
    )
    resized = resized.map(load, num_parallel_calls=tf.data.AUTOTUNE)
    if cache == "memory":
        resized = resized.cache()
    elif cache:
        resized = resized.cache(cache)

    if is_training:
        used = count // batch_size * batch_size
        if not used:
            raise DatasetError(
                f"{count} training examples are fewer than one batch of {batch_size}"
            )

        def one_epoch(_):
            current = tf.constant(0, tf.int64) if epoch is None else epoch.read_value()
            # A buffer of the whole split is a full permutation; its seed is the epoch's.
            # Fixing this function graph's own seed makes the order independent of the
            # process-wide seed (and avoids TF's special case of a zero global seed).
            tf.random.set_seed(1)
            epoch_seed = tf.constant(seed, tf.int64) * 1_000_003 + current
            return resized.shuffle(count, seed=epoch_seed, reshuffle_each_iteration=False).take(
                used
            )

        dataset = tf.data.Dataset.range(1).flat_map(one_epoch)
    else:
        dataset = resized

    def finish(image, mask):
        return standardize(image), mask_to_label(mask)

    dataset = dataset.map(finish, num_parallel_calls=tf.data.AUTOTUNE)
    dataset = dataset.batch(batch_size, drop_remainder=is_training)
    if is_training:  # flat_map hides the length, which Keras uses to count the steps
        dataset = dataset.apply(tf.data.experimental.assert_cardinality(used // batch_size))
    return dataset.with_options(training_options()).prefetch(tf.data.AUTOTUNE)


def training_options():
    """The `tf.data.Options` of the training and selection datasets.

    Under a multi-worker strategy, each worker keeps its own share of every global
    batch (`make_dataset`'s order is the same on all workers), so no two workers
    train on the same example in an epoch.

    tf.data's autotuning is off: on a 2-core CPU it held training steps until a
    periodic wake-up of 10.24 s (an epoch at 64x64 took 79-80 s instead of 41-44,
    in 2 of 4 epochs; docs/benchmarks.md). The data and their order do not depend on
    it (the two runs' weights were identical to the bit); `num_parallel_calls` left
    at AUTOTUNE then means one call per core.
    """
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    options.autotune.enabled = False
    return options


def cache_name(examples, *, image_size, reduced_decode=True):
    """A cache file name that changes whenever the files, their sizes or dates, the
    image size or the decoding change, so a stale cache is never read."""
    digest = hashlib.sha256(f"{image_size}:{reduced_decode}".encode())
    for e in examples:
        for path in (e.image_path, e.mask_path):
            stat = os.stat(path)
            digest.update(f"{os.path.abspath(path)}:{stat.st_size}:{stat.st_mtime_ns};".encode())
    return f"{len(examples)}x{image_size}-{digest.hexdigest()[:16]}"


def cache_argument(cache, *, cache_dir, split, examples, image_size):
    """The `cache` argument of `make_dataset` for a `--cache` choice: "memory", None
    ("none"), or for "disk" a file prefix in `cache_dir` named by `cache_name` (so a
    stale cache is never read). A run killed while writing a cache file leaves a lock
    file that would stop the next run: it is removed here."""
    if cache == "none":
        return None
    if cache == "memory":
        return "memory"
    os.makedirs(cache_dir, exist_ok=True)
    prefix = os.path.join(cache_dir, f"{split}-{cache_name(examples, image_size=image_size)}")
    for name in os.listdir(cache_dir):
        if name.startswith(os.path.basename(prefix)) and name.endswith(".lockfile"):
            os.remove(os.path.join(cache_dir, name))
    return prefix
