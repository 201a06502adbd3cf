"""Throughput (images/s) of the (blurred, sharp) tf.data pipelines on this machine.

Measures each stage alone (procedural scenes, in-graph blur, noise) and the whole
pipeline: generated on the fly (`deblur_dataset`), pre-generation to disk
(`write_deblur_dataset`) and reading it back (`load_deblur_dataset`).

    python -m benchmarks.data_pipeline                   # defaults, ~3 min on 2 cores
    python -m benchmarks.data_pipeline --size 128 --batches 10

Writes benchmarks/results/data_pipeline.{md,json}.
"""

import argparse
import json
import os
import pathlib
import shutil
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import tensorflow as tf  # noqa: E402

from benchmarks import _environment  # noqa: E402
from coordgate_keras import data  # noqa: E402
from coordgate_keras.utils import atomic_io  # noqa: E402

RESULTS = pathlib.Path(__file__).resolve().parent / "results"


def dataset_rate(dataset, batches, warmup):
    """Images/s over `batches` batches, after `warmup` batches."""
    iterator = iter(dataset)
    for _ in range(warmup):
        next(iterator)
    count = 0
    start = time.perf_counter()
    for _ in range(batches):
        blurred, _ = next(iterator)
        count += int(blurred.shape[0])
    return count / (time.perf_counter() - start)


def call_rate(fn, images_per_call, calls):
    fn()
    start = time.perf_counter()
    for _ in range(calls):
        fn()
    return images_per_call * calls / (time.perf_counter() - start)


