import pytest

from lesionseg_tf import benchmark


def test_flop_count_from_the_layers():
    # Table 1 at 448x448 written out: (output side, kernel, input channels, filters).
    rows = [(224, 5, 3, 64), (224, 3, 64, 96), (224, 1, 96, 96), (112, 3, 96, 128),
            (112, 3, 128, 256), (112, 1, 256, 256), (112, 3, 256, 256), (112, 3, 256, 256),
            (112, 3, 256, 128), (112, 3, 128, 32)]
    per_layer = [2 * side * side * k * k * cin * cout for side, k, cin, cout in rows]
    forward, training = benchmark.conv_flops(448)
    assert forward == sum(per_layer)
    assert forward / 1e9 == pytest.approx(56.7, abs=0.05)  # "about 57 GFLOPs"
    assert training == 3 * sum(per_layer) - per_layer[0]  # no input gradient for the image


def test_train_benchmark_runs_and_reports_consistent_figures():
    result = benchmark.run_train_benchmark(image_size=32, batch_size=2, steps=1)
    assert result["images_per_s"] > 0 and result["matmul_gflops"] > 0
    assert result["achieved_gflops"] == pytest.approx(
        result["images_per_s"] * result["train_gflop_per_image"])
    assert result["ratio_to_matmul"] == pytest.approx(
        result["achieved_gflops"] / result["matmul_gflops"])
