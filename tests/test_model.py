import keras
import numpy as np
import pytest

from lesionseg_tf import layers
from lesionseg_tf.layers import DepthToSpace, ReflectionPad2D
from lesionseg_tf.model import LesionSegNet, build_model
from lesionseg_tf.table1 import TABLE_1, WHOLE_IMAGE, ConvSpec, receptive_field

# The paper's Table 1, written out here independently of the library:
# (name, kernel, filters, stride, dilation, batch norm, ReLU).
PAPER_TABLE_1 = [
    ("conv1_1", 5, 64, 2, 1, True, True),
    ("conv1_2", 3, 96, 1, 1, True, True),
    ("conv1_3", 1, 96, 1, 1, True, True),
    ("conv2_1", 3, 128, 2, 1, True, True),
    ("conv2_2", 3, 256, 1, 1, True, True),
    ("conv2_3", 1, 256, 1, 1, True, True),
    ("conv3_1", 3, 256, 1, 2, True, True),
    ("conv3_2", 3, 256, 1, 2, True, True),
    ("conv3_3", 3, 128, 1, 2, True, False),
    ("subpixel", 3, 32, 1, 1, False, False),
]


@pytest.fixture(scope="module")
def model():
    return build_model()


def test_parameter_count_is_pinned(model):
    # Convolution kernels (no bias before batch norm) + subpixel kernel and bias:
    # 5*5*3*64 + 3*3*64*96 + 96*96 + 3*3*96*128 + 3*3*128*256 + 256*256
    # + 2 * 3*3*256*256 + 3*3*256*128 + (3*3*128*32 + 32) = 2,051,808;
    # batch norm: 4 per channel over 64+96+96+128+256+256+256+256+128 = 1536 channels.
    assert model.count_params() == 2_051_808 + 4 * 1536 == 2_057_952
    non_trainable = sum(int(np.prod(w.shape)) for w in model.non_trainable_weights)
    assert non_trainable == 2 * 1536  # moving mean and variance


def test_receptive_field_of_table_1_is_77_pixels():
    # 1 + 4 (5x5 /2) + 2*2 (3x3 on the /2 grid) + 2*2 (3x3 /2) + 2*4 (3x3 on the /4 grid)
    # + 3 * 4*4 (three 3x3 at rate 2 on the /4 grid) + 2*4 (the 3x3 subpixel layer) = 77.
    assert receptive_field(TABLE_1) == 77
    # Computed from the table, not typed in: a rate-1 conv3 stage sees 24 pixels less.
    plain = [
        ConvSpec(s.name, s.kernel, s.filters, s.stride, 1, s.batch_norm, s.relu) for s in TABLE_1
    ]
    assert receptive_field(plain) == 77 - 3 * 2 * 4


def test_layers_follow_table_1(model):
    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    assert [c.name for c in convs] == [row[0] for row in PAPER_TABLE_1]
    names = {layer.name: layer for layer in model.layers}
    for name, kernel, filters, stride, dilation, batch_norm, relu in PAPER_TABLE_1:
        conv = names[name]
        assert conv.kernel_size == (kernel, kernel), name
        assert conv.filters == filters, name
        assert conv.strides == (stride, stride), name
        assert conv.dilation_rate == (dilation, dilation), name
        assert conv.padding == "valid", name
        pad = dilation * (kernel - 1) // 2
        if pad:
            assert isinstance(names[f"{name}_pad"], ReflectionPad2D), name
            assert names[f"{name}_pad"].padding == pad, name
        else:
            assert f"{name}_pad" not in names, name
        assert (f"{name}_bn" in names) == batch_norm, name
        assert conv.use_bias == (not batch_norm), name
        assert (f"{name}_relu" in names) == relu, name
    assert isinstance(model.layers[-1], DepthToSpace) and model.layers[-1].block_size == 4
    assert model.layers[-1].input is convs[-1].output


@pytest.mark.parametrize("size", [448, 32])
def test_output_shape(model, size):
    logits = model(np.zeros((2, size, size, 3), np.float32))
    assert logits.shape == (2, size, size, 2)


def test_non_square_input_divisible_by_4(model):
    assert model(np.zeros((1, 48, 64, 3), np.float32)).shape == (1, 48, 64, 2)


@pytest.mark.parametrize("shape", [(1, 30, 32, 3), (1, 32, 42, 3)])
def test_any_size_model_refuses_sides_not_divisible_by_4(model, shape):
    # Otherwise the logits come back at another size (28x32 for 30x32).
    with pytest.raises(ValueError, match="divisible by 4, got"):
        model(np.zeros(shape, np.float32))


def test_fixed_size_model_and_bad_size():
    assert build_model(64).output_shape == (None, 64, 64, 2)
    with pytest.raises(ValueError, match="divisible by 4"):
        build_model(450)


def test_saved_keras_model_loads_in_safe_mode(model, tmp_path):
    path = str(tmp_path / "m.keras")
    model.save(path)
    loaded = keras.models.load_model(path, safe_mode=True)
    assert isinstance(loaded, LesionSegNet)
    x = np.random.default_rng(0).normal(size=(1, 32, 32, 3)).astype(np.float32)
    np.testing.assert_allclose(np.asarray(loaded(x)), np.asarray(model(x)), atol=1e-6)


