"""Point-spread-function models: Gaussian and pupil/Zernike (diffraction) PSFs.

`gaussian_psf_field` is the cheap default: Gaussian PSFs whose width,
ellipticity and orientation vary smoothly over the field. `zernike_psf_field`
is physically based: each PSF is `|FFT(pupil)|**2` of a circular pupil with
Zernike aberrations whose coefficients grow with field height as in a real lens
(Seidel field dependence).

Field position: grid node `(i, j)` sits at normalised field coordinates
`u = (2 (j + 0.5) / grid_cols - 1, 2 (i + 0.5) / grid_rows - 1)` (x to the
right along columns, y down along rows); its field height is
`h = |u| / sqrt(2)`, 0 on the optical axis and 1 at the image corners; its
azimuth is `psi = atan2(u_y, u_x)`.
"""

import math

import numpy as np

from coordgate_keras.data._product_convolution import fft_size
from coordgate_keras.data.psf_field import PSFField
from coordgate_keras.utils import argument_validation as av

# Zernike modes by name, (n, m) with Noll's normalisation (unit RMS on the pupil).
ZERNIKE_MODES = {
    "piston": (0, 0),
    "tilt_x": (1, 1),
    "tilt_y": (1, -1),
    "defocus": (2, 0),
    "astigmatism_0": (2, 2),
    "astigmatism_45": (2, -2),
    "coma_x": (3, 1),
    "coma_y": (3, -1),
    "spherical": (4, 0),
}


def _check_kernel_size(kernel_size):
    if not av.is_int(kernel_size) or kernel_size < 1 or kernel_size % 2 == 0:
        raise av.invalid_value(kernel_size, "kernel_size", "a positive odd integer")
    return int(kernel_size)


def field_coordinates(grid_shape):
    """Normalised field coordinates of the nodes of a PSF grid.

    Args:
        grid_shape: tuple `(grid_rows, grid_cols)`.

    Returns:
        Tuple `(height, azimuth)` of arrays `(grid_rows, grid_cols)`: field
        height `h` in `[0, 1)` (1 at the image corners) and azimuth `psi` in
        radians (0 along +x, increasing towards +y, i.e. downwards).
    """
    gy, gx = av.shape(grid_shape, "grid_shape", rank=2)
    uy = 2 * (np.arange(gy) + 0.5) / gy - 1
    ux = 2 * (np.arange(gx) + 0.5) / gx - 1
    uy, ux = np.meshgrid(uy, ux, indexing="ij")
    return np.hypot(ux, uy) / np.sqrt(2), np.arctan2(uy, ux)


# === Gaussian PSFs ===


def gaussian_psf(kernel_size, sigma, ellipticity=0.0, angle=0.0):
    """An elliptical Gaussian PSF sampled at pixel centres, summing to 1.

    Args:
        kernel_size: int. Odd kernel size.
        sigma: float. Standard deviation along the major axis, in pixels.
        ellipticity: float. `1 - sigma_minor / sigma_major`, in `[0, 1)`.
            Defaults to 0 (round).
        angle: float. Direction of the major axis in radians, from +x (columns)
            towards +y (rows, downwards). Defaults to 0.

    Returns:
        A float64 array `(kernel_size, kernel_size)`.

    Example:

    >>> from coordgate_keras.data import gaussian_psf
    >>> psf = gaussian_psf(7, sigma=1.5, ellipticity=0.3, angle=0.5)
    >>> psf.shape, round(float(psf.sum()), 6)
    ((7, 7), 1.0)
    """
    kernel_size = _check_kernel_size(kernel_size)
    sigma = av.number(sigma, "sigma", minimum=0, min_inclusive=False)
    ellipticity = av.number(
        ellipticity, "ellipticity", minimum=0, maximum=1, max_inclusive=False
    )
    angle = av.number(angle, "angle")
    r = kernel_size // 2
    y, x = np.mgrid[-r : r + 1, -r : r + 1].astype(np.float64)
    u = x * np.cos(angle) + y * np.sin(angle)
    v = -x * np.sin(angle) + y * np.cos(angle)
    sigma_minor = sigma * (1 - ellipticity)
    psf = np.exp(-0.5 * ((u / sigma) ** 2 + (v / sigma_minor) ** 2))
    return psf / psf.sum()


