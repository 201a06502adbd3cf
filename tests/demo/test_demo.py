"""The demo pipeline and the `coordgate-keras` CLI, end to end at a small size."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from coordgate_keras.demo import DemoOptions, run_demo
from coordgate_keras.zoo import _weights

pytestmark = pytest.mark.skipif(
    not _weights.tags("coordgate_unet_d2") or not _weights.tags("unet_d2"),
    reason="the demo needs the packaged coordgate_unet_d2 and unet_d2 weights",
)


def _psnr(a, b):
    mse = np.mean((np.asarray(a, "float64") - np.asarray(b, "float64")) ** 2)
    return 10 * np.log10(1 / mse)


@pytest.mark.slow
def test_demo_pipeline_writes_a_consistent_report(tmp_path):
    out = tmp_path / "demo"
    report = run_demo(
        DemoOptions(out_dir=str(out), num_images=2, image_size=64, threads=1),
        verbose=False,
    )
    assert (out / "report.png").stat().st_size > 10_000
    saved = json.loads((out / "report.json").read_text())
    assert saved["scores"] == report["scores"]
    scores = {row["name"]: row for row in report["scores"]}
    # The pretrained models deblur: both beat the blurred input.
    for name in ("unet_d2", "coordgate_unet_d2"):
        assert scores[name]["psnr"] > scores["blurred input"]["psnr"] + 3
        assert scores[name]["num_params"] > 1_000_000
    edge = report["edge"]
    assert os.path.exists(edge["file"]) and edge["file"].endswith("_int8.tflite")
    assert edge["psnr_vs_keras"] >= 25 and edge["p50_ms"] > 0
    gain = np.array(report["psnr_gain_map_db"])
    assert gain.shape == (8, 8) and np.all(np.isfinite(gain))


def test_demo_blurred_score_matches_an_independent_psnr(tmp_path):
    """The table's blurred-input PSNR is the PSNR of the demo's own simulation."""
    from coordgate_keras import data, training

    entry = _weights.get_entry("coordgate_unet_d2", "zernike_256")
    cfg = training.TrainConfig.from_dict(entry.metadata["recipe"])
    report = run_demo(
        DemoOptions(
            out_dir=str(tmp_path), num_images=1, image_size=64, seed=7, export=False
        ),
        verbose=False,
    )
    sharp = data.microscopy_scenes(1, (64, 64), seed=7)
    blurred = data.blur_fast(sharp, training.psf_field(cfg))
    blurred = np.clip(training.noise_model(cfg)(np.clip(blurred, 0, 1), seed=7), 0, 1)
    expected = _psnr(blurred, sharp)
    assert report["scores"][0]["psnr"] == pytest.approx(expected, abs=1e-3)


def test_demo_with_your_images(tmp_path):
    """`--images DIR`: your images (64x64: the crop is the whole image) are
    blurred with the weights' field and noise, and scored."""
    from PIL import Image

    from coordgate_keras import data, training

    folder = tmp_path / "mine"
    folder.mkdir()
    pixels = np.random.default_rng(3).integers(0, 256, (64, 64), dtype=np.uint8)
    Image.fromarray(pixels).save(folder / "a.png")
    entry = _weights.get_entry("coordgate_unet_d2", "zernike_256")
    cfg = training.TrainConfig.from_dict(entry.metadata["recipe"])
    report = run_demo(
        DemoOptions(
            out_dir=str(tmp_path / "out"),
            images=str(folder),
            num_images=1,
            image_size=64,
            seed=7,
            export=False,
        ),
        verbose=False,
    )
    sharp = (pixels / 255.0).astype("float32")[None, :, :, None]
    blurred = data.blur_fast(sharp, training.psf_field(cfg))
    blurred = np.clip(training.noise_model(cfg)(np.clip(blurred, 0, 1), seed=7), 0, 1)
    assert report["scores"][0]["psnr"] == pytest.approx(_psnr(blurred, sharp), abs=1e-3)
    assert all(np.isfinite(row["psnr"]) for row in report["scores"])
    # Written whole (atomically): no temporaries beside them.
    assert sorted(os.listdir(tmp_path / "out")) == ["report.json", "report.png"]


def test_cli_weights_list_verify_and_errors_in_process(capsys):
    from coordgate_keras import cli

    assert cli.main(["weights", "list"]) == 0
    listed = capsys.readouterr().out
    for entry in _weights.entries():
        assert entry.model in listed and "packaged" in listed
    assert cli.main(["weights", "verify", "coordgate_unet_d1", "zernike_256"]) == 0
    assert capsys.readouterr().out.startswith("ok ")
    assert cli.main(["weights", "download", "unet_d5", "zernike_256"]) == 2
    bad = capsys.readouterr()
    assert "Invalid value for argument `weights`" in bad.err
    assert bad.out == ""


def _cli(*args):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    return subprocess.run(
        [sys.executable, "-m", "coordgate_keras.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )


# Three fresh TensorFlow processes (about 30 s of CPU): the in-process test
# above covers the commands; this one the console entry point and its quiet
# start-up.
@pytest.mark.slow
def test_cli_weights_list_verify_and_errors():
    listed = _cli("weights", "list")
    assert listed.returncode == 0, listed.stderr
    for entry in _weights.entries():
        assert entry.model in listed.stdout and "packaged" in listed.stdout
    verified = _cli("weights", "verify", "coordgate_unet_d1", "zernike_256")
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert verified.stdout.startswith("ok ")
    bad = _cli("weights", "download", "unet_d5", "zernike_256")
    assert bad.returncode == 2
    assert "Invalid value for argument `weights`" in bad.stderr
    assert bad.stdout == ""
    # No TensorFlow start-up lines on a successful command.
    assert "oneDNN" not in listed.stderr and "cuda" not in listed.stderr.lower()


def test_demo_options_are_checked_before_anything_runs(tmp_path, capsys):
    from coordgate_keras import cli

    out = tmp_path / "demo"
    assert cli.main(["demo", "--threads", "0", "--out", str(out)]) == 2
    assert capsys.readouterr().err.strip() == (
        "coordgate-keras: error: Invalid value for argument `threads`. Expected a "
        "positive integer. Received: threads=0"
    )
    assert not out.exists()
    with pytest.raises(ValueError, match="Received: num_images=0"):
        DemoOptions(num_images=0)
    with pytest.raises(ValueError, match="Received: finetune=-1"):
        DemoOptions(finetune=-1)
