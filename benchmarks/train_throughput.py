"""Training throughput: images/s of the train step, and of the input pipelines.

Times the step `train()` compiles (Adam, MSE, the PSNR metric, residual
network) on a fixed batch of 256x256 images, for each model, XLA mode and
precision, with `train_on_batch` (median of `--runs`, after `--warmup`);
then the same step with the `DeviceSimulator` (blur and noise on the device)
in front of the network, and the host simulator's pairs/s (NumPy blur and
noise, threads over the cores) — the input rates to set against the step
rate. On JAX, XLA off means op-by-op dispatch and is skipped.

    python -m benchmarks.train_throughput --quick        # CPU: 1 warm-up, 1 run
    KERAS_BACKEND=jax python -m benchmarks.train_throughput --peak-tflops 989

Model FLOP utilisation (MFU) = 3 x 2 x forward MACs x images/s / peak, with
the forward MACs of `docs/MODELS.md`; pass the device's peak dense TFLOP/s
for the precision (e.g. 989 for H100 bf16) to get it. Writes
benchmarks/results/train_throughput_<backend>_<device>.{md,json}.
"""

import argparse
import importlib
import json
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from benchmarks import _environment  # noqa: E402
from coordgate_keras.training import TrainConfig, _data, _scene_pool  # noqa: E402
from coordgate_keras.utils import atomic_io, system  # noqa: E402
from coordgate_keras.zoo import _model_table, create_model  # noqa: E402

# The module (the package re-exports the function `train` under the same name).
train = importlib.import_module("coordgate_keras.training.train")
RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")


def device_name():
    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        device = jax.devices()[0]
        return (
            device.device_kind
            if device.platform == "gpu"
            else f"cpu x{system.usable_cpus()}"
        )
    if backend == "tensorflow":
        import tensorflow as tf

        gpus = tf.config.list_physical_devices("GPU")
        return "gpu" if gpus else f"cpu x{system.usable_cpus()}"
    return backend


def environment():
    return {
        "command": _environment.command(),
        **system.environment(),
        "device": device_name(),
    }


def time_step(model, x, y, warmup, runs):
    for _ in range(warmup):
        float(model.train_on_batch(x, y)[0])
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        float(model.train_on_batch(x, y)[0])  # float() waits for the device
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def step_rate(cfg, args, x, y, simulator=None, field=None):
    """Images/s of one compiled train step of `cfg.model` (and its MACs)."""
    keras.config.set_dtype_policy(cfg.precision)
    try:
        network = create_model(cfg.model, input_shape=x.shape[1:], **cfg.model_kwargs)
        sample = _data.Data(x.shape[1:], None, simulator, None, None, "", "")
        model = train._trainer_model(network, sample)
        model.compile(
            optimizer=train._optimizer(cfg),
            loss=train.get_loss(cfg.loss),
            metrics=[keras.metrics.MeanMetricWrapper(train.psnr_metric, name="psnr")],
            jit_compile=cfg.xla == "on",
        )
        assert bool(model.jit_compile) == (cfg.xla == "on")
        seconds = time_step(model, x, y, args.warmup, args.runs)
        macs = _model_table.count_macs(network)
        return len(x) / seconds, macs, network.count_params()
    finally:
        keras.config.set_dtype_policy("float32")
        keras.backend.clear_session()


