import math

import keras
import numpy as np
import pytest

from coordgate_keras.layers import CoordGate
from coordgate_keras.testing import run_layer_test

TF_ONLY = pytest.mark.tf_only(reason="inspects a tf.function graph")

_erf = np.vectorize(math.erf)
NUMPY_ACTIVATIONS = {
    None: lambda z: z,
    "relu": lambda z: np.maximum(z, 0.0),
    "sigmoid": lambda z: 1.0 / (1.0 + np.exp(-z)),
    "tanh": np.tanh,
    "gelu": lambda z: 0.5 * z * (1.0 + _erf(z / np.sqrt(2.0))),
}


# === Independent NumPy reference of the paper's formula ===


def numpy_coords(spatial):
    """(H*W, 2) table: u over rows, v over columns, meshgrid 'ij', row-major."""
    axes = [[-1.0 + 2.0 * i / max(n - 1, 1) for i in range(n)] for n in spatial]
    table = []
    if len(spatial) == 1:
        return np.array([[u] for u in axes[0]])
    for u in axes[0]:
        for v in axes[1]:
            table.append([u, v])
    return np.array(table)


def numpy_features(coords, encoding, num_frequencies):
    if encoding == "mlp":
        return coords
    feats = [coords]
    for k in range(num_frequencies):
        feats += [np.sin(np.pi * 2**k * coords), np.cos(np.pi * 2**k * coords)]
    return np.concatenate(feats, axis=-1)


def numpy_map_gate(gate_map, spatial):
    """Corner-aligned bilinear (linear in 1D) interpolation by explicit loops."""

    def axis(n, m):
        out = []
        for i in range(n):
            t = i * (m - 1) / max(n - 1, 1)
            i0 = min(int(np.floor(t)), m - 2)
            out.append((i0, t - i0))
        return out

    if len(spatial) == 1:
        return np.array(
            [
                (1 - w) * gate_map[i] + w * gate_map[i + 1]
                for i, w in axis(spatial[0], gate_map.shape[0])
            ]
        )
    gate = np.zeros(tuple(spatial) + gate_map.shape[2:])
    for a, (i, wy) in enumerate(axis(spatial[0], gate_map.shape[0])):
        for b, (j, wx) in enumerate(axis(spatial[1], gate_map.shape[1])):
            gate[a, b] = (
                (1 - wy) * (1 - wx) * gate_map[i, j]
                + (1 - wy) * wx * gate_map[i, j + 1]
                + wy * (1 - wx) * gate_map[i + 1, j]
                + wy * wx * gate_map[i + 1, j + 1]
            )
    return gate


def numpy_coord_gate(layer, x, hidden=None, gate_act="relu"):
    w = lambda v: keras.ops.convert_to_numpy(v).astype("float64")  # noqa: E731
    spatial = x.shape[1:-1]
    channels = x.shape[-1]
    if layer.encoding == "map":
        gate = numpy_map_gate(w(layer.gate_map), spatial)
    else:
        h = numpy_features(numpy_coords(spatial), layer.encoding, layer.num_frequencies)
        for i, (kernel, bias) in enumerate(
            zip(layer.encoder_kernels, layer.encoder_biases)
        ):
            h = h @ w(kernel) + w(bias)
            if i < layer.encoding_layers - 1:
                h = NUMPY_ACTIVATIONS[hidden](h)
        gate = h.reshape(tuple(spatial) + (channels,))
    gate = NUMPY_ACTIVATIONS[gate_act](gate)
    y = x.astype("float64") * gate[None]
    if layer.use_projection:
        kernel = (
            w(layer.projection.kernel)[0]
            if len(spatial) == 1
            else w(layer.projection.kernel)[0, 0]
        )
        y = y @ kernel + w(layer.projection.bias)
    return y


def _run(layer, x):
    return keras.ops.convert_to_numpy(layer(x)).astype("float64")


