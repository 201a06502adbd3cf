import numpy as np
import pytest
import tensorflow as tf

from coordgate_keras import data


def _fixed(photons, read_noise, clip=False):
    return data.NoiseModel((photons, photons), (read_noise, read_noise), clip=clip)


def test_mean_and_variance_match_poisson_gaussian_closed_form():
    # Var = y / photons + read_noise**2; 4 x 128 x 128 samples per level.
    noise = _fixed(200.0, 0.02)
    for level in (0.1, 0.6):
        noisy = noise(np.full((4, 128, 128, 1), level), seed=0)
        expected_var = level / 200.0 + 0.02**2
        assert abs(noisy.mean() - level) < 4 * np.sqrt(expected_var / noisy.size)
        assert abs(noisy.var() / expected_var - 1) < 0.03


def test_tf_noise_has_the_same_distribution():
    noise = _fixed(200.0, 0.02)
    image = tf.fill((256, 256, 1), 0.3)
    noisy = noise.apply_tf(image, tf.constant([0, 1], tf.int64)).numpy()
    expected_var = 0.3 / 200.0 + 0.02**2
    assert abs(noisy.mean() - 0.3) < 4 * np.sqrt(expected_var / noisy.size)
    assert abs(noisy.var() / expected_var - 1) < 0.03
    again = noise.apply_tf(image, tf.constant([0, 1], tf.int64)).numpy()
    other = noise.apply_tf(image, tf.constant([0, 2], tf.int64)).numpy()
    np.testing.assert_array_equal(noisy, again)
    assert not np.array_equal(noisy, other)


def test_photon_counts_are_integers_without_read_noise():
    noisy = _fixed(50.0, 0.0)(np.full((32, 32), 0.5), seed=3)
    np.testing.assert_allclose(noisy * 50.0, np.round(noisy * 50.0), atol=1e-9)


def test_parameters_sampled_per_image_within_ranges():
    noise = data.NoiseModel(photons_range=(10.0, 1000.0), read_noise_range=(0.0, 0.05))
    rng = np.random.default_rng(0)
    photons, read_noise = zip(*(noise.sample_parameters(rng) for _ in range(2000)))
    photons = np.array(photons)
    assert photons.min() >= 10 and photons.max() <= 1000
    # Log-uniform: the median is the geometric mean, 100.
    assert abs(np.log10(np.median(photons)) - 2) < 0.1
    assert 0 <= min(read_noise) and max(read_noise) <= 0.05
    # Two images of one batch get different parameters: different variances.
    noisy = data.NoiseModel((10.0, 1000.0), (0.0, 0.0), clip=False)(
        np.full((2, 64, 64, 1), 0.5), seed=1
    )
    assert not np.isclose(noisy[0].var(), noisy[1].var(), rtol=0.2)


def test_clipping_and_determinism():
    noise = data.NoiseModel(photons_range=(5.0, 5.0), read_noise_range=(0.2, 0.2))
    image = np.random.default_rng(0).random((3, 16, 16, 1)).astype("float32")
    noisy = noise(image, seed=7)
    assert noisy.dtype == np.float32 and noisy.shape == image.shape
    assert noisy.min() == 0.0 and noisy.max() == 1.0
    np.testing.assert_array_equal(noisy, noise(image, seed=7))
    assert not np.array_equal(noisy, noise(image, seed=8))
    unclipped = data.NoiseModel((5.0, 5.0), (0.2, 0.2), clip=False)(image, seed=7)
    assert unclipped.min() < 0 and unclipped.max() > 1


def test_noise_argument_errors():
    with pytest.raises(
        ValueError, match=r"`photons_range`.*> 0.*photons_range=\(0, 10\)"
    ):
        data.NoiseModel(photons_range=(0, 10))
    with pytest.raises(
        ValueError, match=r"`read_noise_range`.*read_noise_range=\(0.1, 0.0\)"
    ):
        data.NoiseModel(read_noise_range=(0.1, 0.0))
    with pytest.raises(ValueError, match=r"`images`. Expected finite values"):
        data.NoiseModel()(np.array([[np.nan]]))
    with pytest.raises(ValueError, match=r"`seed`.*seed=-1"):
        data.NoiseModel()(np.zeros((4, 4)), seed=-1)
    with pytest.raises(
        ValueError, match=r"`images`. Expected an array of shape.*\(4,\)"
    ):
        data.NoiseModel()(np.zeros(4))
