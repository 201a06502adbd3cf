"""The shared checks: one message form, NumPy integers accepted, plain types out."""

import json

import numpy as np
import pytest

from coordgate_keras.utils import argument_validation as av


def _message(name, expected, received):
    return (
        f"Invalid value for argument `{name}`. Expected {expected}. "
        f"Received: {received}"
    )


def test_invalid_value_message_and_parts():
    error = av.invalid_value(np.int64(0), "depth", "a positive integer")
    assert type(error) is ValueError  # TF re-raises it from traced code as is.
    # NumPy scalars are shown as the Python values they stand for.
    assert str(error) == _message("depth", "a positive integer", "depth=0")
    assert (error.argument, error.expected, error.received) == (
        "depth",
        "a positive integer",
        "depth=0",
    )
    custom = av.invalid_value(None, "images", "floats", "images of dtype uint8")
    assert str(custom).endswith("Received: images of dtype uint8")


@pytest.mark.parametrize("value", [3, np.int64(3), np.int32(3), np.uint8(3)])
def test_positive_int_accepts_numpy_integers_and_returns_int(value):
    result = av.positive_int(value, "filters")
    assert result == 3 and type(result) is int
    json.dumps(result)


@pytest.mark.parametrize(
    "value, received",
    [
        (0, "filters=0"),
        (-2, "filters=-2"),
        (True, "filters=True"),
        (np.bool_(True), "filters=True"),
        (2.0, "filters=2.0"),
        (2.5, "filters=2.5"),
        ("4", "filters='4'"),
        (None, "filters=None"),
    ],
)
def test_positive_int_refuses(value, received):
    with pytest.raises(ValueError) as info:
        av.positive_int(value, "filters")
    assert str(info.value) == _message("filters", "a positive integer", received)


def test_allow_none_and_other_minimums():
    assert av.positive_int(None, "units", allow_none=True) is None
    with pytest.raises(ValueError, match="Expected a positive integer or None"):
        av.positive_int(0, "units", allow_none=True)
    assert av.non_negative_int(np.int16(0), "warmup") == 0
    with pytest.raises(ValueError, match="Expected a non-negative integer. Rec"):
        av.non_negative_int(-1, "warmup")
    with pytest.raises(ValueError, match="Expected an integer >= 2. Received: m=1"):
        av.integer(1, "m", minimum=2)
    assert av.seed(None) is None and av.seed(np.int64(7)) == 7


def test_boolean():
    assert av.boolean(np.bool_(False), "with_r") is False
    for value in (0, 1, "yes", None):
        with pytest.raises(ValueError, match="Expected a boolean"):
            av.boolean(value, "with_r")


def test_number_and_range():
    assert av.number(np.float32(0.5), "x", minimum=0, maximum=1) == 0.5
    assert av.number(3, "x") == 3.0
    with pytest.raises(ValueError, match=r"Expected a non-negative number\. Rec"):
        av.number(-1e-9, "x", minimum=0)
    with pytest.raises(ValueError, match=r"Expected a positive number\. Rec"):
        av.number(0, "x", minimum=0, min_inclusive=False)
    with pytest.raises(ValueError, match=r"finite number >= 1 and < 2\. Rec"):
        av.number(2, "x", minimum=1, maximum=2, max_inclusive=False)
    for bad in (float("nan"), float("inf"), True, "1.5", None):
        with pytest.raises(ValueError, match="`x`"):
            av.number(bad, "x")
    assert av.number_range((np.int64(0), 1), "r") == (0.0, 1.0)
    assert av.number_range((1, 1), "r") == (1.0, 1.0)
    with pytest.raises(ValueError, match="low < high"):
        av.number_range((1, 1), "r", strict=True)
    with pytest.raises(ValueError, match=r"low <= high.*Received: r=\(1, 0\)"):
        av.number_range((1, 0), "r")
    with pytest.raises(ValueError, match="a pair of numbers"):
        av.number_range(3, "r")


def test_choice_is_exact():
    assert av.choice("same", "padding", ("valid", "same")) == "same"
    assert av.choice(None, "norm", (None, "batch")) is None
    with pytest.raises(ValueError) as info:
        av.choice("SAME", "padding", ("valid", "same"))
    assert str(info.value) == _message(
        "padding", "one of 'valid', 'same'", "padding='SAME'"
    )
    # 1 == True == 1.0 in Python; a choice must not match across types.
    with pytest.raises(ValueError):
        av.choice(True, "x", (1, 2))
    with pytest.raises(ValueError):
        av.choice(1.0, "x", (1, 2))