@pytest.mark.parametrize(
    "shape", [(2, 8, 8, 4), (2, 6, 11, 3), (3, 17, 5), (2, 9, 2)], ids=str
)
@pytest.mark.parametrize("encoding_layers", [1, 2, 3])
def test_paper_formula_matches_numpy(shape, encoding_layers):
    x = np.random.default_rng(encoding_layers).standard_normal(shape).astype("float32")
    layer = CoordGate(encoding_layers=encoding_layers, filters=5)
    y = _run(layer, x)
    expected = numpy_coord_gate(layer, x)
    assert y.shape == shape[:-1] + (5,)
    np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"hidden_activation": "relu"},
        {"hidden_activation": "gelu", "encoding_units": 7},
        {"hidden_activation": "tanh", "gate_activation": "sigmoid"},
        {"gate_activation": None},
        {"encoding": "fourier", "num_frequencies": 3, "hidden_activation": "relu"},
        {"encoding": "fourier", "gate_activation": "sigmoid"},
        {"encoding": "map", "map_size": (3, 5), "map_initializer": "random_normal"},
        {"use_projection": False},
    ],
    ids=str,
)
@pytest.mark.parametrize("shape", [(2, 7, 10, 4), (2, 13, 4)], ids=str)
def test_options_match_numpy(kwargs, shape):
    if kwargs.get("encoding") == "map" and len(shape) == 3:
        kwargs = dict(kwargs, map_size=(5,))
    x = np.random.default_rng(0).standard_normal(shape).astype("float32")
    layer = CoordGate(**kwargs)
    y = _run(layer, x)
    expected = numpy_coord_gate(
        layer,
        x,
        hidden=kwargs.get("hidden_activation"),
        gate_act=kwargs.get("gate_activation", "relu"),
    )
    np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-5)


def test_fourier_gate_can_be_non_monotonic():
    """A ramp through ReLU is monotonic along every line; Fourier features are not."""
    layer = CoordGate(encoding="fourier", gate_activation=None, use_projection=False)
    layer.build((1, 1, 64, 4))
    row = keras.ops.convert_to_numpy(layer.compute_gate((1, 64)))[0]
    signs = np.sign(np.diff(row, axis=0))
    assert (np.abs(np.diff(signs, axis=0)) > 0).any(axis=0).all()


@pytest.mark.parametrize("encoding", ["mlp", "fourier", "map"])
def test_trained_layer_runs_at_another_size(encoding):
    layer = CoordGate(encoding=encoding, filters=3, map_initializer="random_normal")
    layer(np.zeros((1, 8, 12, 4), "float32"))
    x = np.random.default_rng(3).standard_normal((2, 16, 10, 4)).astype("float32")
    np.testing.assert_allclose(
        _run(layer, x), numpy_coord_gate(layer, x), rtol=1e-5, atol=1e-5
    )


def test_channels_first_matches_channels_last():
    x = np.random.default_rng(4).standard_normal((2, 5, 7, 3)).astype("float32")
    last = CoordGate(filters=4)
    last.build(x.shape)
    first = CoordGate(filters=4, data_format="channels_first")
    first.build((2, 3, 5, 7))
    first.set_weights(last.get_weights())
    y_first = _run(first, np.moveaxis(x, -1, 1))
    np.testing.assert_allclose(np.moveaxis(y_first, 1, -1), _run(last, x), atol=1e-5)


def test_gate_has_no_batch_dimension():
    layer = CoordGate()
    layer.build((None, 6, 9, 4))
    assert tuple(layer.compute_gate((6, 9)).shape) == (6, 9, 4)


@TF_ONLY
def test_static_size_gate_needs_no_shape_ops():
    """With a static spatial size the gate comes from constants alone, whatever the batch."""
    import tensorflow as tf

    layer = CoordGate(filters=2, encoding="fourier")
    layer.build((None, 8, 8, 3))
    fn = tf.function(
        layer, input_signature=[tf.TensorSpec((None, 8, 8, 3), tf.float32)]
    )
    graph = fn.get_concrete_function().graph
    op_types = {op.type for op in graph.get_operations()}
    assert "Shape" not in op_types and "Mul" in op_types


@TF_ONLY
def test_dynamic_spatial_size():
    import tensorflow as tf

    layer = CoordGate(filters=2, encoding="map", map_initializer="random_normal")
    x = np.random.default_rng(5).standard_normal((1, 9, 6, 3)).astype("float32")
    static = _run(layer, x)
    fn = tf.function(
        layer, input_signature=[tf.TensorSpec((None, None, None, 3), tf.float32)]
    )
    np.testing.assert_allclose(fn(x).numpy(), static, atol=1e-5)


