import keras
import numpy as np
import pytest

from coordgate_keras import data
from coordgate_keras.training import DeviceSimulator


@pytest.mark.parametrize(
    "grid, kernel_size, shape",
    [
        ((4, 4), 9, (32, 32)),
        ((3, 5), 7, (40, 48)),
        ((1, 1), 5, (16, 16)),
        ((8, 8), 31, (64, 64)),
    ],
)
def test_blur_matches_numpy_blur_fast(grid, kernel_size, shape):
    field = data.zernike_psf_field(grid_shape=grid, kernel_size=kernel_size, coma=0.4)
    x = data.microscopy_scenes(2, shape, seed=0)
    x = np.concatenate([x, x[:, ::-1]], axis=-1)  # two different channels
    expected = data.blur_fast(x.astype(np.float64), field)
    got = keras.ops.convert_to_numpy(DeviceSimulator(field, shape)(x, training=True))
    # float32 FFT round-off on values of order 1.
    np.testing.assert_allclose(got, np.clip(expected, 0, 1), atol=3e-7 * kernel_size)


def test_blur_matches_blur_exact_under_jit():
    field = data.gaussian_psf_field(grid_shape=(4, 4), kernel_size=9)
    x = data.microscopy_scenes(2, (32, 32), seed=1)
    sim = DeviceSimulator(field, (32, 32))
    model = keras.Sequential([keras.Input((32, 32, 1)), sim])
    model.compile(jit_compile=True)
    # predict runs training=False (identity); blur through the jitted call instead.
    assert np.array_equal(model.predict(x, verbose=0), x)
    got = keras.ops.convert_to_numpy(sim.blur(x))
    np.testing.assert_allclose(
        got, data.blur_exact(x.astype(np.float64), field), atol=3e-6
    )


def test_inference_is_identity():
    field = data.gaussian_psf_field(grid_shape=(2, 2), kernel_size=5)
    x = np.random.default_rng(0).random((2, 16, 16, 1)).astype("float32")
    sim = DeviceSimulator(field, (16, 16), noise={"photons_range": [100, 100]})
    assert np.array_equal(keras.ops.convert_to_numpy(sim(x)), x)


def test_noise_mean_and_variance():
    """Mean y and variance y / photons + read_noise**2 (the Poisson + Gaussian
    moments), for fixed parameters, away from the clipping bounds."""
    psf = np.zeros((1, 1, 3, 3))
    psf[..., 1, 1] = 1.0  # identity blur
    field = data.PSFField(psf)
    photons, read = 200.0, 0.02
    sim = DeviceSimulator(
        field,
        (64, 64),
        noise={"photons_range": [photons, photons], "read_noise_range": [read, read]},
        seed=3,
    )
    level = np.full((64, 64, 64, 1), 0.5, "float32")
    noisy = keras.ops.convert_to_numpy(sim(level, training=True)).astype(np.float64)
    expected_var = 0.5 / photons + read**2
    n = noisy.size
    assert abs(noisy.mean() - 0.5) < 4 * np.sqrt(expected_var / n)
    assert abs(noisy.var() / expected_var - 1) < 4 * np.sqrt(2 / n)


def test_noise_parameters_vary_per_image():
    psf = np.zeros((1, 1, 3, 3))
    psf[..., 1, 1] = 1.0
    sim = DeviceSimulator(
        data.PSFField(psf),
        (32, 32),
        noise={"photons_range": [10, 10000], "read_noise_range": [0, 0]},
        seed=0,
    )
    noisy = keras.ops.convert_to_numpy(
        sim(np.full((16, 32, 32, 1), 0.5, "float32"), training=True)
    )
    stds = noisy.reshape(16, -1).std(axis=1)
    assert stds.max() > 5 * stds.min()  # photons log-uniform over three decades


def test_rejects_bad_noise_and_shapes():
    field = data.gaussian_psf_field(grid_shape=(2, 2), kernel_size=9)
    with pytest.raises(
        ValueError,
        match=r"Invalid value for argument `noise`. Expected a `NoiseModel`, a dict of its arguments or None. Received: noise='poisson'",
    ):
        DeviceSimulator(field, (16, 16), noise="poisson")
    with pytest.raises(
        ValueError,
        match=r"Invalid value for argument `psf_field`. Expected PSFs no larger than the image",
    ):
        DeviceSimulator(field, (8, 8))
