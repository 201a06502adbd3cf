"""Exports are all or nothing, and bad thresholds or data fail before converting."""

import os
import signal
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest

from coordgate_keras.layers import CoordGate
from coordgate_keras.tflite import (
    ExportRefusedError,
    UnsupportedOpsError,
    export_bundle,
    export_tflite,
    verification,
)
from coordgate_keras.tflite import export as export_lib

SHAPE = (1, 16, 16, 1)
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _small_model(name="tiny"):
    inputs = keras.Input((None, None, 1))
    x = keras.layers.Conv2D(4, 3, padding="same", activation="relu")(inputs)
    x = CoordGate()(x)
    return keras.Model(inputs, keras.layers.Conv2D(1, 1)(x), name=name)


def _refuse(mode, error=None):
    """A `convert_saved_model` that fails for `mode` (with `error`, or refuses)."""
    convert = export_lib.convert_saved_model

    def fake(saved_model, quantization, *args, **kwargs):
        if quantization == mode:
            if error is not None:
                raise error
            raise UnsupportedOpsError(f"{mode} refused for the test", ["FAKE"])
        return convert(saved_model, quantization, *args, **kwargs)

    return fake


# === Defect 3: a bundle appears whole or not at all ===


def test_a_refused_mode_writes_nothing_and_a_plain_rerun_works(tmp_path, monkeypatch):
    model, out = _small_model(), tmp_path / "out"
    monkeypatch.setattr(export_lib, "convert_saved_model", _refuse("int8"))
    with pytest.raises(ExportRefusedError) as info:
        export_bundle(model, out, SHAPE, quantizations=("none", "int8"))
    assert "nothing was written" in str(info.value)
    assert list(info.value.refused) == ["int8"]
    assert [r["quantization"] for r in info.value.reports] == ["none"]
    assert os.listdir(tmp_path) == []
    # The rerun without the refused mode is not blocked by leftovers.
    result = export_bundle(model, out, SHAPE, quantizations=("none",))
    assert sorted(os.listdir(out)) == [
        "tiny_16x16_float32.json",
        "tiny_16x16_float32.tflite",
        "tiny_16x16_saved_model",
    ]
    assert result["refused"] == {}


def test_partial_keeps_the_modes_that_passed(tmp_path, monkeypatch):
    monkeypatch.setattr(export_lib, "convert_saved_model", _refuse("int8"))
    result = export_bundle(
        _small_model(), tmp_path, SHAPE, quantizations=("none", "int8"), partial=True
    )
    assert list(result["refused"]) == ["int8"]
    assert sorted(os.listdir(tmp_path)) == [
        "tiny_16x16_float32.json",
        "tiny_16x16_float32.tflite",
        "tiny_16x16_saved_model",
    ]


@pytest.mark.parametrize("existing", [False, True])
def test_ctrl_c_mid_bundle_leaves_the_folder_as_it_was(tmp_path, monkeypatch, existing):
    out = tmp_path / "out"
    if existing:
        out.mkdir()
        (out / "notes.txt").write_text("keep")
    monkeypatch.setattr(
        export_lib, "convert_saved_model", _refuse("float16", KeyboardInterrupt())
    )
    with pytest.raises(KeyboardInterrupt):
        export_bundle(_small_model(), out, SHAPE, quantizations=("none", "float16"))
    assert os.listdir(tmp_path) == (["out"] if existing else [])
    if existing:
        assert os.listdir(out) == ["notes.txt"]


