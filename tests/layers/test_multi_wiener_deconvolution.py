import keras
import numpy as np
import pytest

from coordgate_keras.layers import MultiWienerDeconvolution, gaussian_psfs
from coordgate_keras.testing import run_layer_test

# === Independent NumPy reference ===


def numpy_wiener(image, psf, reg, eps=1e-7):
    """Wiener deconvolution of one (H, W) image by one (H, W) PSF, NumPy only.

    Both are zero-padded to (2H, 2W) with the image in the middle; the PSF's
    centre pixel (H // 2, W // 2) is moved to the origin; the filter
    conj(H) Y / (|H|^2 + reg) is applied and the middle (H, W) is cropped.
    """
    h, w = image.shape
    top, left = h - h // 2, w - w // 2
    padded = np.zeros((2 * h, 2 * w))
    padded[top : top + h, left : left + w] = image
    kernel = np.zeros((2 * h, 2 * w))
    for i in range(h):
        for j in range(w):
            kernel[(i - h // 2) % (2 * h), (j - w // 2) % (2 * w)] = psf[i, j]
    transfer = np.fft.fft2(kernel)
    result = np.fft.ifft2(
        np.conj(transfer) * np.fft.fft2(padded) / (np.abs(transfer) ** 2 + reg + eps)
    )
    return result.real[top : top + h, left : left + w]


@pytest.mark.parametrize("size", [(16, 16), (15, 10)])
@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
def test_matches_numpy_wiener_filter(size, data_format):
    rng = np.random.default_rng(0)
    channels, k = 2, 3
    psfs = rng.uniform(size=size + (k,)).astype("float32")
    images = rng.normal(size=(2,) + size + (channels,)).astype("float32")
    layer = MultiWienerDeconvolution(
        psfs=psfs, initial_regularization=0.5, data_format=data_format
    )
    regs = np.array([0.5, 2.0, 10.0], "float32")
    x = images if data_format == "channels_last" else np.moveaxis(images, -1, 1)
    layer.build(x.shape)
    layer.regularization.assign(regs)
    y = keras.ops.convert_to_numpy(layer(x))
    if data_format == "channels_first":
        y = np.moveaxis(y, 1, -1)
    assert y.shape == (2,) + size + (channels * k,)
    for b in range(2):
        for c in range(channels):
            for j in range(k):
                expected = numpy_wiener(images[b, ..., c], psfs[..., j], regs[j])
                np.testing.assert_allclose(
                    y[b, ..., c * k + j], expected, rtol=1e-4, atol=1e-4
                )


def test_centred_delta_psf_scales_the_image():
    size = (12, 12)
    psf = np.zeros(size + (1,), "float32")
    psf[6, 6, 0] = 1.0
    layer = MultiWienerDeconvolution(psfs=psf, initial_regularization=0.25)
    x = np.random.default_rng(0).normal(size=(1,) + size + (1,)).astype("float32")
    y = keras.ops.convert_to_numpy(layer(x))
    np.testing.assert_allclose(y, x / 1.25, rtol=1e-5, atol=1e-5)


def test_layer_contract():
    run_layer_test(
        MultiWienerDeconvolution,
        dict(num_psfs=3, initial_regularization=0.1),
        input_shape=(2, 16, 12, 1),
        expected_output_shape=(2, 16, 12, 3),
        expected_num_trainable_weights=2,
    )


def test_regularization_stays_non_negative():
    layer = MultiWienerDeconvolution(num_psfs=2, initial_regularization=1e-3)
    model = keras.Sequential([keras.Input((8, 8, 1)), layer])
    model.compile(
        optimizer=keras.optimizers.SGD(100.0), loss=lambda t, p: -keras.ops.mean(p)
    )
    x = np.ones((1, 8, 8, 1), "float32")
    model.fit(x, x, epochs=1, verbose=0)
    assert np.all(keras.ops.convert_to_numpy(layer.regularization) >= 0)


def test_gaussian_psfs():
    psfs = gaussian_psfs((32, 24), 4)
    assert psfs.shape == (32, 24, 4)
    np.testing.assert_allclose(psfs.sum(axis=(0, 1)), 1.0, rtol=1e-5)
    for k in range(4):
        assert np.unravel_index(psfs[..., k].argmax(), (32, 24)) == (16, 12)
    peaks = psfs[16, 12]
    assert np.all(np.diff(peaks) < 0)  # wider PSFs have lower peaks


def test_default_psfs_are_gaussian_and_config_omits_them():
    layer = MultiWienerDeconvolution(num_psfs=3)
    layer.build((None, 32, 32, 1))
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(layer.psf_kernel), gaussian_psfs((32, 32), 3)
    )
    config = layer.get_config()
    assert "psfs" not in config
    assert config["num_psfs"] == 3


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (
            dict(psfs=np.zeros((4, 4))),
            "`psfs`. Expected an array of shape \\(height, width, num_psfs\\). "
            "Received: psfs.shape=\\(4, 4\\)",
        ),
        (
            dict(psfs=np.zeros((4, 4, 2)), num_psfs=3),
            "`num_psfs`. Expected None or the number of PSFs in `psfs` \\(2\\). "
            "Received: num_psfs=3",
        ),
        (
            dict(num_psfs=0),
            "`num_psfs`. Expected a positive integer. Received: num_psfs=0",
        ),
        (
            dict(initial_regularization=-1.0),
            "`initial_regularization`. Expected a non-negative number. "
            "Received: initial_regularization=-1.0",
        ),
        (
            dict(data_format="nhwc"),
            "`data_format`. Expected one of 'channels_last', 'channels_first'. "
            "Received: data_format='nhwc'",
        ),
    ],
)
def test_argument_errors(kwargs, message):
    with pytest.raises(ValueError, match="Invalid value for argument " + message):
        MultiWienerDeconvolution(**kwargs)


def test_input_shape_errors():
    with pytest.raises(ValueError, match="Expected static height and width"):
        MultiWienerDeconvolution()(keras.Input((None, None, 1)))
    with pytest.raises(ValueError, match="Expected a tensor of rank 4"):
        MultiWienerDeconvolution()(keras.Input((16, 1)))
    with pytest.raises(
        ValueError, match="Expected the spatial size of `psfs` \\(8, 8\\)"
    ):
        MultiWienerDeconvolution(psfs=np.ones((8, 8, 2)))(keras.Input((16, 16, 1)))
