"""Does CoordGate keep its advantage when trained on crops of a larger frame?

Frames of 256x256 with the 8x8 Zernike field; every model trains on 64x64 crops
at random origins (on the 4-pixel grid of a depth-2 U-Net), each crop blurred as
that window of the frame (light from a margin of the PSF radius included):

- `coordgate_unet_d2` with origins (the frame form, `zoo.with_frame`): its gates
  see the frame's coordinates at the crop;
- `coordgate_unet_d2` without origins (the one-input model: what training on
  crops did before frame models, every crop looks like a whole frame);
- `unet_d2` (no coordinates).

All are scored on whole held-out frames restored tile by tile (the 16 tiles
covering each frame), with the PSNR of every tile position reported too. Also
measured: the training-step time of the frame form against the one-input model
(`--overhead`), the cost of per-sample origins.

    python -m benchmarks.frame_crops --seeds 0 1 2 --steps 400 \
        --out benchmarks/results/frame_crops
    python -m benchmarks.frame_crops --overhead --out benchmarks/results/frame_crops
"""

import argparse
import json
import os
import time

import numpy as np

MODELS = (
    ("coordgate_unet_d2", True),
    ("coordgate_unet_d2", False),
    ("unet_d2", False),
)
FRAME, TILE = 256, 64


def label(name, origins):
    if name.startswith("coordgate"):
        return f"{name} ({'with' if origins else 'without'} origins)"
    return name


def config(name, seed, steps, base_filters, kernel_size, batch_size):
    from coordgate_keras.training import TrainConfig

    return TrainConfig(
        model=name,
        model_kwargs={"residual": True, "base_filters": base_filters},
        image_size=TILE,
        frame_size=FRAME,
        psf={"kind": "zernike", "grid_shape": [8, 8], "kernel_size": kernel_size},
        train_images=512,
        eval_images=64,
        batch_size=batch_size,
        steps=steps,
        seed=seed,
    )


