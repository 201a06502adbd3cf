"""Tile models: inputs `image` and `origin`, gates gathered from frame tables."""

import json
import os
import re

import keras
import numpy as np
import pytest

from coordgate_keras.layers import CoordGate
from coordgate_keras.tflite import (
    cli,
    export_tflite,
    list_operators,
    op_census,
    prepare_for_export,
    simulated_inputs,
)
from coordgate_keras.tflite.verification import run_tflite

# A 32 x 32 tile of a 128 x 96 frame: small and fast, corners far apart.
TILE = (1, 32, 32, 1)
FRAME = (128, 96)
CORNERS = [(0, 0), (0, 64), (96, 0), (96, 64)]


def _inputs(shape, seed=0):
    return np.random.default_rng(seed).uniform(0, 1, shape).astype("float32")


@pytest.fixture(scope="module")
def tile_model():
    from coordgate_keras.zoo import create_model

    keras.utils.set_random_seed(0)
    return create_model(
        "coordgate_unet_d1", input_shape=TILE[1:], base_filters=8, frame_shape=FRAME
    )


# === The folded gate against NumPy ===


def _frame_gate_model(frame, tile, **gate_kwargs):
    image = keras.Input(tile + (3,), name="image")
    origin = keras.Input((2,), dtype="int32", name="origin")
    x = keras.layers.Conv2D(6, 3, padding="same", name="conv")(image)
    x = CoordGate(name="gate", frame_shape=frame, **gate_kwargs)([x, origin])
    return keras.Model([image, origin], x)


def _numpy_pre_activation(layer, height, width):
    """The frame's pre-activation gate from the weights (affine encoder)."""
    u, v = np.meshgrid(
        np.linspace(-1, 1, height), np.linspace(-1, 1, width), indexing="ij"
    )
    gate = np.stack([u, v], axis=-1)
    for kernel, bias in zip(layer.encoder_kernels, layer.encoder_biases):
        gate = gate @ np.asarray(kernel, np.float64) + np.asarray(bias, np.float64)
    return gate


@pytest.mark.parametrize(
    "gate_kwargs, activation",
    [({"encoding_layers": 3}, "relu"), ({"gate_activation": None}, None)],
    ids=["relu", "linear"],
)
def test_window_of_frame_tables_against_numpy(gate_kwargs, activation):
    keras.utils.set_random_seed(3)
    frame, tile = (12, 10), (4, 6)
    model = _frame_gate_model(frame, tile, **gate_kwargs)
    folded = prepare_for_export(model, (2,) + tile + (3,), gates="compact")
    assert [i.name for i in folded.inputs] == ["image", "origin"]
    gate_layer = model.get_layer("gate")
    pre = _numpy_pre_activation(gate_layer, *frame)
    gate = np.maximum(pre, 0) if activation == "relu" else pre
    kernel = np.asarray(gate_layer.projection.kernel, np.float64)[0, 0]
    bias = np.asarray(gate_layer.projection.bias, np.float64)
    conv = keras.Model(model.inputs[0], model.get_layer("conv").output)

    x = _inputs((2,) + tile + (3,))
    # Two samples, two origins: each gathers its own window.
    origin = np.int32([[0, 4], [8, 2]])
    features = np.asarray(conv(x), np.float64)
    expected = np.stack(
        [
            (features[i] * gate[r : r + tile[0], c : c + tile[1]]) @ kernel + bias
            for i, (r, c) in enumerate(origin)
        ]
    )
    np.testing.assert_allclose(folded([x, origin]), expected, rtol=0, atol=2e-5)
    np.testing.assert_allclose(model([x, origin]), expected, rtol=0, atol=2e-5)


def test_window_gate_stored_whole_for_other_gates():
    keras.utils.set_random_seed(4)
    model = _frame_gate_model((12, 10), (4, 6), gate_activation="sigmoid")
    folded = prepare_for_export(model, (1, 4, 6, 3))
    x, origin = _inputs((1, 4, 6, 3)), np.int32([[8, 4]])
    np.testing.assert_allclose(folded([x, origin]), model([x, origin]), atol=1e-5)
    with pytest.raises(
        ValueError,
        match=r"Cannot store the gate of CoordGate `gate` in a compact form "
        r"\(encoding='map', hidden_activation=None\): only 'mlp' and 'fourier' "
        r"encoders without a hidden activation \(a row plus a column term\) have "
        r"one in a tile model \(frame_shape\)",
    ):
        prepare_for_export(
            _frame_gate_model((12, 10), (4, 6), encoding="map", map_size=3),
            (1, 4, 6, 3),
            gates="compact",
        )


# === TFLite files ===


