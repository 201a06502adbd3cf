"""Edge benchmark: file sizes, parity and batch-1 latency of every edge artefact.

For each `--models` (default `unet_d2`, `coordgate_unet_d2` and
`coordconv_unet_d2`; untrained, seed 0, `--base-filters`, default 32) at each
`--sizes` (default 128 and 256), batch 1, one channel, this exports with
`coordgate_keras.tflite` (verified files):

- TFLite float32, float16 and int8, CoordGate gates in the default "auto"
  representation (row + column terms), and for the CoordGate models also the
  full-resolution "constant" gates (the representation before the compact gates);
- ONNX float32, run in ONNX Runtime (`--no-onnx` leaves it out, and with it
  the need for the `onnx` extra);

and records for each file its size, its parity with the Keras model on
simulated blurred images (max and mean abs error, PSNR with peak = range of
the Keras output; int8 calibrated on other simulated images), its operator
census and, for TFLite, the multiply-accumulates of its CONV_2D ops and the
output elements of its MUL ops (what remains of the gates). A mode the
export refuses is recorded with the reason.

It times them beside Keras (`tf.function`) and, for the CoordGate U-Net, its
PyTorch peer written as the paper's author writes it (`_torch_peer.py`: the
gate MLP recomputed on every forward): PyTorch eager, `torch.compile`, and
ONNX Runtime on its `torch.onnx.export`.

Timing: one worker process per thread count (TensorFlow fixes its thread pools
at start-up), every runner built first, then `--rounds` rounds in which every
runner runs once, in the same order (interleaved), so load from other
processes falls on all alike. Reported: median latency per runner with its
90th percentile, ratios as the median of the per-round ratios (paired) and as
the ratio of the fastest runs (min, the least disturbed by other processes),
and the file-size ratios CoordGate / U-Net and int8 / float32. The load
average is recorded before and after each worker.

PyTorch goes in the benchmark's own environment, never in the package:

    python3 -m venv .venv-bench
    .venv-bench/bin/pip install -e ".[onnx]" torch==2.13.0
    .venv-bench/bin/python -m benchmarks.edge_benchmark

(`--no-torch` skips the peer where PyTorch is missing.) Writes
benchmarks/results/edge_benchmark.{md,json}. A smoke run of the whole path
(64x64, `base_filters=8`, 1 thread, 3 rounds), written to a new temporary
folder unless `--output` is given:

    python -m benchmarks.edge_benchmark --quick --no-torch

This script also does what `tflite_benchmark.py` did (TFLite size, latency at
1 and 2 threads, PSNR vs Keras, op census of the registry-default models,
`benchmarks/results/tflite_benchmark.md`): `--sizes 256 --base-filters 64
--rounds 10 --warmup 2 --no-onnx --no-torch`; `--size` and `--runs`, its option
names, are accepted for `--sizes` and `--rounds`.
"""

import argparse
import importlib.util
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
BASELINE = "unet_d2"  # what the ratios divide by
TFLITE = (("float32", "none", "auto"), ("float16", "float16", "auto"))
TFLITE += (("int8", "int8", "auto"),)
CONSTANT = (("float32 const", "none", "constant"), ("int8 const", "int8", "constant"))
# Targets set for the compact-gate export (row + column gate terms).
SIZE_TARGET = 1.25  # CoordGate file / U-Net file
LATENCY_TARGET = 1.05  # CoordGate latency / U-Net latency
ORT_PEER_TARGET = 1.0  # our fastest float32 / ORT on the author's model
INT8_PEER_TARGET = 2.5  # speed-up of our int8 over ORT on the author's model
# Target of the first edge export: int8 file / float32 file.
INT8_SIZE_TARGET = 0.3
DEFAULTS = {
    "sizes": "128,256",
    "threads": "1,2",
    "base_filters": 32,
    "rounds": 40,
    "warmup": 3,
}
# --quick: a smoke run of the whole path, small and short.
QUICK = {"sizes": "64", "threads": "1", "base_filters": 8, "rounds": 3, "warmup": 1}


# === Export (parent process) ===


