import keras
import numpy as np
from keras import ops

from coordgate_keras.utils import argument_validation as av


@keras.saving.register_keras_serializable(package="coordgate_keras")
class MultiWienerDeconvolution(keras.layers.Layer):
    """Learnable multi-Wiener deconvolution: one Wiener filter per learnable PSF.

    Each input channel is deconvolved with each of `K` learnable point-spread
    functions `h_k` by a Wiener filter in the Fourier domain,
    `X_k = conj(H_k) Y / (|H_k|^2 + lambda_k)`, with a learnable non-negative
    regulariser `lambda_k` per PSF. As in MultiWienerNet, the image and the PSFs
    are zero-padded to twice the image size (so the circular FFT convolution
    does not wrap around), the PSF centre (`(height // 2, width // 2)`) is moved
    to the origin, and the result is cropped back to the input size.

    The PSFs have the input's spatial size. They are weights, not
    configuration: `get_config` does not store them, so `from_config` (and
    `keras.saving.load_model`) rebuilds the layer with Gaussian PSFs which the
    saved weights then overwrite. The FFTs always run in float32 (half-precision
    FFTs lose the small high-frequency terms the filter divides by); the output
    is cast to the layer's compute dtype. A `keras.config.epsilon()` in the
    denominator keeps it finite when a regulariser reaches zero.

    Written on `keras.ops` (`fft2`/`ifft2`), so it runs on every backend; the
    spatial size must be static (known when the layer is built).

    Args:
        num_psfs: int or None. Number of PSFs `K`; inferred from `psfs` when
            those are given. Defaults to 4.
        psfs: array or None. Initial PSF stack of shape `(height, width, K)`
            (channels last, whatever `data_format`). `None` initialises `K`
            normalised Gaussians of increasing width (see `gaussian_psfs`).
        initial_regularization: float. Initial value of every `lambda_k`, in
            the units of `|H|^2` (1 at zero frequency for a PSF summing to 1).
        data_format: str or None. `"channels_last"` or `"channels_first"`;
            defaults to `keras.config.image_data_format()`.
        **kwargs: base layer keyword arguments.

    Call arguments:
        inputs: a rank-4 tensor with static height and width.

    Input shape:
        `(batch, height, width, channels)` (or channels first).

    Output shape:
        `(batch, height, width, channels * K)`: channel `c * K + k` is input
        channel `c` deconvolved with PSF `k`.

    Example:

    >>> import numpy as np
    >>> from coordgate_keras.layers import MultiWienerDeconvolution
    >>> layer = MultiWienerDeconvolution(num_psfs=3)
    >>> tuple(layer(np.zeros((2, 32, 32, 1), "float32")).shape)
    (2, 32, 32, 3)

    Reference:
        - [Yanny et al., 2022](https://doi.org/10.1364/OPTICA.442438)
    """

    def __init__(
        self,
        num_psfs=None,
        psfs=None,
        initial_regularization=1e-2,
        data_format=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if psfs is not None:
            psfs = np.asarray(psfs, dtype="float32")
            av.array_rank(
                psfs.shape, "psfs", (3,), "an array of shape (height, width, num_psfs)"
            )
            if num_psfs is not None and num_psfs != psfs.shape[-1]:
                raise av.invalid_value(
                    num_psfs,
                    "num_psfs",
                    f"None or the number of PSFs in `psfs` ({psfs.shape[-1]})",
                )
            num_psfs = psfs.shape[-1]
        num_psfs = 4 if num_psfs is None else num_psfs
        self.num_psfs = av.positive_int(num_psfs, "num_psfs")
        self.psfs = psfs
        self.initial_regularization = av.number(
            initial_regularization, "initial_regularization", minimum=0.0
        )
        self.data_format = av.data_format(data_format)

    def build(self, input_shape):
        if len(input_shape) != 4:
            raise ValueError(
                "Invalid input shape for MultiWienerDeconvolution. Expected a tensor "
                f"of rank 4. Received: input_shape={tuple(input_shape)}"
            )
        height, width = self._spatial(input_shape)
        if height is None or width is None:
            raise ValueError(
                "Invalid input shape for MultiWienerDeconvolution. Expected static "
                f"height and width. Received: input_shape={tuple(input_shape)}"
            )
        if self.psfs is not None and self.psfs.shape[:2] != (height, width):
            raise ValueError(
                "Invalid input shape for MultiWienerDeconvolution. Expected the "
                f"spatial size of `psfs` {self.psfs.shape[:2]}. "
                f"Received: input_shape={tuple(input_shape)}"
            )
        initial = self.psfs
        if initial is None:
            initial = gaussian_psfs((height, width), self.num_psfs)
        # The constant must not end up in the config; a closure keeps it out.
        self.psf_kernel = self.add_weight(
            name="psfs",
            shape=(height, width, self.num_psfs),
            initializer=lambda shape, dtype=None: ops.cast(initial, dtype),
            autocast=False,
        )
        self.regularization = self.add_weight(
            name="regularization",
            shape=(self.num_psfs,),
            initializer=keras.initializers.Constant(self.initial_regularization),
            constraint=keras.constraints.NonNeg(),
            autocast=False,
        )

    def call(self, inputs):
        x = ops.cast(inputs, "float32")
        if self.data_format == "channels_last":
            x = ops.transpose(x, (0, 3, 1, 2))
        _, channels, height, width = x.shape
        top, left = (height + 1) // 2, (width + 1) // 2
        pad = [[top, height // 2], [left, width // 2]]

        y = ops.pad(x, [[0, 0], [0, 0]] + pad)
        y_re, y_im = ops.fft2((y, ops.zeros_like(y)))

        psfs = ops.transpose(ops.cast(self.psf_kernel, "float32"), (2, 0, 1))
        psfs = ops.pad(psfs, [[0, 0]] + pad)
        # Move the PSF centre to the origin (an ifftshift of the padded PSF).
        psfs = ops.roll(ops.roll(psfs, -height, axis=1), -width, axis=2)
        h_re, h_im = ops.fft2((psfs, ops.zeros_like(psfs)))

        reg = ops.cast(self.regularization, "float32")[:, None, None]
        denominator = ops.square(h_re) + ops.square(h_im) + reg
        denominator = denominator + keras.config.epsilon()
        y_re, y_im = y_re[:, :, None], y_im[:, :, None]
        x_re = (h_re * y_re + h_im * y_im) / denominator
        x_im = (h_re * y_im - h_im * y_re) / denominator
        x, _ = ops.ifft2((x_re, x_im))

        x = x[..., top : top + height, left : left + width]
        x = ops.reshape(x, (-1, channels * self.num_psfs, height, width))
        if self.data_format == "channels_last":
            x = ops.transpose(x, (0, 2, 3, 1))
        return ops.cast(x, self.compute_dtype)

    def compute_output_shape(self, input_shape):
        output_shape = list(input_shape)
        axis = -1 if self.data_format == "channels_last" else 1
        if output_shape[axis] is not None:
            output_shape[axis] *= self.num_psfs
        return tuple(output_shape)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_psfs": self.num_psfs,
                "initial_regularization": self.initial_regularization,
                "data_format": self.data_format,
            }
        )
        return config

    def _spatial(self, input_shape):
        if self.data_format == "channels_last":
            return input_shape[1], input_shape[2]
        return input_shape[2], input_shape[3]


def gaussian_psfs(size, num_psfs, min_sigma=1.0, max_sigma=None):
    """A stack of centred, normalised Gaussian PSFs of increasing width.

    Args:
        size: tuple of 2 ints. `(height, width)` of each PSF.
        num_psfs: int. Number of PSFs `K`.
        min_sigma: float. Standard deviation (pixels) of the narrowest PSF.
        max_sigma: float or None. Standard deviation of the widest PSF;
            defaults to `min(height, width) / 32`, at least `4 * min_sigma`.

    Returns:
        A float32 array of shape `(height, width, K)`, each PSF summing to 1 and
        centred at `(height // 2, width // 2)`; the widths are spaced
        geometrically.
    """
    height, width = size
    if max_sigma is None:
        max_sigma = max(4.0 * min_sigma, min(height, width) / 32)
    sigmas = np.geomspace(min_sigma, max_sigma, num_psfs)
    rows = np.arange(height) - height // 2
    cols = np.arange(width) - width // 2
    r2 = rows[:, None, None] ** 2 + cols[None, :, None] ** 2
    psfs = np.exp(-r2 / (2.0 * sigmas**2))
    return (psfs / psfs.sum(axis=(0, 1))).astype("float32")