# A fresh TensorFlow process (about 10 s of CPU); tests/utils/test_atomic_io.py
# checks the same SIGTERM clean-up on the writer itself without TensorFlow.
@pytest.mark.slow
def test_sigterm_mid_bundle_leaves_nothing(tmp_path):
    script = textwrap.dedent(
        f"""
        import os, signal, time
        import keras
        from coordgate_keras.tflite import export as export_lib, export_bundle

        def convert(*args, **kwargs):
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(60)

        export_lib.convert_saved_model = convert
        inputs = keras.Input((None, None, 1))
        model = keras.Model(inputs, keras.layers.Conv2D(1, 3, padding="same")(inputs))
        export_bundle(model, {str(tmp_path / "out")!r}, (1, 16, 16, 1))
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        cwd=ROOT,
    )
    assert result.returncode == 128 + signal.SIGTERM, result.stderr[-2000:]
    assert os.listdir(tmp_path) == []


def test_leftovers_of_a_killed_export_are_removed_by_the_next(tmp_path):
    finished = subprocess.Popen(["true"])  # A process id that is gone.
    finished.wait()
    out = tmp_path / "out"
    out.mkdir()
    stale_file = out / f".tiny_16x16_float32.tflite.tmp-{finished.pid}-0badc0de"
    stale_file.write_bytes(b"x" * 1000)
    stale_dir = out / f".bundle.tmp-{finished.pid}-0badc0df"
    stale_dir.mkdir()
    (stale_dir / "tiny_16x16_saved_model").mkdir()
    export_bundle(_small_model(), out, SHAPE, quantizations=("none",))
    assert sorted(os.listdir(out)) == [
        "tiny_16x16_float32.json",
        "tiny_16x16_float32.tflite",
        "tiny_16x16_saved_model",
    ]


# === Defect 4: thresholds are checked ===


@pytest.mark.parametrize(
    "thresholds, expected",
    [
        (
            {"max_abs_eror": 1e-4},
            "only the keys 'max_abs_error', 'min_psnr'; unknown: 'max_abs_eror'",
        ),
        ({}, "None or a dict with one or both of 'max_abs_error', 'min_psnr'"),
        ({"min_psnr": "40"}, None),
    ],
    ids=["typo", "empty", "not a number"],
)
def test_bad_thresholds_fail_before_converting(tmp_path, thresholds, expected):
    with pytest.raises(ValueError) as info:
        export_tflite(
            _small_model(), tmp_path / "m.tflite", SHAPE, thresholds=thresholds
        )
    message = str(info.value)
    if expected is not None:
        assert message == (
            f"Invalid value for argument `thresholds`. Expected {expected}. "
            f"Received: thresholds={thresholds!r}"
        )
    else:
        assert message.startswith("Invalid value for argument `thresholds['min_psnr']`")
    assert os.listdir(tmp_path) == []


# === Defect 5: calibration data are checked before converting ===


@pytest.mark.parametrize(
    "data, received",
    [
        (
            np.full((4, 16, 16, 1), np.nan, "float32"),
            "with 1024 non-finite value(s) out of 1024",
        ),
        (np.zeros((4, 16, 16, 1), "uint8"), "of dtype uint8"),
        (np.linspace(0, 255, 4 * 256, dtype="float32").reshape(4, 16, 16, 1), None),
    ],
    ids=["nan", "uint8", "0..255"],
)
def test_bad_calibration_data_is_blamed_before_converting(tmp_path, data, received):
    with pytest.raises(ValueError) as info:
        export_tflite(
            _small_model(),
            tmp_path / "m.tflite",
            SHAPE,
            quantization="int8",
            representative_data=data,
        )
    message = str(info.value)
    assert message.startswith("Invalid value for argument `representative_data`.")
    if received is not None:
        assert message.endswith(f"Received: representative_data {received}")
    else:
        assert message == (
            "Invalid value for argument `representative_data`. Expected values in "
            "the model's declared input range `value_range` [0, 1] (scale the data, "
            "or declare the range the model was trained on). Received: "
            "representative_data with values in [0, 255]"
        )
    assert os.listdir(tmp_path) == []


def test_value_range_must_be_a_range(tmp_path):
    with pytest.raises(ValueError) as info:
        export_tflite(_small_model(), tmp_path / "m.tflite", SHAPE, value_range=(1, 0))
    assert str(info.value) == (
        "Invalid value for argument `value_range`. Expected a pair (low, high) with "
        "finite, low < high. Received: value_range=(1, 0)"
    )
    data = np.linspace(0, 255, 4 * 256, dtype="float32").reshape(4, 16, 16, 1)
    with pytest.raises(ValueError, match="Received: verify_data with values in"):
        export_tflite(_small_model(), tmp_path / "m.tflite", SHAPE, verify_data=data)
    assert os.listdir(tmp_path) == []


# === Defect 8: a U-Net built for any size, exported at a wrong one ===


def test_exporting_an_any_size_unet_at_a_wrong_size_names_the_valid_ones(tmp_path):
    from coordgate_keras.zoo import create_model

    model = create_model("unet_d2", base_filters=4)
    with pytest.raises(ValueError) as info:
        export_tflite(model, tmp_path / "m.tflite", (1, 31, 31, 1))
    assert (
        "Invalid input shape for `unet_d2_size_check`. Expected spatial sizes "
        "divisible by 4 (2**depth for depth=2); nearest valid sizes: 31 -> 28 or 32. "
        "Received: input_shape=(1, 31, 31, 1)"
    ) in str(info.value)
    assert os.listdir(tmp_path) == []


def _report(passed):
    return {
        "verification": {
            "passed": passed,
            "max_abs_error": 0.5,
            "psnr_db": 12.0,
            "thresholds": {"min_psnr_db": 30.0},
        }
    }


@pytest.mark.parametrize("passed", [True, False])
def test_write_if_verified_is_all_or_nothing(tmp_path, passed):
    # The step shared by the TFLite and ONNX exports, with a stand-in file.
    path, report_path = tmp_path / "m.bin", tmp_path / "m.json"
    seen = []

    def write(tmp):
        with open(tmp, "wb") as f:
            f.write(b"model")

    def verify(tmp):
        with open(tmp, "rb") as f:
            seen.append(f.read())
        return _report(passed)

    call = lambda: verification.write_if_verified(  # noqa: E731
        str(path), str(report_path), write, verify, "The test export of `m`"
    )
    if passed:
        assert call()["verification"]["passed"]
        assert path.read_bytes() == b"model" and report_path.exists()
    else:
        with pytest.raises(
            verification.VerificationError,
            match=r"The test export of `m` does not match the Keras model: max abs "
            r"error 0.5, PSNR 12.00 dB .* Nothing was written to .*m.bin",
        ):
            call()
        assert os.listdir(tmp_path) == []
    assert seen == [b"model"]  # verified the bytes written, before moving them
