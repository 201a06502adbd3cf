import itertools

import keras
import numpy as np
import pytest

from coordgate_keras.layers import CoordConv1D, CoordConv2D, CoordConv3D
from coordgate_keras.testing import run_layer_test


def numpy_coord_conv(x, kernel, bias, with_r=False, strides=1, dilation=1):
    """Reference CoordConv2D: explicit coordinates, then a 'same' conv by loops."""
    n, h, w, _ = x.shape
    u = np.array([-1.0 + 2.0 * i / (h - 1) for i in range(h)])
    v = np.array([-1.0 + 2.0 * j / (w - 1) for j in range(w)])
    uu = np.repeat(u[:, None], w, axis=1)
    vv = np.repeat(v[None, :], h, axis=0)
    extra = [uu, vv] + ([np.sqrt(uu**2 + vv**2)] if with_r else [])
    extra = np.broadcast_to(np.stack(extra, -1), (n, h, w, len(extra)))
    xa = np.concatenate([x, extra], axis=-1)
    kh, kw, _, f = kernel.shape
    out_h, out_w = (h + strides - 1) // strides, (w + strides - 1) // strides
    # TF 'same': total padding max((out - 1) * s + k_eff - n, 0), the extra pixel after.
    pad_h = max((out_h - 1) * strides + dilation * (kh - 1) + 1 - h, 0)
    pad_w = max((out_w - 1) * strides + dilation * (kw - 1) + 1 - w, 0)
    padded = np.pad(
        xa,
        (
            (0, 0),
            (pad_h // 2, pad_h - pad_h // 2),
            (pad_w // 2, pad_w - pad_w // 2),
            (0, 0),
        ),
    )
    y = np.zeros((n, out_h, out_w, f))
    for b, i, j in itertools.product(range(n), range(out_h), range(out_w)):
        for a, c in itertools.product(range(kh), range(kw)):
            pixel = padded[b, i * strides + a * dilation, j * strides + c * dilation]
            y[b, i, j] += pixel @ kernel[a, c]
    return y + bias


@pytest.mark.parametrize(
    "with_r,strides,dilation,shape",
    [
        (False, 1, 1, (2, 5, 7, 2)),
        (True, 1, 2, (1, 6, 4, 3)),
        (False, 2, 1, (1, 6, 6, 1)),
    ],
)
def test_coord_conv2d_matches_numpy_loop(with_r, strides, dilation, shape):
    x = np.random.default_rng(0).standard_normal(shape).astype("float32")
    layer = CoordConv2D(
        4,
        3,
        padding="same",
        with_r=with_r,
        strides=strides,
        dilation_rate=dilation,
        bias_initializer="random_normal",
    )
    y = keras.ops.convert_to_numpy(layer(x))
    kernel, bias = (keras.ops.convert_to_numpy(w) for w in layer.weights)
    assert kernel.shape == (3, 3, shape[-1] + 2 + with_r, 4)
    expected = numpy_coord_conv(x, kernel, bias, with_r, strides, dilation)
    np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-5)


def test_conv_arguments_pass_through():
    layer = CoordConv2D(
        3,
        (3, 1),
        padding="valid",
        activation="relu",
        use_bias=False,
        kernel_regularizer="l2",
        kernel_initializer="ones",
        name="cc",
    )
    y = keras.ops.convert_to_numpy(layer(np.ones((1, 5, 4, 2), "float32")))
    assert y.shape == (1, 3, 4, 3)
    assert len(layer.weights) == 1 and layer.losses
    assert (y >= 0).all()
    config = layer.get_config()
    assert config["kernel_size"] == (3, 1) and config["activation"] == "relu"


@pytest.mark.parametrize(
    "cls,input_shape,expected",
    [
        (CoordConv1D, (2, 16, 3), (2, 16, 4)),
        (CoordConv2D, (2, 8, 6, 3), (2, 8, 6, 4)),
        (CoordConv2D, (None, None, None, 3), (None, None, None, 4)),
        (CoordConv3D, (2, 4, 6, 4, 2), (2, 4, 6, 4, 4)),
    ],
)
def test_layer_contract(cls, input_shape, expected):
    run_layer_test(
        cls,
        {"filters": 4, "kernel_size": 3, "padding": "same", "with_r": True},
        input_shape,
        expected,
        expected_num_trainable_weights=2,
    )


def test_channels_first_matches_channels_last():
    x = np.random.default_rng(2).standard_normal((1, 5, 6, 2)).astype("float32")
    last = CoordConv2D(3, 3, padding="same", with_r=True)
    last.build(x.shape)
    first = CoordConv2D(3, 3, padding="same", with_r=True, data_format="channels_first")
    first.build((1, 2, 5, 6))
    first.set_weights(last.get_weights())
    y_first = keras.ops.convert_to_numpy(first(np.moveaxis(x, -1, 1)))
    y_last = keras.ops.convert_to_numpy(last(x))
    np.testing.assert_allclose(np.moveaxis(y_first, 1, -1), y_last, atol=1e-5)


def test_error_with_r_not_bool():
    with pytest.raises(ValueError, match=r"argument `with_r`.*Received: with_r='yes'"):
        CoordConv2D(4, 3, with_r="yes")


def test_error_wrong_rank():
    with pytest.raises(
        ValueError, match=r"CoordConv2D. Expected a tensor of rank 4.*\(2, 8, 3\)"
    ):
        CoordConv2D(4, 3).build((2, 8, 3))


def test_error_unknown_channels():
    with pytest.raises(ValueError, match=r"channel dimension must be known"):
        CoordConv1D(4, 3).build((2, 8, None))


@pytest.mark.parametrize(
    "args, kwargs, message",
    [
        (
            (True, 3),
            {},
            "`filters`. Expected a positive integer. Received: filters=True",
        ),
        (
            (2.5, 3),
            {},
            "`filters`. Expected a positive integer. Received: filters=2.5",
        ),
        (
            (4, 0),
            {},
            "`kernel_size`. Expected a positive integer or a tuple of 2 positive "
            "integers. Received: kernel_size=0",
        ),
        (
            (4, 3),
            {"strides": (1, 2, 3)},
            "`strides`. Expected a positive integer or a tuple of 2 positive "
            "integers. Received: strides=(1, 2, 3)",
        ),
        (
            (4, 3),
            {"groups": 1.0},
            "`groups`. Expected a positive integer. Received: groups=1.0",
        ),
    ],
    ids=str,
)
def test_integer_argument_errors(args, kwargs, message):
    with pytest.raises(ValueError) as info:
        CoordConv2D(*args, **kwargs)
    assert str(info.value) == "Invalid value for argument " + message


def test_numpy_integers_are_accepted_and_stored_as_ints():
    import json

    layer = CoordConv2D(np.int64(4), np.int64(3), strides=np.int32(1), padding="same")
    config = layer.get_config()
    assert (config["filters"], config["kernel_size"]) == (4, (3, 3))
    assert type(config["filters"]) is int
    json.dumps(config)
    assert layer(np.zeros((1, 8, 8, 1), "float32")).shape == (1, 8, 8, 4)
    assert CoordConv1D(np.int64(2), 3)(np.zeros((1, 8, 1), "float32")).shape[-1] == 2
