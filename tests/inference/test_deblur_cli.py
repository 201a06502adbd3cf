"""`coordgate-keras deblur`, in process."""

import os

import keras
import numpy as np
import pytest
from PIL import Image

from coordgate_keras.cli import main
from coordgate_keras.zoo import create_model

RNG = np.random.default_rng(0)


@pytest.fixture(scope="module")
def packaged_run(tmp_path_factory):
    """PNG, 16-bit TIFF and NPY frames through the packaged weights, once."""
    root = tmp_path_factory.mktemp("cli")
    raw = {
        "a.png": RNG.integers(0, 256, (256, 256), dtype=np.uint8),
        "b.tif": RNG.integers(0, 65536, (256, 256), dtype=np.uint16),
        "c.npy": RNG.random((256, 256)).astype(np.float32),
    }
    folder = root / "in"
    folder.mkdir()
    for name, array in raw.items():
        if name.endswith(".npy"):
            np.save(folder / name, array)
        else:
            Image.fromarray(array).save(folder / name)
    code = main(
        [
            "deblur",
            str(folder),
            "--out",
            str(root / "out"),
            "--model",
            "coordgate_unet_d2",
            "--weights",
            "zernike_256",
        ]
    )
    return code, raw, root / "out"


@pytest.mark.slow
def test_packaged_weights_restore_png_tiff16_and_npy(packaged_run, capsys):
    code, raw, out = packaged_run
    assert code == 0
    assert sorted(os.listdir(out)) == ["a.png", "b.tif", "c.npy"]
    model = create_model(
        "coordgate_unet_d2", weights="zernike_256", input_shape=(256, 256, 1)
    )
    tops = [np.iinfo(a.dtype).max if a.dtype.kind == "u" else 1.0 for a in raw.values()]
    x = np.stack([a / top for a, top in zip(raw.values(), tops)])[..., None]
    ys = model.predict_on_batch(x.astype(np.float32))[..., 0]
    for (name, array), top, y in zip(raw.items(), tops, ys):
        expected = np.clip(y, 0, 1) * top
        if name.endswith(".npy"):
            written = np.load(out / name)
        else:
            with Image.open(out / name) as image:
                written = np.asarray(image)
        assert written.dtype == array.dtype and written.shape == array.shape
        # Integers: rounded to the nearest level (one level of float slack).
        tolerance = 1.0 if array.dtype.kind == "u" else 1e-5
        np.testing.assert_allclose(written, expected, atol=tolerance)