def export_all(models, sizes, base_filters, workdir, onnx=True, artefacts=None):
    """Exports every (model, size) not yet in `artefacts`; returns them all.

    Keys are `(model, size, artefact)` with `size` a string and `artefact`
    `"keras"`, `"tflite <label>"` or `"onnx float32"`; a refused export is
    recorded as `{"refused": reason}`.
    """
    import keras

    from coordgate_keras.tflite import (
        UnsupportedOpsError,
        VerificationError,
        export_onnx,
        export_tflite,
    )
    from coordgate_keras.zoo import create_model

    artefacts = dict(artefacts or {})
    for size in sizes:
        shape = (1, size, size, 1)
        for name in models:
            if (name, str(size), "keras") in artefacts:
                continue  # exported by an earlier run in this --workdir
            keras.utils.set_random_seed(0)
            model = create_model(name, input_shape=shape[1:], base_filters=base_filters)
            stem = workdir / f"{name}_{size}"
            variants = TFLITE + (CONSTANT if "coordgate" in name else ())
            variants += (("onnx", None, "auto"),) if onnx else ()
            for label, quantization, gates in variants:
                start = time.perf_counter()
                try:
                    if quantization is None:
                        label, path = "onnx float32", f"{stem}.onnx"
                        report = export_onnx(model, path, shape, gates=gates)
                    else:
                        path = f"{stem}_{label.replace(' ', '_')}.tflite"
                        label = "tflite " + label
                        report = export_tflite(
                            model, path, shape, quantization=quantization, gates=gates
                        )
                except (UnsupportedOpsError, VerificationError) as error:
                    artefacts[(name, str(size), label)] = {"refused": str(error)}
                    print(f"refused {name} {size} {label}: {error}", flush=True)
                    continue
                record = _record(path, report, time.perf_counter() - start)
                if path.endswith(".tflite"):
                    record["conv_macs"] = conv_macs(path)
                    record["mul_elements"] = mul_elements(path)
                artefacts[(name, str(size), label)] = record
                print(f"exported {name} {size} {label}", flush=True)
            model.save(f"{stem}.keras")
            artefacts[(name, str(size), "keras")] = {
                "path": f"{stem}.keras",
                "num_params": int(model.count_params()),
            }
    return artefacts


def _record(path, report, seconds):
    check = report["verification"]
    return {
        "path": path,
        "size_bytes": report["size_bytes"],
        "max_abs_error": check["max_abs_error"],
        "mean_abs_error": check["mean_abs_error"],
        "psnr_db": check["psnr_db"],
        "reference_range": check["reference_range"],
        "verification_data": check["data"],
        "op_census": report["op_census"],
        "export_seconds": round(seconds, 1),
    }


def conv_macs(path):
    """Multiply-accumulates of the CONV_2D ops of a `.tflite` file."""
    import numpy as np

    from coordgate_keras.tflite import list_operators

    total = 0
    for op in list_operators(path):
        if op.name == "CONV_2D":
            _, kh, kw, in_channels = op.inputs[1].shape
            total += int(np.prod(op.outputs[0].shape)) * kh * kw * in_channels
    return total


def mul_elements(path):
    """Output elements of the MUL ops (the gates) of a `.tflite` file."""
    import numpy as np

    from coordgate_keras.tflite import list_operators

    return sum(
        int(np.prod(op.outputs[0].shape))
        for op in list_operators(path)
        if op.name == "MUL"
    )


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
    for name in args.models:
        model = keras.saving.load_model(artefacts[(name, str(size), "keras")]["path"])
        predict = tf.function(lambda t, m=model: m(t, training=False))
        tx = tf.constant(x)
        runners[f"{name}|keras"] = lambda p=predict, t=tx: p(t).numpy()
        for key, record in artefacts.items():
            if key[:2] != (name, str(size)) or "path" not in record:
                continue
            if key[2].startswith("tflite"):
                interpreter = _interpreter(record["path"], threads)
                (detail,) = interpreter.get_input_details()
                interpreter.set_tensor(detail["index"], quantize_input(x, detail))
                runners[f"{name}|{key[2]}"] = interpreter.invoke
            elif key[2].startswith("onnx") and not args.no_onnx:
                session = onnx_session(record["path"], threads)
                feed = {session.get_inputs()[0].name: x}
                runners[f"{name}|{key[2]}"] = lambda s=session, f=feed: s.run(None, f)
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
    if args.no_onnx:
        return runners, info
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


