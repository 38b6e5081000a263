import pytest

from tools import benchmark_training


def test_flop_count_from_the_layers():
    # Table 1 at 448x448 written out: (output side, kernel, input channels, filters).
    rows = [
        (224, 5, 3, 64),
        (224, 3, 64, 96),
        (224, 1, 96, 96),
        (112, 3, 96, 128),
        (112, 3, 128, 256),
        (112, 1, 256, 256),
        (112, 3, 256, 256),
        (112, 3, 256, 256),
        (112, 3, 256, 128),
        (112, 3, 128, 32),
    ]
    per_layer = [2 * side * side * k * k * cin * cout for side, k, cin, cout in rows]
    forward, training = benchmark_training.conv_flops(448)
    assert forward == sum(per_layer)
    assert forward / 1e9 == pytest.approx(56.7, abs=0.05)  # "about 57 GFLOPs"
    assert training == 3 * sum(per_layer) - per_layer[0]  # no input gradient for the image


@pytest.mark.slow
def test_train_benchmark_runs_and_reports_consistent_figures(monkeypatch):
    monkeypatch.setattr(benchmark_training, "matmul_gflops", lambda dtype: 123.0)  # 20 s saved
    result = benchmark_training.run_train_benchmark(image_size=32, batch_size=2, steps=1)
    assert result["images_per_s"] > 0 and result["matmul_gflops"] == 123.0
    assert result["achieved_gflops"] == pytest.approx(
        result["images_per_s"] * result["train_gflop_per_image"]
    )
    assert result["ratio_to_matmul"] == pytest.approx(
        result["achieved_gflops"] / result["matmul_gflops"]
    )


@pytest.mark.slow
def test_train_benchmark_rounds_steps_to_whole_executions(monkeypatch):
    monkeypatch.setattr(benchmark_training, "matmul_gflops", lambda dtype: 1.0)  # timed above
    result = benchmark_training.run_train_benchmark(
        image_size=32, batch_size=2, steps=3, steps_per_execution=2
    )
    assert result["steps"] == 4 and result["steps_per_execution"] == 2


def test_verdict_line():
    compute = benchmark_training.verdict(100.0, 900.0)
    assert compute.startswith(
        "verdict: training 100 images/s, cached input pipeline 900 images/s (9x): compute-bound"
    )
    # A CPU's rate at 448 keeps its digits.
    assert "training 0.0375 images/s, cached input pipeline 592 images/s (15787x)" in (
        benchmark_training.verdict(0.0375, 592.0)
    )
    assert "\n" not in compute
    starved = benchmark_training.verdict(1500.0, 1000.0)
    assert "(0.667x): input-bound" in starved and "--cache" in starved
    assert "input-bound" in benchmark_training.verdict(100.0, 149.0)


def test_precision_table_puts_each_precisions_runs_side_by_side():
    def run(size, precision, rate, share):
        return {
            "image_size": size,
            "batch_size": 32,
            "mixed_precision": precision,
            "images_per_s": rate,
            "ratio_to_matmul": share,
        }

    runs = [
        run(64, "none", 80.0, 0.5),
        run(64, "bfloat16", 120.0, 0.3),
        run(64, "none", 82.5, 0.52),
        run(64, "bfloat16", 118.0, 0.29),
        run(128, "bfloat16", 30.0, 0.31),
        run(128, "none", 21.0, 0.55),
    ]
    table = benchmark_training.precision_table(runs).splitlines()
    assert table[2:] == [
        "| 64 | 32 | float32 | 80.00, 82.50 | 50%, 52% |",
        "| 64 | 32 | bfloat16 | 120.00, 118.00 | 30%, 29% |",
        "| 128 | 32 | float32 | 21.00 | 55% |",
        "| 128 | 32 | bfloat16 | 30.00 | 31% |",
    ]
