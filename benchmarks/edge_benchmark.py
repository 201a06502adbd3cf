"""Edge benchmark: file sizes and batch-1 latency of every edge artefact, with peers.

For `unet_d2`, `coordgate_unet_d2` and `coordconv_unet_d2` (untrained, seed 0,
`--base-filters`, default 32) at each `--sizes` (default 128 and 256), batch 1,
one channel, this exports with `coordgate_keras.tflite` (verified files):

- TFLite float32, float16 and int8, CoordGate gates in the default "auto"
  representation (row + column terms), and for the CoordGate U-Net also the
  full-resolution "constant" gates (the representation before issue 13);
- ONNX float32 (run in ONNX Runtime);

and times them beside Keras (`tf.function`) and, for the CoordGate U-Net, its
PyTorch peer written as the paper's author writes it (`_torch_peer.py`: the
gate MLP recomputed on every forward): PyTorch eager, `torch.compile`, and
ONNX Runtime on its `torch.onnx.export`.

Timing: one worker process per thread count (TensorFlow fixes its thread pools
at start-up), every runner built first, then `--rounds` rounds in which every
runner runs once, in the same order (interleaved), so load from other
processes falls on all alike. Reported: median latency per runner, and ratios
as the median of the per-round ratios (paired). The load average is recorded
before and after each worker.

PyTorch goes in the benchmark's own environment, never in the package:

    python3 -m venv .venv-bench
    .venv-bench/bin/pip install -e ".[onnx]" torch==2.13.0
    .venv-bench/bin/python -m benchmarks.edge_benchmark

(`--no-torch` skips the peer where PyTorch is missing.) Writes
benchmarks/results/edge_benchmark.{md,json}.
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

RESULTS = HERE / "results"
MODELS = ("unet_d2", "coordgate_unet_d2", "coordconv_unet_d2")
TFLITE = (("float32", "none", "auto"), ("float16", "float16", "auto"))
TFLITE += (("int8", "int8", "auto"),)
CONSTANT = (("float32 const", "none", "constant"), ("int8 const", "int8", "constant"))
# Targets of issue 13.
SIZE_TARGET = 1.25  # CoordGate file / U-Net file
LATENCY_TARGET = 1.05  # CoordGate latency / U-Net latency
ORT_PEER_TARGET = 1.0  # our fastest float32 / ORT on the author's model
INT8_PEER_TARGET = 2.5  # speed-up of our int8 over ORT on the author's model


# === Export (parent process) ===


def export_all(sizes, base_filters, workdir):
    import keras

    from coordgate_keras.tflite import export_onnx, export_tflite
    from coordgate_keras.zoo import create_model

    artefacts = {}
    for size in sizes:
        shape = (1, size, size, 1)
        for name in MODELS:
            keras.utils.set_random_seed(0)
            model = create_model(name, input_shape=shape[1:], base_filters=base_filters)
            stem = workdir / f"{name}_{size}"
            model.save(f"{stem}.keras")
            variants = TFLITE + (CONSTANT if "coordgate" in name else ())
            for label, quantization, gates in variants:
                path = f"{stem}_{label.replace(' ', '_')}.tflite"
                start = time.perf_counter()
                report = export_tflite(
                    model, path, shape, quantization=quantization, gates=gates
                )
                artefacts[(name, str(size), "tflite " + label)] = _record(
                    path, report, time.perf_counter() - start
                )
                print(f"exported {name} {size} tflite {label}", flush=True)
            start = time.perf_counter()
            report = export_onnx(model, f"{stem}.onnx", shape)
            artefacts[(name, str(size), "onnx float32")] = _record(
                f"{stem}.onnx", report, time.perf_counter() - start
            )
            artefacts[(name, str(size), "keras")] = {
                "path": f"{stem}.keras",
                "num_params": int(model.count_params()),
            }
            print(f"exported {name} {size} onnx", flush=True)
    return artefacts


def _record(path, report, seconds):
    check = report["verification"]
    return {
        "path": path,
        "size_bytes": report["size_bytes"],
        "max_abs_error": check["max_abs_error"],
        "psnr_db": check["psnr_db"],
        "op_census": report["op_census"],
        "export_seconds": round(seconds, 1),
    }


# === Timing (one worker process per thread count) ===


def worker(args):
    threads = args.worker_threads
    # Idle worker threads sleep instead of spinning (OpenMP in PyTorch; ONNX
    # Runtime below): interleaved runners must not starve each other on a
    # shared 2-core machine.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    import numpy as np

    artefacts = {
        tuple(k.split("|")): v
        for k, v in json.loads(pathlib.Path(args.artefacts).read_text()).items()
    }
    results = {"load_average_before": list(os.getloadavg()), "sizes": {}}
    for size in args.sizes:
        x = np.random.default_rng(0).uniform(0, 1, (1, size, size, 1))
        x = x.astype(np.float32)
        runners, peer_info = _runners(artefacts, size, threads, x, args)
        times = _interleave(runners, args.rounds, args.warmup)
        results["sizes"][str(size)] = {"times_ms": times, "peer": peer_info}
        print(f"timed {size} at {threads} thread(s)", flush=True)
    results["load_average_after"] = list(os.getloadavg())
    from coordgate_keras.utils import atomic_io

    atomic_io.atomic_write_text(args.worker_out, json.dumps(results))


def _runners(artefacts, size, threads, x, args):
    import keras
    import tensorflow as tf

    import coordgate_keras  # noqa: F401  (registers the layers for load_model)
    from coordgate_keras.tflite.verification import _interpreter, quantize_input

    runners = {}
    for name in MODELS:
        model = keras.saving.load_model(artefacts[(name, str(size), "keras")]["path"])
        predict = tf.function(lambda t, m=model: m(t, training=False))
        tx = tf.constant(x)
        runners[f"{name}|keras"] = lambda p=predict, t=tx: p(t).numpy()
        for key, record in artefacts.items():
            if key[0] != name or key[1] != str(size) or not key[2].startswith("tflite"):
                continue
            interpreter = _interpreter(record["path"], threads)
            (detail,) = interpreter.get_input_details()
            interpreter.set_tensor(detail["index"], quantize_input(x, detail))
            runners[f"{name}|{key[2]}"] = interpreter.invoke
        onnx_path = artefacts[(name, str(size), "onnx float32")]["path"]
        session = onnx_session(onnx_path, threads)
        feed = {session.get_inputs()[0].name: x}
        runners[f"{name}|onnx float32"] = lambda s=session, f=feed: s.run(None, f)
    peer_info = None
    if not args.no_torch:
        peer_runners, peer_info = _torch_runners(size, threads, x, args)
        runners.update(peer_runners)
    return runners, peer_info


def _torch_runners(size, threads, x, args):
    import numpy as np
    import torch

    from benchmarks import _torch_peer

    torch.set_num_threads(threads)
    model = _torch_peer.build((size, size), depth=2, base_filters=args.base_filters)
    tx = torch.from_numpy(np.transpose(x, (0, 3, 1, 2)).copy())
    runners = {}
    with torch.inference_mode():
        reference = model(tx).numpy()

    def eager(m=model, t=tx):
        with torch.inference_mode():
            return m(t)

    runners["author_pytorch|torch eager"] = eager
    info = {
        "num_params": _torch_peer.num_params(model),
        "torch": torch.__version__,
    }
    try:
        compiled = torch.compile(model)
        start = time.perf_counter()
        with torch.inference_mode():
            compiled(tx)
        info["compile_seconds"] = round(time.perf_counter() - start, 1)

        def run_compiled(m=compiled, t=tx):
            with torch.inference_mode():
                return m(t)

        runners["author_pytorch|torch.compile"] = run_compiled
    except Exception as error:  # noqa: BLE001  (reported, not fatal)
        info["compile_error"] = f"{type(error).__name__}: {error}"[:300]
    path = pathlib.Path(args.workdir) / f"author_pytorch_{size}.onnx"
    if not path.exists():
        torch.onnx.export(
            model,
            (tx,),
            str(path),
            input_names=["input"],
            opset_version=17,
            dynamo=False,
        )
    session = onnx_session(path, threads)
    feed = {"input": np.transpose(x, (0, 3, 1, 2)).copy()}
    out = session.run(None, feed)[0]
    info["onnx_size_bytes"] = path.stat().st_size
    info["onnx_max_abs_error_vs_torch"] = float(np.max(np.abs(out - reference)))
    runners["author_pytorch|onnx float32"] = lambda s=session, f=feed: s.run(None, f)
    return runners, info


def onnx_session(path, threads):
    """An ONNX Runtime CPU session with `threads` intra-op threads, no spinning."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def _interleave(runners, rounds, warmup):
    for _ in range(warmup):
        for run in runners.values():
            run()
    times = {key: [] for key in runners}
    for _ in range(rounds):
        for key, run in runners.items():
            start = time.perf_counter()
            run()
            times[key].append((time.perf_counter() - start) * 1e3)
    return times


