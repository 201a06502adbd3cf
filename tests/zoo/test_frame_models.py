"""Frame models: `create_model(..., frame_shape=...)` and `with_frame`.

The reference is the same network run on the whole frame: a window's output must
equal the whole frame's output there, away from the window's border by the
network's receptive radius (computed here from the architecture).
"""

import keras
import numpy as np
import pytest

from coordgate_keras.zoo import create_model, frame_geometry, with_frame

FRAME = (96, 128)
TILE = (64, 64)


def _receptive_radius(depth, convs=2):
    """A bound on how far (full-resolution pixels) an output pixel sees.

    3x3 convolutions add 2**level each; a 2x2 pooling or a nearest up-sampling
    between levels l and l+1 adds at most 2**(l+1).
    """
    radius = sum(convs * 2**level + 2 ** (level + 1) for level in range(depth))
    radius += convs * 2**depth
    radius += sum(2 ** (level + 1) + (1 + convs) * 2**level for level in range(depth))
    return radius


def _frame_input(seed=0):
    rng = np.random.default_rng(seed)
    return rng.uniform(0, 1, (1, *FRAME, 1)).astype("float32")


@pytest.mark.parametrize("name", ["coordgate_unet_d2", "coordconv_unet_d2", "unet_d2"])
def test_window_equals_the_frame_output_inside(name):
    keras.utils.set_random_seed(0)
    framed = create_model(
        name, input_shape=(*TILE, 1), frame_shape=FRAME, base_filters=4
    )
    assert frame_geometry(framed) == {
        "frame_shape": FRAME,
        "tile_shape": TILE,
        "alignment": 4,
    }
    whole_model = with_frame(
        create_model(name, input_shape=(*FRAME, 1), base_filters=4), FRAME
    )
    whole_model.set_weights(framed.get_weights())
    frame = _frame_input()
    whole = np.asarray(whole_model([frame, np.zeros((1, 2), "int32")]))
    margin = _receptive_radius(2)
    origins = np.array([[0, 0], [32, 64], [16, 32], [0, 64]], "int32")
    windows = np.stack([frame[0, r : r + TILE[0], c : c + TILE[1]] for r, c in origins])
    out = np.asarray(framed([windows, origins]))
    for i, (r, c) in enumerate(origins):
        # The frame's own border is zero padding in both runs: no margin there.
        top = 0 if r == 0 else margin
        left = 0 if c == 0 else margin
        bottom = TILE[0] if r + TILE[0] == FRAME[0] else TILE[0] - margin
        right = TILE[1] if c + TILE[1] == FRAME[1] else TILE[1] - margin
        np.testing.assert_allclose(
            out[i, top:bottom, left:right],
            whole[0, r + top : r + bottom, c + left : c + right],
            rtol=0,
            atol=1e-5,
        )


def test_whole_frame_equals_the_one_input_model():
    keras.utils.set_random_seed(1)
    model = create_model("coordgate_unet_d1", input_shape=(32, 48, 1), base_filters=4)
    framed = with_frame(model, (32, 48))
    x = np.random.default_rng(1).uniform(size=(2, 32, 48, 1)).astype("float32")
    np.testing.assert_allclose(
        framed([x, np.zeros((2, 2), "int32")]), model(x), rtol=0, atol=1e-5
    )


def test_published_weights_load_into_the_frame_form():
    model = create_model("coordgate_unet_d1", weights="zernike_256")
    framed = create_model(
        "coordgate_unet_d1",
        weights="zernike_256",
        input_shape=(256, 256, 1),
        frame_shape=(256, 256),
    )
    x = np.random.default_rng(2).uniform(size=(1, 256, 256, 1)).astype("float32")
    np.testing.assert_allclose(
        framed([x, np.zeros((1, 2), "int32")]), model(x), rtol=0, atol=1e-5
    )
    assert [t.name for t in framed.inputs] == ["coordgate_unet_d1_input", "origin"]
    tiles = create_model(
        "coordgate_unet_d1",
        weights="zernike_256",
        input_shape=(128, 128, 1),
        frame_shape=(1024, 2048),
    )
    assert frame_geometry(tiles)["frame_shape"] == (1024, 2048)


