"""Compact gates: row and column terms (or the coarse map), not the whole gate."""

import collections

import keras
import numpy as np
import pytest

from coordgate_keras.layers import CoordGate
from coordgate_keras.tflite import (
    export_tflite,
    list_operators,
    op_census,
    prepare_for_export,
)
from coordgate_keras.tflite.folding import _FoldedGate


def _inputs(shape, seed=0):
    return np.random.default_rng(seed).uniform(0, 1, shape).astype("float32")


def _gate_model(channels=3, data_format="channels_last", **gate_kwargs):
    shape = (None, None, channels) if data_format == "channels_last" else None
    if shape is None:
        shape = (channels, None, None)
    inputs = keras.Input(shape)
    x = inputs
    if data_format == "channels_first":
        # Keras' Conv2D runs channels first only where the backend can (not on
        # TensorFlow's CPU without oneDNN); the gate under test is channels first.
        x = keras.layers.Permute((2, 3, 1))(x)
    x = keras.layers.Conv2D(6, 3, padding="same", name="conv")(x)
    if data_format == "channels_first":
        x = keras.layers.Permute((3, 1, 2))(x)
    x = CoordGate(name="gate", data_format=data_format, **gate_kwargs)(x)
    return keras.Model(inputs, x)


def _numpy_gate(layer, height, width):
    """The layer's gate from its weights, in float64 NumPy (no layer code)."""
    u, v = np.meshgrid(
        np.linspace(-1, 1, height), np.linspace(-1, 1, width), indexing="ij"
    )
    coords = np.stack([u, v], axis=-1)
    features = [coords]
    if layer.encoding == "fourier":
        for k in range(layer.num_frequencies):
            features += [
                np.sin(coords * np.pi * 2.0**k),
                np.cos(coords * np.pi * 2.0**k),
            ]
    gate = np.concatenate(features, axis=-1)
    for kernel, bias in zip(layer.encoder_kernels, layer.encoder_biases):
        gate = gate @ np.asarray(kernel, np.float64) + np.asarray(bias, np.float64)
    return gate


@pytest.mark.parametrize(
    "gate_kwargs, activation",
    [
        ({"encoding_layers": 3, "encoding_units": 16}, "relu"),
        ({"encoding": "fourier", "num_frequencies": 2}, "relu"),
        ({"gate_activation": None}, None),
        ({"gate_activation": "sigmoid"}, "sigmoid"),
    ],
    ids=["mlp3", "fourier", "linear", "sigmoid"],
)
def test_separable_terms_against_numpy_gate(gate_kwargs, activation):
    keras.utils.set_random_seed(1)
    model = _gate_model(**gate_kwargs)
    folded = prepare_for_export(model, (1, 12, 10, 3), gates="compact")
    layer = folded.get_layer("gate")
    assert isinstance(layer, _FoldedGate)
    kind, row, col, scale = layer._compact((12, 10))
    assert kind == "separable"
    assert row.shape == (12, 6) and col.shape == (10, 6)

    pre = _numpy_gate(model.get_layer("gate"), 12, 10)
    expected = {
        "relu": np.maximum(pre, 0),
        None: pre,
        "sigmoid": 1 / (1 + np.exp(-pre)),
    }[activation]
    summed = row[:, None].astype(np.float64) + col[None]
    stored = {
        "relu": np.maximum(summed, 0),
        None: summed,
        "sigmoid": 1 / (1 + np.exp(-summed)),
    }[activation]
    np.testing.assert_allclose(stored * scale, expected, rtol=0, atol=2e-6)
    if activation == "relu":
        # Balanced and clipped: each term within half the channel's peak,
        # and the normalised gate peaks at 1 in every live channel.
        assert np.all(np.abs(row) <= 0.5 + 1e-6) and np.all(np.abs(col) <= 0.5 + 1e-6)
        live = expected.max(axis=(0, 1)) > 0
        np.testing.assert_allclose(stored.max(axis=(0, 1))[live], 1.0, rtol=1e-6)
    if activation == "sigmoid":
        np.testing.assert_array_equal(scale, 1.0)

    x = _inputs((1, 12, 10, 3))
    np.testing.assert_allclose(folded(x), model(x), rtol=0, atol=1e-5)


