"""The LesionSeg network of the paper's Table 1 (section 3.1) as a Keras functional model.

Three stages of convolution + batch normalization + ReLU, the last one atrous
(dilation 2), then a 3x3 "subpixel" convolution to 4*4*2 channels rearranged by
depth-to-space into per-pixel logits for (background, lesion) at the input
resolution. Every convolution but the 1x1 ones is preceded by mirror padding of
`dilation * (kernel - 1) / 2` pixels and run with 'valid' padding.

`context="image_pooling"` (not in the paper, off by default) adds DeepLabv3's
image-level feature before the subpixel layer (`context_branch`).
"""

import keras
import tensorflow as tf

from lesionseg_tf import (
    augment,
    keras_metrics,  # noqa: F401 (registers the training metric for `load`)
    layers,
    losses,  # noqa: F401 (registers the training losses for `load`)
)
from lesionseg_tf import run_dir as run_dir_lib
from lesionseg_tf.config import UPSCALE
from lesionseg_tf.layers import BroadcastToGrid, DepthToSpace, ReflectionPad2D
from lesionseg_tf.table1 import CONTEXT_FILTERS, TABLE_1, check_context


def conv_block(x, *, spec, sync_batch_norm=False, batch_norm_layer=layers.BatchNormalization):
    """Mirror padding -> 'valid' convolution -> [batch norm] -> [ReLU]."""
    pad = spec.dilation * (spec.kernel - 1) // 2
    if pad:
        x = ReflectionPad2D(pad, name=f"{spec.name}_pad")(x)
    x = keras.layers.Conv2D(
        spec.filters,
        spec.kernel,
        strides=spec.stride,
        dilation_rate=spec.dilation,
        padding="valid",
        use_bias=not spec.batch_norm,
        name=spec.name,
    )(x)
    if spec.batch_norm:
        x = batch_norm_layer(name=f"{spec.name}_bn", synchronized=sync_batch_norm)(x)
    if spec.relu:
        x = keras.layers.ReLU(name=f"{spec.name}_relu")(x)
    return x


def context_branch(features, *, sync_batch_norm=False, batch_norm_layer=layers.BatchNormalization):
    """DeepLabv3's image-level feature (Chen et al. 2017, arXiv:1706.05587, section 3.3):
    global average pooling of `features`, a 1x1 convolution to `CONTEXT_FILTERS`
    channels with batch norm and ReLU, broadcast back over the grid and concatenated
    to `features`: `[b, h, w, c]` -> `[b, h, w, c + CONTEXT_FILTERS]`.

    It joins the conv3_3 features, the last before the subpixel layer, so the
    subpixel convolution, which decides each 4x4 block's classes, weighs the
    whole image's summary against the 77-pixel local field in one layer.
    """
    pooled = keras.layers.GlobalAveragePooling2D(keepdims=True, name="context_pool")(features)
    pooled = keras.layers.Conv2D(CONTEXT_FILTERS, 1, use_bias=False, name="context_conv")(pooled)
    pooled = batch_norm_layer(name="context_conv_bn", synchronized=sync_batch_norm)(pooled)
    pooled = keras.layers.ReLU(name="context_conv_relu")(pooled)
    grid = BroadcastToGrid(name="context_broadcast")([pooled, features])
    return keras.layers.Concatenate(name="context_concat")([features, grid])


