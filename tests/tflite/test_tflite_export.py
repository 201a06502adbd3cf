"""`export_tflite` / `export_saved_model`: parity, reports, atomic writes, refusals."""

import json
import os

import keras
import numpy as np
import pytest
from keras import ops

import coordgate_keras
from coordgate_keras.layers import CoordGate
from coordgate_keras.tflite import (
    UnsupportedOpsError,
    VerificationError,
    export_saved_model,
    export_tflite,
    sidecar_path,
    simulated_inputs,
)
from coordgate_keras.tflite.verification import run_tflite

SHAPE = (1, 16, 16, 1)


def _small_model(name="small", width=4):
    inputs = keras.Input((None, None, 1))
    x = keras.layers.Conv2D(width, 3, padding="same", activation="relu")(inputs)
    x = CoordGate(gate_activation="sigmoid")(x)
    x = keras.layers.Conv2D(1, 1)(x)
    return keras.Model(inputs, x, name=name)


class _Spectrum(keras.layers.Layer):
    """Needs TensorFlow's FFT: no TFLite builtin."""

    def call(self, x):
        real, _ = ops.fft2((x, ops.zeros_like(x)))
        return real


def _flex_model():
    inputs = keras.Input((16, 16, 1))
    x = keras.layers.Permute((3, 1, 2))(inputs)
    x = keras.layers.Permute((2, 3, 1))(_Spectrum()(x))
    return keras.Model(inputs, x, name="spectral")


def test_float32_export_matches_keras_and_writes_report(tmp_path):
    model = _small_model()
    path = tmp_path / "small.tflite"
    report = export_tflite(model, path, SHAPE, model_name="tiny", weights_tag="t0")
    assert set(os.listdir(tmp_path)) == {"small.tflite", "small.json"}

    # Independent of the report: run the file and compare with Keras.
    x = simulated_inputs(SHAPE, 3, seed=7)[:, None]
    outputs = run_tflite(path, list(x))
    for xi, yi in zip(x, outputs):
        np.testing.assert_allclose(yi, model(xi), rtol=0, atol=1e-4)

    sidecar = json.loads((tmp_path / "small.json").read_text())
    assert sidecar["sha256"] == report["sha256"]
    assert sidecar["model_name"] == "tiny" and sidecar["weights_tag"] == "t0"
    assert sidecar["quantization"] == "none"
    assert sidecar["inputs"][0]["shape"] == [1, 16, 16, 1]
    assert sidecar["inputs"][0]["dtype"] == "float32"
    assert sidecar["inputs"][0]["quantization"] is None
    assert sidecar["outputs"][0]["shape"] == [1, 16, 16, 1]
    assert sidecar["preprocessing"]["value_range"] == [0.0, 1.0]
    assert sidecar["versions"]["coordgate_keras"] == coordgate_keras.__version__
    assert sidecar["size_bytes"] == path.stat().st_size
    result = sidecar["verification"]
    assert result["passed"] and result["max_abs_error"] <= 1e-4
    assert result["thresholds"] == {"max_abs_error": 1e-4}
    assert sidecar["op_census"]["MUL"] == 1 and "LOGISTIC" not in sidecar["op_census"]


def test_int8_export_is_full_integer_with_user_data(tmp_path):
    import tensorflow as tf

    model = _small_model()
    path = tmp_path / "small_int8.tflite"
    calibration = tf.data.Dataset.from_tensor_slices(
        (simulated_inputs(SHAPE, 8, seed=3), simulated_inputs(SHAPE, 8, seed=3))
    ).batch(3)
    report = export_tflite(
        model,
        path,
        SHAPE,
        quantization="int8",
        representative_data=calibration,
        verify_data=simulated_inputs(SHAPE, 4, seed=4),
    )
    (inp,), (out,) = report["inputs"], report["outputs"]
    assert inp["dtype"] == "int8" and out["dtype"] == "int8"
    assert inp["quantization"]["scale"] > 0 and out["quantization"]["scale"] > 0
    assert report["verification"]["data"] == "user data"
    assert report["verification"]["passed"]
    assert (
        report["verification"]["psnr_db"]
        >= report["verification"]["thresholds"]["min_psnr"]
    )