@pytest.fixture(scope="module")
def tile_exports(tile_model, tmp_path_factory):
    directory = tmp_path_factory.mktemp("tiles")
    cache = {}

    def export(quantization):
        if quantization not in cache:
            path = directory / f"tile_{quantization}.tflite"
            report = export_tflite(tile_model, path, TILE, quantization=quantization)
            cache[quantization] = (path, report)
        return cache[quantization]

    return export


@pytest.mark.parametrize("quantization", ["none", "float16", "int8"])
def test_tile_tflite_verified_at_corners(tile_model, tile_exports, quantization):
    path, report = tile_exports(quantization)
    assert report["verification"]["passed"]
    tile = report["tile"]
    assert tile["frame_shape"] == list(FRAME) and tile["tile_shape"] == [32, 32]
    assert tile["alignment"] == 2
    origins = [tuple(o["origin"]) for o in tile["verified_origins"]]
    assert origins[:4] == CORNERS and origins[4] == (48, 32)
    names = sorted(i["name"] for i in report["inputs"])
    assert names == ["serving_default_image:0", "serving_default_origin:0"]
    origin_input = [i for i in report["inputs"] if "origin" in i["name"]][0]
    assert origin_input["dtype"] == "int32" and origin_input["shape"] == [1, 2]
    sidecar = json.loads(path.with_suffix(".json").read_text())["tile"]
    assert sidecar["frame_shape"] == list(FRAME) and sidecar["alignment"] == 2
    assert [o["origin"] for o in sidecar["verified_origins"]] == [
        list(o) for o in origins
    ]

    # An origin the verification did not use, against the Keras tile model,
    # on one of the calibration's images (int8 clips inputs outside their
    # calibrated range; some simulated images exceed it).
    x, origin = simulated_inputs(TILE, 16, seed=0)[3:4], np.int32([[64, 34]])
    (output,) = run_tflite(path, [(x, origin)])
    expected = keras.ops.convert_to_numpy(tile_model([x, origin]))
    error = np.max(np.abs(output - expected))
    if quantization == "none":
        assert error <= 1e-5
    else:
        peak = expected.max() - expected.min()
        psnr = 10 * np.log10(peak**2 / np.mean((output - expected) ** 2))
        assert psnr >= {"float16": 60.0, "int8": 25.0}[quantization], psnr


def _gates(model):
    return [layer for layer in model.layers if isinstance(layer, CoordGate)]


@pytest.mark.parametrize("quantization", ["none", "int8"])
def test_tile_census(tile_model, tile_exports, spatial_ops, quantization):
    path, _ = tile_exports(quantization)
    gates = len(_gates(tile_model))
    census = op_census(path)
    # Per gate: the tile's rows and columns gathered from the frame's tables,
    # one full-size ADD (ReLU fused) and one full-size MUL; no SLICE-made one.
    assert census["GATHER"] == 2 * gates
    assert "SLICE" not in census and "RELU" not in census
    counts = spatial_ops(path)
    assert counts[("ADD", "full")] == gates and counts[("MUL", "full")] == gates
    # No stored tensor as large as a gate: the tables are (H, C) and (W, C).
    largest = max(
        np.prod(t.shape)
        for op in list_operators(path)
        for t in op.inputs
        if t is not None and t.constant and op.name != "CONV_2D"
    )
    assert largest <= max(FRAME) * 16
    # A float tile model computes no float from the origin but the gathers.
    assert not {"LOGISTIC", "FULLY_CONNECTED", "SHAPE"} & set(census)


def test_one_input_model_with_frame_shape(tmp_path):
    from coordgate_keras.zoo import create_model, with_frame

    keras.utils.set_random_seed(1)
    model = create_model("coordgate_unet_d1", input_shape=TILE[1:], base_filters=8)
    path = tmp_path / "one.tflite"
    report = export_tflite(model, path, TILE, frame_shape=FRAME)
    assert report["tile"]["frame_shape"] == list(FRAME)
    x, origin = _inputs(TILE, seed=2), np.int32([[96, 64]])
    (output,) = run_tflite(path, [(x, origin)])
    expected = with_frame(model, FRAME)([x, origin])
    np.testing.assert_allclose(output, expected, rtol=0, atol=1e-5)


