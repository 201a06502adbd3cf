"""Simulated bead images: point sources at sub-pixel positions through a field.

For tests, benchmarks and the walkthrough of `PSFField.from_beads`. A bead at a
sub-pixel position is rendered without any sub-pixel shift code: the field is
given at `oversample` times the camera's resolution, the beads sit on that fine
grid, the image is blurred there with the package's exact blur operator
(`blur_fast`, equal to `blur_exact` up to FFT round-off) and binned to camera
pixels (pixel integration). The camera-resolution field is the same binning of
the fine field (`bin_psf_field`).
"""

import numpy as np

from coordgate_keras.data.blur import blur_fast
from coordgate_keras.data.psf_field import PSFField
from coordgate_keras.utils import argument_validation as av


def bin_psf_field(psf_field, factor, image_shape=None):
    """The field seen by pixels `factor` times larger (sums of `factor`^2 blocks).

    Args:
        psf_field: `PSFField` whose `kernel_size` is `factor` times an odd size.
        factor: int. Odd binning factor (so that kernel centres stay centres).
        image_shape: optional tuple, the coarse image size to pin.

    Returns:
        A `PSFField` with `kernel_size // factor` PSFs.
    """
    factor = av.positive_int(factor, "factor")
    k = psf_field.kernel_size
    if factor % 2 == 0 or k % factor or (k // factor) % 2 == 0:
        raise av.invalid_value(
            factor,
            "factor",
            f"an odd integer dividing kernel_size={k} into an odd size",
        )
    gy, gx = psf_field.grid_shape
    n = k // factor
    psfs = psf_field.psfs.reshape(gy, gx, n, factor, n, factor).sum(axis=(3, 5))
    return PSFField(psfs, image_shape=image_shape, normalize=True)


def simulate_bead_image(
    psf_field,
    positions,
    image_shape,
    peak_photons=2000.0,
    background=10.0,
    read_noise=0.0,
    oversample=1,
    seed=None,
):
    """One noisy camera image of beads at sub-pixel positions.

    Args:
        psf_field: `PSFField` at `oversample` times the camera resolution
            (`kernel_size` = `oversample` x an odd camera kernel size).
        positions: array `(beads, 2)` of (row, col) in camera pixels. Rounded
            to the fine grid (steps of `1 / oversample`); the rounded ones are
            returned.
        image_shape: tuple `(height, width)` of the camera image.
        peak_photons: float or array `(beads,)`. Expected photons in the
            brightest pixel of each bead (its flux is this over the peak of its
            camera-resolution PSF). Defaults to 2000.
        background: float. Expected background photons per pixel.
        read_noise: float. Gaussian read noise (photons, standard deviation).
        oversample: int. Odd factor between the field's and the camera's
            resolution. Defaults to 1.
        seed: optional int. Noise seed.

    Returns:
        Tuple `(image, positions, field)`: the float64 image in photons (not
        clipped: cast or clip it as a camera would), the rounded positions
        and the camera-resolution `PSFField` (the truth).
    """
    image_shape = av.shape(image_shape, "image_shape", rank=2)
    oversample = av.positive_int(oversample, "oversample")
    field = bin_psf_field(psf_field, oversample, image_shape=image_shape)
    positions = np.asarray(positions, dtype=np.float64).reshape(-1, 2)
    s = oversample
    fine = np.round(positions * s + (s - 1) / 2).astype(int)
    positions = (fine - (s - 1) / 2) / s
    peaks = np.broadcast_to(
        np.asarray(peak_photons, np.float64), (len(positions),)
    ).copy()
    flux = np.array(
        [
            p / field.psf_at(r, c, image_shape).max()
            for p, (r, c) in zip(peaks, positions)
        ]
    )
    scene = np.zeros((image_shape[0] * s, image_shape[1] * s))
    np.add.at(scene, (fine[:, 0], fine[:, 1]), flux)
    scale = max(float(scene.max()), 1e-300)
    blurred = blur_fast(scene / scale, psf_field) * scale
    blurred = np.maximum(blurred, 0.0)
    expected = blurred.reshape(image_shape[0], s, image_shape[1], s).sum(axis=(1, 3))
    rng = np.random.default_rng(seed)
    image = rng.poisson(expected + background).astype(np.float64)
    if read_noise:
        image += rng.normal(0.0, read_noise, image.shape)
    return image, positions, field
