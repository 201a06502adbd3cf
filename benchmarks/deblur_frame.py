"""Deblurring one sensor-size frame: Keras, LiteRT and ONNX Runtime, tile by tile.

For `coordgate_unet_d2` and `unet_d2` (published weights `zernike_256`,
`base_filters=32`) as frame models of a `--frame` x `--frame` frame (default
2048) with `--tile` tiles (default 256), this times `coordgate_keras.inference
.deblur` on one frame (uniform noise in [0, 1], seed 0) with

- Keras (TensorFlow) tiles, `--batch-size` tiles per call;
- the whole-frame Keras call (the one-input model built at the frame size,
  one `predict_on_batch`), the reference every tiled output is compared with;
- TFLite float32 and int8 tile models and an ONNX Runtime tile model, when
  the tile export (`export_tflite(..., frame_shape=...)`, `export_onnx`) is
  available; otherwise they are listed as not run;

at each `--threads` count. Every (model, runtime, threads) runs in its own
process, so its peak RSS (`VmHWM`) is its own; TensorFlow's thread pools
are fixed in that process before it starts. Reported: seconds per frame (the
median of `--repeats` runs after one warm-up batch of tiles), megapixels per
second, peak RSS, the RSS before the timed runs, and the largest difference
from the whole-frame Keras output. Then the peak RSS of deblurring one
`--big-frame` frame (default 4096) tile by tile with Keras (memory is bounded
by the tiles in flight, plus the frame and its output).

    python -m benchmarks.deblur_frame            # about 30 min on 2 busy cores

Writes benchmarks/results/deblur_frame/deblur_frame.{md,json} with the command
and the machine's load.
"""

import argparse
import json
import os
import pathlib
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

HERE = pathlib.Path(__file__).resolve().parent

RESULTS = HERE / "results" / "deblur_frame"
MODELS = ("coordgate_unet_d2", "unet_d2")
WEIGHTS = "zernike_256"
RUNTIMES = ("keras whole", "keras tiles", "tflite float32", "tflite int8", "onnx")


# === Exports (parent process) ===


def export_tiles(name, frame, tile, workdir, runtimes=RUNTIMES[2:]):
    """The tile model's `.tflite` (float32, int8) and `.onnx` files, or why not."""
    from coordgate_keras.tflite import export_onnx, export_tflite

    workdir.mkdir(parents=True, exist_ok=True)
    model = frame_model(name, frame, tile)
    shape = (1, tile, tile, 1)
    # Each file's report records the receptive-field margin its runner reads.
    files, missing = {}, {}
    for runtime, export, kwargs in (
        ("tflite float32", export_tflite, {"quantization": "none"}),
        ("tflite int8", export_tflite, {"quantization": "int8"}),
        ("onnx", export_onnx, {}),
    ):
        if runtime not in runtimes:
            continue
        suffix = ".onnx" if runtime == "onnx" else ".tflite"
        path = workdir / f"{name}_{runtime.replace(' ', '_')}{suffix}"
        start = time.perf_counter()
        try:
            if not path.exists():  # a verified file from an earlier run is reused
                export(model, path, shape, frame_shape=(frame, frame), **kwargs)
        except TypeError as error:  # no `frame_shape` yet
            missing[runtime] = f"tile export not available: {error}"
            continue
        files[runtime] = str(path)
        seconds = time.perf_counter() - start
        print(f"exported {name} {runtime} in {seconds:.0f} s", flush=True)
    return files, missing


def frame_model(name, frame, tile):
    from coordgate_keras.zoo import create_model

    return create_model(
        name,
        weights=WEIGHTS,
        input_shape=(tile, tile, 1),
        frame_shape=(frame, frame),
    )


# === One measurement (worker process) ===