@pytest.mark.parametrize("quantization", ["float16", "dynamic"])
def test_float16_and_dynamic_exports(tmp_path, quantization):
    # Weights of more than 1024 values: smaller ones are left in float32.
    model = _small_model(width=48)
    path = tmp_path / f"small_{quantization}.tflite"
    report = export_tflite(model, path, SHAPE, quantization=quantization)
    assert report["quantization"] == quantization
    assert report["inputs"][0]["dtype"] == "float32"
    assert report["verification"]["passed"]
    float32 = export_tflite(model, tmp_path / "small.tflite", SHAPE)
    assert report["size_bytes"] < float32["size_bytes"]


def test_flex_model_is_refused_with_op_names(tmp_path):
    path = tmp_path / "out" / "spectral.tflite"
    with pytest.raises(UnsupportedOpsError) as info:
        export_tflite(_flex_model(), path, SHAPE)
    assert "FFT2D" in info.value.ops and "Complex" in info.value.ops
    message = str(info.value)
    assert message.startswith(
        "Cannot export `spectral` to TFLite with builtin operators only: it needs "
    )
    assert "FFT2D" in message and "SELECT_TF_OPS" in message
    assert not path.parent.exists() or os.listdir(path.parent) == []


def test_bad_quantization_name():
    with pytest.raises(
        ValueError,
        match=r"Invalid value for argument `quantization`\. Expected one of 'none', "
        r"'float16', 'dynamic', 'int8'\. Received: quantization='int4'",
    ):
        export_tflite(_small_model(), "x.tflite", SHAPE, quantization="int4")


def test_int8_needs_representative_data(tmp_path):
    message = (
        r"Invalid value for argument `representative_data`\. Expected calibration "
        r"inputs for quantization='int8': 'simulated' \(blurred images of the "
        r"deblurring task\), an array, a tf\.data\.Dataset or an iterable of arrays\. "
        r"Received: representative_data=None"
    )
    path = tmp_path / "m.tflite"
    with pytest.raises(ValueError, match=message):
        export_tflite(_small_model(), path, SHAPE, "int8", representative_data=None)
    with pytest.raises(
        ValueError,
        match=r"Invalid value for argument `representative_data`\. Expected at least 1 "
        r"sample\(s\) of shape \(16, 16, 1\)\. Received: 0 sample\(s\)",
    ):
        export_tflite(_small_model(), path, SHAPE, "int8", representative_data=[])
    with pytest.raises(
        ValueError,
        match=r"Invalid value for argument `representative_data`\. Expected samples of "
        r"shape \(16, 16, 1\) \(the export input shape \(1, 16, 16, 1\) without its "
        r"batch axis\)\. Received: an element of shape \(2, 8, 8, 1\)",
    ):
        export_tflite(
            _small_model(),
            path,
            SHAPE,
            "int8",
            representative_data=np.zeros((2, 8, 8, 1)),
        )
    assert os.listdir(tmp_path) == []


def test_existing_output_is_not_overwritten(tmp_path):
    path = tmp_path / "m.tflite"
    path.write_bytes(b"keep me")
    with pytest.raises(FileExistsError, match=f"{path} already exists"):
        export_tflite(_small_model(), path, SHAPE)
    assert path.read_bytes() == b"keep me"
    assert os.listdir(tmp_path) == ["m.tflite"]
    # An existing report alone also blocks; overwrite=True replaces both.
    path.unlink()
    (tmp_path / "m.json").write_text("{}")
    with pytest.raises(FileExistsError, match="m.json already exists"):
        export_tflite(_small_model(), path, SHAPE)
    report = export_tflite(_small_model(), path, SHAPE, overwrite=True)
    assert json.loads((tmp_path / "m.json").read_text())["sha256"] == report["sha256"]


def test_failed_verification_leaves_nothing(tmp_path):
    path = tmp_path / "m.tflite"
    with pytest.raises(
        VerificationError, match="does not match the Keras model"
    ) as info:
        export_tflite(_small_model(), path, SHAPE, "int8", thresholds={"min_psnr": 500})
    assert info.value.report["verification"]["passed"] is False
    assert os.listdir(tmp_path) == []


def test_bad_paths_and_shapes(tmp_path):
    with pytest.raises(
        ValueError,
        match=r"Invalid value for argument `path`\. Expected a file name ending in "
        r"'\.tflite'\. Received: path='m\.lite'",
    ):
        export_tflite(_small_model(), "m.lite", SHAPE)
    with pytest.raises(ValueError, match=r"Received: input_shape=\(1, 16, 16, 2\)"):
        export_tflite(_small_model(), tmp_path / "m.tflite", (1, 16, 16, 2))


def test_sidecar_path():
    assert sidecar_path("a/b.tflite") == "a/b.json"
    assert sidecar_path("a/b.bin") == "a/b.bin.json"


