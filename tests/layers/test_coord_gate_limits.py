"""CoordGate refuses inputs and sizes it cannot work with, in Keras' form."""

import keras
import pytest

from coordgate_keras.layers import CoordGate


def test_zero_input_channels_is_an_input_shape_error():
    with pytest.raises(
        ValueError,
        match=r"Invalid input shape for CoordGate. The channel dimension must be "
        r"known and positive. Received: input_shape=\(None, 8, 8, 0\)",
    ):
        CoordGate()(keras.Input((8, 8, 0)))


def test_encoding_units_has_an_upper_bound():
    with pytest.raises(
        ValueError,
        match=r"Invalid value for argument `encoding_units`. Expected None or a "
        r"positive integer of at most 65536. Received: encoding_units=1000000000",
    ):
        CoordGate(encoding_units=10**9)
    assert CoordGate(encoding_units=2**16).encoding_units == 2**16
