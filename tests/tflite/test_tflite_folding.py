"""`prepare_for_export`: the export copy computes exactly what the model computes."""

import keras
import numpy as np
import pytest
from keras import ops

from coordgate_keras.layers import AddCoords, CoordConv2D, CoordGate
from coordgate_keras.tflite import prepare_for_export
from coordgate_keras.tflite.folding import _FoldedGate, _MatrixWienerDeconvolution


def _inputs(shape, seed=0):
    return np.random.default_rng(seed).uniform(0, 1, shape).astype("float32")


def _gate_model(spatial=(None, None), channels=3, **gate_kwargs):
    inputs = keras.Input(spatial + (channels,))
    x = keras.layers.Conv2D(6, 3, padding="same", name="conv")(inputs)
    x = CoordGate(name="gate", **gate_kwargs)(x)
    return keras.Model(inputs, x)


@pytest.mark.parametrize(
    "gate_kwargs",
    [
        {},
        {"gate_activation": "sigmoid", "encoding_layers": 3, "encoding_units": 8},
        {"encoding": "fourier", "num_frequencies": 3},
        {"encoding": "map", "map_size": 4, "map_initializer": "random_uniform"},
        {"filters": 4, "hidden_activation": "tanh"},
        {"use_projection": False},
    ],
    ids=["relu", "sigmoid", "fourier", "map", "filters", "no_projection"],
)
def test_folded_gate_is_the_layers_own_gate(gate_kwargs):
    model = _gate_model(**gate_kwargs)
    folded = prepare_for_export(model, (1, 12, 10, 3))
    x = _inputs((1, 12, 10, 3))

    # The constant is the layer's gate; the output matches the model's.
    layer = folded.get_layer("gate")
    assert isinstance(layer, _FoldedGate)
    gate = model.get_layer("gate")
    stored, scale = layer._gate((12, 10))
    expected = ops.convert_to_numpy(gate.compute_gate((12, 10)))
    np.testing.assert_allclose(stored * scale, expected, rtol=1e-6, atol=0)
    if gate.use_projection:
        # Each channel's stored gate peaks at magnitude 1 (full int8 range).
        np.testing.assert_allclose(np.abs(stored).max(axis=(0, 1)), 1.0, rtol=1e-6)
    np.testing.assert_allclose(folded(x), model(x), rtol=0, atol=1e-6)
    assert folded.input_shape == (1, 12, 10, 3)


def test_folded_gate_against_numpy_reference():
    model = _gate_model(gate_activation="sigmoid", encoding_layers=2)
    folded = prepare_for_export(model, (1, 5, 4, 3))
    x = _inputs((1, 5, 4, 3))
    gate = model.get_layer("gate")
    features = ops.convert_to_numpy(model.get_layer("conv")(x))
    # Independent reference: coordinates, two Dense layers, sigmoid, 1x1 conv.
    rows, cols = np.meshgrid(
        np.linspace(-1, 1, 5), np.linspace(-1, 1, 4), indexing="ij"
    )
    h = np.stack([rows, cols], -1)
    w0, b0, w1, b1 = (ops.convert_to_numpy(v) for v in gate.weights[:4])
    g = 1 / (1 + np.exp(-((h @ w0 + b0) @ w1 + b1)))
    kernel, bias = (ops.convert_to_numpy(v) for v in gate.projection.weights)
    expected = (features * g) @ kernel[0, 0] + bias
    np.testing.assert_allclose(folded(x), expected, rtol=1e-5, atol=1e-6)


def test_folding_channels_first_gate():
    inputs = keras.Input((4, None, None))
    outputs = CoordGate(data_format="channels_first", name="gate")(inputs)
    model = keras.Model(inputs, outputs)
    folded = prepare_for_export(model, (1, 4, 6, 5))
    x = _inputs((1, 4, 6, 5))
    np.testing.assert_allclose(folded(x), model(x), rtol=0, atol=1e-6)


def test_folding_1d_gate_and_nested_model():
    inner_in = keras.Input((None, 4))
    inner = keras.Model(inner_in, CoordGate(name="inner_gate")(inner_in), name="inner")
    inputs = keras.Input((None, 2))
    x = keras.layers.Conv1D(4, 3, padding="same")(inputs)
    model = keras.Model(inputs, inner(x))
    folded = prepare_for_export(model, (1, 16, 2))
    x = _inputs((1, 16, 2))
    np.testing.assert_allclose(folded(x), model(x), rtol=0, atol=1e-6)
    nested = folded.get_layer("inner")
    assert isinstance(nested.get_layer("inner_gate"), _FoldedGate)


def test_folding_shares_weights_and_leaves_model_alone():
    model = _gate_model()
    folded = prepare_for_export(model, (1, 8, 8, 3))
    assert model.get_layer("conv") is folded.get_layer("conv")
    assert isinstance(model.get_layer("gate"), CoordGate)
    # A weight change after folding is seen by a new export copy.
    conv = model.get_layer("conv")
    conv.kernel.assign(conv.kernel * 2.0)
    x = _inputs((1, 8, 8, 3))
    np.testing.assert_allclose(
        prepare_for_export(model, (1, 8, 8, 3))(x), model(x), atol=1e-6
    )