def host_input_rate(cfg, batches, cache_dir):
    """Pairs/s of the NumPy simulator (blur + noise), threads over the cores."""
    data = _data.build(cfg, "host", cache_dir, log=lambda m: None)
    data.make_batch(0)  # plan and pool
    start = time.perf_counter()
    for _ in _data.Prefetcher(
        data.make_batch, 1, 1 + batches, workers=system.usable_cpus()
    ):
        pass
    return batches * cfg.batch_size / (time.perf_counter() - start)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="coordgate_unet_d2,unet_d4")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--xla", default="off,on")
    parser.add_argument("--precision", default="float32,mixed_bfloat16")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument(
        "--quick",
        action="store_true",
        help="1 warm-up and 1 timed step (a 256x256 batch-16 step takes one to "
        "several minutes on 2 shared cores)",
    )
    parser.add_argument("--peak-tflops", type=float, default=None)
    parser.add_argument("--cache-dir", default=None)
    parser.add_argument("--out", default=RESULTS)
    args = parser.parse_args()
    if args.quick:
        args.warmup, args.runs = 1, 1
    env = environment()
    backend = env["backend"]
    base = TrainConfig(image_size=args.size, batch_size=args.batch)
    field = _data.psf_field(base)
    rng = np.random.default_rng(0)
    shape = (args.batch, args.size, args.size, 1)
    y = rng.random(shape, dtype=np.float32)
    x = np.clip(y + 0.05 * rng.standard_normal(shape, dtype=np.float32), 0, 1)
    rows = []
    for name in args.models.split(","):
        for precision in args.precision.split(","):
            for xla in args.xla.split(","):
                if backend == "jax" and xla == "off":
                    continue
                cfg = base.replace(model=name, precision=precision, xla=xla)
                rate, macs, params = step_rate(cfg, args, x, y)
                row = dict(
                    model=name, params=params, precision=precision, xla=xla,
                    step="network", images_per_second=round(rate, 2),
                    forward_gmacs=round(macs / 1e9, 2),
                )  # fmt: skip
                if args.peak_tflops:
                    row["mfu"] = round(6 * macs * rate / (args.peak_tflops * 1e12), 4)
                rows.append(row)
                print(json.dumps(row), flush=True)
    # The full step with the device simulator, for the first model, XLA as on
    # a GPU (on), each precision.
    from coordgate_keras.training import DeviceSimulator

    for precision in args.precision.split(","):
        cfg = base.replace(
            model=args.models.split(",")[0], precision=precision, xla="on"
        )
        simulator = DeviceSimulator(
            field, (args.size, args.size), noise=base.noise, seed=0
        )
        rate, macs, params = step_rate(cfg, args, y, y, simulator=simulator)
        row = dict(
            model=cfg.model, params=params, precision=precision, xla="on",
            step="device simulator + network", images_per_second=round(rate, 2),
            forward_gmacs=round(macs / 1e9, 2),
        )  # fmt: skip
        rows.append(row)
        print(json.dumps(row), flush=True)
    cache_dir = args.cache_dir or _scene_pool.default_cache_dir()
    host = host_input_rate(
        base.replace(train_images=64), 4 if args.quick else 16, cache_dir
    )
    print(json.dumps({"host_simulator_pairs_per_second": round(host, 2)}), flush=True)
    env["load_average_at_end"] = [round(v, 2) for v in os.getloadavg()]
    write(args, env, rows, host)


def write(args, env, rows, host):
    os.makedirs(args.out, exist_ok=True)
    tag = f"{env['backend']}_{env['device']}".lower().replace(" ", "_")
    stem = os.path.join(args.out, f"train_throughput_{tag}")
    result = {"environment": env, "rows": rows, "host_simulator_pairs_per_second": host}
    atomic_io.atomic_write_json(stem + ".json", result)
    mfu = any("mfu" in r for r in rows)
    lines = [
        f"# Training throughput: {env['backend']} on {env['device']}",
        "",
        f"`{env['command']}` (Keras {env['keras']}); {args.size}x{args.size}x1, "
        f"batch {args.batch}, median of {args.runs} `train_on_batch` steps after "
        f"{args.warmup} warm-up; {env['cpu_model']}, {env['cpus_usable']} usable "
        f"cores, load average {env['load_average_at_start']} at start and "
        f"{env['load_average_at_end']} at the end (shared machine: with one "
        "timed step and a changing load, compare rows with care).",
        "",
        "| model | params | fwd GMAC/img | precision | XLA | step | img/s |"
        + (" MFU |" if mfu else ""),
        "|---|---:|---:|---|---|---|---:|" + ("---:|" if mfu else ""),
    ]
    for r in rows:
        line = (
            f"| {r['model']} | {r['params']:,} | {r['forward_gmacs']} | "
            f"{r['precision']} | {r['xla']} | {r['step']} | {r['images_per_second']} |"
        )
        if mfu:
            line += f" {r.get('mfu', '')} |"
        lines.append(line)
    lines += [
        "",
        "Input: the host simulator (NumPy product-convolution blur + Poisson/Gaussian "
        "noise, Zernike 8x8 field of 31 px PSFs, threads over "
        f"{env['cpus_usable']} cores) "
        f"makes {host:.1f} pairs/s; the device simulator's cost is the difference "
        "between the 'device simulator + network' and 'network' rows.",
        "",
    ]
    atomic_io.atomic_write_text(stem + ".md", "\n".join(lines))
    print(f"wrote {stem}.md")


if __name__ == "__main__":
    main()
