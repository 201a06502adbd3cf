"""`benchmarks.edge_benchmark`: its summary and report, on made-up measurements
(the exports and timings themselves run in `--quick`, not here)."""

import argparse
import json

import pytest

from benchmarks import edge_benchmark as edge

UNET, CG, CC = "unet_d2", "coordgate_unet_d2", "coordconv_unet_d2"


def _file(size_bytes, macs=None, muls=0):
    record = {
        "size_bytes": size_bytes,
        "max_abs_error": 1e-6,
        "mean_abs_error": 1e-7,
        "psnr_db": 90.0,
        "op_census": {"CONV_2D": 9, "MUL": muls},
    }
    if macs is not None:
        record.update(conv_macs=macs, mul_elements=muls * 4096)
    return record


ARTEFACTS = {
    (UNET, "64", "tflite float32"): _file(1000, macs=2_000_000_000),
    (UNET, "64", "tflite int8"): _file(250, macs=2_000_000_000),
    (CG, "64", "tflite float32"): _file(1200, macs=2_100_000_000, muls=5),
    (CG, "64", "tflite int8"): _file(330, macs=2_100_000_000, muls=5),
    (CG, "64", "onnx float32"): _file(1300),
    (UNET, "64", "onnx float32"): _file(1000),
    (CC, "64", "tflite float32"): _file(1100, macs=2_050_000_000),
    (CC, "64", "tflite int8"): {"refused": "PSNR 12.0 dB below 25 dB"},
    (CG, "64", "keras"): {"num_params": 1234},
}
TIMES = {
    f"{UNET}|tflite float32": [10.0, 20.0, 30.0],
    f"{CG}|tflite float32": [9.0, 30.0, 36.0],
    f"{UNET}|tflite int8": [4.0, 4.0, 4.0],
    f"{CG}|tflite int8": [5.0, 6.0, 4.0],
}
WORKERS = {
    1: {
        "load_average_before": [1.0, 1.0, 1.0],
        "load_average_after": [2.0, 2.0, 2.0],
        "sizes": {"64": {"times_ms": TIMES, "peer": None}},
    }
}


def test_summary_ratios_against_hand_computed_values():
    summary = edge.summarize(ARTEFACTS, WORKERS, [64], [UNET, CG, CC])
    # Per-round ratios 0.9, 1.5, 1.2: median 1.2; fastest runs 9 / 10.
    ratios = summary["ratios"]["64|1"]
    assert ratios[f"{CG} / {UNET} tflite float32"] == pytest.approx(1.2)
    assert ratios[f"{CG} / {UNET} tflite int8"] == pytest.approx(1.25)
    fastest_runs = summary["ratios_min"]["64|1"]
    assert fastest_runs[f"{CG} / {UNET} tflite float32"] == pytest.approx(0.9)
    assert fastest_runs[f"{CG} / {UNET} tflite int8"] == pytest.approx(1.0)
    # Nothing timed for coordconv: no ratio rather than a wrong one.
    assert not any(k.startswith(CC) for k in ratios)
    # 90th percentile of 10, 20, 30 between the 2nd and 3rd values: 20 + 0.8 * 10.
    assert summary["latency_p90"]["64|1"][f"{UNET}|tflite float32"] == 28.0
    assert summary["latency"]["64|1"][f"{CG}|tflite int8"] == 5.0
    assert summary["fastest_float32"]["64|1"] == "tflite float32"
    # No float16 file: no float16 ratio.
    assert summary["size_ratio"] == pytest.approx(
        {"64|tflite float32": 1.2, "64|tflite int8": 1.32, "64|onnx float32": 1.3}
    )
    # coordconv's int8 was refused: no int8 / float32 ratio for it.
    assert summary["int8_size_ratio"] == pytest.approx(
        {f"64|{UNET}": 0.25, f"64|{CG}": 0.275}
    )


def test_report_lists_refusals_targets_and_the_gate_cost():
    summary = edge.summarize(ARTEFACTS, WORKERS, [64], [UNET, CG, CC])
    env = {
        "command": "python -m benchmarks.edge_benchmark --quick",
        "cpu_model": "CPU",
        "cpus_usable": 2,
        "cpu_count": 2,
        "load_average_at_start": [1.0, 1.0, 1.0],
        "gpu": None,
        "python": "3.11",
        "numpy": "2",
        "tensorflow": "2.21",
        "platform": "Linux",
        "versions": {"coordgate_keras": "0.1.0"},
    }
    args = argparse.Namespace(
        sizes=[64], models=[UNET, CG, CC], base_filters=8, warmup=1, rounds=3
    )
    text = edge.markdown(env, args, ARTEFACTS, WORKERS, summary)
    assert "Written by `python -m benchmarks.edge_benchmark`." in text
    assert f"| 64 | {CC} | tflite int8 | refused: PSNR 12.0 dB below 25 dB |" in text
    assert f"| 64 | {CG} | tflite float32 | 0.00 | 1e-06 | 90.0 | 5 | 2.100 |" in text
    assert f"| 64 | {CG} | onnx float32 | 0.00 | 1e-06 | 90.0 | - | - |" in text
    assert f"| {UNET} tflite float32 | 20.0 (28.0) |" in text
    assert (
        f"- File size, int8 / float32, {CG} at 64: 0.275 (target <= 0.3: met)."
    ) in text
    assert "- File size, CoordGate / U-Net, tflite float32 at 64: 1.200" in text
    assert (
        "- Latency, CoordGate / U-Net, tflite float32, 64, 1 thread(s): 1.200 "
        "(target <= 1.05: not met)."
    ) in text
    # 2.1 - 2.0 GMAC = 5 % more; 5 MULs of 4096 elements.
    assert (
        f"next to {UNET}'s 2.000 GMAC of convolution, the gates add 0.100 GMAC of "
        "1x1 projections (5.0%) and 0.02 M element-wise multiplies (5 MUL ops)."
    ) in text


def test_quick_defaults_and_the_option_names_of_the_tflite_benchmark():
    args = edge.parse_args(["--quick", "--no-torch", "--no-onnx"])
    assert (args.sizes, args.threads, args.base_filters) == ([64], [1], 8)
    assert (args.rounds, args.warmup) == (3, 1)
    args = edge.parse_args(["--size", "256", "--runs", "10", "--no-torch"])
    assert (args.sizes, args.rounds, args.threads) == ([256], 10, [1, 2])
    assert args.models == [UNET, CG, CC] and args.base_filters == 32


@pytest.mark.slow
@pytest.mark.tf_only(reason="TFLite export")
def test_quick_run_exports_times_and_reports(tmp_path):
    assert edge.main(["--quick", "--no-torch", "--output", str(tmp_path)]) == 0
    payload = json.loads((tmp_path / "edge_benchmark.json").read_text())
    labels = ["keras", "onnx float32"] + ["tflite " + v[0] for v in edge.TFLITE]
    for name in (UNET, CG, CC):
        for label in labels[1:]:
            assert payload["artefacts"][f"{name}|64|{label}"]["size_bytes"] > 0
    times = payload["workers"]["1"]["sizes"]["64"]["times_ms"]
    assert {f"{n}|{label}" for n in (UNET, CG, CC) for label in labels} <= set(times)
    assert all(len(t) == 3 for t in times.values())
    assert (tmp_path / "edge_benchmark.md").read_text().startswith("# Edge benchmark")