# === Report ===


def _median(values):
    import numpy as np

    return float(np.median(values))


def _paired(times, a, b):
    """Median over rounds of time(a) / time(b)."""
    import numpy as np

    if a not in times or b not in times:
        return None
    return float(np.median(np.asarray(times[a]) / np.asarray(times[b])))


def summarize(artefacts, workers, sizes):
    summary = {"size_ratio": {}, "latency": {}, "ratios": {}}
    for size in sizes:
        for label in [v[0] for v in TFLITE] + ["onnx float32"]:
            key = label if label.startswith("onnx") else "tflite " + label
            cg = artefacts[("coordgate_unet_d2", str(size), key)]["size_bytes"]
            plain = artefacts[("unet_d2", str(size), key)]["size_bytes"]
            summary["size_ratio"][f"{size}|{key}"] = cg / plain
        for threads, result in workers.items():
            times = result["sizes"][str(size)]["times_ms"]
            tag = f"{size}|{threads}"
            summary["latency"][tag] = {k: _median(v) for k, v in times.items()}
            ratios = {}
            for label in ["keras", "onnx float32"] + ["tflite " + v[0] for v in TFLITE]:
                for other in ("coordgate_unet_d2", "coordconv_unet_d2"):
                    ratios[f"{other} / unet_d2 {label}"] = _paired(
                        times, f"{other}|{label}", f"unet_d2|{label}"
                    )
            for label in ("float32", "int8"):
                ratios[f"coordgate auto / const tflite {label}"] = _paired(
                    times,
                    f"coordgate_unet_d2|tflite {label}",
                    f"coordgate_unet_d2|tflite {label} const",
                )
            ours = [
                f"coordgate_unet_d2|{k}"
                for k in ("tflite float32", "onnx float32", "keras")
            ]
            fastest = min(
                (k for k in ours if k in times), key=lambda k: _median(times[k])
            )
            summary.setdefault("fastest_float32", {})[tag] = fastest.split("|")[1]
            peer = "author_pytorch|onnx float32"
            for label in ("torch eager", "torch.compile", "onnx float32"):
                ratios[f"ours fastest float32 / author {label}"] = _paired(
                    times, fastest, f"author_pytorch|{label}"
                )
            ratios["author onnx float32 / ours tflite int8"] = _paired(
                times, peer, "coordgate_unet_d2|tflite int8"
            )
            summary["ratios"][tag] = {k: v for k, v in ratios.items() if v is not None}
    return summary


