import numpy as np
import pytest

from coordgate_keras import data


def _covariance(psf):
    r = psf.shape[0] // 2
    y, x = np.mgrid[-r : r + 1, -r : r + 1]
    mx, my = (psf * x).sum(), (psf * y).sum()
    cxx = (psf * (x - mx) ** 2).sum()
    cyy = (psf * (y - my) ** 2).sum()
    cxy = (psf * (x - mx) * (y - my)).sum()
    return np.array([[cxx, cxy], [cxy, cyy]])


def test_gaussian_psf_covariance_closed_form():
    sigma, ellipticity, angle = 2.0, 0.4, 0.7
    psf = data.gaussian_psf(41, sigma, ellipticity, angle)
    rotation = np.array(
        [[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]]
    )
    expected = rotation @ np.diag([sigma**2, (sigma * 0.6) ** 2]) @ rotation.T
    np.testing.assert_allclose(_covariance(psf), expected, atol=1e-6)
    assert abs(psf.sum() - 1) < 1e-12


def test_gaussian_field_varies_with_field_height():
    field = data.gaussian_psf_field(
        grid_shape=(5, 5),
        kernel_size=31,
        sigma_center=1.0,
        sigma_edge=3.0,
        ellipticity_edge=0.5,
    )
    np.testing.assert_allclose(field.psfs.sum(axis=(2, 3)), 1.0, atol=1e-12)
    height, azimuth = data.field_coordinates((5, 5))
    # Centre node: h = 0, round with sigma_center.
    np.testing.assert_allclose(_covariance(field.psfs[2, 2]), np.eye(2), atol=1e-6)
    # Corner node (0, 4): h**2 = 0.64, sigma = 2.28, minor = 2.28 * (1 - 0.32),
    # major axis perpendicular to the radius (tangential).
    h2, psi = height[0, 4] ** 2, azimuth[0, 4]
    assert abs(h2 - 0.64) < 1e-12
    major, minor = 1.0 + 2.0 * h2, (1.0 + 2.0 * h2) * (1 - 0.5 * h2)
    values, vectors = np.linalg.eigh(_covariance(field.psfs[0, 4]))
    np.testing.assert_allclose(np.sqrt(values), [minor, major], rtol=1e-4)
    radius_direction = np.array([np.cos(psi), np.sin(psi)])
    assert abs(vectors[:, 1] @ radius_direction) < 1e-6
    radial = data.gaussian_psf_field((5, 5), 31, 1.0, 3.0, 0.5, orientation="radial")
    vectors = np.linalg.eigh(_covariance(radial.psfs[0, 4]))[1]
    assert abs(abs(vectors[:, 1] @ radius_direction) - 1) < 1e-6


def test_zernike_closed_forms():
    rng = np.random.default_rng(0)
    rho, theta = rng.random(50), rng.uniform(0, 2 * np.pi, 50)
    cases = {
        (2, 0): np.sqrt(3) * (2 * rho**2 - 1),
        (2, 2): np.sqrt(6) * rho**2 * np.cos(2 * theta),
        (2, -2): np.sqrt(6) * rho**2 * np.sin(2 * theta),
        (3, 1): np.sqrt(8) * (3 * rho**3 - 2 * rho) * np.cos(theta),
        (3, -1): np.sqrt(8) * (3 * rho**3 - 2 * rho) * np.sin(theta),
        (4, 0): np.sqrt(5) * (6 * rho**4 - 6 * rho**2 + 1),
    }
    for (n, m), expected in cases.items():
        np.testing.assert_allclose(data.zernike(n, m, rho, theta), expected, atol=1e-12)


def test_zernike_orthonormal_on_unit_disk():
    # Midpoint rule in polar coordinates: <Z_i Z_j> = delta_ij over the disk.
    rho = (np.arange(400) + 0.5) / 400
    theta = (np.arange(256) + 0.5) / 256 * 2 * np.pi
    rho, theta = np.meshgrid(rho, theta, indexing="ij")
    area = rho / 400 * (2 * np.pi / 256) / np.pi
    modes = [(2, 0), (2, 2), (2, -2), (3, 1), (3, -1), (4, 0)]
    values = [data.zernike(n, m, rho, theta) for n, m in modes]
    gram = np.array([[np.sum(a * b * area) for b in values] for a in values])
    np.testing.assert_allclose(gram, np.eye(len(modes)), atol=1e-3)