def test_help_shows_a_complete_example(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["deblur", "--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    assert "coordgate-keras deblur raw/ --out sharp/ --model coordgate_unet_d2" in text


@pytest.fixture(scope="module")
def small_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("model") / "small.keras"
    create_model("unet_d1", input_shape=(32, 48, 1), base_filters=4).save(path)
    return str(path)


def _write_inputs(folder):
    folder.mkdir()
    Image.fromarray(RNG.integers(0, 256, (32, 48), dtype=np.uint8)).save(
        folder / "good1.png"
    )
    np.save(folder / "good2.npy", RNG.random((32, 48)))
    Image.fromarray(RNG.integers(0, 65536, (32, 48), dtype=np.uint16)).save(
        folder / "good3.tif"
    )
    np.save(folder / "wrong_size.npy", RNG.random((32, 32)))
    Image.fromarray(RNG.integers(0, 65536, (32, 48), dtype=np.uint16)).save(
        folder / "truncated.tif"
    )
    with open(folder / "truncated.tif", "r+b") as f:
        f.truncate(os.path.getsize(folder / "truncated.tif") // 2)


def test_bad_files_are_reported_and_skipped(tmp_path, small_file, capsys):
    _write_inputs(tmp_path / "in")
    out = tmp_path / "out"
    args = ["deblur", str(tmp_path / "in"), "--out", str(out)]
    code = main([*args, "--keras-file", small_file])
    captured = capsys.readouterr()
    assert code == 1
    assert sorted(os.listdir(out)) == ["good1.png", "good2.npy", "good3.tif"]
    model = keras.saving.load_model(small_file)
    for name, top in (("good1.png", 255), ("good2.npy", 1.0), ("good3.tif", 65535)):
        if name.endswith(".npy"):
            x, written = np.load(tmp_path / "in" / name), np.load(out / name)
        else:
            with Image.open(tmp_path / "in" / name) as a, Image.open(out / name) as b:
                x, written = np.asarray(a), np.asarray(b)
        y = model.predict_on_batch((x / top)[None, :, :, None].astype(np.float32))
        expected = np.clip(y[0, :, :, 0], 0, 1) * top
        assert written.dtype == x.dtype
        np.testing.assert_allclose(written, expected, atol=1.0 if top > 1 else 1e-5)
    assert "ok " in captured.out and "good1.png" in captured.out
    assert "failed " in captured.err
    assert "truncated.tif', which could not be read" in captured.err
    assert "wrong_size.npy" in captured.err
    assert "Expected frames of height and width (32, 48)" in captured.err
    assert "2 of 5 file(s) failed" in captured.err

    # Existing outputs are kept without --overwrite, replaced with it.
    before = (out / "good2.npy").stat().st_mtime_ns
    assert main([*args, "--keras-file", small_file]) == 1
    assert "already exists" in capsys.readouterr().err
    assert (out / "good2.npy").stat().st_mtime_ns == before
    good = [str(tmp_path / "in" / "good1.png"), str(tmp_path / "in" / "good2.npy")]
    code = main(["deblur", *good, "--out", str(out), "--keras-file", small_file,
                 "--overwrite"])  # fmt: skip
    assert code == 0


def test_output_folder_that_is_a_file_is_an_error(tmp_path, small_file, capsys):
    _write_inputs(tmp_path / "in")
    (tmp_path / "out").write_text("a file")
    code = main(
        ["deblur", str(tmp_path / "in"), "--out", str(tmp_path / "out"),
         "--keras-file", small_file]
    )  # fmt: skip
    assert code == 2
    assert "Invalid value for argument `out_dir`. Expected a folder" in (
        capsys.readouterr().err
    )


def test_weights_with_a_file_are_an_error(tmp_path, small_file, capsys):
    _write_inputs(tmp_path / "in")
    code = main(
        ["deblur", str(tmp_path / "in"), "--out", str(tmp_path / "out"),
         "--keras-file", small_file, "--weights", "zernike_256"]
    )  # fmt: skip
    assert code == 2
    assert "Expected None for a model file" in capsys.readouterr().err


def test_ctrl_c_mid_folder_leaves_nothing_half_written(
    tmp_path, small_file, capsys, monkeypatch
):
    _write_inputs(tmp_path / "in")
    out = tmp_path / "out"
    real_save = Image.Image.save

    def interrupted_save(self, fp, *args, **kwargs):
        # Half a file on disk, then Ctrl-C.
        with open(fp, "wb") as f:
            f.write(b"\x89PNG half")
        raise KeyboardInterrupt

    monkeypatch.setattr(Image.Image, "save", interrupted_save)
    code = main(
        ["deblur", str(tmp_path / "in"), "--out", str(out), "--keras-file",
         small_file]
    )  # fmt: skip
    monkeypatch.setattr(Image.Image, "save", real_save)
    assert code == 130
    assert "interrupted" in capsys.readouterr().err
    # good1.png was being written (first in order): neither it nor its
    # temporary remains, and the files after it were not started.
    assert os.listdir(out) == []


def test_progress_on_a_terminal_and_duplicate_names(
    tmp_path, small_file, capsys, monkeypatch
):
    _write_inputs(tmp_path / "in")
    (tmp_path / "other").mkdir()
    np.save(tmp_path / "other" / "good2.npy", RNG.random((32, 48)))
    monkeypatch.setattr("sys.stderr.isatty", lambda: True)
    inputs = [str(tmp_path / "in" / "good2.npy"), str(tmp_path / "other")]
    code = main(
        ["deblur", *inputs, "--out", str(tmp_path / "out"), "--keras-file",
         small_file]
    )  # fmt: skip
    captured = capsys.readouterr()
    assert code == 1
    assert "\r  tiles 1/1" in captured.err
    assert "whose name is also that of" in captured.err
    assert os.listdir(tmp_path / "out") == ["good2.npy"]