def markdown(env, args, artefacts, workers, summary):
    sizes, threads = args.sizes, sorted(workers)
    lines = [
        "# Edge benchmark: size and latency of the edge artefacts, with peers",
        "",
        "Written by `python -m benchmarks.edge_benchmark`.",
        "",
        _environment_markdown(env),
        f"- Models untrained (seed 0), `base_filters={args.base_filters}`, batch 1, "
        "one channel, inputs uniform in [0, 1]. CoordGate gates: `auto` = row + "
        "column terms (issue 13), `const` = full-resolution constants (before).",
        f"- Timing: one process per thread count; {args.warmup} warm-up + "
        f"{args.rounds} interleaved rounds (every runner once per round, same "
        "order). Latency = median; ratio = median of the per-round ratios.",
        "- Load average before / after each worker: "
        + "; ".join(
            f"{t} thread(s): {_load(workers[t]['load_average_before'])} / "
            f"{_load(workers[t]['load_average_after'])}"
            for t in threads
        )
        + " (2 cores shared with other work: absolute times are inflated and "
        "noisy, paired ratios much less).",
        "",
        "## File sizes (MiB) and parity vs Keras",
        "",
        "| size | model | artefact | MiB | max abs error | PSNR (dB) |",
        "|---|---|---|---:|---:|---:|",
    ]
    for (name, size, label), record in sorted(artefacts.items()):
        if "size_bytes" not in record:
            continue
        psnr = record["psnr_db"]
        psnr = "inf" if psnr is None or psnr == float("inf") else f"{psnr:.1f}"
        lines.append(
            f"| {size} | {name} | {label} | {record['size_bytes'] / 2**20:.2f} "
            f"| {record['max_abs_error']:.2g} | {psnr} |"
        )
    lines += ["", "## Latency (ms, median)", ""]
    for size in sizes:
        keys = sorted(workers[threads[0]]["sizes"][str(size)]["times_ms"])
        lines += [
            f"### {size} x {size}",
            "",
            "| runner | " + " | ".join(f"{t} thread(s)" for t in threads) + " |",
            "|---|" + "---:|" * len(threads),
        ]
        for key in keys:
            cells = [
                f"{summary['latency'][f'{size}|{t}'].get(key, float('nan')):.1f}"
                for t in threads
            ]
            lines.append(f"| {key.replace('|', ' ')} | " + " | ".join(cells) + " |")
        lines.append("")
    lines += ["## Ratios (paired medians)", ""]
    for tag, ratios in summary["ratios"].items():
        size, t = tag.split("|")
        lines.append(
            f"- {size} x {size}, {t} thread(s) (our fastest float32: "
            f"{summary['fastest_float32'][tag]}):"
        )
        for key, value in ratios.items():
            lines.append(f"  - {key}: {value:.3f}")
    lines += ["", "## Targets (issue 13)", ""]
    for key, ratio in summary["size_ratio"].items():
        size, label = key.split("|")
        verdict = "met" if ratio <= SIZE_TARGET else "not met"
        lines.append(
            f"- File size, CoordGate / U-Net, {label} at {size}: {ratio:.3f} "
            f"(target <= {SIZE_TARGET}: {verdict})."
        )
    for tag, ratios in summary["ratios"].items():
        size, t = tag.split("|")
        for label in ("tflite float32", "tflite int8"):
            ratio = ratios.get(f"coordgate_unet_d2 / unet_d2 {label}")
            if ratio is not None:
                verdict = "met" if ratio <= LATENCY_TARGET else "not met"
                lines.append(
                    f"- Latency, CoordGate / U-Net, {label}, {size}, {t} thread(s): "
                    f"{ratio:.3f} (target <= {LATENCY_TARGET}: {verdict})."
                )
        ratio = ratios.get("ours fastest float32 / author onnx float32")
        if ratio is not None:
            verdict = "met" if ratio <= ORT_PEER_TARGET else "not met"
            lines.append(
                f"- Our fastest float32 / ORT on the author's model, {size}, {t} "
                f"thread(s): {ratio:.3f} (target <= {ORT_PEER_TARGET}: {verdict})."
            )
        ratio = ratios.get("author onnx float32 / ours tflite int8")
        if ratio is not None:
            verdict = "met" if ratio >= INT8_PEER_TARGET else "not met"
            lines.append(
                f"- int8 speed-up over ORT on the author's model, {size}, {t} "
                f"thread(s): {ratio:.2f}x (target >= {INT8_PEER_TARGET}: {verdict})."
            )
    peer = [
        (t, s, workers[t]["sizes"][s]["peer"])
        for t in threads
        for s in map(str, sizes)
        if workers[t]["sizes"][s]["peer"]
    ]
    if peer:
        t, s, info = peer[0]
        params = artefacts[("coordgate_unet_d2", s, "keras")]["num_params"]
        lines += [
            "",
            "## Peer",
            "",
            f"- `_torch_peer.CGUNet` (PyTorch {info['torch']}): "
            f"{info['num_params']} parameters (ours: {params}); its ONNX file "
            f"{info['onnx_size_bytes'] / 2**20:.2f} MiB at {s}, max abs error vs "
            f"PyTorch {info['onnx_max_abs_error_vs_torch']:.2g}.",
        ]
        for t, s, info in peer:
            if "compile_error" in info:
                error = info["compile_error"]
                lines.append(f"- torch.compile failed ({s}, {t}): {error}")
    lines.append("")
    return "\n".join(lines)