# === SavedModel ===


def test_saved_model_with_fixed_signature(tmp_path):
    import tensorflow as tf

    model = _small_model()
    path = str(tmp_path / "saved")
    assert export_saved_model(model, path, SHAPE) == path
    assert [p for p in os.listdir(tmp_path) if p.startswith(".")] == []
    loaded = tf.saved_model.load(path)
    (spec,) = loaded.serve.input_signature
    assert tuple(spec.shape) == SHAPE
    x = simulated_inputs(SHAPE, 1)
    np.testing.assert_allclose(loaded.serve(x), model(x), rtol=0, atol=1e-5)

    with pytest.raises(FileExistsError, match="saved already exists"):
        export_saved_model(model, path, SHAPE)
    export_saved_model(model, path, (1, 8, 8, 1), overwrite=True)
    reloaded = tf.saved_model.load(path)
    assert tuple(reloaded.serve.input_signature[0].shape) == (1, 8, 8, 1)
    assert sorted(os.listdir(tmp_path)) == ["saved"]


def test_saved_model_with_model_signature(tmp_path):
    import tensorflow as tf

    model = _small_model()
    path = tmp_path / "dynamic"
    export_saved_model(model, path)
    (spec,) = tf.saved_model.load(str(path)).serve.input_signature
    assert tuple(spec.shape) == (None, None, None, 1)


def test_argument_messages(tmp_path):
    from coordgate_keras.tflite import export_bundle

    with pytest.raises(
        ValueError,
        match=r"Invalid value for argument `num_samples`\. Expected a positive "
        r"integer\. Received: num_samples=0",
    ):
        simulated_inputs(SHAPE, 0)
    with pytest.raises(
        ValueError,
        match=r"Invalid value for argument `input_shape`\. Expected a 1D \(batch, "
        r"length, channels\) or 2D \(batch, height, width, channels\) shape for "
        r"simulated data; pass your own data for other inputs\. "
        r"Received: input_shape=\(1, 4, 4, 4, 1\)",
    ):
        simulated_inputs((1, 4, 4, 4, 1))
    with pytest.raises(
        ValueError,
        match=r"Invalid value for argument `verify_data`\. Expected a NumPy array, a "
        r"tf\.data\.Dataset or an iterable of arrays\. Received: verify_data of type int",
    ):
        export_tflite(_small_model(), tmp_path / "m.tflite", SHAPE, verify_data=3)
    with pytest.raises(
        ValueError,
        match=r"Invalid value for argument `representative_data`\. Expected arrays or "
        r"\(inputs, targets\) pairs\. Received: a dict element",
    ):
        export_tflite(
            _small_model(),
            tmp_path / "m.tflite",
            SHAPE,
            "int8",
            representative_data=[{}],
        )
    a, b = keras.Input((4, 4, 1)), keras.Input((4, 4, 1))
    two_inputs = keras.Model([a, b], keras.layers.Add()([a, b]))
    with pytest.raises(
        ValueError,
        match=r"Invalid value for argument `model`\. Expected a model with a single "
        r"input\. Received: a model with 2 inputs",
    ):
        export_tflite(two_inputs, tmp_path / "m.tflite", SHAPE)
    with pytest.raises(
        ValueError,
        match=r"Invalid value for argument `quantizations`\. Expected at least one "
        r"quantization mode\. Received: quantizations=\(\)",
    ):
        export_bundle(_small_model(), tmp_path, SHAPE, quantizations=())
    with pytest.raises(
        ValueError,
        match=r"Invalid value for argument `weights`\. Expected None when `model` is "
        r"a keras\.Model\. Received: weights='w'",
    ):
        export_bundle(_small_model(), tmp_path, SHAPE, weights="w")
    with pytest.raises(
        ValueError,
        match=r"Invalid value for argument `model`\. Expected a keras\.Model, a "
        r"registered model name or a \.keras file\. Received: model=3",
    ):
        export_bundle(3, tmp_path, SHAPE)
    with pytest.raises(
        ValueError,
        match=r"Invalid value for argument `weights`\. Expected None with a \.keras "
        r"file \(its weights are in the file\)\. Received: weights='w'",
    ):
        export_bundle("m.keras", tmp_path, SHAPE, weights="w")
    with pytest.raises(FileNotFoundError, match=r"No such \.keras file: m\.keras"):
        export_bundle("m.keras", tmp_path, SHAPE)
    assert os.listdir(tmp_path) == []
