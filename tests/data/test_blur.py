"""Blur operators against direct NumPy loops (independent references)."""

import numpy as np
import pytest
import tensorflow as tf

from coordgate_keras import data


def _direct_convolution(x, h):
    """Ordinary 'same' 2D convolution with zero padding, one output at a time."""
    k = h.shape[0]
    r = k // 2
    padded = np.pad(x, r)
    flipped = h[::-1, ::-1]
    y = np.zeros_like(x, dtype=np.float64)
    for i in range(x.shape[0]):
        for j in range(x.shape[1]):
            y[i, j] = np.sum(padded[i : i + k, j : j + k] * flipped)
    return y


def _node_weights(pixel, num_pixels, num_nodes):
    """Bilinear weights of the nodes at cell centres, via np.interp (clamped)."""
    centres = (np.arange(num_nodes) + 0.5) * num_pixels / num_nodes - 0.5
    if num_nodes == 1:
        return np.ones(1)
    return np.array(
        [np.interp(pixel, centres, np.eye(num_nodes)[i]) for i in range(num_nodes)]
    )


def _scatter_reference(x, psfs):
    """y(q) = sum_p x(p) h_p(q - p), one source pixel at a time."""
    gy, gx, k, _ = psfs.shape
    r = k // 2
    height, width = x.shape
    y = np.zeros((height + 2 * r, width + 2 * r))
    for p in range(height):
        wy = _node_weights(p, height, gy)
        for q in range(width):
            wx = _node_weights(q, width, gx)
            h = np.einsum("i,j,ijab->ab", wy, wx, psfs)
            y[p : p + k, q : q + k] += x[p, q] * h
    return y[r : r + height, r : r + width]


def _random_field(rng, grid_shape, kernel_size):
    psfs = rng.random(grid_shape + (kernel_size, kernel_size))
    return data.PSFField(psfs, normalize=True)


def _rel(a, b):
    return np.linalg.norm(a - b) / np.linalg.norm(b)


@pytest.mark.parametrize("blur", [data.blur_exact, data.blur_fast])
def test_shift_invariant_field_is_ordinary_convolution(blur):
    rng = np.random.default_rng(0)
    psf = rng.random((5, 5))
    field = data.PSFField.shift_invariant(psf, grid_shape=(3, 4), normalize=True)
    x = rng.random((17, 14))
    expected = _direct_convolution(x, psf / psf.sum())
    np.testing.assert_allclose(blur(x, field), expected, rtol=0, atol=1e-12)


def test_shift_invariant_matches_np_convolve_for_a_row_kernel():
    taps = np.array([0.1, 0.2, 0.4, 0.2, 0.1])
    psf = np.zeros((5, 5))
    psf[2] = taps
    field = data.PSFField.shift_invariant(psf, grid_shape=(2, 2))
    x = np.random.default_rng(1).random((6, 20))
    expected = np.stack([np.convolve(row, taps, mode="same") for row in x])
    np.testing.assert_allclose(data.blur_exact(x, field), expected, atol=1e-12)
    np.testing.assert_allclose(data.blur_fast(x, field), expected, atol=1e-12)


def test_exact_matches_per_pixel_scatter_loop():
    rng = np.random.default_rng(2)
    field = _random_field(rng, (3, 2), 5)
    x = rng.random((13, 11))
    np.testing.assert_allclose(
        data.blur_exact(x, field), _scatter_reference(x, field.psfs), atol=1e-12
    )


@pytest.mark.parametrize(
    "shape, grid, k",
    [((48, 40), (4, 3), 9), ((33, 64), (5, 8), 7), ((20, 20), (1, 1), 3)],
)
def test_fast_equals_exact_to_round_off(shape, grid, k):
    rng = np.random.default_rng(3)
    field = _random_field(rng, grid, k)
    x = rng.random((2,) + shape + (2,))
    exact = data.blur_exact(x, field)
    # Same operator: the stated bound is 1e-3, the actual difference is FFT
    # round-off.
    assert _rel(data.blur_fast(x, field), exact) < 1e-12
    assert _rel(data.blur_fast(x, field, rank=grid[0] * grid[1]), exact) < 1e-12


