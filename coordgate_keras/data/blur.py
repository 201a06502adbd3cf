"""Spatially-varying blur: the exact reference and the fast product convolution.

Both functions implement the same linear operator. A PSF belongs to the
*source* point, so a source pixel `p` spreads its intensity with its own PSF
`h_p` (the scatter form)::

    y(q) = sum_p x(p) * h_p(q - p),    h_p = sum_k w_k(p) * h_k,

where `h_k` are the grid PSFs of a `PSFField` and `w_k` their bilinear
interpolation weights (`PSFField.interpolation_weights`). Substituting `h_p`
gives the product convolution::

    y = sum_k h_k * (w_k ⊙ x),

which is the same operator, not an approximation: `blur_exact` and `blur_fast`
differ only by floating-point round-off of the FFTs. Both use zero padding
outside the image and return an output the size of the input. Each `h_p` sums
to 1, so total intensity is conserved for content at least `kernel_size // 2`
pixels away from the borders (light spread past the border is lost).

`blur_fast(..., rank=r)` instead uses the `r` leading SVD basis PSFs
(`PSFField.low_rank`, as in MultiWienerNet); that *is* an approximation, exact
only at full rank.

Images are `(height, width)`, `(height, width, channels)` or
`(batch, height, width, channels)` (channels_last); every channel is blurred
with the same PSFs. As everywhere in `coordgate_keras.data`, images are
floating-point intensities in `[0, 1]`: integer or boolean arrays, NaN or
infinity, and values outside `[0, 1]` are refused (scale 8-bit images by
`x / 255` first).
"""

import numpy as np

from coordgate_keras.data import _product_convolution
from coordgate_keras.data._images import check_images, image_layout
from coordgate_keras.data.psf_field import check_psf_field
from coordgate_keras.utils import argument_validation as av


def _to_bchw(images, psf_field, origin=None):
    """Validates `images` and returns them as float64 `(batch, channels, H, W)`,
    their `(H, W)` and the window's origin (None for a whole image)."""
    check_psf_field(psf_field)
    x = np.asarray(images)
    image_shape = image_layout(x.shape)
    check_images(x)
    if origin is None:
        psf_field.check_image_shape(image_shape)
    else:
        origin = psf_field.check_window(image_shape, origin)
    x = x.astype(np.float64)
    if x.ndim == 2:
        x = x[None, :, :, None]
    elif x.ndim == 3:
        x = x[None]
    return np.transpose(x, (0, 3, 1, 2)), image_shape, origin


def _from_bchw(y, like):
    y = np.transpose(y, (0, 2, 3, 1))
    if like.ndim == 2:
        y = y[0, :, :, 0]
    elif like.ndim == 3:
        y = y[0]
    dtype = like.dtype if like.dtype == np.float32 else np.float64
    return y.astype(dtype, copy=False)


def blur_exact(images, psf_field, origin=None):
    """Reference spatially-varying blur: every source pixel uses its own PSF.

    Computes `y(q) = sum_p x(p) * h_p(q - p)` directly in the pixel domain, with
    `h_p` the PSF bilinearly interpolated from the grid at source pixel `p`
    (see the module docstring). The sum is vectorised over pixels, one PSF
    offset at a time: `O(height * width * kernel_size**2)` operations, about a
    second at 256x256 with 31x31 PSFs. Zero padding; output the input's size.

    Args:
        images: float array `(H, W)`, `(H, W, C)` or `(B, H, W, C)`, values in
            `[0, 1]`.
        psf_field: `PSFField`.
        origin: tuple `(top, left)` or None. The images are then a window of
            the frame that `psf_field.image_shape` pins (required), starting at
            that pixel: each source pixel uses the frame's PSF there. No light
            comes from outside the window; to include it, blur a window with a
            margin of `psf_field.radius` pixels and trim it, which equals the
            same crop of the whole frame's blur (away from the frame's border
            the margin is all it needs; at the border, the frame's zero padding).

    Returns:
        Blurred images, same shape as `images`; float32 stays float32, other
        float dtypes give float64 (computed in float64).

    Example:

    >>> import numpy as np
    >>> from coordgate_keras import data
    >>> field = data.gaussian_psf_field(grid_shape=(4, 4), kernel_size=9)
    >>> blurred = data.blur_exact(np.ones((32, 32), "float32"), field)
    >>> blurred.shape, blurred.dtype
    ((32, 32), dtype('float32'))
    """
    x, (height, width), origin = _to_bchw(images, psf_field, origin)
    k, r = psf_field.kernel_size, psf_field.radius
    wy, wx = psf_field.window_weights((height, width), origin)
    y = np.zeros(x.shape[:2] + (height + 2 * r, width + 2 * r))
    for a in range(k):
        # h_p[a, b] for every source pixel p and every b: (k, height, width).
        psf_row = np.einsum(
            "iy,ijb,jx->byx", wy, psf_field.psfs[:, :, a, :], wx, optimize=True
        )
        for b in range(k):
            # Source pixel p lands on padded output pixel p + (a, b).
            y[:, :, a : a + height, b : b + width] += x * psf_row[b]
    return _from_bchw(y[:, :, r : r + height, r : r + width], np.asarray(images))