@keras.saving.register_keras_serializable(package="lesionseg_tf")
class LesionSegNet(keras.Model):
    """The functional Table-1 network; its training step adds the paper's augmentation.

    Built by `build_model`, it is a Keras functional model (this subclass only
    overrides `train_step`). Each training step first draws a random rotation/flip
    per example and applies it to image and mask alike (`augment.random_dihedral`)
    on the device that runs the step, then, with `scale_augment`, a random zoom and
    shift that keeps the lesion (`augment.random_scale`), and with `color_augment`, a
    random change of colour per image (`augment.random_color`). The draw is seeded
    by `augment_seed` and the optimizer's step counter, so it depends on nothing
    else: a run resumed from a checkpoint draws what an uninterrupted run would have
    drawn.
    """

    augment_seed = 0
    # Not in the paper, off by default: `augment.random_scale`, then `augment.random_color`,
    # after the rotations/flips.
    scale_augment = False
    color_augment = False

    def train_step(self, data):
        images, masks = data
        step = tf.cast(self.optimizer.iterations, tf.int64)
        # Each replica of a distributed run draws its own transforms.
        replica = tf.cast(tf.distribute.get_replica_context().replica_id_in_sync_group, tf.int64)
        seed = tf.stack([tf.constant(self.augment_seed, tf.int64), step * 1024 + replica])
        with tf.name_scope("augment"):  # named, for profiles (tools.profile_step)
            images, masks = augment.random_dihedral(images, masks=masks, seed=seed)
            if self.scale_augment:
                images, masks = augment.random_scale(
                    images, masks=masks, seed=tf.random.experimental.stateless_fold_in(seed, 2)
                )
            if self.color_augment:
                images = augment.random_color(
                    images, seed=tf.random.experimental.stateless_fold_in(seed, 1)
                )
        return self._reducible(super().train_step((images, masks)))

    def test_step(self, data):
        return self._reducible(super().test_step(data))

    def call(self, inputs, training=None, mask=None):
        """The network, after checking that height and width are divisible by
        `UPSCALE` (two stride-2 convolutions, undone by depth-to-space x4): any
        other size would come back as a different size, not as an error."""
        height, width = inputs.shape[1], inputs.shape[2]
        if any(side is not None and side % UPSCALE for side in (height, width)):
            raise ValueError(
                f"image height and width must be divisible by {UPSCALE}, got {height}x{width}"
            )
        if height is None or width is None:  # known only when the graph runs
            sides = tf.shape(inputs)[1:3]
            tf.debugging.assert_equal(
                sides % UPSCALE,
                tf.zeros_like(sides),
                message=f"image height and width must be divisible by {UPSCALE}",
            )
        return super().call(inputs, training=training, mask=mask)

    def _reducible(self, logs):
        # Keras 3.15 averages a multi-worker step's logs with a reduction over axis 0,
        # which scalars lack; give them that axis (the mean over it is the value).
        if isinstance(self._distribute_strategy, tf.distribute.MultiWorkerMirroredStrategy):
            return {name: tf.reshape(value, [1]) for name, value in logs.items()}
        return logs

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        # Under a tf.distribute strategy, Keras 3.15 builds the metrics and optimizer
        # from the first batch, taken from the epoch's own iterator (so the first
        # epoch loses a batch) and reduced as one nested value, which
        # MultiWorkerMirroredStrategy cannot do. Only shapes and dtypes are needed,
        # and they are known: (images [b, h, w, 3] float32, labels [b, h, w, 1] int32).
        strategy = self._distribute_strategy
        if strategy is None:
            return super()._maybe_symbolic_build(iterator=iterator, data_batch=data_batch)
        image_shape = tuple(self.inputs[0].shape)
        specs = (
            tf.TensorSpec(image_shape, tf.float32),
            tf.TensorSpec(image_shape[:-1] + (1,), tf.int32),
        )
        with strategy.scope():
            self._symbolic_build(data_batch=specs)
        return None


def build_model(
    image_size=None,
    *,
    name="lesionseg",
    sync_batch_norm=False,
    context="none",
    fused_batch_norm=True,
):
    """Builds the Table-1 network.

    Args:
      image_size: side of the square input, or None to accept any height and
        width divisible by 4 (the weights do not depend on it).
      sync_batch_norm: compute batch-norm statistics over the global batch of a
        distributed run (all replicas), as one device would over the same batch;
        this also keeps the moving statistics identical on every replica.
      context: "none" (Table 1) or "image_pooling" (`context_branch` before the
        subpixel layer; not in the paper).
      fused_batch_norm: batch norm as `layers.BatchNormalization` (one kernel a
        training step); False builds Keras' own layer, which computes the same in
        separate ops (to measure the difference: `tools.profile_step`).

    Returns:
      A `LesionSegNet` mapping `[batch, H, W, 3]` float32 standardized images to
      `[batch, H, W, 2]` float32 logits (background, lesion).
    """
    if image_size is not None and image_size % UPSCALE:
        raise ValueError(f"image_size must be divisible by {UPSCALE}, got {image_size}")
    check_context(context)
    inputs = keras.Input(shape=(image_size, image_size, 3), name="image")
    x = inputs
    batch_norm_layer = (
        layers.BatchNormalization if fused_batch_norm else keras.layers.BatchNormalization
    )
    for spec in TABLE_1:
        if spec.name == "subpixel" and context == "image_pooling":
            x = context_branch(
                x, sync_batch_norm=sync_batch_norm, batch_norm_layer=batch_norm_layer
            )
        x = conv_block(
            x, spec=spec, sync_batch_norm=sync_batch_norm, batch_norm_layer=batch_norm_layer
        )
    # float32 even under a mixed-precision policy: the logits feed the softmax and the loss.
    logits = DepthToSpace(UPSCALE, name="depth_to_space", dtype="float32")(x)
    return LesionSegNet(inputs=inputs, outputs=logits, name=name)