def _fastest_ratio(times, a, b):
    """min time(a) / min time(b): the fastest run of each."""
    if a not in times or b not in times:
        return None
    return min(times[a]) / min(times[b])


def _size(artefacts, name, size, key):
    return artefacts.get((name, str(size), key), {}).get("size_bytes")


def summarize(artefacts, workers, sizes, models=MODELS):
    """Latency percentiles, paired and fastest-run ratios, file-size ratios."""
    import numpy as np

    summary = {"size_ratio": {}, "int8_size_ratio": {}, "latency": {}}
    summary.update(latency_p90={}, ratios={}, ratios_min={}, fastest_float32={})
    others = [m for m in models if m != BASELINE]
    for size in sizes:
        for label in [v[0] for v in TFLITE] + ["onnx float32"]:
            key = label if label.startswith("onnx") else "tflite " + label
            cg = _size(artefacts, "coordgate_unet_d2", size, key)
            plain = _size(artefacts, BASELINE, size, key)
            if cg and plain:
                summary["size_ratio"][f"{size}|{key}"] = cg / plain
        for name in models:
            int8 = _size(artefacts, name, size, "tflite int8")
            float32 = _size(artefacts, name, size, "tflite float32")
            if int8 and float32:
                summary["int8_size_ratio"][f"{size}|{name}"] = int8 / float32
        for threads, result in workers.items():
            times = result["sizes"][str(size)]["times_ms"]
            tag = f"{size}|{threads}"
            summary["latency"][tag] = {k: _median(v) for k, v in times.items()}
            summary["latency_p90"][tag] = {
                k: float(np.percentile(v, 90)) for k, v in times.items()
            }
            ratios, fastest_runs = {}, {}
            for label in ["keras", "onnx float32"] + ["tflite " + v[0] for v in TFLITE]:
                for other in others:
                    pair = (f"{other}|{label}", f"{BASELINE}|{label}")
                    ratios[f"{other} / {BASELINE} {label}"] = _paired(times, *pair)
                    fastest_runs[f"{other} / {BASELINE} {label}"] = _fastest_ratio(
                        times, *pair
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
                if f"coordgate_unet_d2|{k}" in times
            ]
            if ours:
                fastest = min(ours, key=lambda k: _median(times[k]))
                summary["fastest_float32"][tag] = fastest.split("|")[1]
                for label in ("torch eager", "torch.compile", "onnx float32"):
                    ratios[f"ours fastest float32 / author {label}"] = _paired(
                        times, fastest, f"author_pytorch|{label}"
                    )
                ratios["author onnx float32 / ours tflite int8"] = _paired(
                    times,
                    "author_pytorch|onnx float32",
                    "coordgate_unet_d2|tflite int8",
                )
            summary["ratios"][tag] = {k: v for k, v in ratios.items() if v is not None}
            summary["ratios_min"][tag] = {
                k: v for k, v in fastest_runs.items() if v is not None
            }
    return summary