def blur_fast(images, psf_field, rank=None, origin=None):
    """Fast spatially-varying blur by product convolution with FFTs.

    Computes `y = sum_k h_k * (w_k ⊙ x)` (see the module docstring): the same
    operator as `blur_exact`, equal to it up to FFT round-off (about 1e-15
    relative in float64). Each term is convolved only over the window where its
    weight map `w_k` is non-zero (overlap-add), all terms in one batched FFT.

    With `rank`, the grid PSFs are replaced by `rank` SVD basis PSFs and
    interpolated coefficient maps (`PSFField.low_rank`): fewer FFTs, but an
    approximation unless `rank` equals the number of grid PSFs.

    Args:
        images: float array `(H, W)`, `(H, W, C)` or `(B, H, W, C)`, values in
            `[0, 1]`.
        psf_field: `PSFField`.
        rank: optional int. Number of SVD basis PSFs; `None` (default) uses the
            grid PSFs themselves (exact operator).
        origin: tuple `(top, left)` or None. A window of the pinned frame, as in
            `blur_exact`.

    Returns:
        Blurred images, same shape as `images`; float32 stays float32, other
        float dtypes give float64 (computed in float64).

    Example:

    >>> import numpy as np
    >>> from coordgate_keras import data
    >>> field = data.gaussian_psf_field(grid_shape=(4, 4), kernel_size=9)
    >>> image = np.random.default_rng(0).random((32, 32))
    >>> bool(np.allclose(data.blur_fast(image, field), data.blur_exact(image, field)))
    True
    """
    x, image_shape, origin = _to_bchw(images, psf_field, origin)
    plan = _product_convolution.cached_plan(psf_field, image_shape, rank, origin)
    y = _product_convolution.apply_numpy(plan, x)
    return _from_bchw(y, np.asarray(images))


def blur_fast_tf(images, psf_field, rank=None, origin=None):
    """`blur_fast` in TensorFlow ops (runs in-graph, e.g. in `Dataset.map`, and
    on GPU).

    Computes in float32/complex64 (relative difference to `blur_exact` about
    1e-6). The PSF spectra and weight maps are built once per
    `(psf_field, image shape, rank)` and embedded as constants. Called
    eagerly, it checks the images as `blur_fast` does (float, finite, in
    `[0, 1]`); inside a `tf.function` the values are not checked, only the
    dtype. On GPU the overlap-add (`tf.math.unsorted_segment_sum`) sums in a
    nondeterministic order (float32 round-off) unless
    `tf.config.experimental.enable_op_determinism()` is on.

    Args:
        images: float tensor or array `(H, W)`, `(H, W, C)` or `(B, H, W, C)`
            with a static shape, values in `[0, 1]`.
        psf_field: `PSFField`.
        rank: optional int. As in `blur_fast`.
        origin: tuple `(top, left)` or None. A window of the pinned frame, as in
            `blur_exact` (a Python tuple: the plan is built for it).

    Returns:
        A float32 tensor of the same shape as `images`.

    Example:

    >>> import numpy as np
    >>> from coordgate_keras import data
    >>> field = data.gaussian_psf_field(grid_shape=(4, 4), kernel_size=9)
    >>> data.blur_fast_tf(np.zeros((2, 32, 32, 3), "float32"), field).shape
    TensorShape([2, 32, 32, 3])
    """
    import tensorflow as tf

    check_psf_field(psf_field)
    x = tf.convert_to_tensor(images)
    if not x.dtype.is_floating:
        av.float_dtype(x.dtype.as_numpy_dtype, "images")
    if tf.executing_eagerly():
        check_images(tf.cast(x, tf.float32).numpy())
    x = tf.cast(x, tf.float32)
    shape = x.shape
    image_shape = image_layout(tuple(shape)) if shape.rank is not None else (None,)
    if None in image_shape:
        raise av.invalid_value(
            None,
            "images",
            "a tensor with a static rank, height and width",
            f"images.shape={shape}",
        )
    if origin is None:
        psf_field.check_image_shape(image_shape)
    else:
        origin = psf_field.check_window(image_shape, origin)
    plan = _product_convolution.cached_plan(psf_field, image_shape, rank, origin)
    ndim = shape.rank
    if ndim == 2:
        x = x[None, :, :, None]
    elif ndim == 3:
        x = x[None]
    y = _product_convolution.apply_tf(plan, x)
    if ndim == 2:
        return y[0, :, :, 0]
    if ndim == 3:
        return y[0]
    return y
