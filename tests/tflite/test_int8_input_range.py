"""int8 exports: the input quantization covers the declared input range (bright
inputs up to 1 are not clipped), and models int8 cannot serve are refused."""

import os

import numpy as np
import pytest
from ai_edge_litert.interpreter import Interpreter

from coordgate_keras import zoo
from coordgate_keras.tflite import calibration, export_tflite


def test_cover_value_range_sets_the_ends_in_a_copy():
    batches = [np.full((1, 4, 4, 1), 0.5, "float32"), np.full((1, 4, 4, 1), 0.25)]
    covered = calibration.cover_value_range(batches, (0.0, 1.0))
    assert covered[0].min() == 0.0 and covered[0].max() == 1.0
    assert np.count_nonzero(covered[0] != 0.5) == 2
    np.testing.assert_array_equal(covered[1], batches[1])
    assert batches[0].min() == batches[0].max() == 0.5  # not modified


def test_int8_input_holds_the_whole_declared_range(tmp_path):
    model = zoo.create_model("unet_d1", input_shape=(16, 16, 1), base_filters=4)
    path = str(tmp_path / "m.tflite")
    # Calibration images that never reach 1 (as blurred images).
    data = np.random.default_rng(0).uniform(0.1, 0.8, (8, 16, 16, 1))
    export_tflite(
        model, path, (1, 16, 16, 1), quantization="int8",
        representative_data=data.astype("float32"),
    )  # fmt: skip
    interpreter = Interpreter(model_path=path)
    detail = interpreter.get_input_details()[0]
    assert detail["dtype"] == np.int8
    scale, zero_point = detail["quantization"]
    low, high = scale * (-128 - zero_point), scale * (127 - zero_point)
    # The representable input interval contains [0, 1] (to half a step).
    assert low <= 0.5 * scale and high >= 1.0 - 0.5 * scale, (low, high)


def test_multiwienernet_int8_is_refused_for_its_reason(tmp_path):
    from coordgate_keras.tflite import verification

    model = zoo.create_model("multiwienernet", input_shape=(32, 32, 1))
    path = tmp_path / "m.tflite"
    with pytest.raises(
        verification.VerificationError,
        match=r"The 'int8' TFLite export of `multiwienernet` is refused: int8 "
        r"activations cannot hold the Fourier-domain range of the Wiener filter",
    ):
        export_tflite(model, str(path), (1, 32, 32, 1), quantization="int8")
    assert os.listdir(tmp_path) == []