def gaussian_psf_field(
    grid_shape=(8, 8),
    kernel_size=15,
    sigma_center=1.0,
    sigma_edge=2.5,
    ellipticity_edge=0.4,
    orientation="tangential",
    image_shape=None,
):
    """A field of Gaussian PSFs that widen and elongate away from the axis.

    At field height `h` (see the module docstring) the PSF has major-axis
    width `sigma_center + (sigma_edge - sigma_center) * h**2` and ellipticity
    `ellipticity_edge * h**2`, its major axis tangential (perpendicular to the
    radius, like astigmatism's sagittal/tangential split) or radial.

    Args:
        grid_shape: tuple `(grid_rows, grid_cols)`. Defaults to `(8, 8)`.
        kernel_size: int. Odd PSF size; keep it `>= 6 * sigma_edge + 1` so
            the PSFs are not truncated. Defaults to 15.
        sigma_center: float. Width on the optical axis (pixels). Defaults to 1.
        sigma_edge: float. Width at the image corners. Defaults to 2.5.
        ellipticity_edge: float in `[0, 1)`. Ellipticity at the image corners.
            Defaults to 0.4.
        orientation: str. `"tangential"` (default) or `"radial"`.
        image_shape: optional tuple `(height, width)` stored in the field.

    Returns:
        A `PSFField`.

    Example:

    >>> from coordgate_keras.data import gaussian_psf_field
    >>> gaussian_psf_field(grid_shape=(4, 4), kernel_size=11).psfs.shape
    (4, 4, 11, 11)
    """
    kernel_size = _check_kernel_size(kernel_size)
    sigma_center = av.number(
        sigma_center, "sigma_center", minimum=0, min_inclusive=False
    )
    sigma_edge = av.number(sigma_edge, "sigma_edge", minimum=0, min_inclusive=False)
    ellipticity_edge = av.number(
        ellipticity_edge,
        "ellipticity_edge",
        minimum=0,
        maximum=1,
        max_inclusive=False,
    )
    av.choice(orientation, "orientation", ("tangential", "radial"))
    height, azimuth = field_coordinates(grid_shape)
    angles = azimuth + (np.pi / 2 if orientation == "tangential" else 0.0)
    psfs = np.empty(height.shape + (kernel_size, kernel_size))
    for index in np.ndindex(height.shape):
        h2 = height[index] ** 2
        psfs[index] = gaussian_psf(
            kernel_size,
            sigma=sigma_center + (sigma_edge - sigma_center) * h2,
            ellipticity=ellipticity_edge * h2,
            angle=angles[index],
        )
    return PSFField(psfs, image_shape=image_shape, normalize=True)


# === Pupil (diffraction) PSFs ===


