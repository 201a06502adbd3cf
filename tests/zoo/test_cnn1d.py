import keras
import numpy as np
import pytest

from coordgate_keras.layers import CoordConv1D, CoordGate
from coordgate_keras.zoo import LocallyConnected1D, build_cnn1d, create_model


def conv1d_params(k, cin, cout):
    return k * cin * cout + cout


@pytest.mark.parametrize(
    "name, hidden_type, extra_coord",
    [
        ("cnn1d", keras.layers.Conv1D, 0),
        ("coordconv_cnn1d", CoordConv1D, 1),
        ("coordgate_cnn1d", keras.layers.Conv1D, 0),
        ("locally_connected_cnn1d", LocallyConnected1D, 0),
    ],
)
def test_variants(name, hidden_type, extra_coord):
    model = create_model(name, input_shape=(64, 1))
    hidden = [model.get_layer(f"{name}_layer{i}_conv") for i in range(3)]
    assert all(type(layer) is hidden_type for layer in hidden)
    gates = [layer for layer in model.layers if isinstance(layer, CoordGate)]
    assert len(gates) == (3 if name == "coordgate_cnn1d" else 0)
    if name in ("cnn1d", "coordconv_cnn1d"):
        expected = conv1d_params(9, 1 + extra_coord, 16)
        expected += 2 * conv1d_params(9, 16 + extra_coord, 16)
        assert model.count_params() == expected + conv1d_params(1, 16, 1)
    if name == "locally_connected_cnn1d":
        expected = 64 * (9 * 1 * 16 + 16) + 2 * 64 * (9 * 16 * 16 + 16)
        assert model.count_params() == expected + conv1d_params(1, 16, 1)


@pytest.mark.parametrize("name", ["cnn1d", "coordconv_cnn1d", "coordgate_cnn1d"])
def test_any_length(name):
    model = create_model(name, filters=4)
    assert model.input_shape == (None, None, 1)
    for length in (17, 40):
        x = np.random.default_rng(0).normal(size=(2, length, 1)).astype("float32")
        assert keras.ops.convert_to_numpy(model(x)).shape == (2, length, 1)


def test_locally_connected_default_and_static_length():
    assert create_model("locally_connected_cnn1d").input_shape == (None, 256, 1)
    with pytest.raises(
        ValueError,
        match="Invalid value for argument `input_shape`. Expected a static length for "
        "spatial='locally_connected'",
    ):
        create_model("locally_connected_cnn1d", input_shape=(None, 1))


def test_residual_and_channels():
    model = build_cnn1d((16, 2), filters=4, residual=True)
    out_conv = model.get_layer("cnn1d_out_conv")
    out_conv.set_weights([np.zeros_like(w) for w in out_conv.get_weights()])
    x = np.random.default_rng(0).normal(size=(1, 16, 2)).astype("float32")
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(model(x)), x)
    assert build_cnn1d((16, 2), out_channels=3).output_shape == (None, 16, 3)


def test_coordgate_options_pass_through():
    model = build_cnn1d(
        (16, 1), spatial="coordgate", coordgate_options={"encoding": "fourier"}
    )
    assert model.get_layer("cnn1d_layer0_gate").encoding == "fourier"


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(depth=0), "`depth`. Expected a positive integer. Received: depth=0"),
        (
            dict(filters=-1),
            "`filters`. Expected a positive integer. Received: filters=-1",
        ),
        (
            dict(kernel_size=0),
            "`kernel_size`. Expected a positive integer. Received: kernel_size=0",
        ),
        (
            dict(spatial="coordgates"),
            "`spatial`. Expected one of None, 'coordconv', 'coordgate', "
            "'locally_connected'. Received: spatial='coordgates'",
        ),
        (
            dict(coordgate_options={"encoding_layers": 2}),
            "`coordgate_options`. Expected None, or a dict of `CoordGate` keyword "
            "arguments with spatial='coordgate' \\(spatial=None\\)",
        ),
        (
            dict(input_shape=(16, 1, 1)),
            "`input_shape`. Expected a tuple of 2 positive integers or None "
            "\\(length, channels\\)",
        ),
    ],
)
def test_argument_errors(kwargs, message):
    with pytest.raises(ValueError, match="Invalid value for argument " + message):
        build_cnn1d(**kwargs)
