"""The raw TensorFlow ops of the network, wrapped as serializable Keras layers.

Keras 3 refuses raw TF ops on symbolic tensors, and `Lambda` layers cannot be
loaded with `safe_mode=True`; these small named layers (each with
`get_config()`) keep the saved model loadable anywhere the package is importable.
"""

import keras
import tensorflow as tf

_PACKAGE = "lesionseg_tf"


@keras.saving.register_keras_serializable(package=_PACKAGE)
class ReflectionPad2D(keras.layers.Layer):
    """Mirror padding of the two spatial axes (paper section 3.1, "mirror padding").

    Input `[batch, height, width, channels]`, output
    `[batch, height + 2 * padding, width + 2 * padding, channels]`, the border
    reflected without repeating the edge pixel (`tf.pad(mode="REFLECT")`,
    the same as `numpy.pad(mode="reflect")`).
    """

    def __init__(self, padding, **kwargs):
        super().__init__(**kwargs)
        if int(padding) < 0:
            raise ValueError(f"padding must be >= 0, got {padding}")
        self.padding = int(padding)

    def call(self, inputs):
        p = self.padding
        return tf.pad(inputs, [[0, 0], [p, p], [p, p], [0, 0]], mode="REFLECT")

    def compute_output_shape(self, input_shape):
        batch, height, width, channels = input_shape
        grow = lambda size: None if size is None else size + 2 * self.padding  # noqa: E731
        return (batch, grow(height), grow(width), channels)

    def get_config(self):
        return {**super().get_config(), "padding": self.padding}


@keras.saving.register_keras_serializable(package=_PACKAGE)
class DepthToSpace(keras.layers.Layer):
    """Sub-pixel rearrangement `tf.nn.depth_to_space` (paper section 3.1).

    Input `[batch, height, width, block_size**2 * c]`, output
    `[batch, height * block_size, width * block_size, c]`.
    """

    def __init__(self, block_size, **kwargs):
        super().__init__(**kwargs)
        if int(block_size) < 2:
            raise ValueError(f"block_size must be >= 2, got {block_size}")
        self.block_size = int(block_size)

    def call(self, inputs):
        return tf.nn.depth_to_space(inputs, self.block_size)

    def compute_output_shape(self, input_shape):
        batch, height, width, channels = input_shape
        b = self.block_size
        if channels % (b * b):
            raise ValueError(f"channels ({channels}) must be divisible by block_size**2 ({b * b})")
        scale = lambda size: None if size is None else size * b  # noqa: E731
        return (batch, scale(height), scale(width), channels // (b * b))

    def get_config(self):
        return {**super().get_config(), "block_size": self.block_size}


@keras.saving.register_keras_serializable(package=_PACKAGE)
class BroadcastToGrid(keras.layers.Layer):
    """Spreads a per-image feature over a feature grid: the "upsampling" of
    DeepLabv3's image-level feature (Chen et al. 2017, arXiv:1706.05587, section 3.3),
    exact for a 1x1 source, so no interpolation is needed.

    Called on `[pooled, grid]`: `pooled` `[batch, 1, 1, c]`, `grid` `[batch, h, w, any]`
    (only its shape is read); returns `[batch, h, w, c]`, every position equal to
    `pooled`.
    """

    def call(self, inputs):
        pooled, grid = inputs
        shape = tf.concat([tf.shape(grid)[:3], tf.shape(pooled)[3:]], axis=0)
        return tf.broadcast_to(pooled, shape)

    def compute_output_shape(self, input_shape):
        pooled_shape, grid_shape = input_shape
        return tuple(grid_shape[:3]) + (pooled_shape[3],)


@keras.saving.register_keras_serializable(package=_PACKAGE)
class AverageProbabilities(keras.layers.Layer):
    """An ensemble's output (not in the paper): the mean over its members of the
    per-pixel softmax probabilities, returned as their logarithm.

    Called on a list of `[batch, h, w, 2]` logits; returns `[batch, h, w, 2]`
    float32 `log(mean_k softmax(logits_k))`. Its softmax is the averaged
    probabilities themselves (they sum to one), so whatever applies a softmax to a
    single network's two channels (section 3.4's post-processing, `LiteSegmenter`,
    the page) gives the ensemble's probability unchanged. Probabilities are
    floored at `FLOOR` so that the logarithm stays finite.
    """

    FLOOR = 1e-7

    def call(self, inputs):
        probabilities = [tf.nn.softmax(tf.cast(logits, tf.float32), axis=-1) for logits in inputs]
        mean = tf.add_n(probabilities) / float(len(probabilities))
        return tf.math.log(tf.maximum(mean, self.FLOOR))

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[0])


@keras.saving.register_keras_serializable(package=_PACKAGE)
class BatchNormalization(keras.layers.BatchNormalization):
    """`keras.layers.BatchNormalization` (paper section 3.1, "BN") whose training
    step is one fused kernel instead of a dozen element-wise ops.

    It keeps Keras' class name because Keras files address a layer's weights by it
    (`batch_normalization_3/...`): weights, checkpoints and run backups written with
    either layer load into the other.

    Keras 3 normalizes a training batch with separate mean, squared-difference,
    multiply and add ops (and casts bfloat16 to float32 around them), and the
    gradient runs back through each: on a CPU that was 12% of a 448x448 float32
    training step and 21% of a bfloat16 one, with the casts and the gradient sums
    it needs (docs/cpu.md, "What the step spends its time on"). `FusedBatchNormV3`
    (oneDNN on CPUs, cuDNN on GPUs) computes the same normalization, statistics and
    gradient in one pass, in float32 whatever the input's precision.

    Same weights, names, configuration and moving-statistics update as the Keras
    layer: the fused kernel reports the batch variance with Bessel's correction,
    which is undone here because Keras updates the moving variance with the
    biased one. Inference, a frozen layer, a mask, batch renormalization and the
    synchronized (cross-replica) form run Keras' own code.
    """

    def call(self, inputs, training=None, mask=None):
        if (
            not (training and self.trainable)
            or mask is not None
            or self.renorm
            or self.synchronized
            or len(inputs.shape) != 4
            or self.axis not in (-1, 3)
        ):
            return super().call(inputs, training=training, mask=mask)
        channels = inputs.shape[-1]
        scale = tf.convert_to_tensor(self.gamma) if self.scale else tf.ones([channels], tf.float32)
        offset = (
            tf.convert_to_tensor(self.beta) if self.center else tf.zeros([channels], tf.float32)
        )
        empty = tf.constant([], tf.float32)  # no moving statistics in: training mode
        outputs, mean, variance, _, _, _ = tf.raw_ops.FusedBatchNormV3(
            x=inputs,
            scale=scale,
            offset=offset,
            mean=empty,
            variance=empty,
            epsilon=self.epsilon,
            exponential_avg_factor=1.0,
            data_format="NHWC",
            is_training=True,
        )
        count = tf.cast(tf.reduce_prod(tf.shape(inputs)[:-1]), tf.float32)
        variance = variance * (tf.maximum(count - 1.0, 1.0) / count)
        self.moving_mean.assign(self.moving_mean * self.momentum + mean * (1.0 - self.momentum))
        self.moving_variance.assign(
            self.moving_variance * self.momentum + variance * (1.0 - self.momentum)
        )
        return tf.cast(outputs, self.compute_dtype)
