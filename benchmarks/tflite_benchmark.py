"""Edge export benchmark: file size, LiteRT latency and PSNR vs Keras per variant.

For `unet_d2`, `coordgate_unet_d2` and `coordconv_unet_d2` at 256 x 256 (batch 1,
one channel, default widths), exports float32, float16 and int8 TFLite files with
`coordgate_keras.tflite.export_bundle` (builtin ops only, verified), then measures

- file size (and int8 / float32),
- batch-1 latency with the LiteRT interpreter at 1 and 2 threads (runs of the
  three models interleaved, so load from other processes falls on all alike),
- PSNR of each TFLite variant's output against the float Keras model's output on
  simulated blurred images (peak = range of the Keras output),
- the op census (one MUL per CoordGate).

Models are untrained (random init, seed 0): no trained weights are published yet.

    python -m benchmarks.tflite_benchmark [--size 256] [--runs 10]

Writes benchmarks/results/tflite_benchmark.{md,json}.
"""

import argparse
import json
import os
import pathlib
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

from benchmarks import _environment  # noqa: E402
from coordgate_keras.tflite import (  # noqa: E402
    benchmark,
    export_bundle,
    list_operators,
    op_census,
)
from coordgate_keras.tflite.verification import versions  # noqa: E402
from coordgate_keras.utils import atomic_io  # noqa: E402

RESULTS = pathlib.Path(__file__).resolve().parent / "results"
MODELS = ("unet_d2", "coordgate_unet_d2", "coordconv_unet_d2")
QUANTIZATIONS = ("none", "float16", "int8")
LABELS = {"none": "float32", "float16": "float16", "int8": "int8"}
LATENCY_TARGET = 1.05  # CoordGate U-Net vs the same U-Net without gates
SIZE_TARGET = 0.3  # int8 file vs float32 file


def conv_macs(path):
    """Multiply-accumulates of the CONV_2D ops of a `.tflite` file."""
    total = 0
    for op in list_operators(path):
        if op.name == "CONV_2D":
            out_channels, kh, kw, in_channels = op.inputs[1].shape
            total += int(np.prod(op.outputs[0].shape)) * kh * kw * in_channels
    return total


def mul_elements(path):
    """Output elements of the MUL ops (the folded gates) of a `.tflite` file."""
    return sum(
        int(np.prod(op.outputs[0].shape))
        for op in list_operators(path)
        if op.name == "MUL"
    )


def export_models(models, size, directory):
    """Exports every model; returns {model: {quantization: record}}."""
    records = {}
    for name in models:
        start = time.perf_counter()
        result = export_bundle(
            name, directory, (1, size, size, 1), quantizations=QUANTIZATIONS
        )
        seconds = time.perf_counter() - start
        print(f"exported {name} in {seconds:.0f} s", flush=True)
        records[name] = {}
        for report in result["reports"]:
            census = op_census(report["path"])
            check = report["verification"]
            records[name][report["quantization"]] = {
                "path": report["path"],
                "size_bytes": report["size_bytes"],
                "psnr_db": check["psnr_db"],
                "max_abs_error": check["max_abs_error"],
                "mean_abs_error": check["mean_abs_error"],
                "reference_range": check["reference_range"],
                "verification_data": check["data"],
                "inputs": report["inputs"],
                "outputs": report["outputs"],
                "op_census": dict(sorted(census.items())),
                "conv_macs": conv_macs(report["path"]),
                "mul_elements": mul_elements(report["path"]),
            }
        for quantization, reason in result["refused"].items():
            records[name][quantization] = {"refused": reason}
        records[name]["export_seconds"] = seconds
    return records


def measure_latency(records, models, threads, runs, warmup):
    for quantization in QUANTIZATIONS:
        names = [n for n in models if "path" in records[n].get(quantization, {})]
        for count in threads:
            results = benchmark(
                [records[n][quantization]["path"] for n in names],
                threads=count,
                runs=runs,
                warmup=warmup,
            )
            for name, result in zip(names, results):
                records[name][quantization].setdefault("latency", {})[count] = result
            print(f"timed {LABELS[quantization]} at {count} thread(s)", flush=True)


