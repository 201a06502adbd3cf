"""Image-quality metrics, PSNR and SSIM: on `keras.ops` (every backend, inside
training) and in NumPy float64 (evaluation scripts, reports), one definition.

All take channels-last batches, `(batch, height, width, channels)` images or
`(batch, length, channels)` signals. `psnr` / `ssim` (and `numpy_psnr` /
`numpy_ssim`) return one value per example; **the PSNR of a set of examples is
the mean of the per-example values** (`mean_psnr`), as `training.evaluate`,
the weight sidecars, the demo and the studies report it. The PSNR of the MSE
pooled over the whole set (`pooled_psnr`) is a different number (lower when
the examples' errors differ), reported only where it is labelled "pooled".
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


def _as_float64(y_true, y_pred):
    y_true = np.asarray(y_true, np.float64)
    y_pred = np.asarray(y_pred, np.float64)
    if y_true.shape != y_pred.shape:
        raise ValueError(
            "Invalid value for argument `y_pred`. Expected an array of the shape "
            f"of `y_true`, {y_true.shape}. Received: y_pred.shape={y_pred.shape}"
        )
    return y_true, y_pred


def numpy_psnr(y_true, y_pred, max_val=1.0):
    """`psnr` in NumPy float64: the PSNR of each example, in dB.

    Identical examples give `inf`.

    Args:
        y_true: array `(batch, ...)`.
        y_pred: array of the same shape.
        max_val: float. The dynamic range (1 for images in `[0, 1]`).

    Returns:
        A float64 array `(batch,)`.

    Example:

    >>> import numpy as np
    >>> from coordgate_keras.training.metrics import numpy_psnr
    >>> numpy_psnr(np.zeros((2, 4, 4, 1)), np.full((2, 4, 4, 1), 0.1)).round(6)
    array([20., 20.])
    """
    y_true, y_pred = _as_float64(y_true, y_pred)
    axes = tuple(range(1, y_true.ndim))
    mse = np.mean(np.square(y_true - y_pred), axis=axes)
    with np.errstate(divide="ignore"):
        return 10.0 * np.log10(max_val**2 / mse)


def mean_psnr(y_true, y_pred, max_val=1.0):
    """The PSNR of a set: the mean over examples of each example's PSNR (dB).

    Example:

    >>> import numpy as np
    >>> from coordgate_keras.training.metrics import mean_psnr
    >>> sharp = np.zeros((2, 4, 4, 1))
    >>> noisy = sharp + np.array([0.1, 0.01]).reshape(2, 1, 1, 1)
    >>> round(mean_psnr(sharp, noisy), 6)  # (20 + 40) / 2
    30.0
    """
    return float(np.mean(numpy_psnr(y_true, y_pred, max_val)))


def pooled_psnr(y_true, y_pred, max_val=1.0):
    """The PSNR of the MSE pooled over all examples (dB); label it "pooled".

    Dominated by the worst examples, so it sits below `mean_psnr` when the
    examples' errors differ.

    Example:

    >>> import numpy as np
    >>> from coordgate_keras.training.metrics import pooled_psnr
    >>> sharp = np.zeros((2, 4, 4, 1))
    >>> noisy = sharp + np.array([0.1, 0.01]).reshape(2, 1, 1, 1)
    >>> round(pooled_psnr(sharp, noisy), 3)  # 10 log10(1 / 0.00505)
    22.967
    """
    y_true, y_pred = _as_float64(y_true, y_pred)
    mse = float(np.mean(np.square(y_true - y_pred)))
    return float("inf") if mse == 0 else float(10.0 * np.log10(max_val**2 / mse))


def tile_psnr(y_true, y_pred, grid, max_val=1.0, pooled=False):
    """PSNR (dB) of each tile of a `grid = (rows, cols)` split of the field:
    per example and tile, then the mean over examples, as `mean_psnr`; with
    `pooled=True`, of each tile's MSE pooled over the examples, as
    `pooled_psnr`.

    The field is cropped to a multiple of the grid; channels are averaged into
    each tile's MSE.

    Returns:
        A float64 array `grid`.

    Example:

    >>> import numpy as np
    >>> from coordgate_keras.training.metrics import tile_psnr
    >>> sharp = np.zeros((1, 4, 4, 1))
    >>> noisy = sharp.copy(); noisy[0, :2, :2] = 0.1
    >>> tile_psnr(sharp, noisy, (2, 2))
    array([[20., inf],
           [inf, inf]])
    """
    y_true, y_pred = _as_float64(y_true, y_pred)
    n, h, w = y_true.shape[:3]
    gh, gw = grid
    th, tw = h // gh, w // gw
    err = np.square(y_true - y_pred)[:, : th * gh, : tw * gw].mean(axis=-1)
    mse = err.reshape(n, gh, th, gw, tw).mean(axis=(2, 4))
    if pooled:
        mse = mse.mean(axis=0, keepdims=True)
    with np.errstate(divide="ignore"):
        return (10.0 * np.log10(max_val**2 / mse)).mean(axis=0)


def _window_mean_numpy(x, taps, axes):
    for axis in axes:
        windows = np.lib.stride_tricks.sliding_window_view(x, len(taps), axis=axis)
        x = windows @ taps
    return x


def numpy_ssim(
    y_true, y_pred, max_val=1.0, filter_size=11, filter_sigma=1.5, k1=0.01, k2=0.03
):
    """`ssim` in NumPy float64: the structural similarity of each example.

    Same window, constants and averaging as `ssim` (and `tf.image.ssim`).

    Returns:
        A float64 array `(batch,)`.

    Example:

    >>> import numpy as np
    >>> from coordgate_keras.training.metrics import numpy_ssim
    >>> x = np.random.default_rng(0).random((2, 16, 16, 1))
    >>> numpy_ssim(x, x).round(6)
    array([1., 1.])
    """
    x, y = _as_float64(y_true, y_pred)
    if x.ndim not in (3, 4):
        raise ValueError(
            "Invalid value for argument `y_true`. Expected an array of shape "
            "(batch, height, width, channels) or (batch, length, channels). "
            f"Received: y_true.shape={x.shape}"
        )
    coords = np.arange(filter_size, dtype=np.float64) - (filter_size - 1) / 2.0
    taps = np.exp(-0.5 * (coords / filter_sigma) ** 2)
    taps /= taps.sum()
    axes = tuple(range(1, x.ndim - 1))

    def window_mean(v):
        return _window_mean_numpy(v, taps, axes)

    mean_x, mean_y = window_mean(x), window_mean(y)
    c1, c2 = (k1 * max_val) ** 2, (k2 * max_val) ** 2
    num0 = 2.0 * mean_x * mean_y
    den0 = mean_x**2 + mean_y**2
    luminance = (num0 + c1) / (den0 + c1)
    num1 = 2.0 * window_mean(x * y)
    den1 = window_mean(x * x + y * y)
    contrast_structure = (num1 - num0 + c2) / (den1 - den0 + c2)
    return (luminance * contrast_structure).mean(axis=axes).mean(axis=-1)


@keras.saving.register_keras_serializable(package="coordgate_keras")
def psnr_metric(y_true, y_pred):
    """PSNR in dB for images in `[0, 1]` (a Keras metric function)."""
    return psnr(y_true, y_pred)


@keras.saving.register_keras_serializable(package="coordgate_keras")
def ssim_metric(y_true, y_pred):
    """SSIM for images in `[0, 1]` (a Keras metric function)."""
    return ssim(y_true, y_pred)
