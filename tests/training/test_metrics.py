import keras
import numpy as np
import pytest

from coordgate_keras.training import get_loss, psnr, ssim


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


@pytest.mark.skipif(
    keras.backend.backend() != "tensorflow", reason="needs tf.image.ssim"
)
@pytest.mark.parametrize("shape", [(3, 32, 40, 1), (2, 24, 24, 3)])
def test_ssim_matches_tf_image_ssim(shape):
    import tensorflow as tf

    a = _rng().random(shape).astype("float32")
    b = np.clip(0.7 * a + 0.3 * _rng().random(shape), 0, 1).astype("float32")
    expected = tf.image.ssim(a, b, max_val=1.0).numpy()
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(ssim(a, b)), expected, atol=2e-6
    )
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
