import pytest

from lesionseg_tf import profiling

# (type, name) of ops as TensorFlow 2.21's profiler names them in a training step of the
# model on a CPU, with the part each belongs to.
RECORDED_OPS = [
    ("_MklNativeConv2D", "lesionseg_1/conv3_1_1/convolution", "convolution (forward)"),
    ("_MklNativeFusedConv2D", "lesionseg_1/subpixel_1/BiasAdd", "convolution (forward)"),
    (
        "_MklNativeConv2DBackpropInput",
        "gradient_tape/lesionseg_1/conv3_1_1/convolution/Conv2DBackpropInput",
        "convolution (input gradient)",
    ),
    (
        "_MklNativeConv2DBackpropFilterWithBias",
        "gradient_tape/lesionseg_1/subpixel_1/convolution/Conv2DBackpropFilter",
        "convolution (filter gradient)",
    ),
    ("SpaceToBatchND", "lesionseg_1/conv3_2_1/convolution/SpaceToBatchND", "atrous reshuffle"),
    ("Tile", "gradient_tape/lesionseg_1/conv1_1_bn_1/moments/Tile", "batch normalization"),
    (
        "_MklNativeFusedBatchNormEx",
        "lesionseg_1/conv1_1_bn_1/FusedBatchNormV3",
        "batch normalization",
    ),
    ("Mul", "gradient_tape/lesionseg/context_conv_bn/batchnorm/mul/Mul", "batch normalization"),
    ("MirrorPadGrad", "gradient_tape/lesionseg_1/conv3_3_pad_1/MirrorPadGrad", "mirror padding"),
    ("ReluGrad", "gradient_tape/lesionseg_1/conv2_1_relu_1/ReluGrad", "ReLU"),
    ("Cast", "lesionseg_1/conv3_1_bn_1/Cast", "casts"),
    ("ReverseV2", "augment/ReverseV2_1", "augmentation"),
    (
        "SparseSoftmaxCrossEntropyWithLogits",
        "compile_loss/sparse_categorical_crossentropy/SparseSoftmaxCrossEntropyWithLogits",
        "loss",
    ),
    ("ArgMax", "jaccard/ArgMax", "metric"),
    ("Square", "adam_1/Square_24", "optimizer"),
    ("AddN", "AddN", "gradient sums"),
    ("AssignAdd", "AddN/tmp_var_accum", "gradient sums"),
    ("Dataset", "Iterator::Root::Prefetch", "input pipeline"),
    ("DepthToSpace", "lesionseg_1/depth_to_space_1/DepthToSpace", "depth-to-space"),
    ("ReverseV2", "ReverseV2", "other"),
]


@pytest.mark.parametrize("op_type,name,part", RECORDED_OPS)
def test_each_recorded_op_is_put_in_its_part(op_type, name, part):
    assert profiling.part_of(op_type, op_name=name) == part


def test_summary_shares_add_up_and_rank_the_ops():
    ops = [
        ("_MklNativeConv2D", "lesionseg/conv1_1/convolution", 60.0),
        ("MirrorPad", "lesionseg/conv1_2_pad/MirrorPad", 30.0),
        ("Mul", "gradient_tape/lesionseg/conv1_1_bn/batchnorm/mul", 10.0),
    ]
    shares, top = profiling.summarize(ops)
    assert shares == pytest.approx(
        {"convolution (forward)": 0.6, "batch normalization": 0.1, "mirror padding": 0.3}
    )
    assert list(shares) == ["convolution (forward)", "batch normalization", "mirror padding"]
    assert [name for _, _, name in top][0] == "lesionseg/conv1_1/convolution"
    with pytest.raises(ValueError, match="no op time"):
        profiling.summarize([])


@pytest.mark.slow
@pytest.mark.parametrize("fused", [True, False])
def test_a_profiled_step_shows_every_part_of_training(tmp_path, fused):
    seconds = profiling.profile_steps(
        image_size=32,
        batch_size=2,
        mixed_precision="none",
        warm_up_steps=1,
        steps=1,
        logdir=str(tmp_path),
        fused_batch_norm=fused,
    )
    assert seconds > 0
    ops = profiling.read_op_stats(str(tmp_path))
    shares, _ = profiling.summarize(ops)
    for part in (
        "convolution (forward)",
        "convolution (input gradient)",
        "convolution (filter gradient)",
        "batch normalization",
        "mirror padding",
        "augmentation",
        "loss",
        "metric",
        "optimizer",
    ):
        assert shares.get(part, 0) > 0, part
    batch_norm_kernels = {
        op_type
        for op_type, name, _ in ops
        if profiling.part_of(op_type, op_name=name) == "batch normalization"
    }
    # The fused layer is one kernel forward and one backward; Keras' own is many ops.
    assert any("FusedBatchNorm" in t for t in batch_norm_kernels) == fused
    assert ("Mean" in batch_norm_kernels) == (not fused)