def test_fast_tf_matches_exact_eager_and_in_graph():
    rng = np.random.default_rng(4)
    field = _random_field(rng, (4, 4), 7)
    x = rng.random((3, 40, 36, 2)).astype("float32")
    exact = data.blur_exact(x.astype(np.float64), field)
    eager = data.blur_fast_tf(x, field).numpy()
    graph = tf.function(lambda v: data.blur_fast_tf(v, field))(x).numpy()
    assert eager.dtype == np.float32
    assert _rel(eager, exact) < 1e-5
    assert _rel(graph, exact) < 1e-5
    low_rank = data.blur_fast_tf(x, field, rank=3).numpy()
    assert _rel(low_rank, data.blur_fast(x, field, rank=3)) < 1e-5


def test_energy_conserved_away_from_borders():
    rng = np.random.default_rng(5)
    field = data.gaussian_psf_field(grid_shape=(4, 4), kernel_size=9)
    x = np.zeros((40, 40))
    x[4:-4, 4:-4] = rng.random((32, 32))
    for blur in (data.blur_exact, data.blur_fast):
        np.testing.assert_allclose(blur(x, field).sum(), x.sum(), rtol=1e-12)
    assert abs(data.blur_fast_tf(x, field).numpy().sum() / x.sum() - 1) < 1e-5


def test_point_source_gives_its_interpolated_psf():
    rng = np.random.default_rng(6)
    field = _random_field(rng, (3, 3), 5)
    x = np.zeros((30, 30))
    x[12, 17] = 0.5
    expected = 0.5 * field.psf_at(12, 17, (30, 30))
    np.testing.assert_allclose(
        data.blur_exact(x, field)[10:15, 15:20], expected, atol=1e-14
    )
    np.testing.assert_allclose(
        data.blur_fast(x, field)[10:15, 15:20], expected, atol=1e-12
    )


def test_low_rank_error_falls_with_rank():
    field = data.gaussian_psf_field(grid_shape=(4, 4), kernel_size=11, sigma_edge=3.0)
    x = data.microscopy_scene((48, 48), seed=0)
    exact = data.blur_exact(x.astype(np.float64), field)
    errors = [
        _rel(data.blur_fast(x.astype(np.float64), field, rank=r), exact)
        for r in (1, 4, 16)
    ]
    assert errors[0] > errors[1] > errors[2]
    assert errors[2] < 1e-12


def test_shapes_and_dtypes():
    field = data.gaussian_psf_field(grid_shape=(2, 2), kernel_size=5)
    for shape in [(16, 12), (16, 12, 3), (2, 16, 12, 3)]:
        x = np.ones(shape, "float32")
        for blur in (data.blur_exact, data.blur_fast):
            y = blur(x, field)
            assert y.shape == shape and y.dtype == np.float32
        assert tuple(data.blur_fast_tf(x, field).shape) == shape
    assert data.blur_exact(np.ones((8, 8), "float16"), field).dtype == np.float64
    y = data.blur_fast_tf(tf.ones((1, 16, 12, 1), tf.float64), field)
    assert y.dtype == tf.float32
    assert (
        data.blur_fast_tf(tf.ones((1, 16, 12, 1), tf.bfloat16), field).dtype
        == tf.float32
    )
    dynamic = tf.function(
        lambda v: data.blur_fast_tf(v, field),
        input_signature=[tf.TensorSpec((None, 16, 12, 1), tf.float32)],
    )
    assert tuple(dynamic(np.ones((3, 16, 12, 1), "float32")).shape) == (3, 16, 12, 1)
    with pytest.raises(
        ValueError, match=r"static rank, height and width.*images.shape"
    ):
        tf.function(
            lambda v: data.blur_fast_tf(v, field),
            input_signature=[tf.TensorSpec((None, None, 12, 1), tf.float32)],
        ).get_concrete_function()