def worker(spec):
    threads = spec["threads"]
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    import numpy as np

    from coordgate_keras.inference import deblur
    from coordgate_keras.inference._runners import open_runner
    from coordgate_keras.zoo import create_model

    frame_size, tile = spec["frame"], spec["tile"]
    frame = np.random.default_rng(0).uniform(0, 1, (frame_size, frame_size))
    frame = frame.astype(np.float32)
    runtime = spec["runtime"]
    if runtime == "keras whole":
        model = create_model(
            spec["model"], weights=WEIGHTS, input_shape=(frame_size, frame_size, 1)
        )
        batch = frame[None, :, :, None]

        def run():
            return model.predict_on_batch(batch)[0, :, :, 0]

        # No warm-up: a second whole-frame call would double the run; its time
        # includes tracing the graph once (about a second).
    else:
        if runtime == "keras tiles":
            source = frame_model(spec["model"], frame_size, tile)
        else:
            source = spec["file"]
        runner = open_runner(source, threads=threads)

        def run():
            return deblur(runner, frame, batch_size=spec["batch_size"])

        # Warm-up: one batch of tiles (traces Keras, allocates the runtimes).
        tiles = np.zeros((spec["batch_size"], tile, tile, 1), np.float32)
        runner.run(tiles, np.zeros((spec["batch_size"], 2), np.int32))
    rss_before = _status_mib("VmRSS")
    times = []
    for _ in range(spec["repeats"]):
        start = time.perf_counter()
        out = run()
        times.append(time.perf_counter() - start)
    if spec.get("out"):
        np.save(spec["out"], np.asarray(out, np.float32))
    return {
        "seconds": sorted(times)[len(times) // 2],
        "all_seconds": times,
        "rss_before_mib": rss_before,
        "peak_rss_mib": _status_mib("VmHWM"),
        "load_average": list(os.getloadavg()),
    }


def _status_mib(key):
    # VmHWM, the peak RSS, starts afresh at exec; `ru_maxrss` would carry the
    # parent's peak over the fork.
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024
    return None


def _spawn(spec):
    from benchmarks import _environment

    done = _environment.run_module(
        __spec__.name,
        ["--worker", json.dumps(spec)],
        capture_output=True,
        text=True,
        check=False,
    )
    lines = [ln for ln in done.stdout.splitlines() if ln.startswith("{")]
    if done.returncode or not lines:
        return {"error": (done.stderr or done.stdout)[-2000:]}
    return json.loads(lines[-1])


# === Report ===


def markdown(payload):
    from benchmarks import _environment

    args = payload["arguments"]
    mpx = args["frame"] ** 2 / 1e6
    lines = [
        "# Deblurring one frame: Keras, LiteRT, ONNX Runtime tile by tile",
        "",
        "Written by `python -m benchmarks.deblur_frame`.",
        "",
        _environment.markdown(payload["environment"]),
        f"- Frame {args['frame']}x{args['frame']} ({mpx:.2f} Mpx), uniform noise "
        f"in [0, 1]; tiles {args['tile']}x{args['tile']}, {args['batch_size']} per "
        f"call, default overlap (receptive field); weights `{WEIGHTS}` "
        "(base_filters=32). Seconds: median of "
        f"{args['repeats']} run(s) after a warm-up batch of tiles (the whole-frame "
        "call: no warm-up, its time includes tracing); each row its own process.",
        "- max |diff|: largest difference from the whole-frame Keras output; "
        "PSNR vs whole: of the output against the whole-frame Keras output (dB, "
        "inf where equal).",
    ]
    if args.get("note"):
        lines.append(f"- Note: {args['note']}")
    lines += [
        "",
        "| model | runtime | threads | s / frame | Mpx/s | peak RSS (MiB) | "
        "RSS before run (MiB) | max abs diff | PSNR vs whole (dB) |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in payload["rows"]:
        if "error" in row:
            lines.append(
                f"| {row['model']} | {row['runtime']} | {row['threads']} | "
                f"not run: {row['error'].splitlines()[-1][:120]} | | | | | |"
            )
            continue
        diff = row.get("max_abs_diff")
        match = row.get("psnr_vs_whole_db")
        lines.append(
            f"| {row['model']} | {row['runtime']} | {row['threads']} | "
            f"{row['seconds']:.2f} | {mpx / row['seconds']:.3f} | "
            f"{row['peak_rss_mib']:.0f} | {row['rss_before_mib']:.0f} | "
            + ("" if diff is None else f"{diff:.2g}")
            + " | "
            + ("" if match is None else f"{match:.1f}")
            + " |"
        )
    for name, runtimes in payload["missing"].items():
        for runtime, why in runtimes.items():
            lines.append(f"\n- {name} {runtime}: {why.splitlines()[0][:200]}")
    big = payload.get("big_frame")
    if big:
        lines += ["", f"## Peak RSS of one {args['big_frame']}x{args['big_frame']} "
                  "frame, tile by tile", ""]  # fmt: skip
        for row in big:
            if "error" in row:
                lines.append(f"- {row['model']} {row['runtime']}: not run")
                continue
            lines.append(
                f"- {row['model']}, {row['runtime']}, {row['threads']} thread(s), "
                f"tiles {args['tile']}x{args['tile']}, {args['batch_size']} per call: "
                f"peak RSS {row['peak_rss_mib']:.0f} MiB (before the run "
                f"{row['rss_before_mib']:.0f} MiB; frame and output "
                f"{2 * args['big_frame'] ** 2 * 4 / 2**20:.0f} MiB), "
                f"{row['seconds']:.1f} s"
            )
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frame", type=int, default=2048)
    parser.add_argument("--tile", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--models", nargs="+", default=list(MODELS))
    parser.add_argument("--runtimes", nargs="+", default=list(RUNTIMES))
    parser.add_argument("--big-frame", type=int, default=4096, help="0 skips it")
    parser.add_argument("--big-runtime", default="keras tiles", choices=RUNTIMES)
    parser.add_argument("--workdir", type=pathlib.Path, default=None)
    parser.add_argument("--output", type=pathlib.Path, default=RESULTS)
    parser.add_argument("--note", default=None, help="a line for the report")
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker is not None:
        print(json.dumps(worker(json.loads(args.worker))), flush=True)
        return 0

    import numpy as np

    from benchmarks import _environment
    from coordgate_keras.training import metrics

    env = _environment.describe()
    workdir = args.workdir or pathlib.Path(tempfile.mkdtemp(prefix="deblur_frame_"))
    workdir.mkdir(parents=True, exist_ok=True)
    files, missing = {}, {}
    for name in args.models:
        if any(r.startswith(("tflite", "onnx")) for r in args.runtimes):
            files[name], missing[name] = export_tiles(
                name, args.frame, args.tile, workdir, args.runtimes
            )
    rows = []
    for threads in args.threads:
        for name in args.models:
            reference = None
            for runtime in args.runtimes:
                if runtime in missing.get(name, {}):
                    continue
                out = workdir / f"{name}_{runtime.replace(' ', '_')}_{threads}.npy"
                spec = {
                    "model": name,
                    "runtime": runtime,
                    "threads": threads,
                    "frame": args.frame,
                    "tile": args.tile,
                    "batch_size": args.batch_size,
                    "repeats": args.repeats,
                    "file": files.get(name, {}).get(runtime),
                    "out": str(out),
                }
                row = {"model": name, "runtime": runtime, "threads": threads}
                row.update(_spawn(spec))
                if "error" not in row:
                    result = np.load(out)
                    if runtime == "keras whole":
                        reference = result
                    elif reference is not None:
                        row["max_abs_diff"] = float(np.abs(result - reference).max())
                        row["psnr_vs_whole_db"] = float(
                            metrics.pooled_psnr(reference, result)
                        )
                    out.unlink()
                rows.append(row)
                print(json.dumps(row)[:300], flush=True)
    big = []
    if args.big_frame:
        spec = {
            "model": args.models[0],
            "runtime": args.big_runtime,
            "threads": max(args.threads),
            "frame": args.big_frame,
            "tile": args.tile,
            "batch_size": args.batch_size,
            "repeats": 1,
        }
        if args.big_runtime not in ("keras whole", "keras tiles"):
            # A tile model of the big frame: exported for it.
            big_files, _ = export_tiles(
                args.models[0],
                args.big_frame,
                args.tile,
                workdir / "big",
                runtimes=(args.big_runtime,),
            )
            spec["file"] = big_files.get(args.big_runtime)
        row = {k: spec[k] for k in ("model", "runtime", "threads")}
        row.update(_spawn(spec))
        big.append(row)
        print(json.dumps(row)[:300], flush=True)
    payload = {
        "arguments": {k: v for k, v in vars(args).items() if k != "worker"},
        "environment": _environment.finish(env),
        "rows": rows,
        "missing": missing,
        "big_frame": big,
    }
    args.output.mkdir(parents=True, exist_ok=True)
    text = json.dumps(payload, indent=1, default=str)
    from coordgate_keras.utils import atomic_io

    atomic_io.atomic_write_text(args.output / "deblur_frame.json", text + "\n")
    atomic_io.atomic_write_text(args.output / "deblur_frame.md", markdown(payload))
    return 0


if __name__ == "__main__":
    sys.exit(main())