def test_default_initialisation_gives_a_non_degenerate_gate():
    layer = CoordGate(encoding_layers=2)
    layer.build((None, 32, 32, 16))
    for kernel, bias in zip(layer.encoder_kernels, layer.encoder_biases):
        bound = 1.0 / np.sqrt(kernel.shape[0])
        for v in (kernel, bias):
            v = keras.ops.convert_to_numpy(v)
            assert np.abs(v).max() <= bound and np.abs(v).max() > 0.5 * bound
    gate = keras.ops.convert_to_numpy(layer.compute_gate((32, 32)))
    assert (gate.max(axis=-1) > 0).all(), "some pixels are gated off in every channel"
    # Each channel's zero set is a half-plane placed by its bias, not through the centre.
    glorot = CoordGate(
        encoding_layers=2,
        encoder_initializer="glorot_uniform",
        encoder_bias_initializer="zeros",
    )
    glorot.build((None, 32, 32, 16))
    g = keras.ops.convert_to_numpy(glorot.compute_gate((32, 32)))
    zero_fraction = (g == 0).mean(axis=(0, 1))
    np.testing.assert_allclose(zero_fraction, 0.5, atol=0.06)
    assert not np.allclose((gate == 0).mean(axis=(0, 1)), 0.5, atol=0.06)


@pytest.mark.parametrize(
    "kwargs,input_shape,expected,n_weights",
    [
        ({}, (2, 8, 6, 4), (2, 8, 6, 4), 6),
        ({"filters": 3, "encoding": "fourier"}, (2, 8, 6, 4), (2, 8, 6, 3), 6),
        ({"encoding": "map", "map_size": (4, 3)}, (2, 8, 6, 4), (2, 8, 6, 4), 3),
        (
            {"use_projection": False, "encoding_layers": 3},
            (2, 8, 6, 4),
            (2, 8, 6, 4),
            6,
        ),
        ({"filters": 2}, (None, None, None, 4), (None, None, None, 2), 6),
        ({"filters": 2}, (2, 16, 3), (2, 16, 2), 6),
        ({"encoding": "map"}, (2, 16, 3), (2, 16, 3), 3),
    ],
    ids=str,
)
def test_layer_contract(kwargs, input_shape, expected, n_weights):
    run_layer_test(
        CoordGate,
        kwargs,
        input_shape,
        expected,
        expected_num_trainable_weights=n_weights,
    )


def test_in_sequential_and_functional():
    seq = keras.Sequential([keras.Input((8, 8, 2)), CoordGate(filters=3), CoordGate()])
    assert seq.output_shape == (None, 8, 8, 3)
    inputs = keras.Input((None, None, 2))
    model = keras.Model(inputs, CoordGate(filters=5, encoding="fourier")(inputs))
    assert model(np.zeros((1, 4, 12, 2), "float32")).shape == (1, 4, 12, 5)


# === Errors: one test per message ===


@pytest.mark.parametrize(
    "kwargs,pattern",
    [
        (
            {"filters": 0},
            r"argument `filters`. Expected a positive integer or None. Received: filters=0",
        ),
        (
            {"encoding_layers": 0},
            r"argument `encoding_layers`. Expected a positive integer. Received: encoding_layers=0",
        ),
        ({"encoding_layers": 1.5}, r"Received: encoding_layers=1.5"),
        (
            {"encoding": "siren"},
            r"argument `encoding`. Expected one of 'mlp', 'fourier', 'map'. Received: encoding='siren'",
        ),
        (
            {"encoding_units": -2},
            r"argument `encoding_units`.*Received: encoding_units=-2",
        ),
        (
            {"hidden_activation": "swishy"},
            r"argument `hidden_activation`.*Received: hidden_activation='swishy'",
        ),
        (
            {"gate_activation": "nope"},
            r"argument `gate_activation`.*Received: gate_activation='nope'",
        ),
        (
            {"use_projection": 1},
            r"argument `use_projection`. Expected a boolean. Received: use_projection=1",
        ),
        (
            {"filters": 4, "use_projection": False},
            r"argument `filters`.*needs the 1x1 projection.*Received: filters=4",
        ),
        (
            {"num_frequencies": 0},
            r"argument `num_frequencies`.*Received: num_frequencies=0",
        ),
        ({"map_size": 1}, r"argument `map_size`.*>= 2. Received: map_size=1"),
        (
            {"map_size": (4, 4, 4)},
            r"argument `map_size`.*Received: map_size=\(4, 4, 4\)",
        ),
        (
            {"data_format": "NHWC"},
            r"argument `data_format`.*Received: data_format='NHWC'",
        ),
    ],
    ids=str,
)
def test_argument_errors(kwargs, pattern):
    with pytest.raises(ValueError, match=pattern):
        CoordGate(**kwargs)


