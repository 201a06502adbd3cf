import numpy as np
import pytest

from coordgate_keras import data


def _reference(x, sigma_range):
    """Scatter each sample with its own truncated, normalised Gaussian."""
    n = len(x)
    y = np.zeros(n)
    for p in range(n):
        sigma = sigma_range[0] + (sigma_range[1] - sigma_range[0]) * p / (n - 1)
        r = int(np.ceil(4 * sigma))
        d = np.arange(-r, r + 1)
        g = np.exp(-0.5 * (d / sigma) ** 2)
        g /= g.sum()
        for offset, weight in zip(d, g):
            if 0 <= p + offset < n:
                y[p + offset] += x[p] * weight
    return y


def test_matrix_matches_per_sample_loop():
    x = np.random.default_rng(0).random(60)
    matrix = data.varying_blur_1d_matrix(60, (0.5, 4.0))
    np.testing.assert_allclose(matrix @ x, _reference(x, (0.5, 4.0)), atol=1e-12)


def test_constant_width_is_np_convolve():
    x = np.random.default_rng(1).random(50)
    d = np.arange(-8, 9)
    g = np.exp(-0.5 * (d / 2.0) ** 2)
    g /= g.sum()
    y = data.varying_blur_1d_matrix(50, (2.0, 2.0)) @ x
    np.testing.assert_allclose(y, np.convolve(x, g, mode="same"), atol=1e-12)


def test_pairs_shapes_energy_and_width_growth():
    blurred, sharp = data.varying_blur_1d(16, 128, seed=0)
    assert blurred.shape == sharp.shape == (16, 128, 1)
    assert blurred.dtype == sharp.dtype == np.float32
    assert sharp.min() >= 0 and np.allclose(sharp.max(axis=1), 1.0)
    # A spike near the start stays sharp, one near the end spreads.
    matrix = data.varying_blur_1d_matrix(128, (0.5, 6.0))
    assert matrix[0, 0] > 0.75 and matrix[127, 127] < 0.07
    np.testing.assert_allclose(matrix[:, 30:98].sum(axis=0), 1.0, atol=1e-12)


def test_seeds_and_noise():
    a = data.varying_blur_1d(4, 64, seed=3)
    np.testing.assert_array_equal(a[0], data.varying_blur_1d(4, 64, seed=3)[0])
    assert not np.array_equal(a[1], data.varying_blur_1d(4, 64, seed=4)[1])
    noisy, clean_sharp = data.varying_blur_1d(4, 64, noise_std=0.05, seed=3)
    np.testing.assert_array_equal(clean_sharp, a[1])
    assert 0.03 < np.std(noisy - a[0]) < 0.07


def test_dataset_batches():
    ds = data.varying_blur_1d_dataset(20, 64, batch_size=8, seed=0)
    shapes = [tuple(b.shape) for b, _ in ds]
    assert shapes == [(8, 64, 1), (8, 64, 1), (4, 64, 1)]
    blurred, sharp = data.varying_blur_1d(20, 64, seed=0)
    first = next(
        iter(data.varying_blur_1d_dataset(20, 64, batch_size=20, shuffle=False))
    )
    np.testing.assert_array_equal(first[0].numpy(), blurred)


def test_1d_argument_errors():
    with pytest.raises(ValueError, match=r"`sigma_range`.*sigma_range=\(0, 2\)"):
        data.varying_blur_1d_matrix(32, (0, 2))
    with pytest.raises(ValueError, match=r"`length`.*length=0"):
        data.varying_blur_1d(4, 0)
    with pytest.raises(ValueError, match=r"`noise_std`.*noise_std=-0.1"):
        data.varying_blur_1d(4, 16, noise_std=-0.1)
    with pytest.raises(ValueError, match=r"`batch_size`.*batch_size=0"):
        data.varying_blur_1d_dataset(4, 16, batch_size=0)