# Every layer of the Table-1 network, in order: the context option off must leave it so.
TABLE_1_LAYERS = [
    "image",
    "conv1_1_pad",
    "conv1_1",
    "conv1_1_bn",
    "conv1_1_relu",
    "conv1_2_pad",
    "conv1_2",
    "conv1_2_bn",
    "conv1_2_relu",
    "conv1_3",
    "conv1_3_bn",
    "conv1_3_relu",
    "conv2_1_pad",
    "conv2_1",
    "conv2_1_bn",
    "conv2_1_relu",
    "conv2_2_pad",
    "conv2_2",
    "conv2_2_bn",
    "conv2_2_relu",
    "conv2_3",
    "conv2_3_bn",
    "conv2_3_relu",
    "conv3_1_pad",
    "conv3_1",
    "conv3_1_bn",
    "conv3_1_relu",
    "conv3_2_pad",
    "conv3_2",
    "conv3_2_bn",
    "conv3_2_relu",
    "conv3_3_pad",
    "conv3_3",
    "conv3_3_bn",
    "subpixel_pad",
    "subpixel",
    "depth_to_space",
]
CONTEXT_LAYERS = [
    "context_pool",
    "context_conv",
    "context_conv_bn",
    "context_conv_relu",
    "context_broadcast",
    "context_concat",
]


def test_context_off_is_table_1_exactly(model):
    assert [layer.name for layer in model.layers] == TABLE_1_LAYERS
    assert build_model(context="none").count_params() == 2_057_952


@pytest.fixture(scope="module")
def context_model():
    keras.utils.set_random_seed(5)
    return build_model(context="image_pooling")


def test_context_branch_joins_before_the_subpixel_layer(context_model):
    names = [layer.name for layer in context_model.layers]
    assert sorted(set(names) - set(TABLE_1_LAYERS)) == sorted(CONTEXT_LAYERS)
    assert [n for n in names if n in TABLE_1_LAYERS] == TABLE_1_LAYERS
    # The subpixel convolution reads conv3_3's 128 channels and the context's 128.
    assert context_model.get_layer("subpixel").kernel.shape == (3, 3, 256, 32)
    # + 1x1 conv 128->128 (no bias) + its batch norm + 128 more subpixel input channels.
    assert context_model.count_params() == 2_057_952 + 128 * 128 + 4 * 128 + 3 * 3 * 128 * 32
    assert receptive_field(TABLE_1, context="image_pooling") is WHOLE_IMAGE is None
    assert receptive_field(TABLE_1, context="none") == 77
    with pytest.raises(ValueError, match="context must be one of none, image_pooling"):
        build_model(context="aspp")


def test_context_makes_every_pixel_see_the_whole_image(model, context_model):
    """A change in one corner reaches the opposite corner only through the context: at
    128x128 the two corners are 127 pixels apart, beyond the 77-pixel field."""
    rng = np.random.default_rng(0)
    image = rng.normal(size=(1, 128, 128, 3)).astype(np.float32)
    changed = image.copy()
    changed[:, :8, :8] += 5.0
    for network, reaches in ((model, False), (context_model, True)):
        difference = np.abs(np.asarray(network(changed)) - np.asarray(network(image)))
        assert difference[0, :8, :8].max() > 1e-3  # the changed corner itself moves
        assert (difference[0, -8:, -8:].max() > 1e-5) == reaches


def test_context_model_loads_in_safe_mode(context_model, tmp_path):
    path = str(tmp_path / "c.keras")
    context_model.save(path)
    loaded = keras.models.load_model(path, safe_mode=True)
    assert [layer.name for layer in loaded.layers] == [layer.name for layer in context_model.layers]
    x = np.random.default_rng(1).normal(size=(2, 32, 48, 3)).astype(np.float32)
    np.testing.assert_allclose(np.asarray(loaded(x)), np.asarray(context_model(x)), atol=1e-5)


def test_fused_batch_norm_trains_the_network_as_keras_batch_norm():
    """One training-mode pass of the whole network from the same weights: the same
    loss, gradients and moving statistics with the fused layer as with Keras' own."""
    import tensorflow as tf

    rng = np.random.default_rng(0)
    images = tf.constant(rng.normal(size=(2, 32, 32, 3)).astype(np.float32))
    labels = tf.constant((rng.random((2, 32, 32)) > 0.6).astype(np.int32))
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    results = []
    reference = build_model(fused_batch_norm=False)
    for fused in (False, True):
        network = build_model(fused_batch_norm=fused)
        network.set_weights(reference.get_weights())
        with tf.GradientTape() as tape:
            loss = loss_fn(labels, network(images, training=True))
        grads = tape.gradient(loss, network.trainable_weights)
        moving = [w.numpy() for w in network.non_trainable_weights]
        results.append((float(loss), [g.numpy() for g in grads], moving))
    (loss_a, grads_a, moving_a), (loss_b, grads_b, moving_b) = results
    assert loss_b == pytest.approx(loss_a, rel=1e-5)
    for a, b in zip(grads_a + moving_a, grads_b + moving_b):
        np.testing.assert_allclose(b, a, rtol=1e-3, atol=1e-4 * np.abs(a).max())
    kinds = {type(layer) for layer in build_model().layers}
    assert layers.BatchNormalization in kinds and keras.layers.BatchNormalization not in kinds


@pytest.mark.parametrize("fused_first", [True, False])
def test_weights_move_between_the_fused_and_the_keras_batch_norm(tmp_path, fused_first):
    # A run backed up before the fused layer resumes with it, and the other way round:
    # Keras files name a layer's weights by its class name, which the two share.
    source = build_model(fused_batch_norm=fused_first)
    rng = np.random.default_rng(1)
    source.set_weights([rng.normal(size=w.shape).astype(np.float32) for w in source.weights])
    path = str(tmp_path / "weights.weights.h5")
    source.save_weights(path)
    target = build_model(fused_batch_norm=not fused_first)
    target.load_weights(path)
    for a, b in zip(source.get_weights(), target.get_weights()):
        np.testing.assert_array_equal(a, b)
