"""int8 gate overhead: CoordGate U-Net / plain U-Net latency in LiteRT, paired.

Exports `unet_d2` and `coordgate_unet_d2` (untrained, seed 0, `--base-filters`)
as full-integer int8 TFLite files at each `--sizes` (batch 1, one channel,
simulated calibration data) and times them interleaved in one process
(LiteRT interpreters run round robin, so load from
other processes falls on all alike). The overhead is the median over runs of
the paired ratio time(coordgate) / time(unet) - 1.

With `--before DIR`, the CoordGate U-Net is also exported by the package found
in DIR (e.g. `git archive <commit> coordgate_keras | tar -x -C DIR`), in a
subprocess, and timed in the same rounds: the before / after comparison of a
change to the export comes from one run on one machine.

    python -m benchmarks.gate_overhead_int8 --sizes 128 --before /tmp/before

Writes benchmarks/results/gate_overhead_int8.{md,json}.
"""

import argparse
import os
import pathlib
import subprocess
import sys
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

HERE = pathlib.Path(__file__).resolve().parent
RESULTS = HERE / "results"

_EXPORT = """
import sys, keras
import coordgate_keras
from coordgate_keras.tflite import export_tflite, op_census
from coordgate_keras.zoo import create_model
name, size, base, path = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
keras.utils.set_random_seed(0)
model = create_model(name, input_shape=(size, size, 1), base_filters=base)
report = export_tflite(model, path, (1, size, size, 1), quantization="int8",
                       num_calibration_samples=4)
print("exported", name, "with", coordgate_keras.__file__)
"""


def export(name, size, base_filters, path, pythonpath):
    """Exports in a subprocess that imports the package found in `pythonpath`
    (run from there: `python -c` puts its working directory first)."""
    env = dict(os.environ, PYTHONPATH=str(pythonpath))
    subprocess.run(
        [sys.executable, "-c", _EXPORT, name, str(size), str(base_filters), path],
        check=True,
        env=env,
        cwd=str(pythonpath),
    )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[128])
    parser.add_argument("--base-filters", type=int, default=32)
    parser.add_argument("--threads", type=int, nargs="+", default=[1])
    parser.add_argument("--runs", type=int, default=40)
    parser.add_argument("--before", help="a folder holding an older coordgate_keras")
    parser.add_argument("--out", default=str(RESULTS / "gate_overhead_int8"))
    args = parser.parse_args(argv)

    import numpy as np

    from benchmarks import _environment
    from coordgate_keras.tflite import op_census

    env = _environment.describe()
    here = HERE.parent
    results = {"environment": env, "args": vars(args), "sizes": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for size in args.sizes:
            files = {
                "unet_d2": (here, "unet_d2"),
                "coordgate_unet_d2": (here, "coordgate_unet_d2"),
            }
            if args.before:
                files["coordgate_unet_d2 (before)"] = (args.before, "coordgate_unet_d2")
            paths = {}
            for label, (pythonpath, name) in files.items():
                path = os.path.join(tmp, f"{label.replace(' ', '_')}_{size}.tflite")
                export(name, size, args.base_filters, path, pythonpath)
                paths[label] = path
            entry = {"census": {}, "size_bytes": {}, "threads": {}}
            for label, path in paths.items():
                entry["census"][label] = dict(sorted(op_census(path).items()))
                entry["size_bytes"][label] = os.path.getsize(path)
            labels = list(paths)
            for threads in args.threads:
                times = _paired_times(paths, labels, threads, args.runs)
                plain = times["unet_d2"]
                entry["threads"][threads] = {
                    "median_ms": {k: float(np.median(v)) for k, v in times.items()},
                    "overhead": {
                        k: float(np.median(v / plain)) - 1.0
                        for k, v in times.items()
                        if k != "unet_d2"
                    },
                }
            results["sizes"][size] = entry
    _environment.finish(env)
    out = pathlib.Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    from coordgate_keras.utils import atomic_io

    atomic_io.atomic_write_json(f"{out}.json", results, overwrite=True)
    atomic_io.atomic_write_bytes(
        f"{out}.md", markdown(results).encode(), overwrite=True
    )
    print(markdown(results))


def _paired_times(paths, labels, threads, runs):
    """Per-run times (ms) of every file, runs interleaved round robin."""
    import time

    import numpy as np
    from ai_edge_litert.interpreter import Interpreter

    from coordgate_keras.tflite.verification import quantize_input

    interpreters = []
    for label in labels:
        interpreter = Interpreter(model_path=paths[label], num_threads=threads)
        interpreter.allocate_tensors()
        (detail,) = interpreter.get_input_details()
        x = np.random.default_rng(0).uniform(0.0, 1.0, detail["shape"])
        interpreter.set_tensor(detail["index"], quantize_input(x, detail))
        interpreters.append(interpreter)
    for _ in range(3):
        for interpreter in interpreters:
            interpreter.invoke()
    times = np.empty((runs, len(labels)))
    for i in range(runs):
        for j, interpreter in enumerate(interpreters):
            start = time.perf_counter()
            interpreter.invoke()
            times[i, j] = (time.perf_counter() - start) * 1e3
    return {label: times[:, j] for j, label in enumerate(labels)}


def markdown(results):
    from benchmarks import _environment

    lines = [
        "# int8 gate overhead (LiteRT, batch 1)",
        "",
        "Written by `python -m benchmarks.gate_overhead_int8`.",
        "",
        _environment.markdown(results["environment"]),
        f"- Models untrained (seed 0), base_filters={results['args']['base_filters']}"
        f", {results['args']['runs']} interleaved runs after 3 warm-up rounds. "
        "Overhead = median over runs of time(model) / time(unet_d2) - 1.",
        "",
        "| size | threads | model | median ms | overhead vs unet_d2 | ADD | MUL "
        "| SLICE | KiB |",
        "|---:|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    for size, entry in results["sizes"].items():
        for threads, timing in entry["threads"].items():
            for label, median in timing["median_ms"].items():
                census = entry["census"][label]
                overhead = timing["overhead"].get(label)
                cell = "" if overhead is None else f"{100 * overhead:+.1f} %"
                lines.append(
                    f"| {size} | {threads} | {label} | {median:.2f} | {cell} "
                    f"| {census.get('ADD', 0)} | {census.get('MUL', 0)} "
                    f"| {census.get('SLICE', 0)} "
                    f"| {entry['size_bytes'][label] / 1024:.0f} |"
                )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