def _bessel_j1(v):
    tau = (np.arange(2000) + 0.5) / 2000 * np.pi
    return np.mean(np.cos(tau[None, :] - v[:, None] * np.sin(tau[None, :])), axis=1)


def test_diffraction_limited_psf_is_airy_pattern():
    airy_radius = 4.0
    psf = data.zernike_psf(31, airy_radius=airy_radius)
    r = np.arange(16)
    v = 3.8317059702 * np.maximum(r, 1e-9) / airy_radius
    airy = (2 * _bessel_j1(v) / v) ** 2
    profile = psf[15, 15:] / psf[15, 15]
    np.testing.assert_allclose(profile, airy, atol=3e-3)
    np.testing.assert_allclose(psf, psf.T, atol=1e-12)


def test_defocus_sign_symmetry_and_normalisation():
    plus = data.zernike_psf(21, {"defocus": 0.3})
    minus = data.zernike_psf(21, {(2, 0): -0.3})
    np.testing.assert_allclose(plus, minus, atol=1e-12)
    assert abs(plus.sum() - 1) < 1e-12
    assert plus.max() < data.zernike_psf(21).max()


def test_zernike_field_seidel_dependence():
    field = data.zernike_psf_field(grid_shape=(4, 4), kernel_size=21)
    psfs = field.psfs
    np.testing.assert_allclose(psfs.sum(axis=(2, 3)), 1.0, atol=1e-12)
    assert psfs.min() >= 0
    # Opposite field points: coma flips sign, astigmatism and defocus do not,
    # so the pupil is rotated by 180 degrees and so is the PSF.
    for i in range(4):
        for j in range(4):
            np.testing.assert_allclose(
                psfs[3 - i, 3 - j], psfs[i, j][::-1, ::-1], atol=1e-12
            )
    # Aberrations grow with field height: the corner PSF peaks lower.
    assert psfs[0, 0].max() < psfs[1, 1].max()
    flat = data.zernike_psf_field(
        (3, 3), 15, field_curvature=0, astigmatism=0, coma=0, spherical=0.1
    )
    np.testing.assert_allclose(
        flat.psfs, np.broadcast_to(flat.psfs[1, 1], flat.psfs.shape)
    )


def test_psf_argument_errors():
    with pytest.raises(ValueError, match=r"`kernel_size`. Expected a positive odd.*=4"):
        data.gaussian_psf(4, 1.0)
    with pytest.raises(
        ValueError, match=r"`sigma`. Expected a positive number.*sigma=0"
    ):
        data.gaussian_psf(5, 0)
    with pytest.raises(ValueError, match=r"`ellipticity`.*>= 0 and < 1.*ellipticity=1"):
        data.gaussian_psf(5, 1.0, ellipticity=1)
    with pytest.raises(ValueError, match=r"`orientation`.*orientation='spiral'"):
        data.gaussian_psf_field(orientation="spiral")
    with pytest.raises(ValueError, match=r"`n, m`.*n=2, m=1"):
        data.zernike(2, 1, 0.5, 0.0)
    with pytest.raises(ValueError, match=r"`coefficients`.*key 'trefoil'"):
        data.zernike_psf(9, {"trefoil": 0.1})
    with pytest.raises(
        ValueError, match=r"`coefficients`. Expected keys \(n, m\).*key 5"
    ):
        data.zernike_psf(9, {5: 0.1})
    with pytest.raises(ValueError, match=r"`coefficients\['defocus'\]`.*=inf"):
        data.zernike_psf(9, {"defocus": float("inf")})
    with pytest.raises(ValueError, match=r"`airy_radius`.*>= 1.22.*airy_radius=1.0"):
        data.zernike_psf_field(airy_radius=1.0)
    with pytest.raises(ValueError, match=r"`coma`. Expected a finite number.*coma=nan"):
        data.zernike_psf_field(coma=float("nan"))
