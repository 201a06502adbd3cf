"""Machinery for the product-convolution blur, shared by NumPy and TensorFlow.

The blur is `y = sum_m kernel_m * (map_m ⊙ x)` with zero padding and output the
size of the input. Each map is zero outside a rectangular window; every term is
convolved over its window only (overlap-add), with windows of one common shape
so that all terms go through a single batched FFT.
"""

import dataclasses
import functools

import numpy as np

from coordgate_keras.utils import argument_validation as av


def fft_size(n):
    """Smallest 5-smooth integer >= n (fast for every FFT library)."""
    size = n
    while True:
        m = size
        for p in (2, 3, 5):
            while m % p == 0:
                m //= p
        if m == 1:
            return size
        size += 1


@dataclasses.dataclass(frozen=True)
class Plan:
    """Terms of a product convolution on images of `image_shape`.

    Attributes:
        image_shape: `(height, width)`.
        kernels: `(terms, k, k)` float64 kernels.
        maps: `(terms, window_h, window_w)` float64 weight maps on the windows.
        row_starts, col_starts: `(terms,)` window origins in the image.
        fft_shape: FFT size `>= window + k - 1` along each axis.
        kernel_fft: `(terms, fft_h, fft_w // 2 + 1)` complex128 kernel spectra.
        shared_window: all windows coincide (spectra can be summed before the
            inverse FFT).
    """

    image_shape: tuple
    kernels: np.ndarray
    maps: np.ndarray
    row_starts: np.ndarray
    col_starts: np.ndarray
    fft_shape: tuple
    kernel_fft: np.ndarray
    shared_window: bool

    @property
    def window_shape(self):
        return self.maps.shape[1:]

    @property
    def radius(self):
        return self.kernels.shape[-1] // 2


def _support_windows(weights):
    """Common-length windows covering the support of each row of `weights`."""
    num_nodes, num_pixels = weights.shape
    nonzero = weights > 0
    active = nonzero.any(axis=1)
    # A node with no weight on these pixels (a window of a frame far from it)
    # gets an empty support: its term is all zeros wherever its window falls.
    starts = np.where(active, np.argmax(nonzero, axis=1), 0)
    ends = np.where(active, num_pixels - np.argmax(nonzero[:, ::-1], axis=1), 0)
    length = int(np.max(ends - starts))
    starts = np.minimum(starts, num_pixels - length)
    return starts, length


@functools.lru_cache(maxsize=8)
def cached_plan(field, image_shape, rank=None, origin=None):
    """`make_plan`, cached per `(field, image_shape, rank, origin)`; checks `rank`."""
    if rank is not None:
        rank = av.positive_int(rank, "rank")
    return make_plan(field, image_shape, rank, origin)


@functools.lru_cache(maxsize=32)
def _kernel_spectra(kernels_bytes, shape, fft_shape):
    kernels = np.frombuffer(kernels_bytes, dtype=np.float64).reshape(shape)
    return np.fft.rfft2(kernels, s=fft_shape)


def make_plan(field, image_shape, rank=None, origin=None, drop_inactive=True):
    """Builds the terms of the blur by `field` on images of `image_shape`.

    With `rank=None` the terms are the grid PSFs and their bilinear weight maps
    (the exact operator); with an integer `rank` they are the SVD basis PSFs and
    interpolated coefficient maps (an approximation unless `rank` is full).
    With `origin=(top, left)` the image is that window of the field's frame;
    grid PSFs with no weight in the window are left out (`drop_inactive`; the
    device simulator keeps every term for its static layout).
    """
    height, width = image_shape
    (gy, gx), k = field.grid_shape, field.kernel_size
    wy, wx = field.window_weights((height, width), origin)
    if rank is None:
        row_starts, window_h = _support_windows(wy)
        col_starts, window_w = _support_windows(wx)
        rows = row_starts[:, None] + np.arange(window_h)
        cols = col_starts[:, None] + np.arange(window_w)
        wy_win = np.take_along_axis(wy, rows, axis=1)
        wx_win = np.take_along_axis(wx, cols, axis=1)
        maps = (wy_win[:, None, :, None] * wx_win[None, :, None, :]).reshape(
            gy * gx, window_h, window_w
        )
        kernels = field.psfs.reshape(gy * gx, k, k)
        row_starts = np.repeat(row_starts, gx)
        col_starts = np.tile(col_starts, gy)
        if origin is not None and drop_inactive:
            active = maps.reshape(gy * gx, -1).any(axis=1)
            maps, kernels = maps[active], kernels[active]
            row_starts, col_starts = row_starts[active], col_starts[active]
        shared = len(kernels) == 1
    else:
        kernels, coefficients = field.low_rank(rank)
        maps = np.einsum("iy,ijr,jx->ryx", wy, coefficients, wx)
        row_starts = np.zeros(rank, dtype=int)
        col_starts = np.zeros(rank, dtype=int)
        window_h, window_w = height, width
        shared = True
    fft_shape = (fft_size(window_h + k - 1), fft_size(window_w + k - 1))
    kernels = np.ascontiguousarray(kernels, dtype=np.float64)
    return Plan(
        image_shape=(height, width),
        kernels=kernels,
        maps=np.ascontiguousarray(maps),
        row_starts=row_starts.astype(np.int64),
        col_starts=col_starts.astype(np.int64),
        fft_shape=fft_shape,
        # Windows of one frame share their spectra (same kernels and FFT size).
        kernel_fft=_kernel_spectra(kernels.tobytes(), kernels.shape, fft_shape),
        shared_window=bool(shared),
    )


