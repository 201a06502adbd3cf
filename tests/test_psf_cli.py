"""`coordgate-keras psf estimate` / `psf show`, in process."""

import os

import numpy as np
import pytest
from PIL import Image

from coordgate_keras import cli, data, training
from coordgate_keras.data import BeadReport, PSFField

SHAPE = (64, 64)
POSITIONS = [(r, c) for r in (12.2, 32.0, 51.7) for c in (12.6, 31.8, 51.4)]


def _frame(seed, sigma=1.5, peak=1500.0, background=20.0):
    """Gaussian beads (NumPy) + Poisson noise as a uint16 camera frame."""
    rows, cols = np.mgrid[: SHAPE[0], : SHAPE[1]]
    expected = np.full(SHAPE, background)
    for row, col in POSITIONS:
        expected += peak * np.exp(
            -0.5 * ((rows - row) ** 2 + (cols - col) ** 2) / sigma**2
        )
    return np.random.default_rng(seed).poisson(expected).astype(np.uint16)


@pytest.fixture
def bead_files(tmp_path):
    tif = tmp_path / "beads_1.tif"
    Image.fromarray(_frame(0)).save(tif)
    npy = tmp_path / "beads_2.npy"
    np.save(npy, _frame(1))
    return [str(tif), str(npy)]


def _is_png(path):
    with Image.open(path) as image:
        return image.format == "PNG" and min(image.size) > 100


def test_estimate_writes_a_field_the_trainer_loads(bead_files, tmp_path, capsys):
    out, plot = tmp_path / "field.npz", tmp_path / "field.png"
    args = ["psf", "estimate", *bead_files, "--grid", "2x2", "--kernel-size", "9"]
    assert cli.main(args + ["--out", str(out), "--plot", str(plot)]) == 0
    printed = capsys.readouterr().out
    assert "beads found 18, used 18" in printed
    assert f"wrote {out}" in printed
    field = PSFField.load(out)
    assert field.grid_shape == (2, 2) and field.image_shape == SHAPE
    truth = data.gaussian_psf(9, sigma=1.5)
    errors = np.linalg.norm(field.psfs - truth, axis=(2, 3)) / np.linalg.norm(truth)
    assert errors.max() < 0.05
    assert _is_png(plot)
    # Written atomically: nothing but the two results in the folder.
    assert sorted(os.listdir(tmp_path)) == sorted(
        ["beads_1.tif", "beads_2.npy", "field.npz", "field.png"]
    )
    cfg = training.TrainConfig(psf={"kind": "file", "path": str(out)})
    np.testing.assert_array_equal(training.psf_field(cfg).psfs, field.psfs)


def test_show_draws_the_field_and_its_beads(bead_files, tmp_path, capsys):
    out = tmp_path / "field.npz"
    args = ["psf", "estimate", *bead_files, "--grid", "2", "--kernel-size", "9"]
    assert cli.main(args + ["--out", str(out)]) == 0
    capsys.readouterr()
    png = tmp_path / "show.png"
    assert cli.main(["psf", "show", str(out), "--out", str(png)]) == 0
    printed = capsys.readouterr().out
    assert "PSFField(grid_shape=(2, 2)" in printed and "beads found 18" in printed
    assert _is_png(png)
    with np.load(out) as archive:
        report = BeadReport.from_json(str(archive["bead_report"]))
    assert report.beads_used.sum() == 18


def test_show_a_field_without_beads(tmp_path, capsys):
    path = tmp_path / "gauss.npz"
    data.gaussian_psf_field(grid_shape=(3, 3), kernel_size=11).save(path)
    png = tmp_path / "gauss.png"
    assert cli.main(["psf", "show", str(path), "--out", str(png)]) == 0
    assert "beads found" not in capsys.readouterr().out
    assert _is_png(png)


def test_dark_frame_and_options_reach_the_estimator(bead_files, tmp_path, capsys):
    dark = tmp_path / "dark.npy"
    np.save(dark, np.full(SHAPE, 20.0))
    out = tmp_path / "field.npz"
    args = ["psf", "estimate", *bead_files, "--grid", "2x2", "--kernel-size", "9"]
    args += ["--dark", str(dark), "--saturation", "1000", "--out", str(out)]
    assert cli.main(args) == 2
    assert "saturation=1000: all 18 beads" in capsys.readouterr().err
    assert not out.exists()


def test_errors_name_the_argument(tmp_path, capsys):
    noise = tmp_path / "noise.npy"
    np.save(noise, np.random.default_rng(0).poisson(20, SHAPE).astype(np.uint16))
    stack = tmp_path / "stack.npy"
    np.save(stack, np.zeros((2,) + SHAPE, np.uint16))
    rgb = tmp_path / "rgb.png"
    Image.fromarray(np.zeros(SHAPE + (3,), np.uint8)).save(rgb)
    out = tmp_path / "field.npz"
    cases = {
        str(noise): "`threshold`. Expected a detection threshold",
        str(stack): "a 3D array is not supported",
        str(rgb): "single-channel (grayscale) images",
        str(tmp_path / "beads.txt"): "No such file",
    }
    for path, message in cases.items():
        args = ["psf", "estimate", path, "--grid", "2x2", "--kernel-size", "9"]
        assert cli.main(args + ["--out", str(out)]) == 2
        assert message in capsys.readouterr().err
    assert not out.exists()


def test_show_refuses_an_unreadable_report(tmp_path, capsys):
    path = tmp_path / "field.npz"
    field = data.gaussian_psf_field(grid_shape=(2, 2), kernel_size=5)
    field.save(path, extras={"bead_report": '{"grid_shape": [2, 2]}'})
    assert cli.main(["psf", "show", str(path), "--out", str(tmp_path / "f.png")]) == 2
    error = capsys.readouterr().err
    assert (
        "Invalid value for argument `field`. Expected a `bead_report` written by"
        in error
    )
    assert "whose report could not be read (KeyError" in error
    assert not (tmp_path / "f.png").exists()


def test_a_bad_grid_is_an_argparse_error(capsys):
    with pytest.raises(SystemExit) as raised:
        cli.main(["psf", "estimate", "b.npy", "--grid", "8x", "--kernel-size", "9"])
    assert raised.value.code == 2
    err = capsys.readouterr().err
    assert (
        "argument --grid: expected N or HxW in pixels (integers >= 1), e.g. 8x8; "
        in err
    )
    assert "received '8x'" in err
