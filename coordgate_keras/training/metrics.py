"""Image-quality metrics on `keras.ops`: PSNR and SSIM (every backend).

Both take channels-last batches, `(batch, height, width, channels)` images or
`(batch, length, channels)` signals, and return one value per example.
`ssim` follows `tf.image.ssim` (11-tap Gaussian window, sigma 1.5, K1 = 0.01,
K2 = 0.03, "valid" filtering, mean over positions then channels); on 1D
signals it uses the same window along the signal axis.
"""

import keras
import numpy as np
from keras import ops


def _as_float32(y_true, y_pred):
    return ops.cast(y_true, "float32"), ops.cast(y_pred, "float32")


def psnr(y_true, y_pred, max_val=1.0):
    """Peak signal-to-noise ratio of each example, in dB.

    `10 * log10(max_val**2 / mean((y_true - y_pred)**2))`, the mean over every
    axis but the first. Identical examples give `inf`.

    Args:
        y_true: tensor `(batch, ...)`.
        y_pred: tensor of the same shape.
        max_val: float. The dynamic range (1 for images in `[0, 1]`).

    Returns:
        A float32 tensor `(batch,)`.

    Example:

    >>> import numpy as np
    >>> from coordgate_keras.training import psnr
    >>> float(psnr(np.zeros((1, 4, 4, 1)), np.full((1, 4, 4, 1), 0.1))[0])
    20.0
    """
    y_true, y_pred = _as_float32(y_true, y_pred)
    axes = tuple(range(1, len(y_true.shape)))
    mse = ops.mean(ops.square(y_true - y_pred), axis=axes)
    return 10.0 * ops.log10(max_val**2 / mse)


def _gaussian_taps(size, sigma):
    coords = np.arange(size, dtype=np.float64) - (size - 1) / 2.0
    taps = np.exp(-0.5 * (coords / sigma) ** 2)
    return (taps / taps.sum()).astype(np.float32)


def ssim(
    y_true, y_pred, max_val=1.0, filter_size=11, filter_sigma=1.5, k1=0.01, k2=0.03
):
    """Structural similarity of each example, as `tf.image.ssim`.

    Means, variances and covariance are taken with a normalised Gaussian
    window (separable, "valid" positions only); the SSIM map
    `l * cs = (2 mu_x mu_y + C1)(2 s_xy + C2) / ((mu_x^2 + mu_y^2 + C1)
    (s_x^2 + s_y^2 + C2))` with `C1 = (k1 max_val)^2`, `C2 = (k2 max_val)^2`
    is averaged over positions, then over channels.

    Args:
        y_true: tensor `(batch, height, width, channels)` or `(batch, length,
            channels)`, at least `filter_size` along each spatial axis.
        y_pred: tensor of the same shape.
        max_val: float. The dynamic range.
        filter_size: int. Window size.
        filter_sigma: float. Window width.
        k1, k2: float. Stabilising constants.

    Returns:
        A float32 tensor `(batch,)`.

    Example:

    >>> import numpy as np
    >>> from coordgate_keras.training import ssim
    >>> x = np.random.default_rng(0).random((2, 16, 16, 1)).astype("float32")
    >>> [round(float(v), 4) for v in ssim(x, x)]
    [1.0, 1.0]
    """
    y_true, y_pred = _as_float32(y_true, y_pred)
    rank = len(y_true.shape)
    if rank not in (3, 4):
        raise ValueError(
            "Invalid value for argument `y_true`. Expected a tensor of shape "
            "(batch, height, width, channels) or (batch, length, channels). "
            f"Received: y_true.shape={tuple(y_true.shape)}"
        )
    taps = _gaussian_taps(filter_size, filter_sigma)
    spatial = rank - 2
    channels = y_true.shape[-1]

    def fold_channels(x):
        # (batch, *spatial, C) -> (batch * C, *spatial, 1): one window per channel.
        perm = (0, rank - 1) + tuple(range(1, rank - 1))
        x = ops.transpose(x, perm)
        return ops.expand_dims(ops.reshape(x, (-1,) + tuple(x.shape[2:])), -1)

    if spatial == 2:
        kernels = [taps.reshape(-1, 1, 1, 1), taps.reshape(1, -1, 1, 1)]
    else:
        kernels = [taps.reshape(-1, 1, 1)]

    def window_mean(x):
        for kernel in kernels:
            x = ops.conv(x, ops.convert_to_tensor(kernel), padding="valid")
        return x

    x, y = fold_channels(y_true), fold_channels(y_pred)
    mean_x, mean_y = window_mean(x), window_mean(y)
    c1, c2 = (k1 * max_val) ** 2, (k2 * max_val) ** 2
    num0 = 2.0 * mean_x * mean_y
    den0 = ops.square(mean_x) + ops.square(mean_y)
    luminance = (num0 + c1) / (den0 + c1)
    num1 = 2.0 * window_mean(x * y)
    den1 = window_mean(ops.square(x) + ops.square(y))
    contrast_structure = (num1 - num0 + c2) / (den1 - den0 + c2)
    ssim_map = luminance * contrast_structure
    per_channel = ops.mean(ssim_map, axis=tuple(range(1, spatial + 2)))
    return ops.mean(ops.reshape(per_channel, (-1, channels)), axis=-1)


@keras.saving.register_keras_serializable(package="coordgate_keras")
def psnr_metric(y_true, y_pred):
    """PSNR in dB for images in `[0, 1]` (a Keras metric function)."""
    return psnr(y_true, y_pred)


@keras.saving.register_keras_serializable(package="coordgate_keras")
def ssim_metric(y_true, y_pred):
    """SSIM for images in `[0, 1]` (a Keras metric function)."""
    return ssim(y_true, y_pred)
