import os

import numpy as np
import pytest
from PIL import Image

from coordgate_keras import data

RNG = np.random.default_rng(0)
GRAY8 = RNG.integers(0, 256, (12, 20), dtype=np.uint8)
GRAY16 = RNG.integers(0, 65536, (12, 20), dtype=np.uint16)
RGB8 = RNG.integers(0, 256, (12, 20, 3), dtype=np.uint8)
FLOAT32 = RNG.random((12, 20)).astype(np.float32)


def _pil(path, array):
    Image.fromarray(array).save(path)
    return path


@pytest.mark.parametrize(
    "name, raw",
    [
        ("a.png", GRAY8),
        ("a.png", GRAY16),
        ("a.png", RGB8),
        ("a.tif", GRAY8),
        ("a.TIFF", GRAY16),
        ("a.tif", RGB8),
        ("a.tif", FLOAT32),
    ],
    ids=["png8", "png16", "png_rgb", "tif8", "tif16", "tif_rgb", "tif_float"],
)
def test_pillow_formats_read_scaled_and_write_back_bit_exact(tmp_path, name, raw):
    path = _pil(tmp_path / name, raw)
    image, dtype = data.read_image(path)
    assert dtype == raw.dtype and image.dtype == np.float32
    top = np.iinfo(raw.dtype).max if raw.dtype.kind == "u" else 1.0
    np.testing.assert_allclose(image, raw / top, rtol=1e-6, atol=1e-7)
    out = data.write_image(tmp_path / ("out_" + name), image, dtype)
    with Image.open(out) as back:
        np.testing.assert_array_equal(np.asarray(back), raw)


def test_npy_keeps_dtype_and_shape(tmp_path):
    for raw in (
        GRAY16[..., None],
        RNG.random((5, 6, 3)),
        np.array([[0, 1]], np.int16) * 32767,
    ):
        path = tmp_path / "x.npy"
        np.save(path, raw)
        image, dtype = data.read_image(path)
        out = data.write_image(tmp_path / "y.npy", image, dtype, overwrite=True)
        back = np.load(out)
        assert back.dtype == raw.dtype and back.shape == raw.shape
        np.testing.assert_allclose(back, raw, rtol=1e-6)


def test_results_are_clipped_and_rounded_back(tmp_path):
    result = np.array([[-0.2, 0.5, 1.3, 0.25 / 255]])
    out = data.write_image(tmp_path / "o.png", result, np.uint8)
    with Image.open(out) as back:
        np.testing.assert_array_equal(np.asarray(back), [[0, 128, 255, 0]])
    out = data.write_image(tmp_path / "o.npy", result, np.float32)
    np.testing.assert_array_equal(np.load(out), np.float32([[0, 0.5, 1, 0.25 / 255]]))


def test_truncated_file_is_named_with_the_reason(tmp_path):
    path = _pil(tmp_path / "t.png", GRAY16)
    with open(path, "r+b") as f:
        f.truncate(os.path.getsize(path) // 2)
    with pytest.raises(ValueError, match=r"'.*t\.png', which could not be read"):
        data.read_image(path)


def test_float_image_outside_unit_range_is_refused(tmp_path):
    np.save(tmp_path / "f.npy", np.float32([[0.5, 2.0]]))
    with pytest.raises(ValueError, match=r"float images with values in \[0, 1\]"):
        data.read_image(tmp_path / "f.npy")


def test_bad_shapes_and_extensions_are_refused(tmp_path):
    np.save(tmp_path / "v.npy", np.zeros(5, np.float32))
    with pytest.raises(ValueError, match=r"'.*v\.npy' with shape \(5,\)"):
        data.read_image(tmp_path / "v.npy")
    with pytest.raises(ValueError, match=r"Expected a file name ending in one of"):
        data.read_image(tmp_path / "a.jpg")


def test_write_refuses_what_the_format_cannot_hold(tmp_path):
    with pytest.raises(ValueError, match=r"dtype=uint16 with 3 channel\(s\)"):
        data.write_image(tmp_path / "c.png", np.zeros((4, 4, 3)), np.uint16)
    with pytest.raises(ValueError, match=r"dtype=float32 with 1 channel"):
        data.write_image(tmp_path / "f.png", np.zeros((4, 4)), np.float32)
    assert os.listdir(tmp_path) == []


def test_write_never_replaces_without_overwrite(tmp_path):
    path = _pil(tmp_path / "a.png", GRAY8)
    with pytest.raises(FileExistsError, match="already exists"):
        data.write_image(path, np.zeros((12, 20)), np.uint8)
    with Image.open(path) as kept:
        np.testing.assert_array_equal(np.asarray(kept), GRAY8)
    data.write_image(path, np.zeros((12, 20)), np.uint8, overwrite=True)
    with Image.open(path) as replaced:
        assert np.asarray(replaced).max() == 0


def test_image_files_expands_folders_sorted(tmp_path):
    for name in ("b.png", "a.NPY", "c.txt"):
        (tmp_path / name).write_bytes(b"")
    (tmp_path / "sub").mkdir()
    files = data.image_files([tmp_path, "x.tif"])
    assert [os.path.basename(f) for f in files] == ["a.NPY", "b.png", "x.tif"]
