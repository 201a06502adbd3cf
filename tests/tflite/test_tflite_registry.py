"""Every registry model exports to builtin-only TFLite and matches Keras.

Models are untrained (seeded) at small sizes (32 x 32 images, 64-sample signals,
`base_filters=8`); see conftest.py. The int8 PSNR floor and its justification
are in `coordgate_keras.tflite.DEFAULT_THRESHOLDS` and the README.
"""

import pytest

from coordgate_keras.tflite import (
    DEFAULT_THRESHOLDS,
    VerificationError,
    export_tflite,
    op_census,
)
from coordgate_keras.tflite.inspection import non_builtin_ops
from coordgate_keras.zoo import list_models

MODELS = list_models()
# Full-integer MultiWienerNet is refused by verification (see test below).
INT8_MODELS = [name for name in MODELS if name != "multiwienernet"]
# The int8 exports of the default run; the rest are marked slow.
INT8_DEFAULT = {"unet_d2", "coordconv_unet_d2", "coordgate_unet_d2", "coordgate_cnn1d"}


# Depths 3-5 of the U-Net families exercise the same export code as 1-2 at
# 7-15 s of CPU each, and MultiWienerNet's float32 export takes 9 s: `make
# test-slow`.
DEEP = ("_d3", "_d4", "_d5", "multiwienernet")


@pytest.mark.parametrize(
    "name",
    [
        pytest.param(name, marks=pytest.mark.slow) if name.endswith(DEEP) else name
        for name in MODELS
    ],
)
def test_float32_parity(registry_export, name):
    _, path, report = registry_export(name)
    result = report["verification"]
    assert result["passed"]
    assert result["max_abs_error"] <= 1e-4
    # Relative too: untrained CoordGate U-Nets have outputs of order 1e-3.
    assert result["max_abs_error"] <= 1e-5 * result["reference_range"]
    assert not non_builtin_ops(op_census(path))
    assert report["inputs"][0]["shape"][0] == 1


def _int8_params():
    return [
        pytest.param(name, marks=() if name in INT8_DEFAULT else pytest.mark.slow)
        for name in INT8_MODELS
    ]


@pytest.mark.parametrize("name", _int8_params())
def test_int8_psnr(registry_export, name):
    _, path, report = registry_export(name, "int8")
    result = report["verification"]
    assert report["inputs"][0]["dtype"] == "int8"
    assert report["outputs"][0]["dtype"] == "int8"
    print(f"{name}: int8 output PSNR vs Keras {result['psnr_db']:.2f} dB")
    assert result["psnr_db"] >= DEFAULT_THRESHOLDS["int8"]["min_psnr"]
    assert result["passed"]


@pytest.mark.slow
@pytest.mark.parametrize("quantization", ["float16", "dynamic"])
@pytest.mark.parametrize("name", ["coordgate_unet_d2", "multiwienernet"])
def test_float16_and_dynamic(registry_export, name, quantization):
    _, _, report = registry_export(name, quantization)
    result = report["verification"]
    assert result["passed"]
    assert result["psnr_db"] >= DEFAULT_THRESHOLDS[quantization]["min_psnr"]


@pytest.mark.slow
def test_multiwienernet_int8_is_refused(registry_model, tmp_path):
    model, shape = registry_model("multiwienernet")
    path = tmp_path / "mwn_int8.tflite"
    with pytest.raises(VerificationError) as info:
        export_tflite(model, path, shape, quantization="int8")
    # Refused before converting, for its reason: the Fourier-domain intermediates
    # span too wide a range for int8 activations.
    assert "Fourier-domain range" in info.value.report["refused"]
    assert not path.exists()
