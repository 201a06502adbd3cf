"""Latency of `.tflite` files with the LiteRT interpreter."""

import os
import time

import numpy as np

from coordgate_keras.utils import argument_validation as av


def benchmark(tflite_path, threads=1, runs=50, warmup=5, seed=0):
    """Measures batch latency of `.tflite` files with the LiteRT interpreter.

    The interpreter (`ai_edge_litert`, default CPU delegates: XNNPACK for float
    models) runs `warmup` untimed invocations, then `runs` timed ones on a
    fixed random input in [0, 1] (quantized for integer inputs). Only
    `invoke()` is timed. Given several files, their runs are interleaved
    (round robin), so load from other processes falls on all of them alike
    and their ratios stay meaningful on a shared machine. A tile model's
    `origin` input is zero (the cost does not depend on it).

    Args:
        tflite_path: path of a `.tflite` file, or a list of paths.
        threads: int. Interpreter threads.
        runs: int. Timed invocations per file.
        warmup: int. Untimed invocations first (0 allowed).
        seed: int. Seed of the input.

    Returns:
        A dict (a list of dicts for a list of paths): `threads`, `runs`,
        latency percentiles `p50_ms`, `p90_ms`, `p99_ms`, and `mean_ms`,
        `min_ms`, `max_ms`.

    Example:

    >>> from coordgate_keras.tflite import benchmark
    >>> benchmark("model.tflite", threads=2, runs=20)["p50_ms"]  # doctest: +SKIP
    41.7
    """
    from ai_edge_litert.interpreter import Interpreter

    from coordgate_keras.tflite.verification import quantize_input

    threads = av.positive_int(threads, "threads")
    runs = av.positive_int(runs, "runs")
    warmup = av.non_negative_int(warmup, "warmup")
    paths = list(tflite_path) if isinstance(tflite_path, (list, tuple)) else None
    interpreters = []
    for path in paths if paths is not None else [tflite_path]:
        interpreter = Interpreter(model_path=os.fspath(path), num_threads=threads)
        interpreter.allocate_tensors()
        for detail in interpreter.get_input_details():
            if "origin" in detail["name"]:
                # A tile model's origin: the frame's top-left tile.
                value = np.zeros(detail["shape"], detail["dtype"])
            else:
                x = np.random.default_rng(seed).uniform(0.0, 1.0, detail["shape"])
                value = quantize_input(x, detail)
            interpreter.set_tensor(detail["index"], value)
        interpreters.append(interpreter)
    for _ in range(warmup):
        for interpreter in interpreters:
            interpreter.invoke()
    times = np.empty((runs, len(interpreters)))
    for i in range(runs):
        for j, interpreter in enumerate(interpreters):
            start = time.perf_counter()
            interpreter.invoke()
            times[i, j] = time.perf_counter() - start
    results = [_summary(column * 1e3, threads) for column in times.T]
    return results if paths is not None else results[0]


def _summary(times, threads):
    return {
        "threads": threads,
        "runs": len(times),
        "p50_ms": float(np.percentile(times, 50)),
        "p90_ms": float(np.percentile(times, 90)),
        "p99_ms": float(np.percentile(times, 99)),
        "mean_ms": float(times.mean()),
        "min_ms": float(times.min()),
        "max_ms": float(times.max()),
    }
