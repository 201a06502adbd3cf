import keras
import numpy as np
import pytest

from coordgate_keras.layers import AddCoords
from coordgate_keras.testing import run_layer_test

TF_ONLY = pytest.mark.tf_only(reason="dynamic shapes via tf.function")


def _coords(x, **kwargs):
    y = keras.ops.convert_to_numpy(AddCoords(**kwargs)(x))
    return y


def test_1d_hand_computed():
    y = _coords(np.zeros((2, 5, 1), "float32"), with_r=True)
    assert y.shape == (2, 5, 3)
    np.testing.assert_allclose(y[1, :, 1], [-1.0, -0.5, 0.0, 0.5, 1.0])
    np.testing.assert_allclose(y[1, :, 2], [1.0, 0.5, 0.0, 0.5, 1.0])


def test_2d_non_square_hand_computed():
    x = np.arange(15, dtype="float32").reshape(1, 3, 5, 1)
    y = _coords(x)
    assert y.shape == (1, 3, 5, 3)
    np.testing.assert_array_equal(y[0, :, :, 0], x[0, :, :, 0])
    rows = [[-1.0] * 5, [0.0] * 5, [1.0] * 5]
    cols = [[-1.0, -0.5, 0.0, 0.5, 1.0]] * 3
    np.testing.assert_allclose(y[0, :, :, 1], rows)
    np.testing.assert_allclose(y[0, :, :, 2], cols)


def test_2d_with_r_hand_computed():
    y = _coords(np.zeros((1, 3, 5, 2), "float32"), with_r=True)
    assert y.shape == (1, 3, 5, 5)
    r = y[0, :, :, 4]
    np.testing.assert_allclose(r[1, 2], 0.0, atol=1e-7)
    np.testing.assert_allclose(r[0, 1], np.sqrt(1.0 + 0.25), rtol=1e-6)
    np.testing.assert_allclose(r[2, 4], np.sqrt(2.0), rtol=1e-6)
    np.testing.assert_allclose(r[1, 0], 1.0, rtol=1e-6)


def test_3d_hand_computed():
    y = _coords(np.zeros((1, 2, 3, 5, 1), "float32"), with_r=True)
    assert y.shape == (1, 2, 3, 5, 5)
    np.testing.assert_allclose(y[0, :, 0, 0, 1], [-1.0, 1.0])
    np.testing.assert_allclose(y[0, 0, :, 0, 2], [-1.0, 0.0, 1.0])
    np.testing.assert_allclose(y[0, 0, 0, :, 3], [-1.0, -0.5, 0.0, 0.5, 1.0])
    np.testing.assert_allclose(y[0, 1, 2, 4, 4], np.sqrt(3.0), rtol=1e-6)
    np.testing.assert_allclose(y[0, 0, 1, 2, 4], 1.0, rtol=1e-6)


def test_channels_first_matches_channels_last():
    x = np.random.default_rng(0).random((2, 4, 3, 6)).astype("float32")
    last = _coords(x, with_r=True)
    first = _coords(np.moveaxis(x, -1, 1), with_r=True, data_format="channels_first")
    np.testing.assert_array_equal(np.moveaxis(first, 1, -1), last)


def test_single_pixel_axis_is_minus_one():
    y = _coords(np.zeros((1, 1, 4, 1), "float32"))
    np.testing.assert_array_equal(y[0, 0, :, 1], [-1.0] * 4)


@TF_ONLY
def test_dynamic_shape_matches_static():
    import tensorflow as tf

    layer = AddCoords(with_r=True)
    x = np.random.default_rng(1).random((2, 6, 9, 1)).astype("float32")
    dynamic = tf.function(
        layer, input_signature=[tf.TensorSpec((None, None, None, 1), tf.float32)]
    )
    np.testing.assert_allclose(dynamic(x).numpy(), _coords(x, with_r=True), atol=1e-6)


@pytest.mark.parametrize(
    "input_shape,with_r,expected",
    [
        ((2, 16, 3), False, (2, 16, 4)),
        ((2, 8, 6, 3), True, (2, 8, 6, 6)),
        ((None, None, None, 3), False, (None, None, None, 5)),
        ((2, 4, 6, 5, 1), False, (2, 4, 6, 5, 4)),
    ],
)
def test_layer_contract(input_shape, with_r, expected):
    run_layer_test(
        AddCoords,
        {"with_r": with_r},
        input_shape,
        expected,
        expected_num_trainable_weights=0,
        run_training_check=False,
    )


def test_in_sequential_and_functional():
    seq = keras.Sequential(
        [keras.Input((8, 8, 1)), AddCoords(), keras.layers.Flatten()]
    )
    assert seq.output_shape == (None, 8 * 8 * 3)
    inputs = keras.Input((None, None, 2))
    assert AddCoords(with_r=True)(inputs).shape == (None, None, None, 5)


def test_error_with_r_not_bool():
    with pytest.raises(ValueError, match=r"argument `with_r`.*Received: with_r=1"):
        AddCoords(with_r=1)


def test_error_bad_data_format():
    with pytest.raises(
        ValueError, match=r"argument `data_format`.*Received: data_format='nhwc'"
    ):
        AddCoords(data_format="nhwc")


def test_error_wrong_rank():
    with pytest.raises(
        ValueError, match=r"rank 3, 4 or 5.*Received: input_shape=\(2, 3\)"
    ):
        AddCoords()(np.zeros((2, 3), "float32"))
