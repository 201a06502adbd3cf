"""`deblur` on one-input models (every runtime), tile grids, receptive fields."""

import numpy as np
import pytest

from coordgate_keras.inference import deblur, receptive_field, tile_grid
from coordgate_keras.zoo import create_model

FRAME = (32, 48)


def _frames(shape, seed=0):
    return np.random.default_rng(seed).random(shape).astype(np.float32)


@pytest.fixture(scope="module")
def small_model():
    return create_model(
        "coordgate_unet_d1", input_shape=(*FRAME, 1), base_filters=4, residual=True
    )


@pytest.fixture(scope="module")
def exports(small_model, tmp_path_factory):
    """The small model as float32 .tflite and .onnx files (one input)."""
    from coordgate_keras.tflite import export_onnx, export_tflite

    folder = tmp_path_factory.mktemp("exports")
    export_tflite(small_model, folder / "m.tflite", (1, *FRAME, 1))
    export_onnx(small_model, folder / "m.onnx", (1, *FRAME, 1))
    return {"tflite": folder / "m.tflite", "onnx": folder / "m.onnx"}


def _keras_reference(model, batch):
    return np.asarray(model(batch[..., None] if batch.ndim == 3 else batch))


def test_one_input_keras_runs_whole_frames_in_every_layout(small_model):
    frames = _frames((3, *FRAME, 1))
    expected = _keras_reference(small_model, frames)
    np.testing.assert_allclose(deblur(small_model, frames), expected, atol=1e-6)
    np.testing.assert_allclose(
        deblur(small_model, frames[0, :, :, 0]), expected[0, :, :, 0], atol=1e-6
    )
    np.testing.assert_allclose(
        deblur(small_model, frames[1], batch_size=1), expected[1], atol=1e-6
    )


def test_colour_frames_are_restored_channel_by_channel(small_model):
    rgb = _frames((*FRAME, 3))
    planes = np.moveaxis(rgb, -1, 0)[..., None]
    expected = np.moveaxis(_keras_reference(small_model, planes)[..., 0], 0, -1)
    result = deblur(small_model, rgb)
    assert result.shape == rgb.shape
    np.testing.assert_allclose(result, expected, atol=1e-6)


@pytest.mark.parametrize("kind", ["tflite", "onnx"])
def test_exported_files_match_keras_whole_frame(small_model, exports, kind):
    frames = _frames((2, *FRAME, 1), seed=1)
    expected = _keras_reference(small_model, frames)
    for threads in (1, 2):
        result = deblur(str(exports[kind]), frames, threads=threads)
        np.testing.assert_allclose(result, expected, atol=1e-5)


def test_keras_file_runs(small_model, tmp_path):
    path = tmp_path / "m.keras"
    small_model.save(path)
    frame = _frames(FRAME, seed=2)
    expected = _keras_reference(small_model, frame[None])[0, :, :, 0]
    np.testing.assert_allclose(deblur(str(path), frame), expected, atol=1e-6)


def test_other_frame_sizes_are_refused_with_both_sizes_and_the_fix(small_model):
    with pytest.raises(
        ValueError,
        match=r"Expected frames of height and width \(32, 48\), the size "
        r"`coordgate_unet_d1` was built for.*with_frame\(model, \(64, 48\)\).*"
        r"coordgate-train --frame-size 64x48`\. Received: frames of height and "
        r"width \(64, 48\)",
    ):
        deblur(small_model, _frames((64, 48)))


def test_one_input_file_refuses_other_sizes(exports):
    with pytest.raises(ValueError, match=r"\(32, 48\), the size `m.onnx` was built"):
        deblur(str(exports["onnx"]), _frames((32, 32)))


def test_tiles_of_a_one_input_model_are_refused(small_model):
    with pytest.raises(ValueError, match=r"Expected None for a model with one input"):
        deblur(small_model, _frames(FRAME), tile=16)


