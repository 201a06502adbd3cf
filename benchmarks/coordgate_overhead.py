"""Cost of CoordGate next to the convolutions it gates: one XLA training step.

Builds the same conv stack with and without a CoordGate after each conv and times
`train_on_batch` (jit_compile=True) on whatever backend and device Keras uses.

    python -m benchmarks.coordgate_overhead [--size 256 --batch 16 --filters 32]

Writes benchmarks/results/coordgate_overhead_<backend>_<device>.{md,json}.
"""

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from coordgate_keras.layers import CoordGate  # noqa: E402
from coordgate_keras.utils import atomic_io, system  # noqa: E402

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")


def conv_stack(size, filters, convs, gated, encoding):
    inputs = keras.Input((size, size, 1))
    x = inputs
    for i in range(convs):
        x = keras.layers.Conv2D(filters, 3, padding="same", activation="relu")(x)
        if gated:
            x = CoordGate(encoding=encoding, name=f"gate{i}")(x)
    outputs = keras.layers.Conv2D(1, 3, padding="same")(x)
    return keras.Model(inputs, outputs)


def device_name():
    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        return jax.devices()[0].device_kind
    if backend == "tensorflow":
        import tensorflow as tf

        gpus = tf.config.list_physical_devices("GPU")
        return "GPU" if gpus else f"CPU x{os.cpu_count()}"
    return backend


def time_steps(model, x, y, warmup, runs):
    model.compile(optimizer="adam", loss="mse", jit_compile=True)
    for _ in range(warmup):
        float(model.train_on_batch(x, y))
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        float(model.train_on_batch(x, y))  # float() waits for the device
        times.append(time.perf_counter() - start)
    return float(np.median(times)) * 1e3


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--filters", type=int, default=32)
    parser.add_argument("--convs", type=int, default=4)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--precision", default="float32")
    args = parser.parse_args()
    keras.config.set_dtype_policy(args.precision)
    rng = np.random.default_rng(0)
    x = rng.random((args.batch, args.size, args.size, 1), dtype=np.float32)
    y = rng.random((args.batch, args.size, args.size, 1), dtype=np.float32)
    rows = []
    for label, gated, encoding in [
        ("plain convs", False, None),
        ("+ CoordGate mlp", True, "mlp"),
        ("+ CoordGate fourier", True, "fourier"),
        ("+ CoordGate map", True, "map"),
    ]:
        model = conv_stack(args.size, args.filters, args.convs, gated, encoding)
        ms = time_steps(model, x, y, args.warmup, args.runs)
        rows.append({"model": label, "params": model.count_params(), "step_ms": ms})
        print(f"{label:22s} step={ms:8.2f} ms", flush=True)
    base = rows[0]["step_ms"]
    for row in rows:
        row["relative"] = row["step_ms"] / base
    meta = {
        "command": "python -m benchmarks.coordgate_overhead "
        + " ".join(f"--{k} {v}" for k, v in vars(args).items()),
        **system.environment(),
        "device": device_name(),
    }
    tag = f"{meta['backend']}_{meta['device']}".replace(" ", "_").lower()
    atomic_io.atomic_write_json(
        os.path.join(RESULTS, f"coordgate_overhead_{tag}.json"),
        {"meta": meta, "rows": rows},
    )
    lines = [
        f"# CoordGate overhead: {meta['backend']} on {meta['device']}",
        "",
        f"`{meta['command']}` (Keras {meta['keras']}); median of {args.runs} XLA "
        f"training steps, batch {args.batch}, {args.size}x{args.size}x1, "
        f"{args.convs} convs of {args.filters} filters, {args.precision}.",
        "",
        "| model | params | step (ms) | relative |",
        "|---|---:|---:|---:|",
    ]
    lines += [
        f"| {r['model']} | {r['params']:,} | {r['step_ms']:.2f} | {r['relative']:.3f} |"
        for r in rows
    ]
    atomic_io.atomic_write_text(
        os.path.join(RESULTS, f"coordgate_overhead_{tag}.md"), "\n".join(lines) + "\n"
    )
    print("\n".join(lines))


if __name__ == "__main__":
    main()
