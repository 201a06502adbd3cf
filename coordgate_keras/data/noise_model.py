"""Poisson (photon) + Gaussian (read) noise with per-image parameters."""

import numpy as np

from coordgate_keras.data._images import check_images, image_layout
from coordgate_keras.utils import argument_validation as av


class NoiseModel:
    """Camera noise: photon shot noise plus Gaussian read noise, then clipping.

    For an image `y` with values in `[0, 1]` (1 = the brightest expected
    signal) each image draws its own parameters,

    - `photons` log-uniformly from `photons_range`: photons collected at
      intensity 1,
    - `read_noise` uniformly from `read_noise_range`: read-noise standard
      deviation in intensity units,

    and becomes `Poisson(photons * max(y, 0)) / photons + Normal(0,
    read_noise**2)`, so the mean is unchanged and the variance is
    `y / photons + read_noise**2`. With `clip=True` the result is then clipped
    to `[0, 1]` (saturation and a zero floor; this biases the mean of pixels
    within a few standard deviations of 0 or 1 upwards/downwards).

    Args:
        photons_range: tuple `(min, max)` of positive floats. Defaults to
            `(100.0, 1000.0)`.
        read_noise_range: tuple `(min, max)` of non-negative floats. Defaults
            to `(0.0, 0.02)`.
        clip: bool. Clip the noisy image to `[0, 1]`. Defaults to `True`.

    Example:

    >>> import numpy as np
    >>> from coordgate_keras.data import NoiseModel
    >>> noise = NoiseModel(photons_range=(200, 200), read_noise_range=(0.01, 0.01))
    >>> noisy = noise(np.full((2, 64, 64, 1), 0.5, "float32"), seed=0)
    >>> noisy.shape, noisy.dtype
    ((2, 64, 64, 1), dtype('float32'))
    """

    def __init__(
        self, photons_range=(100.0, 1000.0), read_noise_range=(0.0, 0.02), clip=True
    ):
        self.photons_range = av.number_range(
            photons_range, "photons_range", minimum=0.0, min_inclusive=False
        )
        self.read_noise_range = av.number_range(
            read_noise_range, "read_noise_range", minimum=0.0
        )
        self.clip = av.boolean(clip, "clip")

    def __repr__(self):
        return (
            f"NoiseModel(photons_range={self.photons_range}, "
            f"read_noise_range={self.read_noise_range}, clip={self.clip})"
        )

    def sample_parameters(self, rng):
        """Draws `(photons, read_noise)` for one image from a NumPy generator."""
        log_lo, log_hi = np.log(self.photons_range)
        photons = float(np.exp(rng.uniform(log_lo, log_hi)))
        read_noise = float(rng.uniform(*self.read_noise_range))
        return photons, read_noise

    def __call__(self, images, seed=None):
        """Adds noise with NumPy.

        Args:
            images: array-like `(H, W)`, `(H, W, C)` (one image) or
                `(B, H, W, C)` (each image its own parameters); float, values
                in `[0, 1]`.
            seed: optional non-negative int.

        Returns:
            Noisy images, same shape; float32 stays float32, else float64.
        """
        seed = av.seed(seed, "seed")
        x = np.asarray(images)
        image_layout(x.shape)
        check_images(x)
        dtype = x.dtype if x.dtype == np.float32 else np.float64
        batch = x.astype(np.float64)
        if x.ndim < 4:
            batch = batch[None]
        rng = np.random.default_rng(seed)
        out = np.empty_like(batch)
        for i, image in enumerate(batch):
            photons, read_noise = self.sample_parameters(rng)
            noisy = rng.poisson(photons * np.maximum(image, 0.0)) / photons
            noisy = noisy + rng.normal(0.0, 1.0, image.shape) * read_noise
            out[i] = np.clip(noisy, 0.0, 1.0) if self.clip else noisy
        return out.reshape(x.shape).astype(dtype, copy=False)

    def apply_tf(self, image, seed):
        """Adds noise with stateless TensorFlow ops (for `tf.data` pipelines).

        Same distribution as `__call__` (not the same random numbers).

        Args:
            image: float32 tensor, one image `(H, W, C)`.
            seed: int tensor of shape `(2,)`, e.g. `(dataset_seed, index)`.

        Returns:
            A float32 tensor of the shape of `image`.
        """
        import tensorflow as tf

        seeds = tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), 4)
        log_lo, log_hi = np.log(self.photons_range)
        photons = (
            tf.exp(
                tf.random.stateless_uniform(
                    [], seeds[0], log_lo, log_hi, dtype=tf.float32
                )
            )
            if log_hi > log_lo
            else tf.constant(self.photons_range[0], tf.float32)
        )
        lo, hi = self.read_noise_range
        read_noise = (
            tf.random.stateless_uniform([], seeds[1], lo, hi, dtype=tf.float32)
            if hi > lo
            else tf.constant(lo, tf.float32)
        )
        rate = photons * tf.maximum(image, 0.0)
        counts = tf.random.stateless_poisson(
            tf.shape(image), seeds[2], rate, dtype=tf.float32
        )
        noisy = counts / photons + read_noise * tf.random.stateless_normal(
            tf.shape(image), seeds[3], dtype=tf.float32
        )
        return tf.clip_by_value(noisy, 0.0, 1.0) if self.clip else noisy
