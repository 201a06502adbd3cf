"""Layers with `frame_shape`: a window with its origin sees the frame's coordinates.

The reference is the same layer on the whole frame (origin zeros), cropped: the
window's output must equal it exactly, for every sample's own origin.
"""

import keras
import numpy as np
import pytest

from coordgate_keras.layers import (
    AddCoords,
    CoordConv1D,
    CoordConv2D,
    CoordGate,
)

GATES = {
    "mlp": {},
    "mlp_hidden": {"encoding_layers": 3, "hidden_activation": "relu"},
    "fourier": {"encoding": "fourier", "num_frequencies": 2},
    "map": {"encoding": "map", "map_size": 3, "map_initializer": "random_normal"},
}
FRAME = (9, 11)
WINDOW = (4, 5)
ORIGINS = np.array([[0, 0], [5, 6], [2, 3]], "int32")  # corner, far corner, inside
# Bit-identical on TensorFlow. XLA's CPU dot (JAX) picks its kernel by the operand
# shapes, so a window's encoder matmul can round differently from the frame's.
ATOL = 0.0 if keras.backend.backend() == "tensorflow" else 1e-7


def _crop(array, origin, size, data_format):
    lead = (slice(None),) * (data_format == "channels_first")
    return array[lead + tuple(slice(o, o + n) for o, n in zip(origin, size))]


def _check_windows(layer, rank, data_format, channels=4):
    frame, window, origins = FRAME[:rank], WINDOW[:rank], ORIGINS[:, :rank]
    shape = (
        (3, *frame, channels)
        if data_format == "channels_last"
        else (3, channels, *frame)
    )
    x = np.random.default_rng(0).uniform(-1, 1, shape).astype("float32")
    whole = np.asarray(layer([x, np.zeros((3, rank), "int32")]))
    windows = np.stack([_crop(x[i], origins[i], window, data_format) for i in range(3)])
    out = np.asarray(layer([windows, origins]))
    for i in range(3):
        expected = _crop(whole[i], origins[i], window, data_format)
        np.testing.assert_allclose(out[i], expected, rtol=0, atol=ATOL)
    return x, whole


@pytest.mark.parametrize("rank", [1, 2])
@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
@pytest.mark.parametrize("encoding", sorted(GATES))
def test_coord_gate_window_is_the_frame_cropped(encoding, rank, data_format):
    keras.utils.set_random_seed(1)
    kwargs = GATES[encoding]
    layer = CoordGate(frame_shape=FRAME[:rank], data_format=data_format, **kwargs)
    x, whole = _check_windows(layer, rank, data_format)
    # On the whole frame the gate is the plain layer's (coordinates spanning it).
    plain = CoordGate(data_format=data_format, **kwargs)
    plain.build(x.shape)
    plain.set_weights(layer.get_weights())
    np.testing.assert_allclose(whole, plain(x), rtol=0, atol=1e-6)


@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
def test_add_coords_window_is_the_frame_cropped(data_format):
    layer = AddCoords(with_r=True, frame_shape=FRAME, data_format=data_format)
    x, whole = _check_windows(layer, 2, data_format, channels=1)
    plain = AddCoords(with_r=True, data_format=data_format)
    np.testing.assert_array_equal(whole, plain(x))


def test_add_coords_frame_values():
    layer = AddCoords(frame_shape=(5,))
    out = np.asarray(layer([np.zeros((2, 2, 1), "float32"), np.array([[0], [3]])]))
    np.testing.assert_array_equal(out[:, :, 1], [[-1.0, -0.5], [0.5, 1.0]])


@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
def test_coord_conv2d_window_is_the_frame_cropped(data_format):
    keras.utils.set_random_seed(2)
    layer = CoordConv2D(3, 1, with_r=True, frame_shape=FRAME, data_format=data_format)
    _check_windows(layer, 2, data_format)


def test_coord_conv1d_window_is_the_frame_cropped():
    keras.utils.set_random_seed(3)
    _check_windows(CoordConv1D(2, 1, frame_shape=FRAME[:1]), 1, "channels_last")


def test_compute_gate_window():
    keras.utils.set_random_seed(4)
    layer = CoordGate(frame_shape=FRAME)
    layer.build([(None, 4, 5, 3), (None, 2)])
    whole = np.asarray(layer.compute_gate(FRAME))
    window = np.asarray(layer.compute_gate((4, 5), window=(5, 6)))
    np.testing.assert_array_equal(window, whole[5:9, 6:11])


def test_frame_model_round_trips(tmp_path):
    keras.utils.set_random_seed(5)
    image = keras.Input((4, 5, 2))
    origin = keras.Input((2,), dtype="int32", name="origin")
    x = CoordConv2D(3, 3, padding="same", frame_shape=FRAME)([image, origin])
    x = CoordGate(frame_shape=FRAME)([x, origin])
    model = keras.Model([image, origin], x)
    path = tmp_path / "frame.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    assert loaded.layers[-1].frame_shape == FRAME
    x = np.random.default_rng(0).uniform(size=(3, 4, 5, 2)).astype("float32")
    np.testing.assert_array_equal(loaded([x, ORIGINS]), model([x, ORIGINS]))


def test_frame_errors():
    layer = CoordGate(frame_shape=FRAME)
    window = np.zeros((1, 4, 5, 3), "float32")
    with pytest.raises(
        ValueError,
        match=r"Invalid value for argument `origin`\. Expected indices along axis 1 from 0 to 6 \(a window of 5 inside the frame of 11 at `coord_gate(_\d+)?`\)\. Received: origin=\[\[0, 7\]\]",
    ):
        layer([window, np.array([[0, 7]], "int32")])
    with pytest.raises(
        ValueError,
        match=r"Invalid value for argument `origin`\. Expected an integer tensor \(pixel indices, int32\)\. Received: origin\.dtype=float32",
    ):
        layer([window, np.zeros((1, 2), "float32")])
    with pytest.raises(
        ValueError,
        match=r"Invalid value for argument `origin`\. Expected a tensor of shape \(batch, 2\): one index per spatial axis\. Received: origin\.shape=\(1, 3\)",
    ):
        CoordGate(frame_shape=FRAME)([window, np.zeros((1, 3), "int32")])
    with pytest.raises(
        ValueError, match=r"so it is called as `layer\(\[x, origin\]\)`"
    ):
        CoordGate(frame_shape=FRAME)(window)
    with pytest.raises(ValueError, match=r"was built without `frame_shape`"):
        CoordGate()([window, np.zeros((1, 2), "int32")])
    with pytest.raises(
        ValueError,
        match=r"Invalid value for argument `frame_shape`\. Expected a frame at least as large as the input window\. Received: frame_shape=\(3, 11\) for input_shape=\(1, 4, 5, 3\)",
    ):
        CoordGate(frame_shape=(3, 11))([window, np.zeros((1, 2), "int32")])
    with pytest.raises(
        ValueError,
        match=r"Invalid value for argument `frame_shape`\. Expected None or a tuple of 1 to 3 positive integers \(one per axis\)\. Received: frame_shape=\(0, 4\)",
    ):
        AddCoords(frame_shape=(0, 4))
    with pytest.raises(
        ValueError,
        match=r"Invalid value for argument `window`\. Expected None for a layer built without `frame_shape`",
    ):
        built = CoordGate()
        built.build((None, 4, 5, 3))
        built.compute_gate((4, 5), window=(0, 0))