def make_field(kind, grid, kernel_size):
    if kind == "zernike":
        return data.zernike_psf_field(grid_shape=grid, kernel_size=kernel_size)
    return data.gaussian_psf_field(grid_shape=grid, kernel_size=kernel_size)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--batches", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--field", choices=["zernike", "gaussian"], default="zernike")
    parser.add_argument("--kernel-size", type=int, default=21)
    parser.add_argument("--grid", type=int, nargs=2, default=[8, 8])
    parser.add_argument("--rank", type=int, default=8, help="low-rank variant")
    parser.add_argument("--disk-images", type=int, default=256)
    parser.add_argument("--output-dir", type=pathlib.Path, default=RESULTS)
    args = parser.parse_args(argv)

    env = _environment.describe()
    shape = (args.size, args.size)
    bs = args.batch_size
    field = make_field(args.field, tuple(args.grid), args.kernel_size)
    n_infinite = 10**9  # indices only; nothing is materialised
    rows = []

    def record(name, rate, note=""):
        rows.append({"stage": name, "images_per_s": rate, "note": note})
        print(json.dumps(rows[-1]), flush=True)

    # === Stages alone ===
    scenes = (
        tf.data.Dataset.range(n_infinite)
        .map(
            lambda i: tf.numpy_function(
                lambda j: data.microscopy_scene(shape, seed=(0, int(j)))[..., None],
                [i],
                tf.float32,
            ),
            num_parallel_calls=tf.data.AUTOTUNE,
        )
        .map(lambda s: (s, s))
        .batch(bs)
        .prefetch(tf.data.AUTOTUNE)
    )
    record(
        "procedural scenes only",
        dataset_rate(scenes, args.batches, args.warmup),
        "NumPy via tf.numpy_function, parallel map",
    )
    image = tf.constant(data.microscopy_scene(shape, seed=0)[None, ..., None])
    batch = tf.constant(data.microscopy_scenes(bs, shape, seed=0))
    for rank in (None, args.rank):
        blur = tf.function(lambda x, r=rank: data.blur_fast_tf(x, field, rank=r))
        label = "exact operator" if rank is None else f"rank {rank}"
        record(
            f"blur_fast_tf only, 1 image/call ({label})",
            call_rate(lambda b=blur: b(image).numpy(), 1, 2 * args.batches),
        )
        record(
            f"blur_fast_tf only, {bs} images/call ({label})",
            call_rate(lambda b=blur: b(batch).numpy(), bs, max(args.batches // 4, 2)),
        )
    noise = data.NoiseModel()
    add_noise = tf.function(lambda x, s: noise.apply_tf(x, s))
    seed = tf.constant([0, 1], tf.int64)
    record(
        "NoiseModel.apply_tf only",
        call_rate(lambda: add_noise(image[0], seed).numpy(), 1, 2 * args.batches),
    )

    # === Whole pipelines ===
    for rank in (None, args.rank):
        ds = data.deblur_dataset(
            field, image_shape=shape, num_images=n_infinite, batch_size=bs, rank=rank
        )
        label = "exact operator" if rank is None else f"rank {rank} (approximate)"
        record(
            f"deblur_dataset on the fly ({label})",
            dataset_rate(ds, args.batches, args.warmup),
            "scenes + blur + Poisson/Gaussian noise, shuffled, prefetched",
        )
    folder = tempfile.mkdtemp(prefix="coordgate-bench-")
    try:
        start = time.perf_counter()
        data.write_deblur_dataset(
            folder, field, image_shape=shape, num_images=args.disk_images, shard_size=64
        )
        record(
            "write_deblur_dataset (pre-generation)",
            args.disk_images / (time.perf_counter() - start),
            f"{args.disk_images} pairs, float32 .npz shards of 64",
        )
        ds = data.load_deblur_dataset(folder, batch_size=bs).repeat()
        record(
            "load_deblur_dataset from disk",
            dataset_rate(ds, 5 * args.batches, args.warmup),
            "page cache warm; shuffled, prefetched",
        )
    finally:
        shutil.rmtree(folder)

    args.output_dir.mkdir(parents=True, exist_ok=True)
    result = {
        "environment": env,
        "image_shape": shape,
        "batch_size": bs,
        "field": f"{args.field}, grid {tuple(args.grid)}, kernel {args.kernel_size}",
        "rows": rows,
    }
    atomic_io.atomic_write_text(
        args.output_dir / "data_pipeline.json", json.dumps(result, indent=2) + "\n"
    )
    atomic_io.atomic_write_text(args.output_dir / "data_pipeline.md", render(result))
    print(f"wrote {args.output_dir / 'data_pipeline.md'}")
    return 0


def render(result):
    h, w = result["image_shape"]
    lines = [
        "# tf.data pipeline throughput",
        "",
        "Written by `python -m benchmarks.data_pipeline`.",
        "",
        _environment.markdown(result["environment"]),
        "",
        f"Images {h}x{w}x1, batch {result['batch_size']}, PSF field {result['field']}.",
        "",
        "| stage | images/s | note |",
        "|---|---:|---|",
    ]
    for r in result["rows"]:
        lines.append(f"| {r['stage']} | {r['images_per_s']:.1f} | {r['note']} |")
    rates = {r["stage"]: r["images_per_s"] for r in result["rows"]}
    fly = rates.get("deblur_dataset on the fly (exact operator)")
    disk = rates.get("load_deblur_dataset from disk")
    if fly and disk:
        cores = result["environment"]["cpus_usable"]
        lines += [
            "",
            "**Keeping a GPU fed.** A training step consumes images at its own rate "
            "R (images/s); the pipeline must deliver at least R. On the fly, every "
            f"image costs about {cores / fly:.2f} "
            "CPU-seconds here (scene + FFT blur + Poisson sampling; TensorFlow's "
            f"Poisson sampler is CPU-only), so this machine delivers {fly:.0f} "
            f"images/s and R images/s needs about R / {fly / cores:.0f} such "
            "cores (shared here, so pessimistic). Reading pre-generated pairs "
            f"(`write_deblur_dataset` once, then `load_deblur_dataset`) delivers "
            f"{disk:.0f} images/s from the page cache; from a disk it is bounded by "
            f"its bandwidth ({8 * h * w / 1e6:.2f} MB per pair).",
        ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