def build_ensemble(members, *, name="lesionseg_ensemble"):
    """Several trained networks of the same input as one network (not in the paper):
    `[batch, H, W, 3]` standardized images -> `[batch, H, W, 2]` the logarithm of
    their mean softmax probabilities (`layers.AverageProbabilities`), which every
    runtime treats as one network's logits.

    Args:
      members: `build_model` networks (trained), all of one context option.

    Raises:
      ValueError: fewer than two members, or members of different networks.
    """
    if len(members) < 2:
        raise ValueError(f"an ensemble needs at least two networks, got {len(members)}")
    contexts = {context_of(member) for member in members}
    if len(contexts) > 1:
        raise ValueError(f"an ensemble's networks must be alike, got {sorted(contexts)}")
    inputs = keras.Input(shape=(None, None, 3), name="image")
    logits = [
        keras.Model(member.inputs[0], member.outputs[0], name=f"member_{k}")(inputs)
        for k, member in enumerate(members)
    ]
    outputs = layers.AverageProbabilities(name="average_probabilities", dtype="float32")(logits)
    return keras.Model(inputs=inputs, outputs=outputs, name=name)


def networks_of(model):
    """The Table-1 networks `model` is: itself, or an ensemble's members."""
    nested = [layer for layer in model.layers if isinstance(layer, keras.Model)]
    return nested or [model]


def compute_dtype_of(model):
    """The dtype `model`'s first convolution computes in (an ensemble's: its first
    member's): float32, or bfloat16 / float16 under mixed precision."""
    return networks_of(model)[0].get_layer("conv1_1").compute_dtype


def context_of(model):
    """The context option (`CONTEXTS`) `model` was built with, read off its layers
    (an ensemble's: its members')."""
    names = {layer.name for layer in networks_of(model)[0].layers}
    return "image_pooling" if "context_pool" in names else "none"


def load(path, *, compile=True):  # pylint: disable=redefined-builtin
    """A `.keras` file of this network (a run's `best.keras`, a shipped
    `lesionseg.keras`), loaded safely: this module registers its classes.

    Args:
      compile: False leaves out the optimizer and its state (to fine-tune afresh).
    """
    return keras.models.load_model(path, compile=compile, safe_mode=True)


def load_run(run_dir):
    """The model of a train.py run folder (`best.keras`) or of a shipped model
    folder (`lesionseg.keras`), and its input size (`RunDir`).

    Raises:
      FileNotFoundError: the folder holds no model or no `flags.json`.
    """
    folder = run_dir_lib.RunDir(run_dir)
    image_size = folder.image_size()
    path = folder.weights_file()
    if path is None:
        raise FileNotFoundError(
            f"{run_dir} holds neither {' nor '.join(run_dir_lib.RunDir.WEIGHT_FILES)}"
        )
    return load(path), image_size


def set_weights_from(model, *, path):
    """Sets `model`'s weights to those of a `.keras` or `.weights.h5` file of the same
    network, without any optimizer state the file holds (fine-tuning starts afresh).

    Raises:
      ValueError: the file holds another network (the other context option).
    """
    context = context_of(model)
    if path.endswith(".keras"):
        source = load(path, compile=False)
    else:
        source = build_model(context=context)
        source.load_weights(path)
    if [tuple(w.shape) for w in source.weights] != [tuple(w.shape) for w in model.weights]:
        raise ValueError(
            f"--init_from {path} holds another network than --context={context} "
            f"builds (--context={context_of(source)})"
        )
    model.set_weights(source.get_weights())