def test_data_format_and_activation():
    assert av.data_format(None) in ("channels_last", "channels_first")
    assert av.data_format("channels_first") == "channels_first"
    with pytest.raises(ValueError, match="Received: data_format='NHWC'"):
        av.data_format("NHWC")
    assert av.activation(None, "a") is None
    assert callable(av.activation("relu", "a"))
    with pytest.raises(ValueError, match="Received: a='relux'"):
        av.activation("relux", "a")


def test_int_tuple():
    assert av.int_tuple(np.int64(3), "kernel_size", 2) == (3, 3)
    assert av.int_tuple([np.int32(3), 1], "kernel_size", 2) == (3, 1)
    with pytest.raises(ValueError) as info:
        av.int_tuple((3, 0), "kernel_size", 2)
    assert str(info.value) == _message(
        "kernel_size",
        "a positive integer or a tuple of 2 positive integers",
        "kernel_size=(3, 0)",
    )
    with pytest.raises(ValueError, match="Expected a positive integer. Rec"):
        av.int_tuple((3, 3), "kernel_size", 1)


def test_shape():
    assert av.shape([np.int64(4), 5], "s", rank=2) == (4, 5)
    assert av.shape((None, 3), "s", allow_none=True) == (None, 3)
    with pytest.raises(ValueError, match="a tuple of 2 positive integers. Rec"):
        av.shape((4, 5, 6), "s", rank=2)
    with pytest.raises(ValueError, match="positive integers or None"):
        av.shape((0, 5), "s", allow_none=True)
    with pytest.raises(ValueError, match="Received: s=5"):
        av.shape(5, "s")


def test_input_shape_without_batch():
    assert av.input_shape_without_batch(None, 2) == (None, None, 1)
    shape = av.input_shape_without_batch((np.int64(64), 64, np.int64(1)), 2)
    assert shape == (64, 64, 1) and all(type(n) is int for n in shape)
    with pytest.raises(ValueError) as info:
        av.input_shape_without_batch((1, 64, 64, 1), 2)
    assert str(info.value) == _message(
        "input_shape",
        "a tuple of 3 positive integers or None (height, width, channels) "
        "without the batch axis",
        "input_shape=(1, 64, 64, 1)",
    )
    with pytest.raises(ValueError, match="a known number of channels"):
        av.input_shape_without_batch((64, 64, None), 2)
    with pytest.raises(ValueError, match="`in_channels`. Expected the channel"):
        av.input_shape_without_batch((64, 64, 1), 2, in_channels=3)


class _FakeModel:
    input_shape = (None, None, None, 1)


def test_input_shape_with_batch():
    assert av.input_shape_with_batch((1, np.int64(8), 8, 1)) == (1, 8, 8, 1)
    assert av.input_shape_with_batch([1, 8, 8, 1], _FakeModel()) == (1, 8, 8, 1)
    with pytest.raises(ValueError, match=r"\(batch, \*spatial, channels\)"):
        av.input_shape_with_batch((8, 8), None)
    with pytest.raises(ValueError, match=r"compatible with the model's input shape"):
        av.input_shape_with_batch((1, 8, 8, 3), _FakeModel())
    with pytest.raises(ValueError, match="has unknown sizes"):
        av.input_shape_with_batch(None, _FakeModel())


def test_float_array():
    x = np.linspace(0, 1, 5, dtype="float32")
    assert av.float_array(x, "images", (0, 1)) is x
    with pytest.raises(ValueError) as info:
        av.float_array(np.zeros(3, "uint8"), "images")
    assert str(info.value) == _message(
        "images",
        "a floating-point array (scale integer images first, e.g. x / 255 for 8-bit)",
        "images of dtype uint8",
    )
    with pytest.raises(ValueError, match="images of dtype bool"):
        av.float_array(np.zeros(3, bool), "images")
    with pytest.raises(ValueError, match="images with 1 non-finite value"):
        av.float_array(np.array([0.0, np.nan]), "images")
    with pytest.raises(ValueError, match=r"values in \[0, 1\]. Received: images "):
        av.float_array(np.array([0.0, 255.0]), "images", (0, 1))