def _load(values):
    return "[" + ", ".join(f"{v:.2f}" for v in values) + "]"


def _environment_markdown(env):
    from benchmarks import _environment

    return (
        _environment.markdown(env)
        + "\n- Versions: "
        + ", ".join(f"{k} {v}" for k, v in env["versions"].items())
    )


def main(argv=None):
    from coordgate_keras.utils import atomic_io

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="128,256")
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--base-filters", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--no-torch", action="store_true")
    parser.add_argument("--output", type=pathlib.Path, default=RESULTS)
    parser.add_argument("--workdir", help="keep (and reuse) the exported files here")
    parser.add_argument("--artefacts", help=argparse.SUPPRESS)
    parser.add_argument("--worker-threads", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--worker-out", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.sizes = [int(s) for s in str(args.sizes).split(",")]
    if args.worker_threads:
        return worker(args)

    from benchmarks import _environment
    from coordgate_keras.tflite.onnx_export import versions

    env = _environment.describe()
    env["versions"] = versions()
    if not args.no_torch:
        import torch

        env["versions"]["torch"] = torch.__version__
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        # --workdir keeps the exports, and reuses them when run again.
        workdir = pathlib.Path(args.workdir or tmp)
        index = workdir / "artefacts.json"
        if index.exists():
            artefacts = {
                tuple(k.split("|")): v for k, v in json.loads(index.read_text()).items()
            }
        else:
            workdir.mkdir(parents=True, exist_ok=True)
            artefacts = export_all(args.sizes, args.base_filters, workdir)
            index_text = json.dumps({"|".join(k): v for k, v in artefacts.items()})
            atomic_io.atomic_write_text(index, index_text)
        workers = {}
        for threads in (int(t) for t in args.threads.split(",")):
            out = workdir / f"worker_{threads}.json"
            command = [
                f"--sizes={','.join(map(str, args.sizes))}",
                f"--base-filters={args.base_filters}",
                f"--rounds={args.rounds}",
                f"--warmup={args.warmup}",
                f"--workdir={workdir}",
                f"--artefacts={index}",
                f"--worker-threads={threads}",
                f"--worker-out={out}",
            ] + (["--no-torch"] if args.no_torch else [])
            _environment.run_module(__spec__.name, command, check=True)
            workers[threads] = json.loads(out.read_text())
    artefacts = {
        k: {f: v for f, v in record.items() if f != "path"}
        for k, record in artefacts.items()
    }
    summary = summarize(artefacts, workers, args.sizes)
    env["wall_seconds"] = round(time.perf_counter() - start, 1)
    args.output.mkdir(parents=True, exist_ok=True)
    payload = {
        "environment": env,
        "base_filters": args.base_filters,
        "rounds": args.rounds,
        "warmup": args.warmup,
        "artefacts": {"|".join(k): v for k, v in artefacts.items()},
        "workers": {str(t): w for t, w in workers.items()},
        "summary": summary,
    }
    text = json.dumps(payload, indent=1, default=str).replace("Infinity", "null")
    atomic_io.atomic_write_text(args.output / "edge_benchmark.json", text + "\n")
    atomic_io.atomic_write_text(
        args.output / "edge_benchmark.md",
        markdown(env, args, artefacts, workers, summary),
    )
    print(f"wrote {args.output / 'edge_benchmark.md'} in {env['wall_seconds']} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
