"""`coordgate-export`: argument parsing around `export_bundle`."""

import json
import os
import subprocess
import sys

import keras
import numpy as np
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
    assert capsys.readouterr().err == (
        f"coordgate-export: error: {out / 'tiny_16x16_saved_model'} already exists. "
        "Pass --overwrite to replace it.\n"
    )


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
    # Full-integer is refused by verification, so nothing is written at all.
    assert result.returncode == 1, result.stderr
    assert "| multiwienernet_32x32_float32.tflite | none |" in result.stdout
    assert "refused 'int8'" in result.stdout
    assert result.stderr == (
        f"coordgate-export: error: 'int8' refused, so nothing was written to {out} "
        "(the files appear together or not at all). Rerun with --quantization "
        "float32, or pass --partial to write the modes that passed.\n"
    )
    assert not out.exists()
    # --partial writes the modes that passed.
    result = subprocess.run(
        [script, "--model", "multiwienernet", "--input-shape", "1,32,32,1"]
        + ["--quantization", "float32,int8", "--partial", "--out", str(out)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1, result.stderr
    assert "refused 'int8'" in result.stdout
    assert sorted(os.listdir(out)) == [
        "multiwienernet_32x32_float32.json",
        "multiwienernet_32x32_float32.tflite",
        "multiwienernet_32x32_saved_model",
    ]


# === Errors name the flag, go to stderr, exit 1 ===


def _error(capsys):
    captured = capsys.readouterr()
    assert captured.err.startswith("coordgate-export: error: ")
    assert captured.err.count("\n") == 1, captured.err
    return captured.err[len("coordgate-export: error: ") : -1]


def test_cli_keras_file_errors(tmp_path, capsys):
    with open(_keras_file(tmp_path), "rb") as f:
        content = f.read()
    truncated = tmp_path / "truncated.keras"
    truncated.write_bytes(content[: len(content) // 2])
    garbage = tmp_path / "garbage.keras"
    garbage.write_bytes(b"hello")
    weights = tmp_path / "m.weights.h5"
    keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)]).save_weights(weights)
    folder = tmp_path / "folder.keras"
    folder.mkdir()
    out = str(tmp_path / "out")
    for path in (truncated, garbage):
        assert cli.main(["--keras-file", str(path), "--out", out]) == 1
        assert _error(capsys) == (
            "Invalid value for argument `--keras-file`. Expected a .keras file saved "
            "with `model.save('name.keras')` (a zip archive). Received: "
            f"--keras-file={path}, which exists but is not a zip archive (truncated "
            "or corrupt)"
        )
    assert cli.main(["--keras-file", str(weights), "--out", out]) == 1
    assert "an HDF5 file (`.weights.h5` files hold weights only" in _error(capsys)
    assert cli.main(["--keras-file", str(folder), "--out", out]) == 1
    assert f"--keras-file={folder}, a folder" in _error(capsys)
    assert cli.main(["--keras-file", str(tmp_path / "none.keras"), "--out", out]) == 1
    assert _error(capsys) == (
        f"argument --keras-file: No such .keras file: {tmp_path / 'none.keras'}"
    )
    assert not os.path.exists(out)


def test_cli_unregistered_custom_layer(tmp_path, capsys):
    @keras.saving.register_keras_serializable(package="test_cli")
    class Twice(keras.layers.Layer):
        def call(self, x):
            return 2 * x

    path = tmp_path / "custom.keras"
    keras.Sequential([keras.Input((8, 8, 1)), Twice()]).save(path)
    del keras.saving.get_custom_objects()["test_cli>Twice"]
    assert cli.main(["--keras-file", str(path), "--out", str(tmp_path / "o")]) == 1
    message = _error(capsys)
    assert message.startswith(
        "Invalid value for argument `--keras-file`. Expected a model whose layers "
        "are all registered with Keras: import the module that defines `Twice`"
    ), message


def test_cli_calibration_data_errors(tmp_path, capsys):
    argv = ["--keras-file", _keras_file(tmp_path), "--input-shape", "1,16,16,1"]
    argv += ["--quantization", "int8", "--out", str(tmp_path / "out")]
    missing = tmp_path / "missing.npy"
    assert cli.main(argv + ["--calibration-data", str(missing)]) == 1
    assert _error(capsys) == (
        "Invalid value for argument `--calibration-data`. Expected an existing .npy "
        f"file. Received: --calibration-data={missing} (no such file)"
    )
    text = tmp_path / "data.npy"
    text.write_text("0.1 0.2 0.3")
    assert cli.main(argv + ["--calibration-data", str(text)]) == 1
    assert _error(capsys).startswith(
        "Invalid value for argument `--calibration-data`. Expected a NumPy .npy file "
        f"written by np.save. Received: --calibration-data={text}, which could not be "
        "read as one ("
    )
    images = tmp_path / "images.npy"
    np.save(images, np.zeros((4, 16, 16, 1), "uint8"))
    assert cli.main(argv + ["--calibration-data", str(images)]) == 1
    assert _error(capsys) == (
        "Invalid value for argument `--calibration-data`. Expected a floating-point "
        "array (scale integer images first, e.g. x / 255 for 8-bit). Received: "
        "--calibration-data of dtype uint8"
    )
    assert not os.path.exists(tmp_path / "out")


def test_cli_input_shape_needs_the_batch_axis(tmp_path, capsys):
    argv = ["--model", "unet_d1", "--input-shape", "32,32,1", "--out", str(tmp_path)]
    assert cli.main(argv) == 1
    assert _error(capsys) == (
        "Invalid value for argument `--input-shape`. Expected 4 sizes with the batch "
        "axis first for `unet_d1`, such as (1,256,256,1). Received: "
        "--input-shape=32,32,1"
    )


def test_cli_model_default_input_shape_is_the_reference_shape(tmp_path, capsys):
    out = tmp_path / "out"
    argv = ["--model", "cnn1d", "--quantization", "float32", "--out", str(out)]
    assert cli.main(argv) == 0
    assert sorted(os.listdir(out)) == [
        "cnn1d_256_float32.json",
        "cnn1d_256_float32.tflite",
        "cnn1d_256_saved_model",
    ]
    assert capsys.readouterr().err == ""


def test_cli_prints_only_its_error(tmp_path, capsys):
    argv = ["--model", "unet_d2", "--input-shape", "1,30,30,1"]
    assert cli.main(argv + ["--out", str(tmp_path / "out")]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == (
        "coordgate-export: error: Invalid value for argument `--input-shape`. "
        "Expected height and width divisible by 2**depth = 4 (depth=2), or None; "
        "nearest valid sizes: 30 -> 28 or 32. Received: --input-shape=1,30,30,1\n"
    )


# A fresh TensorFlow process (about 10 s of CPU): the console script prints no
# start-up logs either; the in-process test above checks the message.
@pytest.mark.slow
def test_console_script_prints_only_its_error(tmp_path):
    script = os.path.join(os.path.dirname(sys.executable), "coordgate-export")
    result = subprocess.run(
        [script, "--model", "unet_d2", "--input-shape", "1,30,30,1"]
        + ["--out", str(tmp_path / "out")],
        capture_output=True,
        text=True,
        check=False,
        env={k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"},
    )
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr == (
        "coordgate-export: error: Invalid value for argument `--input-shape`. "
        "Expected height and width divisible by 2**depth = 4 (depth=2), or None; "
        "nearest valid sizes: 30 -> 28 or 32. Received: --input-shape=1,30,30,1\n"
    )
