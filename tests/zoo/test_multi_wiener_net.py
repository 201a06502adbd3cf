import keras
import numpy as np
import pytest

from coordgate_keras.zoo import build_multiwienernet, create_model


def test_given_psfs_initialise_the_model():
    psfs = np.random.default_rng(0).uniform(size=(32, 32, 2)).astype("float32")
    model = create_model(
        "multiwienernet", input_shape=(32, 32, 1), psfs=psfs, base_filters=4, depth=2
    )
    layer = model.get_layer("multiwienernet_wiener")
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(layer.psf_kernel), psfs)
    assert layer.num_psfs == 2


def test_multiwienernet_needs_a_static_size():
    with pytest.raises(
        ValueError,
        match="Invalid value for argument `input_shape`. Expected a static height and "
        "width",
    ):
        build_multiwienernet((None, None, 1))
    with pytest.raises(ValueError, match="divisible by 2\\*\\*depth = 16"):
        build_multiwienernet((40, 40, 1))
