"""Nearest `UpSampling2D` exports as a resize op, with the layer's own numbers."""

import collections

import keras
import numpy as np
import pytest

from coordgate_keras.tflite import export_tflite, op_census, prepare_for_export
from coordgate_keras.tflite.folding import _NearestResize
from coordgate_keras.tflite.verification import run_tflite


def _upsampling_model(size, interpolation="nearest", shape=(5, 7, 3)):
    inputs = keras.Input(shape)
    x = keras.layers.UpSampling2D(size, interpolation=interpolation, name="up")(inputs)
    return keras.Model(inputs, x)


def _repeat(x, size):
    """NumPy reference of nearest up-sampling: every pixel repeated."""
    rows, cols = (size, size) if isinstance(size, int) else size
    return np.repeat(np.repeat(x, rows, axis=1), cols, axis=2)


@pytest.mark.parametrize("size", [2, 3, (2, 3)])
def test_resize_matches_upsampling_exactly(tmp_path, size):
    model = _upsampling_model(size)
    x = np.random.default_rng(0).uniform(0, 1, (1, 5, 7, 3)).astype("float32")
    expected = _repeat(x, size)
    np.testing.assert_array_equal(model(x), expected)

    folded = prepare_for_export(model, (1, 5, 7, 3))
    assert isinstance(folded.get_layer("up"), _NearestResize)
    np.testing.assert_array_equal(folded(x), expected)

    path = tmp_path / "up.tflite"
    export_tflite(model, path, (1, 5, 7, 3))
    assert op_census(path) == collections.Counter({"RESIZE_NEAREST_NEIGHBOR": 1})
    np.testing.assert_array_equal(run_tflite(path, [x])[0], expected)


def test_bilinear_upsampling_is_left_alone():
    model = _upsampling_model(2, interpolation="bilinear")
    folded = prepare_for_export(model, (1, 5, 7, 3))
    assert not isinstance(folded.get_layer("up"), _NearestResize)


def test_unet_upsampling_census(registry_export):
    for name in ("unet_d2", "coordgate_unet_d2", "coordconv_unet_d2"):
        census = op_census(registry_export(name)[1])
        # One resize per decoder level; no RESHAPE + TILE or BROADCAST_TO left.
        assert census["RESIZE_NEAREST_NEIGHBOR"] == 2, name
        assert not {"TILE", "RESHAPE", "BROADCAST_TO", "GATHER"} & set(census), name


def test_saved_unet_loads_and_exports_with_resize(tmp_path):
    from coordgate_keras.zoo import create_model

    keras.utils.set_random_seed(0)
    model = create_model("unet_d1", input_shape=(16, 16, 1), base_filters=4)
    # The model itself keeps Keras' UpSampling2D: saved files are unchanged.
    assert isinstance(
        model.get_layer("unet_d1_up0_upsample"), keras.layers.UpSampling2D
    )
    model.save(tmp_path / "unet.keras")
    loaded = keras.saving.load_model(tmp_path / "unet.keras")
    x = np.random.default_rng(1).uniform(0, 1, (1, 16, 16, 1)).astype("float32")
    np.testing.assert_array_equal(loaded(x), model(x))
    path = tmp_path / "unet.tflite"
    report = export_tflite(loaded, path, (1, 16, 16, 1))
    assert op_census(path)["RESIZE_NEAREST_NEIGHBOR"] == 1
    assert report["verification"]["max_abs_error"] <= 1e-6
