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