def test_frame_shape_errors(tile_model, tmp_path):
    from coordgate_keras.zoo import create_model

    one_input = create_model("coordgate_unet_d1", input_shape=TILE[1:], base_filters=8)
    path = tmp_path / "bad.tflite"
    with pytest.raises(
        ValueError,
        match=r"Invalid value for argument `frame_shape`\. Expected a tuple of two "
        r"positive integers \(height, width\)\. Received: frame_shape=\(128,\)",
    ):
        export_tflite(one_input, path, TILE, frame_shape=(128,))
    with pytest.raises(
        ValueError,
        match=r"Invalid value for argument `frame_shape`\. Expected the tile "
        r"model's own frame \(128, 96\) \(or None\)\. Received: frame_shape=\(64, 64\)",
    ):
        export_tflite(tile_model, path, TILE, frame_shape=(64, 64))
    assert os.listdir(tmp_path) == []


# === ONNX ===


def test_tile_onnx(tile_model, tmp_path, spatial_ops):
    pytest.importorskip("tf2onnx", reason="ONNX export needs the `onnx` extra")
    pytest.importorskip("onnxruntime", reason="ONNX export needs the `onnx` extra")
    from coordgate_keras.tflite import export_onnx, run_onnx

    path = tmp_path / "tile.onnx"
    report = export_onnx(tile_model, path, TILE)
    assert [i["name"] for i in report["inputs"]] == ["image", "origin"]
    assert report["tile"]["frame_shape"] == list(FRAME)
    assert [tuple(o["origin"]) for o in report["tile"]["verified_origins"]][
        :4
    ] == CORNERS
    x, origin = _inputs(TILE, seed=3), np.int32([[32, 62]])
    (output,) = run_onnx(path, [(x, origin)])
    np.testing.assert_allclose(output, tile_model([x, origin]), rtol=0, atol=1e-5)


# === Command line ===


@pytest.fixture(scope="module")
def keras_file(tmp_path_factory):
    """A small one-input CoordGate U-Net saved as `.keras`."""
    from coordgate_keras.zoo import create_model

    keras.utils.set_random_seed(2)
    model = create_model("coordgate_unet_d1", input_shape=TILE[1:], base_filters=8)
    path = tmp_path_factory.mktemp("keras") / "cg.keras"
    model.save(path)
    return str(path)


def test_cli_frame_size(tmp_path, capsys, keras_file):
    out = tmp_path / "out"
    argv = ["--keras-file", keras_file, "--input-shape", "1,32,32,1"]
    argv += ["--frame-size", "128x96", "--quantization", "float32", "--out", str(out)]
    assert cli.main(argv) == 0
    stem = "coordgate_unet_d1_32x32_frame128x96"
    assert sorted(os.listdir(out)) == [
        f"{stem}_float32.json",
        f"{stem}_float32.tflite",
        f"{stem}_saved_model",
    ]
    sidecar = json.loads((out / f"{stem}_float32.json").read_text())
    assert sidecar["tile"]["frame_shape"] == [128, 96]
    assert sidecar["tile"]["tile_shape"] == [32, 32]
    assert sidecar["tile"]["alignment"] == 2
    # A depth-1 U-Net's margin (test_deblur checks it against a pixel's reach).
    assert sidecar["tile"]["receptive_field_margin"] == 10
    assert len(sidecar["tile"]["verified_origins"]) == 5
    assert sidecar["verification"]["max_abs_error"] <= 1e-4
    assert f"| {stem}_float32.tflite | none |" in capsys.readouterr().out


@pytest.mark.parametrize(
    "frame, message",
    [
        (
            "129x96",
            r"Invalid value for argument `--frame-size`\. Expected sizes at least "
            r"the window's \(32, 32\) and divisible by 2 \(the model down-samples "
            r"2x\)\. Received: --frame-size=129x96",
        ),
        (
            "16x96",
            r"Invalid value for argument `--frame-size`\. Expected sizes at least "
            r"the window's \(32, 32\).* Received: --frame-size=16x96",
        ),
    ],
    ids=["unaligned", "smaller_than_tile"],
)
def test_cli_frame_size_errors(tmp_path, capsys, keras_file, frame, message):
    out = tmp_path / "out"
    argv = ["--keras-file", keras_file, "--input-shape", "1,32,32,1"]
    argv += ["--frame-size", frame, "--quantization", "float32", "--out", str(out)]
    assert cli.main(argv) == 1
    err = capsys.readouterr().err
    assert err.startswith("coordgate-export: error: "), err
    assert re.search(message, err), err
    assert not out.exists()


def test_cli_frame_size_malformed(capsys):
    for text in ("2048x", "x2048", "0x2048", "2048x2048x1", "-1"):
        with pytest.raises(SystemExit) as raised:
            cli.main(["--model", "unet_d1", "--frame-size", text, "--out", "x"])
        assert raised.value.code == 2
        err = capsys.readouterr().err
        assert (
            "argument --frame-size: expected N or HxW in pixels (integers >= 1), "
            f"e.g. 2048x2048; received {text!r}" in err
        ), err
