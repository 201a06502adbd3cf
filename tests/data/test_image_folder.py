import numpy as np
import pytest
from PIL import Image

from coordgate_keras import data


def _find(crop, image):
    """All top-left positions where `crop` appears in `image` (brute force)."""
    ch, cw = crop.shape[:2]
    return [
        (i, j)
        for i in range(image.shape[0] - ch + 1)
        for j in range(image.shape[1] - cw + 1)
        if np.array_equal(image[i : i + ch, j : j + cw], crop)
    ]


@pytest.fixture
def folder(tmp_path):
    rng = np.random.default_rng(0)
    gray8 = rng.integers(0, 256, (20, 30), dtype=np.uint8)
    Image.fromarray(gray8).save(tmp_path / "a_gray8.png")
    gray16 = rng.integers(0, 65536, (24, 24), dtype=np.uint16)
    Image.fromarray(gray16).save(tmp_path / "b_gray16.png")
    rgb = rng.integers(0, 256, (18, 22, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(tmp_path / "c_rgb.PNG")
    floats = rng.random((16, 40)).astype(np.float32)
    Image.fromarray(floats).save(tmp_path / "d_float.tif")
    np.save(tmp_path / "e_stack.npy", rng.random((17, 19, 3)))
    (tmp_path / "notes.txt").write_text("not an image")
    return tmp_path, {"gray8": gray8, "gray16": gray16, "rgb": rgb, "float": floats}


def test_reads_and_normalises_every_format(folder):
    path, raw = folder
    images = data.ImageFolder(path, crop_shape=(16, 16))
    assert len(images) == 5 and images.num_channels == 1
    np.testing.assert_allclose(images.load(0)[..., 0], raw["gray8"] / 255.0, atol=1e-7)
    np.testing.assert_allclose(
        images.load(1)[..., 0], raw["gray16"] / 65535.0, atol=1e-7
    )
    luma = raw["rgb"] @ np.array([0.299, 0.587, 0.114]) / 255.0
    np.testing.assert_allclose(images.load(2)[..., 0], luma, atol=1e-6)
    np.testing.assert_allclose(images.load(3)[..., 0], raw["float"], atol=1e-7)
    rgb = data.ImageFolder(path, crop_shape=(16, 16), color_mode="rgb")
    np.testing.assert_allclose(rgb.load(2), raw["rgb"] / 255.0, atol=1e-7)
    gray_as_rgb = rgb.load(0)
    assert gray_as_rgb.shape == (20, 30, 3)
    np.testing.assert_array_equal(gray_as_rgb[..., 0], gray_as_rgb[..., 2])


def test_crops_are_seeded_windows_of_the_images(folder):
    path, _ = folder
    images = data.ImageFolder(path, crop_shape=(8, 12), color_mode="rgb")
    crops = images.crops(12, seed=3)
    assert crops.shape == (12, 8, 12, 3) and crops.dtype == np.float32
    np.testing.assert_array_equal(crops, images.crops(12, seed=3))
    assert not np.array_equal(crops, images.crops(12, seed=4))
    sources = [images.load(i) for i in range(len(images))]
    for crop in crops:
        assert any(_find(crop, source) for source in sources)


def test_minmax_normalisation(tmp_path):
    np.save(tmp_path / "x.npy", np.array([[-2.0, 0.0], [2.0, 6.0]]))
    with pytest.raises(ValueError, match=r"values in \[0, 1\].*\[-2, 6\]"):
        data.ImageFolder(tmp_path, crop_shape=(2, 2)).load(0)
    image = data.ImageFolder(tmp_path, crop_shape=(2, 2), normalization="minmax").load(
        0
    )
    np.testing.assert_allclose(image[..., 0], [[0.0, 0.25], [0.5, 1.0]])


def test_recursive(tmp_path):
    (tmp_path / "sub").mkdir()
    np.save(tmp_path / "sub" / "x.npy", np.zeros((4, 4)))
    with pytest.raises(ValueError, match="no such files"):
        data.ImageFolder(tmp_path, crop_shape=(4, 4))
    assert len(data.ImageFolder(tmp_path, crop_shape=(4, 4), recursive=True)) == 1


def test_folder_errors(tmp_path):
    with pytest.raises(ValueError, match=r"`directory`. Expected an existing folder"):
        data.ImageFolder(tmp_path / "missing")
    (tmp_path / "readme.md").write_text("empty folder of images")
    with pytest.raises(
        ValueError,
        match=r"`directory`. Expected a folder containing images.*no such files",
    ):
        data.ImageFolder(tmp_path)
    np.save(tmp_path / "nan.npy", np.array([[0.5, np.nan], [0.1, 0.2]]))
    with pytest.raises(ValueError, match=r"finite values.*nan.npy.*1 non-finite"):
        data.ImageFolder(tmp_path, crop_shape=(2, 2)).load(0)
    np.save(tmp_path / "nan.npy", np.zeros((8, 8)))
    with pytest.raises(
        ValueError, match=r"`crop_shape`. Expected a crop no larger.*\(8, 8\)"
    ):
        data.ImageFolder(tmp_path, crop_shape=(16, 4)).crop(0)
    with pytest.raises(ValueError, match=r"`color_mode`.*color_mode='cmyk'"):
        data.ImageFolder(tmp_path, color_mode="cmyk")
    with pytest.raises(ValueError, match=r"`normalization`.*normalization='z'"):
        data.ImageFolder(tmp_path, normalization="z")
    np.save(tmp_path / "nan.npy", np.zeros((8, 8, 2)))
    with pytest.raises(
        ValueError, match=r"\(height, width, 1\|3\|4\).*shape \(8, 8, 2\)"
    ):
        data.ImageFolder(tmp_path, crop_shape=(4, 4)).load(0)
    np.save(tmp_path / "nan.npy", np.zeros((8, 8), dtype=np.complex64))
    with pytest.raises(ValueError, match=r"integer or float images.*dtype complex64"):
        data.ImageFolder(tmp_path, crop_shape=(4, 4)).load(0)
    with pytest.raises(ValueError, match=r"`num_crops`.*num_crops=0"):
        data.ImageFolder(tmp_path, crop_shape=(4, 4)).crops(0)


def test_broken_files_are_named_when_the_folder_is_opened(tmp_path):
    image = np.random.default_rng(0).integers(0, 256, (40, 40), dtype=np.uint8)
    Image.fromarray(image).save(tmp_path / "a.png")
    content = (tmp_path / "a.png").read_bytes()
    cases = {
        "truncated.png": content[: len(content) // 2],
        "corrupt.png": content[:100]
        + bytes(b ^ 0xFF for b in content[100:110])
        + content[110:],
        "not_an_image.png": b"plain text",
        "truncated.npy": b"\x93NUMPY\x01\x00v\x00{'descr': '<f8', 'fortran_order': "
        b"False, 'shape': (40, 40), }" + b" " * 44 + b"\n" + b"\x00" * 80,
    }
    for name, payload in cases.items():
        folder = tmp_path / name.replace(".", "_")
        folder.mkdir()
        (folder / "good.png").write_bytes(content)
        (folder / name).write_bytes(payload)
        with pytest.raises(ValueError) as info:
            data.ImageFolder(folder, crop_shape=(32, 32))
        message = str(info.value)
        assert message.startswith(
            "Invalid value for argument `directory`. Expected readable image "
            f"files. Received: {str(folder / name)!r}, which could not be read "
            "(truncated or corrupt?): "
        ), message


def test_a_file_broken_after_opening_is_named_when_read(tmp_path):
    image = np.random.default_rng(0).integers(0, 256, (40, 40), dtype=np.uint8)
    Image.fromarray(image).save(tmp_path / "a.png")
    folder = data.ImageFolder(tmp_path, crop_shape=(32, 32), cache=False)
    content = (tmp_path / "a.png").read_bytes()
    (tmp_path / "a.png").write_bytes(content[: len(content) // 2])
    with pytest.raises(ValueError, match=r"Received: '.*a\.png', which could not"):
        folder.load(0)