def markdown(env, args, artefacts, workers, summary):
    sizes, threads = args.sizes, sorted(workers)
    gates = "`auto` = row + column terms, `const` = full-resolution "
    lines = [
        "# Edge benchmark: size, parity and latency of the edge artefacts, with peers",
        "",
        "Written by `python -m benchmarks.edge_benchmark`.",
        "",
        _environment_markdown(env),
        f"- Models {', '.join(f'`{m}`' for m in args.models)}, untrained (random "
        f"init, seed 0), `base_filters={args.base_filters}`, batch 1, one channel, "
        f"inputs uniform in [0, 1]. CoordGate gates: {gates}constants (before).",
        "- Parity: each file's output vs the Keras model's on simulated blurred "
        "images (`simulated_inputs`, seed 1); PSNR peak = range of the Keras "
        "output; int8 calibrated on other simulated images (seed 0).",
        f"- Timing: one process per thread count; {args.warmup} warm-up + "
        f"{args.rounds} interleaved rounds (every runner once per round, same "
        "order). Latency = median (90th percentile); ratio = median of the "
        "per-round ratios; fastest-run ratio = ratio of the minimums.",
        "- Load average before / after each worker: "
        + "; ".join(
            f"{t} thread(s): {_load(workers[t]['load_average_before'])} / "
            f"{_load(workers[t]['load_average_after'])}"
            for t in threads
        )
        + " (a shared machine: absolute times are inflated and noisy, paired "
        "ratios much less).",
        "",
        "## File sizes (MiB), parity vs Keras and operators",
        "",
        "| size | model | artefact | MiB | max abs error | PSNR (dB) | MUL ops "
        "| conv GMAC |",
        "|---|---|---|---:|---:|---:|---:|---:|",
    ]
    for (name, size, label), record in sorted(artefacts.items()):
        if "refused" in record:
            lines.append(
                f"| {size} | {name} | {label} | refused: {record['refused']} | | | | |"
            )
            continue
        if "size_bytes" not in record:
            continue
        psnr = record["psnr_db"]
        psnr = "inf" if psnr is None or psnr == float("inf") else f"{psnr:.1f}"
        muls = record["op_census"].get("MUL", 0) if "conv_macs" in record else "-"
        gmac = f"{record['conv_macs'] / 1e9:.3f}" if "conv_macs" in record else "-"
        lines.append(
            f"| {size} | {name} | {label} | {record['size_bytes'] / 2**20:.2f} "
            f"| {record['max_abs_error']:.2g} | {psnr} | {muls} | {gmac} |"
        )
    lines += ["", "## Latency (ms, median (p90))", ""]
    for size in sizes:
        keys = sorted(workers[threads[0]]["sizes"][str(size)]["times_ms"])
        lines += [
            f"### {size} x {size}",
            "",
            "| runner | " + " | ".join(f"{t} thread(s)" for t in threads) + " |",
            "|---|" + "---:|" * len(threads),
        ]
        for key in keys:
            cells = []
            for t in threads:
                tag = f"{size}|{t}"
                p50 = summary["latency"][tag].get(key, float("nan"))
                p90 = summary["latency_p90"][tag].get(key, float("nan"))
                cells.append(f"{p50:.1f} ({p90:.1f})")
            lines.append(f"| {key.replace('|', ' ')} | " + " | ".join(cells) + " |")
        lines.append("")
    lines += ["## Ratios (paired medians)", ""]
    for tag, ratios in summary["ratios"].items():
        size, t = tag.split("|")
        fastest = summary["fastest_float32"].get(tag)
        lines.append(
            f"- {size} x {size}, {t} thread(s)"
            + (f" (our fastest float32: {fastest})" if fastest else "")
            + ":"
        )
        for key, value in ratios.items():
            lines.append(f"  - {key}: {value:.3f}")
        fastest_runs = summary["ratios_min"].get(tag, {})
        if fastest_runs:
            text = ", ".join(f"{k}: {v:.3f}" for k, v in fastest_runs.items())
            lines.append(f"  - fastest run of each (min): {text}")
    lines += ["", "## Targets", ""]
    for key, ratio in summary["size_ratio"].items():
        size, label = key.split("|")
        what = f"File size, CoordGate / U-Net, {label} at {size}"
        lines.append(_target_line(what, ratio, SIZE_TARGET))
    for key, ratio in summary["int8_size_ratio"].items():
        size, name = key.split("|")
        what = f"File size, int8 / float32, {name} at {size}"
        lines.append(_target_line(what, ratio, INT8_SIZE_TARGET))
    for tag, ratios in summary["ratios"].items():
        size, t = tag.split("|")
        for label in ("tflite float32", "tflite int8"):
            ratio = ratios.get(f"coordgate_unet_d2 / {BASELINE} {label}")
            if ratio is not None:
                what = f"Latency, CoordGate / U-Net, {label}, {size}, {t} thread(s)"
                lines.append(_target_line(what, ratio, LATENCY_TARGET))
        ratio = ratios.get("ours fastest float32 / author onnx float32")
        if ratio is not None:
            what = (
                f"Our fastest float32 / ORT on the author's model, {size}, {t} "
                "thread(s)"
            )
            lines.append(_target_line(what, ratio, ORT_PEER_TARGET))
        ratio = ratios.get("author onnx float32 / ours tflite int8")
        if ratio is not None:
            what = (
                f"int8 speed-up over ORT on the author's model, {size}, {t} thread(s)"
            )
            lines.append(
                _target_line(
                    what, ratio, INT8_PEER_TARGET, at_least=True, shown=f"{ratio:.2f}x"
                )
            )
    lines += _gate_cost(artefacts, sizes)
    lines += _peer(artefacts, workers, sizes, threads)
    lines.append("")
    return "\n".join(lines)