def test_reading_a_folder_without_a_profile_names_it(tmp_path):
    with pytest.raises(FileNotFoundError, match=str(tmp_path)):
        profiling.read_op_stats(str(tmp_path))


@pytest.mark.parametrize("name", ["conv1_1", "conv2_1", "conv3_1", "subpixel"])
def test_each_kernel_computes_the_gradient_it_is_named_for(name):
    """A convolution is bilinear: <dy, conv(x, k)> = <x, input gradient> = <k, filter
    gradient> for the gradients with upstream dy. It holds only where each timed kernel
    computes what it is named for (the strided conv2_1 and the atrous conv3_1 among
    them)."""
    import numpy as np  # pylint: disable=import-outside-toplevel
    import tensorflow as tf  # pylint: disable=import-outside-toplevel

    from lesionseg_tf.model import build_model  # pylint: disable=import-outside-toplevel

    layers = profiling.convolution_layers(build_model(32))
    assert layers[0][0].name == "conv1_1"  # the one whose input is the image
    layer = next(layer for layer, _ in layers if layer.name == name)
    rng = np.random.default_rng(0)
    x = tf.constant(rng.normal(size=(2, *layer.input.shape[1:])), tf.float64)
    dy = tf.constant(rng.normal(size=(2, *layer.output.shape[1:])), tf.float64)
    kernels = profiling.convolution_kernels(layer, x=x, dy=dy, image_input=name == "conv1_1")
    kernel = tf.cast(layer.kernel, tf.float64)
    products = dy * kernels["forward"]()
    pairing = float(tf.reduce_sum(products))
    # The sum's own size: a sum of random signs may be near 0, its terms are not.
    tolerance = 1e-9 * float(tf.reduce_sum(tf.abs(products)))
    assert tolerance > 0  # not a pairing of zeros
    filter_gradient = kernels["filter gradient"]()
    assert float(tf.reduce_sum(kernel * filter_gradient)) == pytest.approx(pairing, abs=tolerance)
    if name == "conv1_1":
        assert kernels["input gradient"] is None
    else:
        input_gradient = kernels["input gradient"]()
        assert float(tf.reduce_sum(x * input_gradient)) == pytest.approx(pairing, abs=tolerance)


@pytest.mark.slow
def test_the_command_prints_each_kernel_against_the_peak():
    import re  # pylint: disable=import-outside-toplevel

    from tests.conftest import run_script  # pylint: disable=import-outside-toplevel

    result = run_script(
        "-m tools.profile_step",
        "--image_size=32",
        "--batch_size=2",
        "--precisions=bfloat16",
        "--warm_up_steps=1",
        "--steps=1",
        "--kernels",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout
    peak = float(re.search(r"bfloat16 matmul peak, ([\d.]+) GFLOP/s", out).group(1))
    rows = re.findall(r"^  (conv\S+|subpixel)\s+(\S+)((?:\s+(?:-|\d+ \(\s*\d+%\)))+)$", out, re.M)
    assert [name for name, _, _ in rows] == [
        "conv1_1", "conv1_2", "conv1_3", "conv2_1", "conv2_2", "conv2_3",
        "conv3_1", "conv3_2", "conv3_3", "subpixel",
    ]  # fmt: skip
    assert rows[0][1] == "2x36x36x3"  # the image, mirror-padded by 2 for the 5x5 kernel
    cells = [re.findall(r"-|(\d+) \(\s*(\d+)%\)", row[2]) for row in rows]
    assert cells[0][1] == ("", "")  # conv1_1 has no input gradient: "-"
    for row in cells:
        for gflops, share in row:
            if gflops:  # the share is of the peak printed above the table
                assert int(share) == pytest.approx(100 * int(gflops) / peak, abs=1.5)
    step = float(re.search(r"batch 2, bfloat16, fused batch norm: ([\d.]+) s a step", out).group(1))
    total, of_step, share = re.search(
        r"one after another: ([\d.]+) s of the step's ([\d.]+) s \((\d+)%\)", out
    ).groups()
    # the same step time, printed to 0.005 s above and to 0.0005 s here (0.0454 s: 0.05, 0.045)
    assert float(of_step) == pytest.approx(step, abs=0.005 + 0.0005 + 1e-9)
    total, of_step = float(total), float(of_step)  # printed to 0.0005 s, the share to 0.5%
    low, high = (total - 5e-4) / (of_step + 5e-4), (total + 5e-4) / (of_step - 5e-4)
    assert 100 * low - 0.5 <= int(share) <= 100 * high + 0.5
