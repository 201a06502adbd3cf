"""ONNX export: folded, verified in ONNX Runtime, atomic, with a census."""

import importlib.metadata
import json
import os

import keras
import numpy as np
import pytest

from coordgate_keras.tflite import (
    VerificationError,
    cli,
    export_onnx,
    onnx_export,
    onnx_op_census,
    run_onnx,
)
from coordgate_keras.zoo import create_model

pytest.importorskip("tf2onnx", reason="ONNX export needs the `onnx` extra")
pytest.importorskip("onnxruntime", reason="ONNX export needs the `onnx` extra")

SHAPE = (1, 32, 32, 1)


@pytest.fixture(scope="module")
def gated_model():
    keras.utils.set_random_seed(0)
    return create_model("coordgate_unet_d1", input_shape=SHAPE[1:], base_filters=8)


def test_onnx_export_matches_keras(tmp_path, gated_model):
    path = tmp_path / "cg.onnx"
    report = export_onnx(gated_model, path, SHAPE)
    result = report["verification"]
    assert result["passed"] and result["max_abs_error"] <= 1e-4
    x = np.random.default_rng(3).uniform(0, 1, SHAPE).astype("float32")
    np.testing.assert_allclose(
        run_onnx(path, [x])[0], gated_model(x), rtol=0, atol=1e-5
    )

    sidecar = json.loads((tmp_path / "cg.onnx.json").read_text())
    assert sidecar["format"] == "onnx" and sidecar["file"] == "cg.onnx"
    assert sidecar["inputs"][0]["shape"] == list(SHAPE)
    assert sidecar["size_bytes"] == os.path.getsize(path)
    assert {"onnx", "onnxruntime", "tf2onnx"} <= set(sidecar["versions"])

    # In the file: the separable gates' small terms (each row term times the
    # model's one, itself zero + 1) and their sums; after ONNX Runtime's
    # load-time folding, one Mul per gate (3 in CG_UNet d1).
    stored = onnx_op_census(path)
    assert stored["Resize"] == 1 and stored["Mul"] == 2 * 3
    assert stored["Add"] == 1 + 3
    run = onnx_op_census(path, optimized=True)
    assert run["Mul"] == 3 and "Add" not in run and "Slice" not in run
    assert sidecar["op_census_optimized"] == dict(sorted(run.items()))


def test_onnx_separable_gates_are_small(tmp_path, gated_model):
    sizes = {}
    for gates in ("auto", "constant"):
        path = tmp_path / f"{gates}.onnx"
        export_onnx(gated_model, path, SHAPE, gates=gates)
        sizes[gates] = path.stat().st_size
    # d1 gates: 32x32x8, 16x16x16, 32x32x8 float32 values when stored whole.
    whole = 4 * (2 * 32 * 32 * 8 + 16 * 16 * 16)
    assert sizes["constant"] - sizes["auto"] > 0.8 * whole


def test_onnx_export_is_atomic(tmp_path, gated_model):
    path = tmp_path / "cg.onnx"
    with pytest.raises(VerificationError, match="Nothing was written"):
        export_onnx(gated_model, path, SHAPE, thresholds={"max_abs_error": -1.0})
    assert os.listdir(tmp_path) == []
    export_onnx(gated_model, path, SHAPE)
    with pytest.raises(FileExistsError, match="cg.onnx already exists"):
        export_onnx(gated_model, path, SHAPE)
    export_onnx(gated_model, path, SHAPE, overwrite=True)
    assert sorted(os.listdir(tmp_path)) == ["cg.onnx", "cg.onnx.json"]


def test_onnx_argument_errors(tmp_path, gated_model, monkeypatch):
    with pytest.raises(
        ValueError,
        match=r"Invalid value for argument `path`\. Expected a file name ending in '\.onnx'\. Received: path='.*m\.tflite'",
    ):
        export_onnx(gated_model, tmp_path / "m.tflite", SHAPE)
    with pytest.raises(
        ValueError,
        match=r"Invalid value for argument `opset`\. Expected a positive integer or None\. Received: opset=0",
    ):
        export_onnx(gated_model, tmp_path / "m.onnx", SHAPE, opset=0)

    def missing(name):
        if name == "tf2onnx":
            raise importlib.metadata.PackageNotFoundError(name)
        return "1.0"

    monkeypatch.setattr(onnx_export.importlib.metadata, "version", missing)
    with pytest.raises(
        ImportError,
        match=r'ONNX export needs tf2onnx: install the `onnx` extra, `pip install "coordgate-keras\[onnx\]"`',
    ):
        export_onnx(gated_model, tmp_path / "m.onnx", SHAPE)


def test_cli_format_onnx(tmp_path, capsys):
    out = tmp_path / "export"
    argv = ["--model", "unet_d1", "--input-shape", "1,16,16,1", "--out", str(out)]
    assert cli.main(argv + ["--format", "onnx"]) == 0
    assert sorted(os.listdir(out)) == [
        "unet_d1_16x16_float32.onnx",
        "unet_d1_16x16_float32.onnx.json",
    ]
    assert "unet_d1_16x16_float32.onnx" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        cli.main(argv + ["--format", "onnx", "--quantization", "int8"])
    assert "--format onnx writes float32 only" in capsys.readouterr().err


def _registry_names():
    from coordgate_keras.zoo import list_models

    return list_models()


@pytest.mark.slow
@pytest.mark.parametrize("name", _registry_names())
def test_registry_onnx_parity(tmp_path, registry_model, name):
    model, shape = registry_model(name)
    report = export_onnx(model, tmp_path / f"{name}.onnx", shape)
    assert report["verification"]["max_abs_error"] <= 1e-4