def _target_line(what, value, target, at_least=False, shown=None):
    """`- what: value (target <= target: met)` (`>=` with `at_least`)."""
    met = value >= target if at_least else value <= target
    shown = f"{value:.3f}" if shown is None else shown
    sign = ">=" if at_least else "<="
    return f"- {what}: {shown} (target {sign} {target}: {'met' if met else 'not met'})."


def _gate_cost(artefacts, sizes):
    """What CoordGate adds to the U-Net in the float32 TFLite files."""
    lines = []
    for size in sizes:
        for label in ("tflite float32", "tflite float32 const"):
            base = artefacts.get((BASELINE, str(size), "tflite float32"), {})
            gated = artefacts.get(("coordgate_unet_d2", str(size), label), {})
            if "conv_macs" not in base or "conv_macs" not in gated:
                continue
            extra = gated["conv_macs"] - base["conv_macs"]
            lines.append(
                f"- {size} x {size}, {label}: next to {BASELINE}'s "
                f"{base['conv_macs'] / 1e9:.3f} GMAC of convolution, the gates add "
                f"{extra / 1e9:.3f} GMAC of 1x1 projections "
                f"({extra / base['conv_macs']:.1%}) and "
                f"{gated['mul_elements'] / 1e6:.2f} M element-wise multiplies "
                f"({gated['op_census'].get('MUL', 0)} MUL ops)."
            )
    if lines:
        lines = ["", "## Gate cost (CoordGate U-Net vs U-Net, TFLite float32)", ""] + (
            lines
        )
    return lines


def _peer(artefacts, workers, sizes, threads):
    peer = [
        (t, s, workers[t]["sizes"][s]["peer"])
        for t in threads
        for s in map(str, sizes)
        if workers[t]["sizes"][s]["peer"]
    ]
    if not peer:
        return []
    t, s, info = peer[0]
    ours = artefacts.get(("coordgate_unet_d2", s, "keras"), {}).get("num_params")
    text = (
        f"- `_torch_peer.CGUNet` (PyTorch {info['torch']}): "
        f"{info['num_params']} parameters (ours: {ours})"
    )
    if "onnx_size_bytes" in info:
        text += (
            f"; its ONNX file {info['onnx_size_bytes'] / 2**20:.2f} MiB at {s}, "
            f"max abs error vs PyTorch {info['onnx_max_abs_error_vs_torch']:.2g}"
        )
    lines = ["", "## Peer", "", text + "."]
    for t, s, info in peer:
        if "compile_error" in info:
            lines.append(f"- torch.compile failed ({s}, {t}): {info['compile_error']}")
    return lines


def _load(values):
    return "[" + ", ".join(f"{v:.2f}" for v in values) + "]"


def _environment_markdown(env):
    from benchmarks import _environment

    return (
        _environment.markdown(env)
        + "\n- Versions: "
        + ", ".join(f"{k} {v}" for k, v in env["versions"].items())
    )