def summarize(records, models, threads):
    """Latency ratios (CoordGate / CoordConv vs U-Net) and int8 size ratios."""
    summary = {
        "latency_ratio_vs_unet": {},
        "latency_ratio_vs_unet_min": {},
        "int8_size_ratio": {},
    }
    base = "unet_d2"
    for name in models:
        float32, int8 = records[name].get("none", {}), records[name].get("int8", {})
        if "size_bytes" in float32 and "size_bytes" in int8:
            summary["int8_size_ratio"][name] = (
                int8["size_bytes"] / float32["size_bytes"]
            )
        if name == base or base not in records:
            continue
        for key, stat in (("", "p50_ms"), ("_min", "min_ms")):
            ratios = {}
            for quantization in QUANTIZATIONS:
                mine = records[name].get(quantization, {}).get("latency", {})
                ref = records[base].get(quantization, {}).get("latency", {})
                for count in threads:
                    if count in mine and count in ref:
                        ratios[f"{LABELS[quantization]}@{count}"] = (
                            mine[count][stat] / ref[count][stat]
                        )
            summary[f"latency_ratio_vs_unet{key}"][name] = ratios
    return summary


def markdown(env, args, records, summary, models, threads):
    lines = [
        "# Edge export: TFLite size, latency and accuracy",
        "",
        "Written by `python -m benchmarks.tflite_benchmark`.",
        "",
        _environment.markdown(env),
        "- Versions: " + ", ".join(f"{k} {v}" for k, v in env["versions"].items()),
        f"- Input: batch 1, {args.size}x{args.size}x1, values in [0, 1]; models at "
        "their registry defaults (`base_filters=64`), **untrained** (random init, "
        "seed 0): no trained weights are published yet.",
        f"- Latency: LiteRT `Interpreter` (XNNPACK for float), {args.warmup} warm-up "
        f"+ {args.runs} timed `invoke()` per file, the three models interleaved; "
        "p50 (p90) in ms. The machine is shared: absolute times vary between runs, "
        "the interleaved ratios much less.",
        "- PSNR: each TFLite variant's output vs the float Keras model's output on "
        "4 simulated blurred microscopy images (`simulated_inputs`, seed 1); peak = "
        "range of the Keras output. int8 is calibrated on 16 other simulated images "
        "(seed 0).",
        "",
        "| model | variant | size (MiB) | "
        + " | ".join(f"latency {c} thread{'s' * (c > 1)} (ms)" for c in threads)
        + " | PSNR vs Keras (dB) | max abs error | MUL ops | conv GMAC |",
        "|---|---|---:|" + "---:|" * len(threads) + "---:|---:|---:|---:|",
    ]
    for name in models:
        for quantization in QUANTIZATIONS:
            record = records[name].get(quantization, {})
            if "refused" in record:
                lines.append(
                    f"| {name} | {LABELS[quantization]} | refused: "
                    f"{record['refused']} |" + " |" * (len(threads) + 4)
                )
                continue
            latency = record.get("latency", {})
            cells = [
                f"{latency[c]['p50_ms']:.0f} ({latency[c]['p90_ms']:.0f})"
                if c in latency
                else "-"
                for c in threads
            ]
            psnr = record["psnr_db"]
            psnr = "inf" if psnr == float("inf") else f"{psnr:.1f}"
            lines.append(
                f"| {name} | {LABELS[quantization]} "
                f"| {record['size_bytes'] / 2**20:.2f} | {' | '.join(cells)} "
                f"| {psnr} | {record['max_abs_error']:.2g} "
                f"| {record['op_census'].get('MUL', 0)} "
                f"| {record['conv_macs'] / 1e9:.2f} |"
            )
    lines += ["", "## Targets", ""]
    for name, ratios in summary["latency_ratio_vs_unet"].items():
        text = ", ".join(f"{k}: {v:.3f}x" for k, v in ratios.items())
        lines.append(f"- {name} latency / unet_d2 latency (p50): {text}.")
        fastest = summary["latency_ratio_vs_unet_min"][name]
        text = ", ".join(f"{k}: {v:.3f}x" for k, v in fastest.items())
        lines.append(f"  - same, fastest run of each (min): {text}.")
    cg = summary["latency_ratio_vs_unet"].get("coordgate_unet_d2", {})
    if cg:
        met = [k for k, v in cg.items() if v <= LATENCY_TARGET]
        lines.append(
            f"- Target CoordGate <= {LATENCY_TARGET}x U-Net latency: met for "
            f"{', '.join(met) or 'none'} of {', '.join(cg)}."
        )
    for name, ratio in summary["int8_size_ratio"].items():
        verdict = "met" if ratio <= SIZE_TARGET else "not met"
        lines.append(
            f"- {name}: int8 file = {ratio:.3f}x float32 (target <= {SIZE_TARGET}: "
            f"{verdict})."
        )
    base = records.get("unet_d2", {}).get("none", {})
    gated = records.get("coordgate_unet_d2", {}).get("none", {})
    cost = ""
    if "conv_macs" in base and "conv_macs" in gated:
        extra = gated["conv_macs"] - base["conv_macs"]
        cost = (
            f" Next to unet_d2's {base['conv_macs'] / 1e9:.1f} GMAC of convolution, "
            f"the 5 gates add {extra / 1e9:.2f} GMAC of 1x1 projections "
            f"({extra / base['conv_macs']:.1%}) and "
            f"{gated['mul_elements'] / 1e6:.1f} M element-wise multiplies: the "
            "projections are part of CoordGate itself, the multiplies are what "
            "remains of the gates. In int8 the 3x3 convolutions get about 5x "
            "faster while the element-wise work shrinks less, so the relative "
            "overhead grows."
        )
    lines += [
        "",
        "## Notes",
        "",
        "- CoordGate's gates are folded to constants at export "
        "(`prepare_for_export`): each gate is one MUL by a stored "
        "`(H, W, C)` tensor plus its 1x1 projection conv. The stored gates "
        "(one value per pixel and channel at each gated level) are what makes the "
        "CoordGate files larger than the U-Net's; int8 stores them in one byte." + cost,
        "- Latency ratios move by several percent between runs on this shared "
        "machine; the ratio of the fastest runs (min) is the least disturbed by "
        "other processes.",
        "- CoordConv's coordinate channels are one constant CONCATENATION per "
        "CoordConv2D.",
        "- Op census per file is in the JSON (`op_census`).",
        "",
    ]
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--output", type=pathlib.Path, default=RESULTS)
    args = parser.parse_args(argv)
    models = tuple(args.models.split(","))
    threads = tuple(int(t) for t in args.threads.split(","))

    env = _environment.describe()
    env["versions"] = versions()
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as directory:
        records = export_models(models, args.size, directory)
        measure_latency(records, models, threads, args.runs, args.warmup)
    summary = summarize(records, models, threads)
    env["wall_seconds"] = round(time.perf_counter() - start, 1)
    for name in models:
        for quantization in QUANTIZATIONS:
            records[name].get(quantization, {}).pop("path", None)

    args.output.mkdir(parents=True, exist_ok=True)
    payload = {
        "environment": env,
        "size": args.size,
        "runs": args.runs,
        "warmup": args.warmup,
        "threads": threads,
        "weights": "untrained (random init, seed 0)",
        "models": records,
        "summary": summary,
    }
    text = json.dumps(payload, indent=2, default=str).replace("Infinity", "null")
    atomic_io.atomic_write_text(args.output / "tflite_benchmark.json", text + "\n")
    atomic_io.atomic_write_text(
        args.output / "tflite_benchmark.md",
        markdown(env, args, records, summary, models, threads),
    )
    print(f"wrote {args.output / 'tflite_benchmark.md'} in {env['wall_seconds']} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
