import keras
import numpy as np
import pytest

from coordgate_keras.layers import SpatialSizeCheck
from coordgate_keras.testing import run_layer_test


def test_passes_multiples_through_unchanged():
    x = np.random.default_rng(0).random((2, 8, 12, 3)).astype("float32")
    y = SpatialSizeCheck(4)(x)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(y), x)


def test_layer_contract():
    run_layer_test(
        SpatialSizeCheck,
        {"multiple": 4, "reason": "2**depth for depth=2"},
        input_shape=(2, 8, 4, 3),
        expected_output_shape=(2, 8, 4, 3),
        expected_num_trainable_weights=0,
        run_training_check=False,
    )


def test_refuses_other_sizes_naming_the_nearest_valid_ones():
    layer = SpatialSizeCheck(8, reason="2**depth for depth=3", name="check")
    expected = (
        "Invalid input shape for `check`. Expected spatial sizes divisible by 8 "
        "(2**depth for depth=3); nearest valid sizes: 50 -> 48 or 56; 5 -> 8. "
    )
    with pytest.raises(
        ValueError,
        match=expected.replace("(", r"\(").replace(")", r"\)").replace("*", r"\*"),
    ):
        layer(keras.KerasTensor((None, 50, 5, 1)))
    with pytest.raises(ValueError, match="Received: input_shape=\\(1, 50, 5, 1\\)"):
        layer(np.zeros((1, 50, 5, 1), "float32"))
    assert SpatialSizeCheck(8, data_format="channels_first")(
        keras.KerasTensor((None, 3, 16, 8))
    ).shape == (None, 3, 16, 8)


def test_argument_errors():
    with pytest.raises(ValueError, match="`multiple`. Expected a positive integer"):
        SpatialSizeCheck(0)
    with pytest.raises(ValueError, match="`reason`. Expected a string"):
        SpatialSizeCheck(2, reason=3)