def test_bad_frames_and_models_are_refused(small_model, tmp_path):
    with pytest.raises(ValueError, match=r"Received: frames with values in"):
        deblur(small_model, _frames(FRAME) + 1)
    with pytest.raises(
        ValueError, match=r"Expected frames with 3 channels, the input of `unet_d1`"
    ):
        rgb_model = create_model("unet_d1", input_shape=(*FRAME, 3), base_filters=4)
        deblur(rgb_model, _frames((*FRAME, 2)))
    with pytest.raises(ValueError, match=r"Expected a registered model name"):
        deblur("no_such_model", _frames(FRAME))
    with pytest.raises(ValueError, match=r"Expected an existing model file"):
        deblur(str(tmp_path / "missing.tflite"), _frames(FRAME))
    with pytest.raises(ValueError, match=r"Expected None for a model file"):
        deblur(str(tmp_path / "missing.onnx"), _frames(FRAME), weights="zernike_256")
    with pytest.raises(ValueError, match=r"Expected a positive integer or None"):
        deblur(small_model, _frames(FRAME), threads=0)


@pytest.mark.slow
def test_packaged_weights_run_at_their_training_size():
    frame = _frames((256, 256), seed=3)
    model = create_model("unet_d2", weights="zernike_256", input_shape=(256, 256, 1))
    expected = np.asarray(model(frame[None, :, :, None]))[0, :, :, 0]
    result = deblur("unet_d2", frame, weights="zernike_256")
    np.testing.assert_allclose(result, expected, atol=1e-5)
    with pytest.raises(ValueError, match=r"\(256, 256\), the size `unet_d2`"):
        deblur("unet_d2", _frames((128, 128)), weights="zernike_256")


# === Receptive field ===


@pytest.mark.parametrize(
    "name, margin", [("unet_d1", 10), ("unet_d2", 26), ("coordconv_unet_d2", 26)]
)
def test_receptive_field_bounds_the_reach_of_one_pixel(name, margin):
    # Independent check: change one input pixel and see which outputs move.
    model = create_model(name, input_shape=(96, 96, 1), base_filters=4)
    rf = receptive_field(model)
    assert rf == {"margin": margin, "alignment": 2 ** int(name[-1])}
    x = _frames((1, 96, 96, 1), seed=4)
    poked = x.copy()
    poked[0, 48, 49, 0] += 10.0
    moved = np.abs(np.asarray(model(poked)) - np.asarray(model(x)))[0, :, :, 0]
    rows, cols = np.nonzero(moved > 0)
    reach = max(np.abs(rows - 48).max(), np.abs(cols - 49).max())
    # Bounded by the margin, and not by much less (the bound is the cone's).
    assert margin - rf["alignment"] <= reach <= margin


def test_receptive_field_refuses_unknown_layers():
    import keras

    inputs = keras.Input((16, 16, 1))
    x = keras.layers.Conv2D(2, 3, strides=2, padding="same", name="strided")(inputs)
    x = keras.layers.UpSampling2D(2)(x)
    model = keras.Model(inputs, x)
    with pytest.raises(ValueError, match=r"only stride-1 convolutions.*'strided'"):
        receptive_field(model)


# === Tile grid ===


@pytest.mark.parametrize(
    "n, t, o", [(96, 32, 16), (64, 32, 8), (32, 32, 0), (100, 40, 12), (36, 32, 4)]
)
def test_tile_grid_covers_every_pixel_once_with_overlap_left_at_each_cut(n, t, o):
    (spans,) = tile_grid((n,), (t,), (o,))
    owner = np.zeros(n, int)
    for origin, start, stop in spans:
        assert 0 <= origin <= n - t and origin <= start < stop <= origin + t
        owner[start:stop] += 1
    np.testing.assert_array_equal(owner, 1)
    for (o1, _, stop1), (o2, start2, _) in zip(spans, spans[1:]):
        assert stop1 == start2 and start2 - o2 >= o // 2
        assert o1 + t - stop1 >= o // 2
    assert spans[0][0] == 0 and spans[-1][0] == n - t
