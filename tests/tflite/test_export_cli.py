"""`coordgate-export`: argument parsing around `export_bundle`."""

import json
import os
import subprocess
import sys

import keras
import pytest

from coordgate_keras.layers import CoordGate
from coordgate_keras.tflite import cli


def _keras_file(tmp_path):
    inputs = keras.Input((None, None, 1))
    x = keras.layers.Conv2D(4, 3, padding="same", activation="relu")(inputs)
    x = CoordGate()(x)
    x = keras.layers.Conv2D(1, 1)(x)
    path = tmp_path / "tiny.keras"
    keras.Model(inputs, x, name="tiny").save(path)
    return str(path)


def test_cli_keras_file(tmp_path, capsys):
    out = tmp_path / "out"
    argv = [
        "--keras-file",
        _keras_file(tmp_path),
        "--input-shape",
        "1,16,16,1",
        "--quantization",
        "float32,int8",
        "--out",
        str(out),
    ]
    assert cli.main(argv) == 0
    assert sorted(os.listdir(out)) == [
        "tiny_16x16_float32.json",
        "tiny_16x16_float32.tflite",
        "tiny_16x16_int8.json",
        "tiny_16x16_int8.tflite",
        "tiny_16x16_saved_model",
    ]
    printed = capsys.readouterr().out
    assert "| tiny_16x16_float32.tflite | none |" in printed
    assert "| tiny_16x16_int8.tflite | int8 |" in printed
    sidecar = json.loads((out / "tiny_16x16_int8.json").read_text())
    assert sidecar["weights_tag"] == "keras_file:tiny.keras"
    assert sidecar["verification"]["passed"]

    # A second run does not overwrite.
    assert cli.main(argv) == 1
    assert "already exists. Pass `overwrite=True`" in capsys.readouterr().err


def test_cli_calibration_data(tmp_path, capsys):
    import numpy as np

    from coordgate_keras.tflite import simulated_inputs

    data = tmp_path / "calibration.npy"
    np.save(data, simulated_inputs((1, 16, 16, 1), 6, seed=5))
    out = tmp_path / "out"
    argv = ["--keras-file", _keras_file(tmp_path), "--input-shape", "1,16,16,1"]
    argv += ["--quantization", "int8", "--calibration-data", str(data)]
    assert cli.main(argv + ["--out", str(out)]) == 0
    assert "| tiny_16x16_int8.tflite | int8 |" in capsys.readouterr().out


def test_cli_registry_model(tmp_path, capsys):
    out = tmp_path / "out"
    argv = ["--model", "unet_d1", "--input-shape", "1,16,16,1", "--out", str(out)]
    assert cli.main(argv + ["--quantization", "float16"]) == 0
    sidecar = json.loads((out / "unet_d1_16x16_float16.json").read_text())
    assert sidecar["model_name"] == "unet_d1" and sidecar["weights_tag"] is None
    assert sidecar["quantization"] == "float16"
    assert "| unet_d1_16x16_float16.tflite | float16 |" in capsys.readouterr().out


def test_cli_errors(tmp_path, capsys):
    out = str(tmp_path / "out")
    with pytest.raises(SystemExit):
        cli.main(["--model", "unet_d1", "--quantization", "int4", "--out", out])
    assert "unknown quantization 'int4'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.main(["--model", "unet_d1", "--keras-file", "m.keras", "--out", out])
    assert "not allowed with argument" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.main(["--keras-file", "m.keras", "--weights", "w", "--out", out])
    assert "--weights applies to --model" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.main(["--model", "unet_d1", "--input-shape", "1,a", "--out", out])
    assert "expected comma-separated integers" in capsys.readouterr().err

    argv = ["--model", "unet_d1", "--input-shape", "1,16,16,1", "--out", out]
    assert cli.main(argv + ["--weights", "nope"]) == 1
    assert "Invalid value for argument `weights`" in capsys.readouterr().err
    assert cli.main(["--model", "unet_d9", "--out", out]) == 1
    assert "Unknown model name: 'unet_d9'" in capsys.readouterr().err
    assert not os.path.exists(out)


@pytest.mark.slow
def test_console_script_multiwienernet(tmp_path):
    script = os.path.join(os.path.dirname(sys.executable), "coordgate-export")
    out = tmp_path / "out"
    result = subprocess.run(
        [
            script,
            "--model",
            "multiwienernet",
            "--input-shape",
            "1,32,32,1",
            "--quantization",
            "float32,int8",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    # float32 is written; full-integer is refused by verification.
    assert result.returncode == 1, result.stderr
    assert "| multiwienernet_32x32_float32.tflite | none |" in result.stdout
    assert "refused 'int8'" in result.stdout
    assert sorted(os.listdir(out)) == [
        "multiwienernet_32x32_float32.json",
        "multiwienernet_32x32_float32.tflite",
        "multiwienernet_32x32_saved_model",
    ]