def apply_numpy(plan, x, batch_chunk=8):
    """Applies the plan to `x` of shape `(batch, channels, H, W)`, float64."""
    height, width = plan.image_shape
    window_h, window_w = plan.window_shape
    fy, fx = plan.fft_shape
    k, r = plan.kernels.shape[-1], plan.radius
    out_h, out_w = window_h + k - 1, window_w + k - 1
    kernel_fft = plan.kernel_fft
    rows = plan.row_starts[:, None] + np.arange(window_h)
    cols = plan.col_starts[:, None] + np.arange(window_w)
    y = np.zeros(x.shape[:2] + (height + 2 * r, width + 2 * r))
    for start in range(0, x.shape[0], batch_chunk):
        xb = x[start : start + batch_chunk]
        # (b, c, terms, window_h, window_w)
        windows = xb[:, :, rows[:, :, None], cols[:, None, :]] * plan.maps
        spectra = np.fft.rfft2(windows, s=(fy, fx)) * kernel_fft
        if plan.shared_window:
            z = np.fft.irfft2(spectra.sum(axis=2), s=(fy, fx))[..., :out_h, :out_w]
            y[start : start + batch_chunk] += z
            continue
        z = np.fft.irfft2(spectra, s=(fy, fx))[..., :out_h, :out_w]
        yb = y[start : start + batch_chunk]
        for m, (r0, c0) in enumerate(zip(plan.row_starts, plan.col_starts)):
            yb[..., r0 : r0 + out_h, c0 : c0 + out_w] += z[:, :, m]
    return y[..., r : r + height, r : r + width]


def apply_tf(plan, x):
    """Applies the plan to a float32 tensor `x` of shape `(batch, H, W, C)`."""
    import tensorflow as tf

    height, width = plan.image_shape
    window_h, window_w = plan.window_shape
    fy, fx = plan.fft_shape
    k, r = plan.kernels.shape[-1], plan.radius
    out_h, out_w = window_h + k - 1, window_w + k - 1
    terms = plan.kernels.shape[0]

    pixel_index = (
        (plan.row_starts[:, None, None] + np.arange(window_h)[None, :, None]) * width
        + plan.col_starts[:, None, None]
        + np.arange(window_w)[None, None, :]
    )
    kernel_fft = plan.kernel_fft.astype(np.complex64)
    maps = plan.maps.astype(np.float32)

    channels_first = tf.transpose(x, [0, 3, 1, 2])
    flat = tf.reshape(
        channels_first, tf.concat([tf.shape(x)[:1], [-1, height * width]], 0)
    )
    windows = tf.gather(flat, pixel_index, axis=2) * maps  # (b, c, terms, wh, ww)
    spectra = tf.signal.rfft2d(windows, fft_length=[fy, fx]) * kernel_fft
    if plan.shared_window:
        z = tf.signal.irfft2d(tf.reduce_sum(spectra, axis=2), fft_length=[fy, fx])
        y = z[:, :, r : r + height, r : r + width]
        return tf.transpose(y, [0, 2, 3, 1])
    z = tf.signal.irfft2d(spectra, fft_length=[fy, fx])[..., :out_h, :out_w]
    # Overlap-add of the terms: output pixel of each (term, row, col), or -1
    # (dropped by unsorted_segment_sum) where it falls in the padding border.
    out_rows = plan.row_starts[:, None, None] + np.arange(out_h)[None, :, None] - r
    out_cols = plan.col_starts[:, None, None] + np.arange(out_w)[None, None, :] - r
    inside = (
        (out_rows >= 0) & (out_rows < height) & (out_cols >= 0) & (out_cols < width)
    )
    segment_ids = np.where(inside, out_rows * width + out_cols, -1).reshape(-1)
    z = tf.transpose(z, [2, 3, 4, 0, 1])  # (terms, out_h, out_w, b, c)
    z = tf.reshape(z, [terms * out_h * out_w, -1])
    y = tf.math.unsorted_segment_sum(z, segment_ids, height * width)
    y = tf.reshape(y, tf.concat([[height, width], tf.shape(x)[:1], tf.shape(x)[3:]], 0))
    return tf.transpose(y, [2, 0, 1, 3])