def run(name, origins, seed, args, cache):
    import keras
    import tensorflow as tf

    from coordgate_keras.training import _data, losses
    from coordgate_keras.training.metrics import psnr
    from coordgate_keras.training.train import _optimizer, builder_kwargs
    from coordgate_keras.zoo import create_model

    cfg = config(
        name, seed, args.steps, args.base_filters, args.kernel_size, args.batch_size
    )
    data = _data.build(cfg, "host", cache, log=lambda message: None)
    keras.utils.set_random_seed(seed)
    frame = {"frame_shape": (FRAME, FRAME)} if origins else {}
    model = create_model(
        name, input_shape=(TILE, TILE, 1), **frame, **builder_kwargs(cfg)
    )
    model.compile(
        optimizer=_optimizer(cfg),
        loss=losses.get_loss(cfg.loss),
        jit_compile=False,
    )
    (x0, o0), y0 = data.make_batch(0)

    def load(step):
        def flat(s):
            (x, o), y = data.make_batch(int(s))
            return x, o, y

        x, o, y = tf.numpy_function(flat, [step], (tf.float32, tf.int32, tf.float32))
        x, o, y = (tf.ensure_shape(a, b.shape) for a, b in ((x, x0), (o, o0), (y, y0)))
        return ((x, o) if origins else x), y

    dataset = (
        tf.data.Dataset.range(cfg.steps)
        .map(load, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        .prefetch(4)
    )
    started = time.perf_counter()
    model.fit(dataset, epochs=1, steps_per_epoch=cfg.steps, verbose=0)
    seconds = time.perf_counter() - started

    frames = data.frame
    (th, tw), blurred = frames.tile_shape, frames.blurred_frames
    restored = np.zeros_like(blurred)
    tile_psnr = {}
    for f, (r, c) in zip(frames.eval_frame_index, frames.eval_origins):
        tile = blurred[f : f + 1, r : r + th, c : c + tw]
        inputs = [tile, np.array([[r, c]], np.int32)] if origins else tile
        out = np.clip(np.asarray(model.predict_on_batch(inputs)), 0.0, 1.0)
        restored[f, r : r + th, c : c + tw] = out[0]
        sharp = frames.sharp_frames[f : f + 1, r : r + th, c : c + tw]
        tile_psnr.setdefault(f"{r},{c}", []).append(float(psnr(sharp, out)[0]))
    frame_psnr = psnr(frames.sharp_frames, restored)
    return {
        "model": name,
        "origins": origins,
        "seed": seed,
        "psnr_frames": float(np.mean(frame_psnr)),
        "psnr_frames_blurred": float(np.mean(psnr(frames.sharp_frames, blurred))),
        "psnr_by_tile": {k: float(np.mean(v)) for k, v in tile_psnr.items()},
        "train_seconds": round(seconds, 1),
        "num_params": int(model.count_params()),
    }


def overhead(args):
    """Seconds per training step: the frame form against the one-input model."""
    import keras

    from coordgate_keras.zoo import create_model

    rng = np.random.default_rng(0)
    batch = args.batch_size
    x = rng.uniform(size=(batch, TILE, TILE, 1)).astype("float32")
    origins = (4 * rng.integers(0, (FRAME - TILE) // 4 + 1, (batch, 2))).astype("int32")
    rows = []
    for name in ("coordgate_unet_d2", "unet_d2"):
        for framed in (False, True):
            keras.utils.set_random_seed(0)
            kw = {"frame_shape": (FRAME, FRAME)} if framed else {}
            model = create_model(name, input_shape=(TILE, TILE, 1), **kw)
            model.compile(optimizer="adam", loss="mse", jit_compile=False)
            inputs = [x, origins] if framed else x
            for _ in range(3):
                model.train_on_batch(inputs, x)
            times = []
            for _ in range(args.repeats):
                started = time.perf_counter()
                model.train_on_batch(inputs, x)
                times.append(time.perf_counter() - started)
            rows.append(
                {
                    "model": name,
                    "frame_form": framed,
                    "median_step_seconds": float(np.median(times)),
                }
            )
    return rows


def environment():
    from benchmarks import _environment
    from coordgate_keras.utils import system

    return {"command": _environment.command(), **system.environment()}


def render(results):
    lines = [
        "# Training on crops of a frame: CoordGate with and without origins",
        "",
        f"Frames {FRAME}x{FRAME}, 8x8 Zernike field, {TILE}x{TILE} training crops; "
        "scored on whole held-out frames restored tile by tile (mean over frames "
        "of the per-frame PSNR), mean +- std over seeds.",
        "",
    ]
    env = results.get("environment", {})
    if env:
        lines += [
            f"Command: `{env.get('command')}`. CPU: "
            f"{env.get('cpu_model', env.get('cpu'))}, "
            f"{env.get('cpus_usable', env.get('cores'))} cores, load average at "
            f"start {env.get('load_average_at_start', env.get('load_average'))}.",
            "",
        ]
    runs = results.get("runs", [])
    if runs:
        lines += [
            "| model | seeds | params | PSNR whole frames (dB) | blurred (dB) |",
            "|---|---:|---:|---:|---:|",
        ]
        for name, origins in MODELS:
            mine = [r for r in runs if r["model"] == name and r["origins"] == origins]
            if not mine:
                continue
            values = [r["psnr_frames"] for r in mine]
            lines.append(
                f"| {label(name, origins)} | {len(mine)} | {mine[0]['num_params']:,} "
                f"| {np.mean(values):.2f} +- {np.std(values):.2f} "
                f"| {mine[0]['psnr_frames_blurred']:.2f} |"
            )
        lines += ["", "PSNR by tile position (rows, columns of the frame), dB:", ""]
        for name, origins in MODELS:
            mine = [r for r in runs if r["model"] == name and r["origins"] == origins]
            if not mine:
                continue
            keys = sorted(
                mine[0]["psnr_by_tile"], key=lambda k: tuple(map(int, k.split(",")))
            )
            grid = {k: np.mean([r["psnr_by_tile"][k] for r in mine]) for k in keys}
            tops = sorted({int(k.split(",")[0]) for k in keys})
            lefts = sorted({int(k.split(",")[1]) for k in keys})
            lines += [
                f"{label(name, origins)}:",
                "",
                "| top \\ left | " + " | ".join(map(str, lefts)) + " |",
            ]
            lines.append("|---" * (len(lefts) + 1) + "|")
            for t in tops:
                lines.append(
                    f"| {t} | "
                    + " | ".join(f"{grid[f'{t},{c}']:.2f}" for c in lefts)
                    + " |"
                )
            lines.append("")
    if results.get("overhead"):
        lines += [
            "Training-step time (batch of 64x64 crops, base 32, TF on CPU, median):",
            "",
            "| model | one input (s) | frame form (s) | ratio |",
            "|---|---:|---:|---:|",
        ]
        rows = results["overhead"]
        for name in ("coordgate_unet_d2", "unet_d2"):
            one = [r for r in rows if r["model"] == name and not r["frame_form"]]
            two = [r for r in rows if r["model"] == name and r["frame_form"]]
            if one and two:
                a, b = one[0]["median_step_seconds"], two[0]["median_step_seconds"]
                lines.append(f"| {name} | {a:.3f} | {b:.3f} | {b / a:.2f} |")
        lines.append("")
    if results.get("notes"):
        lines += ["## Reading", ""] + [f"- {note}" for note in results["notes"]] + [""]
    return "\n".join(lines) + "\n"


def plot(results, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = results["runs"]
    present = [
        (n, o)
        for n, o in MODELS
        if any(r["model"] == n and r["origins"] == o for r in runs)
    ]
    fig, axes = plt.subplots(1, len(present), figsize=(4 * len(present), 3.6))
    axes = np.atleast_1d(axes)
    grids = []
    for name, origins in present:
        mine = [r for r in runs if r["model"] == name and r["origins"] == origins]
        keys = list(mine[0]["psnr_by_tile"])
        tops = sorted({int(k.split(",")[0]) for k in keys})
        lefts = sorted({int(k.split(",")[1]) for k in keys})
        grids.append(
            np.array(
                [
                    [
                        np.mean([r["psnr_by_tile"][f"{t},{c}"] for r in mine])
                        for c in lefts
                    ]
                    for t in tops
                ]
            )
        )
    lo, hi = min(g.min() for g in grids), max(g.max() for g in grids)
    for ax, grid, (name, origins) in zip(axes, grids, present):
        image = ax.imshow(grid, vmin=lo, vmax=hi, cmap="viridis")
        ax.set_title(label(name, origins), fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.colorbar(image, ax=list(axes), label="PSNR by tile position (dB)")
    from coordgate_keras.utils import atomic_io

    atomic_io.atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=110))
    plt.close(fig)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--base-filters", type=int, default=8)
    parser.add_argument("--kernel-size", type=int, default=31)
    parser.add_argument("--overhead", action="store_true")
    parser.add_argument(
        "--note", action="append", default=None, help="replace the notes (reading)"
    )
    parser.add_argument("--render", action="store_true", help="only re-render")
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument(
        "--out", default=os.path.join("benchmarks", "results", "frame_crops")
    )
    parser.add_argument("--cache-dir", default=None)
    args = parser.parse_args(argv)
    from coordgate_keras.utils import atomic_io

    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, "results.json")
    results = json.load(open(path)) if os.path.exists(path) else {}
    cache = args.cache_dir or os.path.join(args.out, ".cache")
    if args.note:
        results["notes"] = args.note
    if args.render:
        pass
    elif args.overhead:
        results["overhead"] = overhead(args)
        results["overhead_environment"] = environment()
    else:
        results.setdefault("environment", environment())
        results["settings"] = {
            k: getattr(args, k)
            for k in ("steps", "batch_size", "base_filters", "kernel_size")
        }
        runs = results.setdefault("runs", [])
        for seed in args.seeds:
            for name, origins in MODELS:
                if any(
                    r["model"] == name and r["origins"] == origins and r["seed"] == seed
                    for r in runs
                ):
                    continue
                result = run(name, origins, seed, args, cache)
                print(
                    json.dumps(
                        {k: v for k, v in result.items() if k != "psnr_by_tile"}
                    ),
                    flush=True,
                )
                runs.append(result)
                atomic_io.atomic_write_json(path, results)
    atomic_io.atomic_write_json(path, results)
    atomic_io.atomic_write_bytes(
        os.path.join(args.out, "results.md"), render(results).encode()
    )
    if results.get("runs"):
        plot(results, os.path.join(args.out, "psnr_by_position.png"))


if __name__ == "__main__":
    main()
