"""Frame models tile by tile equal the whole frame, on Keras, LiteRT and ONNX."""

import json
import pathlib

import numpy as np
import pytest

from coordgate_keras.inference import deblur, receptive_field
from coordgate_keras.zoo import create_model

FRAME = (64, 96)
# (model, tile): tiles larger than the default overlap (2 * margin, aligned).
CASES = [("coordgate_unet_d1", 32), ("coordgate_unet_d2", 64), ("unet_d2", 64)]


def _frames(shape, seed=0):
    return np.random.default_rng(seed).random(shape).astype(np.float32)


def _pair(name, tile, seed=0):
    """A frame model with `tile` tiles and the one-input whole-frame model with
    the same weights (its coordinates span the frame: the reference)."""
    import keras

    keras.utils.set_random_seed(seed)
    kwargs = {"base_filters": 4, "residual": True}
    tiles = create_model(name, input_shape=(tile, tile, 1), frame_shape=FRAME, **kwargs)
    whole = create_model(name, input_shape=(*FRAME, 1), **kwargs)
    whole.set_weights(tiles.get_weights())
    return tiles, whole


@pytest.fixture(scope="module")
def models():
    return {name: _pair(name, tile) for name, tile in CASES}


@pytest.mark.parametrize("name, tile", CASES)
def test_keras_tiles_equal_the_whole_frame(models, name, tile):
    tiles, whole = models[name]
    frames = _frames((2, *FRAME, 1))
    expected = np.asarray(whole(frames))
    # 7 tiles per call: the last call is a partial batch.
    result = deblur(tiles, frames, batch_size=7)
    np.testing.assert_allclose(result, expected, atol=1e-5)


def test_frame_model_geometry_and_default_overlap(models):
    tiles, _ = models["coordgate_unet_d2"]
    assert receptive_field(tiles) == {"margin": 26, "alignment": 4}
    # An overlap below the receptive field is the caller's choice.
    assert deblur(tiles, _frames(FRAME, seed=1), overlap=16).shape == FRAME


def test_colour_frames_tile_channel_by_channel(models):
    tiles, whole = models["coordgate_unet_d1"]
    rgb = _frames((*FRAME, 3), seed=2)
    planes = np.moveaxis(rgb, -1, 0)[..., None]
    expected = np.moveaxis(np.asarray(whole(planes))[..., 0], 0, -1)
    np.testing.assert_allclose(deblur(tiles, rgb), expected, atol=1e-5)


def test_frame_models_refuse_other_frames_tiles_and_overlaps(models):
    tiles, _ = models["coordgate_unet_d2"]
    with pytest.raises(ValueError, match=r"frames of height and width \(64, 96\), "
                       r"the frame `coordgate_unet_d2` was made for"):  # fmt: skip
        deblur(tiles, _frames((64, 64)))
    with pytest.raises(ValueError, match=r"the tile size `coordgate_unet_d2` was "
                       r"built for, \(64, 64\)"):  # fmt: skip
        deblur(tiles, _frames(FRAME), tile=32)
    with pytest.raises(ValueError, match=r"multiples of the alignment 4 smaller"):
        deblur(tiles, _frames(FRAME), overlap=6)
    import keras

    image, other = keras.Input((8, 8, 1)), keras.Input((2,))
    two = keras.Model([image, other], keras.layers.Conv2D(1, 3, padding="same")(image))
    with pytest.raises(ValueError, match=r"a one-input model or a frame model"):
        deblur(two, _frames((8, 8)))
    small, _ = models["coordgate_unet_d1"]
    big_margin, _ = _pair("coordgate_unet_d2", 32)
    with pytest.raises(ValueError, match=r"tiles larger than the overlap that covers "
                       r"the receptive field.*\(52 pixels: margin 26"):  # fmt: skip
        deblur(big_margin, _frames(FRAME))
    assert small is not None


@pytest.fixture(scope="module")
def tile_exports(models, tmp_path_factory):
    """`coordgate_unet_d2`'s tile model as float32 .tflite and .onnx files."""
    from coordgate_keras.tflite import export_onnx, export_tflite, verification

    tiles, _ = models["coordgate_unet_d2"]
    folder = tmp_path_factory.mktemp("tiles")
    shape = (1, 64, 64, 1)
    export_tflite(tiles, folder / "t.tflite", shape)
    export_onnx(tiles, folder / "t.onnx", shape)
    reports = {
        "tflite": verification.sidecar_path(folder / "t.tflite"),
        "onnx": folder / "t.onnx.json",
    }
    return {"tflite": folder / "t.tflite", "onnx": folder / "t.onnx",
            "report": {k: pathlib.Path(v) for k, v in reports.items()}}  # fmt: skip


@pytest.mark.slow  # two exports: 40 s to 3 min on 2 shared cores
@pytest.mark.parametrize("kind", ["tflite", "onnx"])
def test_exported_tile_models_equal_the_whole_keras_frame(models, tile_exports, kind):
    _, whole = models["coordgate_unet_d2"]
    frames = _frames((1, *FRAME, 1), seed=3)
    expected = np.asarray(whole(frames))
    # The overlap comes from the margin the export's report records.
    report = json.loads((tile_exports["report"][kind]).read_text())
    assert report["tile"]["receptive_field_margin"] == 26
    result = deblur(str(tile_exports[kind]), frames, threads=2)
    np.testing.assert_allclose(result, expected, atol=1e-5)


def test_command_runs_a_saved_frame_model_tile_by_tile(models, tmp_path):
    from PIL import Image

    from coordgate_keras.cli import main

    tiles, whole = models["coordgate_unet_d1"]
    tiles.save(tmp_path / "frame.keras")
    raw = np.random.default_rng(5).integers(0, 65536, FRAME, dtype=np.uint16)
    (tmp_path / "in").mkdir()
    Image.fromarray(raw).save(tmp_path / "in" / "f.tif")
    code = main(
        ["deblur", str(tmp_path / "in"), "--out", str(tmp_path / "out"),
         "--keras-file", str(tmp_path / "frame.keras"), "--batch-size", "8"]
    )  # fmt: skip
    assert code == 0
    y = np.asarray(whole((raw / 65535.0)[None, :, :, None].astype(np.float32)))
    expected = np.clip(y[0, :, :, 0], 0, 1) * 65535
    with Image.open(tmp_path / "out" / "f.tif") as written:
        np.testing.assert_allclose(np.asarray(written), expected, atol=1.0)