def test_frame_model_round_trips(tmp_path):
    keras.utils.set_random_seed(3)
    framed = create_model(
        "coordgate_unet_d1",
        input_shape=(16, 16, 1),
        frame_shape=(32, 48),
        base_filters=4,
    )
    path = tmp_path / "framed.keras"
    framed.save(path)
    loaded = keras.models.load_model(path)
    assert frame_geometry(loaded) == frame_geometry(framed)
    x = np.random.default_rng(3).uniform(size=(2, 16, 16, 1)).astype("float32")
    origin = np.array([[0, 0], [16, 32]], "int32")
    np.testing.assert_array_equal(loaded([x, origin]), framed([x, origin]))


def test_cnn1d_frame_form():
    keras.utils.set_random_seed(4)
    framed = create_model("coordgate_cnn1d", input_shape=(16, 1), frame_shape=(40,))
    whole = with_frame(create_model("coordgate_cnn1d", input_shape=(40, 1)), (40,))
    whole.set_weights(framed.get_weights())
    x = np.random.default_rng(4).uniform(size=(1, 40, 1)).astype("float32")
    full = np.asarray(whole([x, np.zeros((1, 1), "int32")]))
    out = np.asarray(framed([x[:, 24:40], np.array([[24]], "int32")]))
    # Three 9-tap convolutions see 12 samples to each side; the window's right
    # end is the frame's.
    np.testing.assert_allclose(out[0, 12:], full[0, 36:], rtol=0, atol=1e-5)


def test_frame_errors():
    framed = create_model(
        "unet_d2", input_shape=(16, 16, 1), frame_shape=(32, 32), base_filters=4
    )
    x = np.zeros((1, 16, 16, 1), "float32")
    with pytest.raises(
        ValueError,
        match=r"Invalid value for argument `origin`\. Expected indices along axis 1 from 0 to 16 in steps of 4 \(a window of 16 inside the frame of 32 at `unet_d2_frame_window`\)\. Received: origin=\[\[0, 2\]\]",
    ):
        framed([x, np.array([[0, 2]], "int32")])
    with pytest.raises(
        ValueError,
        match=r"Invalid value for argument `origin`\. Expected indices along axis 0 from 0 to 16 in steps of 4 .*Received: origin=\[\[20, 0\]\]",
    ):
        framed([x, np.array([[20, 0]], "int32")])
    with pytest.raises(ValueError, match=r"origin"):
        framed([x, np.zeros((1, 3), "int32")])
    with pytest.raises(
        ValueError,
        match=r"Invalid value for argument `frame_shape`\. Expected sizes at least the window's \(16, 16\) and divisible by 4 \(the model down-samples 4x\)\. Received: frame_shape=\(30, 32\)",
    ):
        create_model("unet_d2", input_shape=(16, 16, 1), frame_shape=(30, 32))
    with pytest.raises(
        ValueError,
        match=r"Expected sizes at least the window's \(16, 16\).*Received: frame_shape=\(8, 32\)",
    ):
        create_model("unet_d2", input_shape=(16, 16, 1), frame_shape=(8, 32))
    with pytest.raises(
        ValueError,
        match=r"Invalid value for argument `frame_shape`\. Expected None: MultiWienerNet's PSFs and Wiener filters span its input",
    ):
        create_model("multiwienernet", input_shape=(32, 32, 1), frame_shape=(64, 64))
    with pytest.raises(
        ValueError,
        match=r"Invalid value for argument `input_shape`\. Expected the window shape without the batch axis",
    ):
        with_frame(create_model("unet_d1", input_shape=(None, None, 1)), (64, 64))
    with pytest.raises(ValueError, match=r"Expected a model with one \(image\) input"):
        with_frame(framed, (64, 64))
