import keras
import numpy as np
import pytest

from coordgate_keras.training import get_loss, psnr, ssim
from coordgate_keras.training.metrics import (
    mean_psnr,
    numpy_psnr,
    numpy_ssim,
    pooled_psnr,
    tile_psnr,
)


def _rng():
    return np.random.default_rng(0)


def test_psnr_matches_the_formula():
    a = _rng().random((3, 20, 24, 2)).astype("float32")
    b = np.clip(a + _rng().normal(0, 0.05, a.shape), 0, 1).astype("float32")
    expected = [
        10 * np.log10(1.0 / np.mean((a[i].astype(np.float64) - b[i]) ** 2))
        for i in range(3)
    ]
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(psnr(a, b)), expected, rtol=1e-5
    )
    expected_255 = [
        10
        * np.log10(
            255.0**2 / np.mean((255 * a[i].astype(np.float64) - 255 * b[i]) ** 2)
        )
        for i in range(3)
    ]
    got = keras.ops.convert_to_numpy(psnr(255 * a, 255 * b, max_val=255.0))
    np.testing.assert_allclose(got, expected_255, rtol=1e-5)
    np.testing.assert_allclose(numpy_psnr(a, b), expected, rtol=1e-12)
    np.testing.assert_allclose(
        numpy_psnr(255 * a, 255 * b, max_val=255.0), expected_255, rtol=1e-6
    )


def test_set_psnr_is_the_mean_of_per_image_psnr_and_pooled_is_labelled():
    a = _rng().random((4, 8, 8, 1))
    scale = np.array([0.01, 0.02, 0.05, 0.2]).reshape(4, 1, 1, 1)
    b = a + scale * _rng().standard_normal(a.shape)
    mse = [np.mean((a[i] - b[i]) ** 2) for i in range(4)]
    assert mean_psnr(a, b) == pytest.approx(np.mean([-10 * np.log10(m) for m in mse]))
    assert pooled_psnr(a, b) == pytest.approx(-10 * np.log10(np.mean(mse)))
    # The pooled value follows the worst image.
    assert pooled_psnr(a, b) < mean_psnr(a, b) - 5
    assert pooled_psnr(a, a) == np.inf


def test_tile_psnr_matches_a_loop():
    a = _rng().random((3, 12, 10, 2))
    b = np.clip(a + 0.05 * _rng().standard_normal(a.shape), 0, 1)
    expected = np.zeros((3, 2))
    for r in range(3):
        for c in range(2):
            tiles = [
                np.mean(
                    (
                        a[i, 4 * r : 4 * r + 4, 5 * c : 5 * c + 5]
                        - b[i, 4 * r : 4 * r + 4, 5 * c : 5 * c + 5]
                    )
                    ** 2
                )
                for i in range(3)
            ]
            expected[r, c] = np.mean([-10 * np.log10(t) for t in tiles])
    np.testing.assert_allclose(tile_psnr(a, b, (3, 2)), expected, rtol=1e-12)
    pooled = np.zeros((3, 2))
    for r in range(3):
        for c in range(2):
            rs, cs = slice(4 * r, 4 * r + 4), slice(5 * c, 5 * c + 5)
            pooled[r, c] = -10 * np.log10(np.mean((a[:, rs, cs] - b[:, rs, cs]) ** 2))
    np.testing.assert_allclose(tile_psnr(a, b, (3, 2), pooled=True), pooled, rtol=1e-12)


def test_numpy_metrics_reject_mismatched_shapes():
    with pytest.raises(
        ValueError,
        match=r"Invalid value for argument `y_pred`. Expected an array of the shape of `y_true`, \(2, 4, 4, 1\). Received: y_pred.shape=\(2, 4, 4\)",
    ):
        numpy_psnr(np.zeros((2, 4, 4, 1)), np.zeros((2, 4, 4)))
    with pytest.raises(
        ValueError,
        match=r"Invalid value for argument `y_true`. Expected an array of shape \(batch, height, width, channels\) or \(batch, length, channels\). Received: y_true.shape=\(4, 4\)",
    ):
        numpy_ssim(np.zeros((4, 4)), np.zeros((4, 4)))