# === Command line ===


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smoke run: 64x64, base_filters 8, 1 thread, 1 warm-up + 3 rounds, "
        "written to a new temporary folder unless --output is given",
    )
    parser.add_argument(
        "--models", default=",".join(MODELS), help="registry names, comma-separated"
    )
    parser.add_argument("--sizes", "--size", help="comma-separated (128,256)")
    parser.add_argument("--threads", help="comma-separated thread counts (1,2)")
    parser.add_argument("--base-filters", type=int, help="(32)")
    parser.add_argument("--rounds", "--runs", type=int, help="timed rounds (40)")
    parser.add_argument("--warmup", type=int, help="untimed rounds first (3)")
    parser.add_argument(
        "--no-onnx", action="store_true", help="TFLite and Keras only (no ONNX)"
    )
    parser.add_argument(
        "--no-torch", action="store_true", help="without the PyTorch peer"
    )
    parser.add_argument("--output", type=pathlib.Path, help=f"(default {RESULTS})")
    parser.add_argument("--workdir", help="keep (and reuse) the exported files here")
    parser.add_argument("--artefacts", help=argparse.SUPPRESS)
    parser.add_argument("--worker-threads", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--worker-out", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    defaults = dict(DEFAULTS, **QUICK) if args.quick else DEFAULTS
    for key, value in defaults.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    args.models = [m for m in str(args.models).split(",") if m]
    args.sizes = [int(s) for s in str(args.sizes).split(",")]
    args.threads = [int(t) for t in str(args.threads).split(",")]
    missing = [
        package
        for package, needed in (
            ("onnxruntime", not args.no_onnx),
            ("tf2onnx", not args.no_onnx),
            ("torch", not args.no_torch),
        )
        if needed and importlib.util.find_spec(package) is None
    ]
    if missing:
        parser.error(
            f"{', '.join(missing)} not installed: install it (see the docstring), "
            "or pass --no-onnx (ONNX) / --no-torch (the PyTorch peer)"
        )
    return args


def main(argv=None):
    args = parse_args(argv)
    if args.worker_threads:
        return worker(args)

    from benchmarks import _environment
    from coordgate_keras.tflite import onnx_export, verification
    from coordgate_keras.utils import atomic_io

    env = _environment.describe()
    env["versions"] = (verification if args.no_onnx else onnx_export).versions()
    if not args.no_torch:
        import torch

        env["versions"]["torch"] = torch.__version__
    if args.output is None and args.quick:
        args.output = pathlib.Path(tempfile.mkdtemp(prefix="edge_benchmark_quick_"))
    args.output = args.output or RESULTS
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        # --workdir keeps the exports, and reuses them when run again.
        workdir = pathlib.Path(args.workdir or tmp).resolve()
        workdir.mkdir(parents=True, exist_ok=True)
        index = workdir / "artefacts.json"
        artefacts = {}
        if index.exists():
            artefacts = {
                tuple(k.split("|")): v for k, v in json.loads(index.read_text()).items()
            }
        artefacts = export_all(
            args.models,
            args.sizes,
            args.base_filters,
            workdir,
            onnx=not args.no_onnx,
            artefacts=artefacts,
        )
        index_text = json.dumps({"|".join(k): v for k, v in artefacts.items()})
        atomic_io.atomic_write_text(index, index_text)
        artefacts = {
            k: v
            for k, v in artefacts.items()
            if k[0] in args.models and int(k[1]) in args.sizes
        }
        workers = {}
        for threads in args.threads:
            out = workdir / f"worker_{threads}.json"
            command = [
                f"--models={','.join(args.models)}",
                f"--sizes={','.join(map(str, args.sizes))}",
                f"--base-filters={args.base_filters}",
                f"--rounds={args.rounds}",
                f"--warmup={args.warmup}",
                f"--workdir={workdir}",
                f"--artefacts={index}",
                f"--worker-threads={threads}",
                f"--worker-out={out}",
            ]
            command += ["--no-torch"] * args.no_torch + ["--no-onnx"] * args.no_onnx
            _environment.run_module(__spec__.name, command, check=True)
            workers[threads] = json.loads(out.read_text())
    artefacts = {
        k: {f: v for f, v in record.items() if f != "path"}
        for k, record in artefacts.items()
    }
    summary = summarize(artefacts, workers, args.sizes, args.models)
    env["wall_seconds"] = round(time.perf_counter() - start, 1)
    _environment.finish(env)
    args.output.mkdir(parents=True, exist_ok=True)
    payload = {
        "environment": env,
        "models": args.models,
        "sizes": args.sizes,
        "base_filters": args.base_filters,
        "weights": "untrained (random init, seed 0)",
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
