"""`benchmark`: latency percentiles from the LiteRT interpreter."""

import pytest

from coordgate_keras.tflite import benchmark


@pytest.mark.parametrize("quantization", ["none", "int8"])
def test_benchmark_percentiles(registry_export, quantization):
    _, path, _ = registry_export("unet_d2", quantization)
    result = benchmark(path, threads=2, runs=5, warmup=1)
    assert result["threads"] == 2 and result["runs"] == 5
    assert 0 < result["min_ms"] <= result["p50_ms"] <= result["p90_ms"]
    assert result["p90_ms"] <= result["p99_ms"] <= result["max_ms"]
    assert result["min_ms"] <= result["mean_ms"] <= result["max_ms"]


def test_benchmark_arguments(registry_export):
    _, path, _ = registry_export("unet_d2")
    with pytest.raises(
        ValueError,
        match=r"Invalid value for argument `threads`\. Expected a positive integer\. "
        r"Received: threads=0",
    ):
        benchmark(path, threads=0)
    with pytest.raises(
        ValueError,
        match=r"Invalid value for argument `warmup`\. Expected a non-negative "
        r"integer\. Received: warmup=-1",
    ):
        benchmark(path, warmup=-1)
    assert benchmark(path, runs=1, warmup=0)["runs"] == 1


def test_benchmark_interleaves_several_files(registry_export):
    paths = [registry_export("unet_d2")[1], registry_export("unet_d2", "int8")[1]]
    results = benchmark(paths, runs=3, warmup=0)
    assert isinstance(results, list) and len(results) == 2
    assert all(r["runs"] == 3 and r["min_ms"] > 0 for r in results)
