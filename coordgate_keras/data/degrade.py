"""The one degradation of the package: blur, then noise, then clip."""

import numpy as np

from coordgate_keras.data.blur import blur_fast


def degrade(sharp, field, noise=None, seed=None, origin=None):
    """Simulates what the camera records: `sharp` blurred by `field`, noisy, clipped.

    The order is fixed: `blur_fast` (in float64), then `noise` (the noise
    model clips its own output when it is set to), then a clip to `[0, 1]`.
    Training pairs, held-out sets, the demo, the studies and int8 calibration
    all come from here, so they see the same operator.

    Args:
        sharp: float array `(H, W)`, `(H, W, C)` or `(B, H, W, C)`, values in
            `[0, 1]`.
        field: `PSFField`. The spatially-varying PSF.
        noise: optional `NoiseModel` (or any callable `noise(images, seed=)`);
            `None` leaves the blurred images noiseless.
        seed: optional non-negative int. Seeds the noise.
        origin: optional `(top, left)`: `sharp` is that window of the frame the
            field is pinned to (see `blur_fast`).

    Returns:
        float32 array of `sharp`'s shape, values in `[0, 1]`.

    Example:

    >>> import numpy as np
    >>> from coordgate_keras import data
    >>> field = data.gaussian_psf_field(grid_shape=(4, 4), kernel_size=9)
    >>> sharp = data.microscopy_scenes(2, image_shape=(32, 32), seed=0)
    >>> blurred = data.degrade(sharp, field, data.NoiseModel(), seed=0)
    >>> blurred.shape, blurred.dtype, bool(blurred.min() >= 0 and blurred.max() <= 1)
    ((2, 32, 32, 1), dtype('float32'), True)
    """
    blurred = blur_fast(np.asarray(sharp, np.float64), field, origin=origin)
    if noise is not None:
        blurred = noise(blurred, seed=seed)
    return np.clip(blurred, 0.0, 1.0).astype(np.float32)