def zernike(n, m, rho, theta):
    """Zernike polynomial `Z_n^m` with Noll's normalisation.

    `Z_n^m = N R_n^|m|(rho) cos(m theta)` for `m >= 0` and
    `N R_n^|m|(rho) sin(|m| theta)` for `m < 0`, with
    `N = sqrt(2 (n + 1))` (`sqrt(n + 1)` for `m = 0`), so every mode has unit
    RMS over the unit disk. Values outside the disk are not masked.

    Args:
        n: int. Radial order, `>= 0`.
        m: int. Azimuthal order, `|m| <= n`, `n - |m|` even.
        rho: array-like. Normalised pupil radius.
        theta: array-like. Pupil azimuth in radians.

    Returns:
        A float64 array, the broadcast shape of `rho` and `theta`.

    Example:

    >>> from coordgate_keras.data import zernike
    >>> float(zernike(2, 0, 1.0, 0.0))  # defocus at the pupil edge: sqrt(3)
    1.7320508075688772
    """
    if not av.is_int(n) or not av.is_int(m) or n < 0 or abs(m) > n or (n - abs(m)) % 2:
        raise av.invalid_value(
            None,
            "n, m",
            "integers with n >= 0, |m| <= n and n - |m| even",
            f"n={n!r}, m={m!r}",
        )
    rho = np.asarray(rho, dtype=np.float64)
    theta = np.asarray(theta, dtype=np.float64)
    am = abs(m)
    radial = np.zeros(np.broadcast(rho, theta).shape)
    for s in range((n - am) // 2 + 1):
        c = (-1) ** s * math.factorial(n - s)
        c /= (
            math.factorial(s)
            * math.factorial((n + am) // 2 - s)
            * math.factorial((n - am) // 2 - s)
        )
        radial = radial + c * rho ** (n - 2 * s)
    if m == 0:
        return np.sqrt(n + 1) * radial
    angular = np.cos(m * theta) if m > 0 else np.sin(am * theta)
    return np.sqrt(2 * (n + 1)) * radial * angular


def _mode(key):
    if isinstance(key, str):
        if key not in ZERNIKE_MODES:
            raise av.invalid_value(
                None,
                "coefficients",
                f"keys (n, m) or names in {sorted(ZERNIKE_MODES)}",
                f"key {key!r}",
            )
        return ZERNIKE_MODES[key]
    try:
        n, m = key
    except (TypeError, ValueError):
        raise av.invalid_value(
            None, "coefficients", "keys (n, m) or Zernike mode names", f"key {key!r}"
        ) from None
    return int(n), int(m)


class _Pupil:
    """Sampled pupil geometry shared by all PSFs of one kernel and sampling."""

    def __init__(self, kernel_size, airy_radius):
        # Airy first-zero radius in PSF pixels is 1.21967 * size / diameter, with
        # the pupil `diameter` samples wide in an FFT of `size`. The pupil must
        # fit the FFT (airy_radius >= 1.22) and be >= ~48 samples wide so the
        # aberration phase is well resolved.
        size = fft_size(max(2 * kernel_size, math.ceil(48 * airy_radius / 1.21967)))
        diameter = 1.21967 * size / airy_radius
        coords = np.arange(size) - size // 2
        y, x = np.meshgrid(coords, coords, indexing="ij")
        self.rho = np.hypot(x, y) / (diameter / 2)
        self.theta = np.arctan2(y, x)
        self.aperture = (self.rho <= 1.0).astype(np.float64)
        self.size = size
        self.kernel_size = kernel_size

    def psfs(self, wavefronts):
        """PSFs `(..., k, k)` of wavefront errors `(..., size, size)` in waves."""
        pupil = self.aperture * np.exp(2j * np.pi * wavefronts)
        field = np.fft.fft2(np.fft.ifftshift(pupil, axes=(-2, -1)))
        intensity = np.fft.fftshift(np.abs(field) ** 2, axes=(-2, -1))
        c, r = self.size // 2, self.kernel_size // 2
        psf = intensity[..., c - r : c + r + 1, c - r : c + r + 1]
        return psf / psf.sum(axis=(-2, -1), keepdims=True)


def zernike_psf(kernel_size, coefficients=None, airy_radius=2.5):
    """Diffraction PSF `|FFT(pupil)|**2` of a circular pupil with aberrations.

    The pupil is `P = circ(rho) * exp(2 pi i W)` with wavefront error
    `W = sum c_nm Z_n^m(rho, theta)` in waves (RMS, Noll-normalised). The PSF
    is cropped to `kernel_size` around the optical axis and normalised to sum
    1 (energy outside the crop is dropped).

    Args:
        kernel_size: int. Odd kernel size.
        coefficients: optional dict `{(n, m) or name: waves}`, names from
            `ZERNIKE_MODES` (e.g. `"defocus"`, `"coma_x"`). Defaults to none
            (the diffraction-limited Airy pattern).
        airy_radius: float. Radius of the first dark Airy ring in pixels,
            i.e. `1.22 * wavelength / (2 NA)` over the pixel size; `>= 1.22`.
            Below about 2.44 the PSF is under-sampled (aliased). Defaults to 2.5.

    Returns:
        A float64 array `(kernel_size, kernel_size)`.

    Example:

    >>> from coordgate_keras.data import zernike_psf
    >>> psf = zernike_psf(15, {"defocus": 0.2, "coma_x": 0.1})
    >>> psf.shape, round(float(psf.sum()), 6)
    ((15, 15), 1.0)
    """
    kernel_size = _check_kernel_size(kernel_size)
    airy_radius = av.number(airy_radius, "airy_radius", minimum=1.22)
    pupil = _Pupil(kernel_size, airy_radius)
    wavefront = np.zeros_like(pupil.rho)
    for key, value in (coefficients or {}).items():
        n, m = _mode(key)
        value = av.number(value, f"coefficients[{key!r}]")
        wavefront += value * zernike(n, m, pupil.rho, pupil.theta)
    return pupil.psfs(wavefront)


def zernike_psf_field(
    grid_shape=(8, 8),
    kernel_size=21,
    airy_radius=2.5,
    defocus=0.0,
    field_curvature=0.25,
    astigmatism=0.25,
    coma=0.2,
    spherical=0.05,
    image_shape=None,
):
    """A field of diffraction PSFs with Seidel-like field-dependent aberrations.

    At a node of field height `h` and azimuth `psi` (module docstring), the
    Zernike coefficients in waves RMS are::

        defocus      Z(2, 0):    defocus + field_curvature * h**2
        astigmatism  Z(2, +-2):  astigmatism * h**2 * (cos 2psi, sin 2psi)
        coma         Z(3, +-1):  coma * h * (cos psi, sin psi)
        spherical    Z(4, 0):    spherical

    i.e. the Seidel field dependence: spherical constant, coma linear,
    astigmatism and field curvature quadratic in `h`, oriented along the
    field azimuth.

    Args:
        grid_shape: tuple `(grid_rows, grid_cols)`. Defaults to `(8, 8)`.
        kernel_size: int. Odd PSF size. Defaults to 21.
        airy_radius: float. First dark ring radius in pixels (see
            `zernike_psf`). Defaults to 2.5.
        defocus: float. Uniform defocus, waves RMS. Defaults to 0.
        field_curvature: float. Extra defocus at the corners. Defaults to 0.25.
        astigmatism: float. Astigmatism at the corners. Defaults to 0.25.
        coma: float. Coma at the corners. Defaults to 0.2.
        spherical: float. Spherical aberration everywhere. Defaults to 0.05.
        image_shape: optional tuple `(height, width)` stored in the field.

    Returns:
        A `PSFField`.

    Example:

    >>> from coordgate_keras.data import zernike_psf_field
    >>> zernike_psf_field(grid_shape=(3, 3), kernel_size=15).grid_shape
    (3, 3)
    """
    kernel_size = _check_kernel_size(kernel_size)
    airy_radius = av.number(airy_radius, "airy_radius", minimum=1.22)
    amounts = {
        name: av.number(value, name)
        for name, value in dict(
            defocus=defocus,
            field_curvature=field_curvature,
            astigmatism=astigmatism,
            coma=coma,
            spherical=spherical,
        ).items()
    }
    height, azimuth = field_coordinates(grid_shape)
    pupil = _Pupil(kernel_size, airy_radius)
    modes = {
        mode: zernike(*mode, pupil.rho, pupil.theta)
        for mode in [(2, 0), (2, 2), (2, -2), (3, 1), (3, -1), (4, 0)]
    }
    psfs = np.empty(height.shape + (kernel_size, kernel_size))
    for index in np.ndindex(height.shape):
        h, psi = height[index], azimuth[index]
        coefficients = {
            (2, 0): amounts["defocus"] + amounts["field_curvature"] * h**2,
            (2, 2): amounts["astigmatism"] * h**2 * np.cos(2 * psi),
            (2, -2): amounts["astigmatism"] * h**2 * np.sin(2 * psi),
            (3, 1): amounts["coma"] * h * np.cos(psi),
            (3, -1): amounts["coma"] * h * np.sin(psi),
            (4, 0): amounts["spherical"],
        }
        wavefront = sum(c * modes[mode] for mode, c in coefficients.items())
        psfs[index] = pupil.psfs(wavefront)
    return PSFField(psfs, image_shape=image_shape, normalize=True)
