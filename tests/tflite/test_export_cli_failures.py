"""`coordgate-export` failures that must end in one clear line."""

import os
import subprocess
import sys

import pytest

from coordgate_keras.tflite import cli


def test_out_naming_a_file_is_refused_before_exporting(tmp_path, capsys):
    target = tmp_path / "afile"
    target.write_text("mine")
    argv = ["--model", "unet_d1", "--input-shape", "1,16,16,1", "--out", str(target)]
    for extra in ([], ["--overwrite"], ["--format", "onnx", "--overwrite"]):
        assert cli.main(argv + extra) == 1
        err = capsys.readouterr().err
        assert err.strip() == (
            "coordgate-export: error: Invalid value for argument `--out`. Expected "
            f"a folder (created if missing). Received: --out={target}, an existing "
            "file"
        )
        assert "Pass --overwrite" not in err
    assert target.read_text() == "mine"


@pytest.mark.slow  # a subprocess that imports TensorFlow and exports
def test_module_runs_the_onnx_format(tmp_path):
    """`python -m coordgate_keras.tflite.cli --format onnx` reaches the ONNX
    export (the `__main__` block once ran before `_run_onnx` was defined)."""
    out = tmp_path / "out"
    proc = subprocess.run(
        [sys.executable, "-m", "coordgate_keras.tflite.cli", "--format", "onnx",
         "--model", "unet_d9", "--out", str(out)],
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"),
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert "NameError" not in proc.stderr
    assert "Unknown model name: 'unet_d9'" in proc.stderr
    assert not out.exists()
