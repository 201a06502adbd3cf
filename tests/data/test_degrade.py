"""`data.degrade`: blur, then noise, then clip, against a direct convolution."""

import numpy as np

from coordgate_keras import data


def _direct_convolution(x, h):
    """'same' 2D convolution with zero padding, one output at a time."""
    k = h.shape[0]
    padded = np.pad(x, k // 2)
    flipped = h[::-1, ::-1]
    y = np.zeros_like(x, dtype=np.float64)
    for i in range(x.shape[0]):
        for j in range(x.shape[1]):
            y[i, j] = np.sum(padded[i : i + k, j : j + k] * flipped)
    return y


def _invariant_field(kernel_size=5):
    psf = np.random.default_rng(1).random((kernel_size, kernel_size))
    return data.PSFField(psf[None, None] / psf.sum())


def test_blur_then_noise_then_clip():
    field = _invariant_field()
    sharp = np.random.default_rng(0).random((2, 12, 10, 1)).astype("float32")
    seeds = []

    def offset_noise(images, seed):
        # Adds a constant: before the blur it would also blur, so the order
        # shows at the zero-padded edges; values above 1 show the final clip.
        seeds.append(seed)
        return images + 0.6

    got = data.degrade(sharp, field, offset_noise, seed=5)
    expected = np.stack(
        [_direct_convolution(sharp[i, ..., 0], field.psfs[0, 0]) for i in range(2)]
    )[..., None]
    expected = np.clip(expected + 0.6, 0.0, 1.0)
    assert got.dtype == np.float32 and got.shape == sharp.shape
    assert seeds == [5]
    assert got.max() == 1.0
    np.testing.assert_allclose(got, expected, atol=1e-6)


def test_without_noise_is_the_clipped_blur_and_noise_is_seeded():
    field = data.gaussian_psf_field(grid_shape=(2, 2), kernel_size=7)
    sharp = data.microscopy_scenes(2, image_shape=(16, 16), seed=0)
    clean = data.degrade(sharp, field)
    exact = data.blur_exact(sharp.astype("float64"), field)
    np.testing.assert_allclose(clean, np.clip(exact, 0, 1), atol=1e-3)
    noise = data.NoiseModel()
    a, b = (data.degrade(sharp, field, noise, seed=s) for s in (3, 3))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, data.degrade(sharp, field, noise, seed=4))
    assert 0.0 <= a.min() and a.max() <= 1.0
