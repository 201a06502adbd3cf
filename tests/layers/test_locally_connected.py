import math

import keras
import numpy as np
import pytest

from coordgate_keras.layers import LocallyConnected1D, LocallyConnected2D
from coordgate_keras.testing import run_layer_test

# === Independent NumPy reference: explicit loops over positions ===


def numpy_locally_connected(x, kernel, bias, kernel_size, strides, padding):
    """x (B, *spatial, C); kernel (*out, prod(k) * C, F) in (offset, channel) order."""
    rank = len(kernel_size)
    spatial = x.shape[1:-1]
    out = kernel.shape[:rank]
    if padding == "same":
        pads = []
        for n, k, s, o in zip(spatial, kernel_size, strides, out):
            total = max((o - 1) * s + k - n, 0)
            pads.append((total // 2, total - total // 2))
        x = np.pad(x, [(0, 0)] + pads + [(0, 0)])
    y = np.zeros((x.shape[0],) + out + (kernel.shape[-1],))
    for position in np.ndindex(*out):
        window = tuple(
            slice(p * s, p * s + k) for p, s, k in zip(position, strides, kernel_size)
        )
        patch = x[(slice(None),) + window + (slice(None),)]
        patch = patch.reshape(x.shape[0], -1)  # (offsets..., channel) row-major
        y[(slice(None),) + position] = patch @ kernel[position] + bias[position]
    return y


@pytest.mark.parametrize(
    "layer_cls, spatial, kernel_size, strides, padding",
    [
        (LocallyConnected1D, (11,), (3,), (1,), "valid"),
        (LocallyConnected1D, (11,), (4,), (2,), "same"),
        (LocallyConnected2D, (7, 6), (3, 2), (1, 1), "valid"),
        (LocallyConnected2D, (7, 6), (3, 3), (2, 1), "same"),
    ],
)
@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
def test_matches_numpy_loops(
    layer_cls, spatial, kernel_size, strides, padding, data_format
):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2,) + spatial + (3,)).astype("float32")
    layer = layer_cls(
        4,
        kernel_size,
        strides=strides,
        padding=padding,
        data_format=data_format,
        bias_initializer="random_normal",
    )
    inputs = x if data_format == "channels_last" else np.moveaxis(x, -1, 1)
    y = keras.ops.convert_to_numpy(layer(inputs))
    if data_format == "channels_first":
        y = np.moveaxis(y, 1, -1)
    kernel = keras.ops.convert_to_numpy(layer.kernel)
    bias = keras.ops.convert_to_numpy(layer.bias)
    expected = numpy_locally_connected(x, kernel, bias, kernel_size, strides, padding)
    assert y.shape == expected.shape
    np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-5)


def test_positions_are_independent():
    """Zeroing one position's kernel zeroes that output only: no weight sharing."""
    layer = LocallyConnected1D(2, 3, padding="same", use_bias=False)
    x = np.ones((1, 8, 1), "float32")
    layer.build(x.shape)
    kernel = keras.ops.convert_to_numpy(layer.kernel)
    kernel[5] = 0.0
    layer.kernel.assign(kernel)
    y = keras.ops.convert_to_numpy(layer(x))
    assert np.all(y[0, 5] == 0.0)
    assert np.all(np.delete(y[0], 5, axis=0) != 0.0)


def test_contract_1d():
    run_layer_test(
        LocallyConnected1D,
        dict(filters=3, kernel_size=3, padding="same", activation="relu"),
        input_shape=(2, 10, 2),
        expected_output_shape=(2, 10, 3),
        expected_num_trainable_weights=2,
    )


def test_contract_2d():
    run_layer_test(
        LocallyConnected2D,
        dict(filters=3, kernel_size=(3, 2), strides=(2, 1)),
        input_shape=(2, 9, 6, 2),
        expected_output_shape=(2, 4, 5, 3),
        expected_num_trainable_weights=2,
    )


def test_glorot_uses_the_fans_of_one_position():
    layer = LocallyConnected2D(16, 3, kernel_initializer="glorot_uniform")
    layer.build((None, 34, 34, 8))
    kernel = keras.ops.convert_to_numpy(layer.kernel)
    assert kernel.shape == (32, 32, 72, 16)
    limit = math.sqrt(6.0 / (72 + 16))
    assert np.abs(kernel).max() <= limit * (1 + 1e-6)
    np.testing.assert_allclose(kernel.std(), limit / math.sqrt(3.0), rtol=0.02)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(filters=0, kernel_size=3), "`filters`. Expected a positive integer"),
        (
            dict(filters=2, kernel_size=(3, 3, 3)),
            "`kernel_size`. Expected a positive integer or a tuple of 2 positive "
            "integers. Received: kernel_size=\\(3, 3, 3\\)",
        ),
        (dict(filters=2, kernel_size=3, strides=0), "`strides`. Expected a positive"),
        (
            dict(filters=2, kernel_size=3, padding="causal"),
            "`padding`. Expected one of 'valid', 'same'. Received: padding='causal'",
        ),
        (dict(filters=2, kernel_size=3, use_bias=1), "`use_bias`. Expected a boolean"),
    ],
)
def test_argument_errors(kwargs, message):
    with pytest.raises(ValueError, match="Invalid value for argument " + message):
        LocallyConnected2D(**kwargs)


def test_input_shape_errors():
    with pytest.raises(ValueError, match="Expected static spatial sizes and channels"):
        LocallyConnected1D(2, 3)(keras.Input((None, 1)))
    with pytest.raises(ValueError, match="Expected spatial sizes of at least"):
        LocallyConnected2D(2, 5)(keras.Input((4, 8, 1)))