def test_bad_images_rejected():
    field = data.gaussian_psf_field(grid_shape=(2, 2), kernel_size=5)
    image = np.ones((16, 16))
    image[3, 4] = np.nan
    for blur in (data.blur_exact, data.blur_fast, data.blur_fast_tf):
        with pytest.raises(
            ValueError, match=r"argument `images`.*finite.*1 non-finite"
        ):
            blur(image, field)
        with pytest.raises(
            ValueError, match=r"argument `images`.*Received: images.shape"
        ):
            blur(np.ones((1, 2, 8, 8, 1)), field)


def test_psf_larger_than_image_rejected():
    field = data.gaussian_psf_field(grid_shape=(2, 2), kernel_size=21)
    for blur in (data.blur_exact, data.blur_fast, data.blur_fast_tf):
        with pytest.raises(
            ValueError, match=r"`psf_field`. Expected PSFs no larger.*kernel_size=21"
        ):
            blur(np.ones((16, 32)), field)


def test_grid_finer_than_image_rejected():
    field = data.PSFField.shift_invariant(np.ones((1, 1)), grid_shape=(8, 2))
    with pytest.raises(ValueError, match=r"grid_shape=\(8, 2\)"):
        data.blur_fast(np.ones((4, 4)), field)


def test_image_shape_mismatch_rejected():
    psfs = data.gaussian_psf_field(grid_shape=(2, 2), kernel_size=5).psfs
    field = data.PSFField(psfs, image_shape=(32, 32))
    data.blur_fast(np.ones((32, 32)), field)
    for blur in (data.blur_exact, data.blur_fast, data.blur_fast_tf):
        with pytest.raises(
            ValueError, match=r"argument `images`.*\(32, 32\).*\(32, 40\)"
        ):
            blur(np.ones((32, 40)), field)


def test_non_field_and_bad_rank_rejected():
    with pytest.raises(ValueError, match="argument `psf_field`. Expected a `coordgate"):
        data.blur_fast(np.ones((8, 8)), np.ones((1, 1, 3, 3)))
    field = data.gaussian_psf_field(grid_shape=(2, 2), kernel_size=5)
    with pytest.raises(ValueError, match=r"argument `rank`.*between 1 and 4.*rank=5"):
        data.blur_fast(np.ones((8, 8)), field, rank=5)
    with pytest.raises(ValueError, match=r"argument `rank`.*rank=0"):
        data.blur_fast(np.ones((8, 8)), field, rank=0)


# === One rule for images in the whole data package ===

_NOT_FLOAT = (
    "Invalid value for argument `images`. Expected a floating-point array (scale "
    "integer images first, e.g. x / 255 for 8-bit). Received: images of dtype "
)


@pytest.mark.parametrize("dtype", ["uint8", "int32", "bool"])
def test_every_data_entry_point_refuses_integer_and_bool_images(dtype):
    field = data.gaussian_psf_field(grid_shape=(2, 2), kernel_size=5)
    images = np.ones((2, 16, 16, 1), dtype)
    calls = [
        lambda: data.blur_exact(images, field),
        lambda: data.blur_fast(images, field),
        lambda: data.blur_fast_tf(images, field),
        lambda: data.blur_fast_tf(tf.constant(images), field),
        lambda: data.NoiseModel()(images, seed=0),
        lambda: data.deblur_dataset(field, images=images),
    ]
    for call in calls:
        with pytest.raises(ValueError) as info:
            call()
        assert str(info.value) == _NOT_FLOAT + dtype