def test_auto_picks_compact_only_where_exact_and_cheap():
    cases = {
        "relu": ({}, "separable"),
        "linear": ({"gate_activation": None}, "separable"),
        "map": ({"encoding": "map", "map_size": 3}, "map"),
        # A full-size LOGISTIC would cost more than the stored gate saves.
        "sigmoid": ({"gate_activation": "sigmoid"}, None),
        # Not a row term plus a column term.
        "hidden_tanh": ({"hidden_activation": "tanh"}, None),
    }
    for name, (kwargs, kind) in cases.items():
        model = _gate_model(**kwargs)
        layer = prepare_for_export(model, (1, 8, 8, 3)).get_layer("gate")
        form = layer._compact((8, 8))
        assert (form and form[0]) == kind, name
        x = _inputs((1, 8, 8, 3))
        folded = prepare_for_export(model, (1, 8, 8, 3))
        np.testing.assert_allclose(folded(x), model(x), rtol=0, atol=1e-5)
    # 2 x 2 and smaller: the whole gate is no larger than its two terms.
    layer = prepare_for_export(_gate_model(), (1, 2, 2, 3)).get_layer("gate")
    assert layer._compact((2, 2)) is None
    constant = prepare_for_export(_gate_model(), (1, 8, 8, 3), gates="constant")
    assert constant.get_layer("gate")._compact((8, 8)) is None


def _bilinear(gate_map, height, width):
    """NumPy loop: bilinear interpolation with corners aligned."""
    rows, cols, _ = gate_map.shape
    out = np.zeros((height, width, gate_map.shape[-1]))
    for i in range(height):
        t = i * (rows - 1) / max(height - 1, 1)
        i0 = min(int(np.floor(t)), rows - 2)
        for j in range(width):
            s = j * (cols - 1) / max(width - 1, 1)
            j0 = min(int(np.floor(s)), cols - 2)
            a, b = t - i0, s - j0
            out[i, j] = (
                (1 - a) * (1 - b) * gate_map[i0, j0]
                + (1 - a) * b * gate_map[i0, j0 + 1]
                + a * (1 - b) * gate_map[i0 + 1, j0]
                + a * b * gate_map[i0 + 1, j0 + 1]
            )
    return out


@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
def test_map_gate_is_its_coarse_map_resized(data_format):
    keras.utils.set_random_seed(2)
    model = _gate_model(
        data_format=data_format,
        encoding="map",
        map_size=(3, 4),
        map_initializer="random_normal",
    )
    shape = (1, 11, 9, 3) if data_format == "channels_last" else (1, 3, 11, 9)
    folded = prepare_for_export(model, shape, gates="compact")
    kind, gate_map, scale = folded.get_layer("gate")._compact((11, 9))
    assert kind == "map" and gate_map.shape == (3, 4, 6)
    stored = np.maximum(_bilinear(gate_map.astype(np.float64), 11, 9), 0) * scale
    weights = np.asarray(model.get_layer("gate").gate_map, np.float64)
    expected = np.maximum(_bilinear(weights, 11, 9), 0)
    np.testing.assert_allclose(stored, expected, rtol=0, atol=1e-6)
    x = _inputs(shape)
    np.testing.assert_allclose(folded(x), model(x), rtol=0, atol=1e-5)


def test_separable_channels_first():
    model = _gate_model(data_format="channels_first", encoding_layers=3)
    folded = prepare_for_export(model, (1, 3, 7, 9), gates="compact")
    x = _inputs((1, 3, 7, 9))
    np.testing.assert_allclose(folded(x), model(x), rtol=0, atol=1e-5)


def test_gates_argument_errors():
    model = _gate_model()
    with pytest.raises(
        ValueError,
        match=r"Invalid value for argument `gates`\. Expected one of 'auto', 'compact', 'constant'\. Received: gates='small'",
    ):
        prepare_for_export(model, (1, 8, 8, 3), gates="small")
    hidden = _gate_model(hidden_activation="tanh")
    with pytest.raises(
        ValueError,
        match=r"Cannot store the gate of CoordGate `gate` in a compact form \(encoding='mlp', hidden_activation='tanh'\).*gates='auto' or gates='constant'",
    ):
        prepare_for_export(hidden, (1, 8, 8, 3), gates="compact")


def _two_gate_model(with_gates):
    inputs = keras.Input((None, None, 1))
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu")(inputs)
    for i in range(2):
        if with_gates:
            x = CoordGate(encoding_layers=3, encoding_units=16, name=f"gate{i}")(x)
        x = keras.layers.Conv2D(8, 3, padding="same", activation="relu")(x)
    return keras.Model(inputs, keras.layers.Conv2D(1, 1)(x))


