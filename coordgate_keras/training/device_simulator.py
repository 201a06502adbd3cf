"""The blur-and-noise simulator as a Keras layer, for the accelerator.

`DeviceSimulator` turns a batch of sharp images into blurred, noisy ones inside
the train step, so only sharp scenes travel from the host (a GPU step at
256x256 consumes ~1,300 images/s, far more than a NumPy simulator on a few
cores can blur).
"""

import keras
import numpy as np
from keras import ops

from coordgate_keras.data import NoiseModel, _product_convolution
from coordgate_keras.utils import argument_validation as av


class DeviceSimulator(keras.layers.Layer):
    """Spatially-varying blur and camera noise in `keras.ops`.

    The blur is the product convolution of `data.blur_fast`,
    `y = sum_k h_k * (w_k ⊙ x)` over the PSFs `h_k` of a `PSFField` and their
    bilinear weight maps `w_k`, each term convolved over its window with FFTs
    (`keras.ops.fft2`) and the terms overlap-added with static pads (no
    scatter, so the sum is deterministic). It is the same operator as
    `data.blur_exact`, equal to `data.blur_fast` up to float32 round-off.

    Noise follows `data.NoiseModel` (photons per image log-uniform in
    `photons_range`, read noise uniform in `read_noise_range`, then clipping)
    with one difference: the Poisson photon noise is replaced by its Gaussian
    approximation, `y + sqrt(y / photons) * N(0, 1)`, which has the same mean
    and variance (`keras.random` has no Poisson sampler). The two differ in
    shape only where a pixel collects a handful of photons (the darkest
    pixels at the lowest photon counts), where clipping at 0 dominates. The
    result is clipped to `[0, 1]`, as the host pipeline does.

    The layer simulates only when called with `training=True`; at inference
    it returns its input, so a model `DeviceSimulator -> network` trains on
    sharp images and predicts on blurred ones. It computes in float32 under
    any dtype policy.

    Args:
        psf_field: `data.PSFField`.
        image_shape: tuple `(height, width)` of the images.
        noise: a `data.NoiseModel`, a dict of its arguments, or None.
        seed: int or None. Seed of the noise.
        origin: tuple `(top, left)` or None. The images are then that window of
            the frame `psf_field.image_shape` pins (as in `data.blur_exact`).
        **kwargs: `keras.layers.Layer` arguments.

    Call arguments:
        inputs: float tensor `(batch, height, width, channels)` of sharp
            images in `[0, 1]`.
        training: bool. Simulate (True) or pass through.

    Input shape:
        `(batch, height, width, channels)`.

    Output shape:
        Same as the input.

    Example:

    >>> import numpy as np
    >>> from coordgate_keras import data
    >>> from coordgate_keras.training import DeviceSimulator
    >>> field = data.gaussian_psf_field(grid_shape=(4, 4), kernel_size=9)
    >>> sim = DeviceSimulator(field, (32, 32))
    >>> tuple(sim(np.ones((2, 32, 32, 1), "float32"), training=True).shape)
    (2, 32, 32, 1)
    """

    def __init__(
        self, psf_field, image_shape, noise=None, seed=None, origin=None, **kwargs
    ):
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        if isinstance(noise, dict):
            noise = NoiseModel(**noise)
        if noise is not None and not isinstance(noise, NoiseModel):
            raise av.invalid_value(
                None,
                "noise",
                "a `NoiseModel`, a dict of its arguments or None",
                f"noise={noise!r}",
            )
        if origin is None:
            psf_field.check_image_shape(tuple(image_shape), name="image_shape")
        else:
            origin = psf_field.check_window(tuple(image_shape), origin)
        self.origin = origin
        self.psf_field = psf_field
        self.image_shape = tuple(int(s) for s in image_shape)
        self.noise = noise
        self.seed_generator = keras.random.SeedGenerator(seed)
        self._plan_arrays()

    def _plan_arrays(self):
        plan = _product_convolution.make_plan(
            self.psf_field, self.image_shape, origin=self.origin, drop_inactive=False
        )
        (gy, gx), k = self.psf_field.grid_shape, self.psf_field.kernel_size
        self._grid = (gy, gx)
        self._radius = k // 2
        self._window = tuple(int(s) for s in plan.window_shape)
        self._fft_shape = tuple(int(s) for s in plan.fft_shape)
        # Terms are ordered node (i, j) -> i * gx + j (see make_plan).
        self._row_starts = [int(s) for s in plan.row_starts[::gx]]
        self._col_starts = [int(s) for s in plan.col_starts[:gx]]
        self._maps = plan.maps.reshape(gy, gx, *self._window).astype(np.float32)
        spectra = np.fft.fft2(plan.kernels, s=self._fft_shape).reshape(
            gy, gx, *self._fft_shape
        )
        self._kernel_real = spectra.real.astype(np.float32)
        self._kernel_imag = spectra.imag.astype(np.float32)

    def blur(self, images):
        """The noise-free blur of `images` `(batch, H, W, C)`, float32."""
        (gy, gx), (wh, ww), (fy, fx) = self._grid, self._window, self._fft_shape
        height, width = self.image_shape
        r, k = self._radius, 2 * self._radius + 1
        out_h, out_w = wh + k - 1, ww + k - 1
        x = ops.transpose(ops.cast(images, "float32"), (0, 3, 1, 2))  # (b, c, H, W)
        rows = np.add.outer(self._row_starts, np.arange(wh)).reshape(-1)
        cols = np.add.outer(self._col_starts, np.arange(ww)).reshape(-1)
        x = ops.take(x, rows, axis=2)  # (b, c, gy * wh, W)
        x = ops.take(x, cols, axis=3)  # (b, c, gy * wh, gx * ww)
        shape = ops.shape(x)
        x = ops.reshape(x, (shape[0], shape[1], gy, wh, gx, ww))
        x = ops.transpose(x, (0, 1, 2, 4, 3, 5)) * self._maps  # (b, c, gy, gx, wh, ww)
        zero = [[0, 0]] * 4
        x = ops.pad(x, zero + [[0, fy - wh], [0, fx - ww]])
        real, imag = ops.fft2((x, ops.zeros_like(x)))
        kr, ki = self._kernel_real, self._kernel_imag
        real, imag = real * kr - imag * ki, real * ki + imag * kr
        z, _ = ops.ifft2((real, imag))
        z = z[..., :out_h, :out_w]  # (b, c, gy, gx, out_h, out_w)
        # Overlap-add on the (H + 2r, W + 2r) canvas: columns, then rows.
        canvas_h, canvas_w = height + 2 * r, width + 2 * r
        by_row = 0.0
        for j, c0 in enumerate(self._col_starts):
            pads = [[0, 0]] * 4 + [[c0, canvas_w - c0 - out_w]]
            by_row = by_row + ops.pad(z[:, :, :, j], pads)  # (b, c, gy, out_h, W')
        y = 0.0
        for i, r0 in enumerate(self._row_starts):
            pads = [[0, 0], [0, 0], [r0, canvas_h - r0 - out_h], [0, 0]]
            y = y + ops.pad(by_row[:, :, i], pads)  # (b, c, H', W')
        y = y[:, :, r : r + height, r : r + width]
        return ops.transpose(y, (0, 2, 3, 1))

    def add_noise(self, images):
        """Camera noise (Gaussian approximation of the photon noise), float32."""
        noise = self.noise
        batch = ops.shape(images)[0]
        ones = len(images.shape) - 1
        param_shape = (batch,) + (1,) * ones
        log_lo, log_hi = np.log(noise.photons_range)
        photons = ops.exp(
            keras.random.uniform(param_shape, log_lo, log_hi, seed=self.seed_generator)
            if log_hi > log_lo
            else ops.full(param_shape, float(log_lo))
        )
        lo, hi = noise.read_noise_range
        read_noise = (
            keras.random.uniform(param_shape, lo, hi, seed=self.seed_generator)
            if hi > lo
            else ops.full(param_shape, float(lo))
        )
        shot = ops.sqrt(ops.maximum(images, 0.0) / photons)
        noisy = images + shot * keras.random.normal(
            ops.shape(images), seed=self.seed_generator
        )
        noisy = noisy + read_noise * keras.random.normal(
            ops.shape(images), seed=self.seed_generator
        )
        return ops.clip(noisy, 0.0, 1.0) if noise.clip else noisy

    def call(self, inputs, training=None):
        if not training:
            return inputs
        y = self.blur(inputs)
        if self.noise is not None:
            y = self.add_noise(y)
        return ops.clip(y, 0.0, 1.0)

    def compute_output_shape(self, input_shape):
        return input_shape