@pytest.mark.tf_only(reason="needs tf.image.ssim")
@pytest.mark.parametrize("shape", [(3, 32, 40, 1), (2, 24, 24, 3)])
def test_ssim_matches_tf_image_ssim(shape):
    import tensorflow as tf

    a = _rng().random(shape).astype("float32")
    b = np.clip(0.7 * a + 0.3 * _rng().random(shape), 0, 1).astype("float32")
    expected = tf.image.ssim(a, b, max_val=1.0).numpy()
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(ssim(a, b)), expected, atol=2e-6
    )
    np.testing.assert_allclose(numpy_ssim(a, b), expected, atol=2e-6)
    same = keras.ops.convert_to_numpy(ssim(a, a))
    np.testing.assert_allclose(same, 1.0, atol=1e-6)


def _ssim_1d_reference(x, y, size=11, sigma=1.5, c1=1e-4, c2=9e-4):
    """A direct loop over window positions (float64)."""
    t = np.arange(size) - (size - 1) / 2
    w = np.exp(-0.5 * (t / sigma) ** 2)
    w /= w.sum()
    values = []
    for start in range(len(x) - size + 1):
        xs, ys = x[start : start + size], y[start : start + size]
        mx, my = w @ xs, w @ ys
        vx, vy = w @ (xs * xs) - mx**2, w @ (ys * ys) - my**2
        cov = w @ (xs * ys) - mx * my
        values.append(
            (2 * mx * my + c1)
            * (2 * cov + c2)
            / ((mx**2 + my**2 + c1) * (vx + vy + c2))
        )
    return np.mean(values)


def test_ssim_1d_matches_a_loop():
    a = _rng().random((2, 64, 1))
    b = np.clip(a + _rng().normal(0, 0.1, a.shape), 0, 1)
    expected = [_ssim_1d_reference(a[i, :, 0], b[i, :, 0]) for i in range(2)]
    got = keras.ops.convert_to_numpy(ssim(a.astype("float32"), b.astype("float32")))
    np.testing.assert_allclose(got, expected, atol=1e-5)
    np.testing.assert_allclose(numpy_ssim(a, b), expected, rtol=1e-12)


def test_numpy_ssim_matches_the_keras_ssim_on_images():
    a = _rng().random((2, 20, 24, 3))
    b = np.clip(0.6 * a + 0.4 * _rng().random(a.shape), 0, 1)
    got = keras.ops.convert_to_numpy(ssim(a.astype("float32"), b.astype("float32")))
    np.testing.assert_allclose(numpy_ssim(a, b), got, atol=2e-6)


def test_ssim_rejects_other_ranks():
    with pytest.raises(
        ValueError,
        match=r"Invalid value for argument `y_true`. Expected a tensor of shape \(batch, height, width, channels\) or \(batch, length, channels\). Received: y_true.shape=\(4, 4\)",
    ):
        ssim(np.zeros((4, 4)), np.zeros((4, 4)))


def test_losses_match_numpy():
    a = _rng().random((2, 16, 16, 1)).astype("float32")
    b = _rng().random((2, 16, 16, 1)).astype("float32")
    mse = keras.ops.convert_to_numpy(get_loss("mse")(a, b))
    np.testing.assert_allclose(mse, np.mean((a - b) ** 2, axis=(1, 2, 3)), rtol=1e-5)
    l1 = keras.ops.convert_to_numpy(get_loss("l1")(a, b))
    np.testing.assert_allclose(l1, np.mean(np.abs(a - b), axis=(1, 2, 3)), rtol=1e-5)
    mixed = keras.ops.convert_to_numpy(get_loss("l1_ssim")(a, b))
    s = keras.ops.convert_to_numpy(ssim(a, b))
    np.testing.assert_allclose(mixed, l1 + 1 - s, rtol=1e-5)
    with pytest.raises(
        ValueError,
        match=r"Invalid value for argument `loss`. Expected one of 'mse', 'l1', 'l1_ssim'. Received: loss='l2'",
    ):
        get_loss("l2")