def test_folding_coordinate_layers_and_subclassed_models():
    inputs = keras.Input((None, None, 2))
    x = AddCoords(with_r=True)(inputs)
    x = CoordConv2D(3, 3, padding="same")(x)
    model = keras.Model(inputs, x)
    folded = prepare_for_export(model, (2, 6, 7, 2))
    x = _inputs((2, 6, 7, 2))
    np.testing.assert_allclose(folded(x), model(x), rtol=0, atol=1e-6)

    class Subclassed(keras.Model):
        def __init__(self):
            super().__init__()
            # Keras' own initializer: CoordGate's default bias initializer fails
            # when a subclassed model builds it (seed=None in a stateless scope).
            self.gate = CoordGate(encoder_bias_initializer="random_uniform")

        def call(self, inputs):
            return self.gate(inputs)

    subclassed = Subclassed()
    subclassed(x)
    wrapped = prepare_for_export(subclassed, (2, 6, 7, 2))
    assert wrapped.input_shape == (2, 6, 7, 2)
    np.testing.assert_allclose(wrapped(x), subclassed(x), atol=1e-6)


def test_matrix_wiener_deconvolution_matches_fft_layer():
    from coordgate_keras.zoo import MultiWienerDeconvolution, gaussian_psfs

    rng = np.random.default_rng(0)
    # Odd and even sizes: the padding and PSF centre differ.
    for height, width in [(8, 8), (7, 10)]:
        psfs = gaussian_psfs((height, width), 3) + rng.uniform(
            0, 1e-2, (height, width, 3)
        )
        layer = MultiWienerDeconvolution(psfs=psfs.astype("float32"))
        inputs = keras.Input((height, width, 2))
        model = keras.Model(inputs, layer(inputs))
        layer.regularization.assign([1e-3, 1e-2, 1e-1])
        folded = prepare_for_export(model, (2, height, width, 2))
        assert isinstance(folded.layers[-1], _MatrixWienerDeconvolution)
        x = _inputs((2, height, width, 2))
        expected = ops.convert_to_numpy(model(x))
        np.testing.assert_allclose(folded(x), expected, rtol=0, atol=1e-5)


def test_matrix_wiener_deconvolution_against_numpy_fft():
    from coordgate_keras.zoo import MultiWienerDeconvolution

    height, width = 6, 9
    layer = MultiWienerDeconvolution(num_psfs=2)
    inputs = keras.Input((height, width, 1))
    model = keras.Model(inputs, layer(inputs))
    folded = prepare_for_export(model, (1, height, width, 1))
    x = _inputs((1, height, width, 1))
    # Independent reference in complex128: pad, filter, crop.
    psfs = ops.convert_to_numpy(layer.psf_kernel).astype(np.float64)
    reg = ops.convert_to_numpy(layer.regularization).astype(np.float64)
    top, left = (height + 1) // 2, (width + 1) // 2
    pad = [(top, height // 2), (left, width // 2)]
    y = np.fft.fft2(np.pad(x[0, :, :, 0].astype(np.float64), pad))
    expected = []
    for k in range(2):
        # The PSF centre (height // 2, width // 2) lands at the padded centre.
        h = np.fft.ifftshift(np.pad(psfs[:, :, k], pad))
        spectrum = np.fft.fft2(h)
        wiener = np.conj(spectrum) / (np.abs(spectrum) ** 2 + reg[k] + 1e-7)
        out = np.real(np.fft.ifft2(wiener * y))
        expected.append(out[top : top + height, left : left + width])
    expected = np.stack(expected, -1)[None]
    np.testing.assert_allclose(folded(x), expected, rtol=0, atol=1e-5)


def test_prepare_for_export_errors():
    model = _gate_model(spatial=(16, 16))
    with pytest.raises(
        ValueError,
        match=r"Invalid value for argument `input_shape`\. Expected a shape compatible "
        r"with the model's input shape \(None, 16, 16, 3\)\. "
        r"Received: input_shape=\(1, 8, 8, 3\)",
    ):
        prepare_for_export(model, (1, 8, 8, 3))
    with pytest.raises(
        ValueError,
        match=r"Invalid value for argument `input_shape`\. Expected a tuple of positive "
        r"integers \(batch, \*spatial, channels\), such as \(1, 256, 256, 1\)\. "
        r"Received: input_shape=\(1, None, 16, 3\)",
    ):
        prepare_for_export(model, (1, None, 16, 3))
    with pytest.raises(
        ValueError,
        match=r"Invalid value for argument `input_shape`\. Expected a fixed shape such "
        r"as \(1, 256, 256, 1\); the model's input shape \(None, None, None, 3\) has "
        r"unknown sizes\. Received: input_shape=None",
    ):
        prepare_for_export(_gate_model(), None)
    # None takes a static model's shape, batch 1.
    assert prepare_for_export(model, None).input_shape == (1, 16, 16, 3)


def test_folding_sequential_model():
    model = keras.Sequential(
        [
            keras.Input((None, None, 2)),
            keras.layers.Conv2D(3, 3, padding="same"),
            CoordGate(gate_activation="sigmoid", name="gate"),
        ]
    )
    folded = prepare_for_export(model, (1, 9, 9, 2))
    assert isinstance(folded.get_layer("gate"), _FoldedGate)
    x = _inputs((1, 9, 9, 2))
    np.testing.assert_allclose(folded(x), model(x), rtol=0, atol=1e-6)