def test_every_data_entry_point_refuses_values_outside_0_1():
    field = data.gaussian_psf_field(grid_shape=(2, 2), kernel_size=5)
    images = np.linspace(0.0, 255.0, 2 * 16 * 16).reshape(2, 16, 16, 1)
    expected = (
        "Invalid value for argument `images`. Expected values in [0, 1]. "
        "Received: images with values in [0, 255]"
    )
    calls = [
        lambda: data.blur_exact(images, field),
        lambda: data.blur_fast(images, field),
        lambda: data.blur_fast_tf(images, field),
        lambda: data.NoiseModel()(images, seed=0),
        lambda: data.deblur_dataset(field, images=images),
    ]
    for call in calls:
        with pytest.raises(ValueError) as info:
            call()
        assert str(info.value) == expected
    with pytest.raises(ValueError, match="Received: images with values in \\[-1, 0\\]"):
        data.blur_fast(np.linspace(-1.0, 0.0, 256).reshape(16, 16), field)


# === Windows of a frame (origin) ===

_FRAME = (48, 56)


def _frame_field():
    from coordgate_keras import data

    return data.gaussian_psf_field(
        grid_shape=(4, 5), kernel_size=7, sigma_edge=2.0, image_shape=_FRAME
    )


@pytest.mark.parametrize(
    "top, left, height, width",
    [(0, 0, 20, 24), (28, 32, 20, 24), (12, 16, 24, 20), (0, 30, 16, 26)],
    ids=["corner", "far_corner", "interior", "edge"],
)
def test_window_with_margin_equals_the_frame_blur_cropped(top, left, height, width):
    """Blurring a window with a margin (clipped at the frame) and trimming it is
    the same crop of the whole frame's blur (exact operator)."""
    from coordgate_keras import data

    field = _frame_field()
    frame = np.random.default_rng(0).uniform(0, 1, _FRAME)
    whole = data.blur_exact(frame, field)
    r = field.radius
    t0, l0 = max(top - r, 0), max(left - r, 0)
    t1, l1 = min(top + height + r, _FRAME[0]), min(left + width + r, _FRAME[1])
    window = frame[t0:t1, l0:l1]
    crop = (slice(top - t0, top - t0 + height), slice(left - l0, left - l0 + width))
    expected = whole[top : top + height, left : left + width]
    exact = data.blur_exact(window, field, origin=(t0, l0))[crop]
    np.testing.assert_allclose(exact, expected, rtol=0, atol=1e-12)
    fast = data.blur_fast(window, field, origin=(t0, l0))[crop]
    np.testing.assert_allclose(fast, expected, rtol=0, atol=1e-12)


def test_window_tf_and_device_simulator_match_exact():
    from coordgate_keras import data
    from coordgate_keras.training import DeviceSimulator

    field = _frame_field()
    window = np.random.default_rng(1).uniform(0, 1, (2, 20, 24, 1))
    expected = data.blur_exact(window, field, origin=(20, 8))
    got = data.blur_fast_tf(window.astype("float32"), field, origin=(20, 8))
    np.testing.assert_allclose(np.asarray(got), expected, rtol=0, atol=2e-6)
    sim = DeviceSimulator(field, (20, 24), origin=(20, 8))
    np.testing.assert_allclose(
        np.asarray(sim.blur(window.astype("float32"))), expected, rtol=0, atol=2e-6
    )


def test_window_errors():
    from coordgate_keras import data

    field = _frame_field()
    window = np.zeros((20, 24))
    with pytest.raises(
        ValueError,
        match=r"Invalid value for argument `origin`\. Expected a window of \(20, 24\) inside the frame \(48, 56\): top from 0 to 28, left from 0 to 32\. Received: origin=\(30, 0\)",
    ):
        data.blur_fast(window, field, origin=(30, 0))
    unpinned = data.gaussian_psf_field(grid_shape=(4, 5), kernel_size=7)
    with pytest.raises(
        ValueError,
        match=r"Invalid value for argument `origin`\. Expected None for a PSF field without `image_shape`",
    ):
        data.blur_exact(window, unpinned, origin=(0, 0))
    with pytest.raises(
        ValueError,
        match=r"Invalid value for argument `origin`\. Expected a tuple \(top, left\) of 2 integers\. Received: origin=\(0\.5, 0\)",
    ):
        data.blur_exact(window, field, origin=(0.5, 0))