def test_error_wrong_rank():
    with pytest.raises(
        ValueError, match=r"rank-3.*rank-4.*Received: input_shape=\(2, 4, 4, 4, 1\)"
    ):
        CoordGate().build((2, 4, 4, 4, 1))


def test_error_unknown_channels():
    with pytest.raises(
        ValueError, match=r"channel dimension must be known.*\(2, 8, 8, None\)"
    ):
        CoordGate().build((2, 8, 8, None))


def test_error_map_size_rank_mismatch():
    with pytest.raises(
        ValueError, match=r"one size per spatial axis \(1\).*map_size=\(4, 4\)"
    ):
        CoordGate(encoding="map", map_size=(4, 4)).build((2, 16, 3))


def test_error_channel_mismatch_after_build():
    layer = CoordGate()
    layer(np.zeros((1, 4, 4, 3), "float32"))
    with pytest.raises(
        ValueError, match=r"expected axis -1 of input shape to have value 3"
    ):
        layer(np.zeros((1, 4, 4, 5), "float32"))


def test_builds_inside_a_subclassed_model():
    """Default initialisers work when the first call builds the layer in a trace."""

    class Wrapper(keras.Model):
        def __init__(self):
            super().__init__()
            self.gate = CoordGate(filters=3)

        def call(self, x):
            return self.gate(x)

    y = Wrapper()(np.zeros((2, 6, 7, 2), "float32"))
    assert tuple(y.shape) == (2, 6, 7, 3)


def test_numpy_integers_are_accepted_and_stored_as_ints():
    import json

    layer = CoordGate(
        filters=np.int64(4),
        encoding_layers=np.int32(2),
        encoding_units=np.int64(8),
        num_frequencies=np.int64(2),
        map_size=(np.int64(3), 4),
        use_projection=np.bool_(True),
    )
    config = layer.get_config()
    assert config["filters"] == 4 and type(config["filters"]) is int
    assert config["map_size"] == (3, 4)
    json.dumps(config)
    assert layer(np.zeros((1, 8, 8, 2), "float32")).shape == (1, 8, 8, 4)


def test_compute_gate_before_build_says_so():
    layer = CoordGate(name="gate")
    with pytest.raises(ValueError) as info:
        layer.compute_gate((8, 8))
    assert str(info.value) == (
        "CoordGate `gate` is not built yet, so its rank and channels are unknown: "
        "call the layer on an input, or call `build(input_shape)`, before "
        "`compute_gate`."
    )


@pytest.mark.parametrize(
    "spatial_shape",
    [(8.5, 8), (8, -1), (8, 0), (8,), (8, 8, 8), 8, "8x8", (8, True)],
    ids=str,
)
def test_compute_gate_rejects_bad_shapes(spatial_shape):
    layer = CoordGate()
    layer.build((None, None, None, 3))
    with pytest.raises(ValueError) as info:
        layer.compute_gate(spatial_shape)
    assert str(info.value) == (
        "Invalid value for argument `spatial_shape`. Expected a tuple of 2 "
        "positive integer(s) (height, width) for a layer built on rank-4 inputs. "
        f"Received: spatial_shape={spatial_shape!r}"
    )


def test_compute_gate_accepts_numpy_sizes():
    layer = CoordGate()
    layer.build((None, None, 3))
    gate = layer.compute_gate([np.int64(5)])
    assert tuple(gate.shape) == (5, 3)
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(gate),
        keras.ops.convert_to_numpy(layer.compute_gate((5,))),
    )