@pytest.mark.parametrize("quantization", ["none", "int8"])
def test_separable_tflite_is_small_and_exact(tmp_path, quantization, spatial_ops):
    shape = (1, 64, 64, 1)
    keras.utils.set_random_seed(0)
    model = _two_gate_model(True)
    sizes, reports = {}, {}
    for gates in ("auto", "constant"):
        path = tmp_path / f"{gates}.tflite"
        reports[gates] = export_tflite(
            model, path, shape, quantization=quantization, gates=gates
        )
        sizes[gates] = path.stat().st_size
    plain = tmp_path / "plain.tflite"
    export_tflite(_two_gate_model(False), plain, shape, quantization=quantization)

    path = tmp_path / "auto.tflite"
    # No stored tensor as large as a feature map: the gates are (64, 8) and
    # (64, 8) terms, summed by one ADD each (ReLU fused) before the MUL.
    largest = max(
        np.prod(t.shape)
        for op in list_operators(path)
        for t in op.inputs
        if t is not None and t.constant
    )
    assert largest < 64 * 64 * 8 / 4
    census = op_census(path)
    # Once per model: SLICE, MUL by 0 and ADD 1 make a one from the input.
    # Per gate: the row term times the one (small), one full-size ADD with
    # the column term (ReLU fused), one full-size MUL by the gate.
    assert census["SLICE"] == 1
    assert census["ADD"] == 1 + 2 and census["MUL"] == 1 + 2 * 2
    assert spatial_ops(path) == collections.Counter(
        {
            ("ADD", "full"): 2,
            ("MUL", "full"): 2,
            ("ADD", "small"): 1,
            ("MUL", "small"): 3,
        }
    )
    assert "RELU" not in census
    # Constant gates store 2 x 64 x 64 x 8 values; the terms 2 x (64 + 64) x 8.
    gate_values = 2 * 64 * 64 * 8
    width = 4 if quantization == "none" else 1
    assert sizes["constant"] - sizes["auto"] > 0.9 * gate_values * width
    # The projections (2 x 8 x 8) and the terms are all the file adds.
    assert sizes["auto"] - plain.stat().st_size < 2 * (64 + 64 + 72) * 8 * width + 8192

    if quantization == "none":
        assert reports["auto"]["verification"]["max_abs_error"] <= 1e-4
    else:
        # Balanced, clipped terms keep the gate in int8 as accurate as the
        # stored constant gate (measured: within 1 dB).
        psnr = {g: r["verification"]["psnr_db"] for g, r in reports.items()}
        assert psnr["auto"] >= psnr["constant"] - 3.0, psnr
        assert psnr["auto"] >= 30.0, psnr


def test_map_gate_tflite(tmp_path, spatial_ops):
    keras.utils.set_random_seed(0)
    model = _gate_model(encoding="map", map_size=4, map_initializer="random_normal")
    path = tmp_path / "map.tflite"
    report = export_tflite(model, path, (1, 48, 48, 3))
    assert report["verification"]["max_abs_error"] <= 1e-4
    census = op_census(path)
    # The map times the model's one (small), resized, one full-size MUL.
    assert census["RESIZE_BILINEAR"] == 1 and census["MUL"] == 3
    assert spatial_ops(path) == collections.Counter(
        {("MUL", "full"): 1, ("MUL", "small"): 2, ("ADD", "small"): 1}
    )
    largest = max(
        np.prod(t.shape)
        for op in list_operators(path)
        for t in op.inputs
        if t is not None and t.constant
    )
    assert largest < 48 * 48


# Two 256x256 exports of base-32 U-Nets per mode: `make test-slow`.
@pytest.mark.slow
@pytest.mark.parametrize("quantization", ["none", "int8"])
def test_registry_coordgate_unet_file_size_at_256(tmp_path, quantization):
    """The compact gates' target: a CoordGate U-Net file <= 1.25x the plain
    U-Net's at 256^2."""
    from coordgate_keras.zoo import create_model

    sizes = {}
    for name in ("unet_d2", "coordgate_unet_d2"):
        keras.utils.set_random_seed(0)
        model = create_model(name, input_shape=(256, 256, 1), base_filters=32)
        path = tmp_path / f"{name}.tflite"
        report = export_tflite(
            model,
            path,
            (1, 256, 256, 1),
            quantization=quantization,
            num_calibration_samples=2,
            verify_data=_inputs((1, 256, 256, 1)),
        )
        sizes[name] = report["size_bytes"]
    assert sizes["coordgate_unet_d2"] <= 1.25 * sizes["unet_d2"], sizes
