"""`PSFField.from_beads` against known fields, and its errors.

The bead images are rendered by `bead_simulation` with the package's exact
blur on a 3x oversampled field, then binned: sub-pixel positions without the
estimator's Fourier-shift code. The truth is the binned field.
"""

import numpy as np
import pytest

from coordgate_keras import data
from coordgate_keras.data import BeadReport, PSFField
from coordgate_keras.data.bead_simulation import bin_psf_field, simulate_bead_image

OVERSAMPLE = 3
KERNEL = 21
GRID = (4, 4)
FRAME = (256, 256)
SPACING = 32


def _relative_errors(estimate, truth):
    k2 = truth.kernel_size**2
    diff = (estimate.psfs - truth.psfs).reshape(-1, k2)
    return np.linalg.norm(diff, axis=1) / np.linalg.norm(
        truth.psfs.reshape(-1, k2), axis=1
    )


def _psnr(a, b):
    return 10 * np.log10(1.0 / np.mean((a - b) ** 2))


def _bead_set(fine_field, seed):
    """Two uint16 frames: isolated beads (~6.75 per cell at 2,000 peak photons),
    6 saturated beads and 4 touching pairs per frame, background 10 photons."""
    rng = np.random.default_rng(seed)
    centres = np.arange(SPACING / 2, FRAME[0], SPACING)
    slots = np.array([(r, c) for r in centres for c in centres])
    frames, good, saturated, pairs = [], [], [], []
    for i in range(2):
        jittered = slots + rng.uniform(-2.0, 2.0, slots.shape)
        kind = rng.permutation(np.repeat([0, 1, 2], [len(slots) - 10, 6, 4]))
        angle = rng.uniform(0, np.pi, (len(slots), 1))
        offset = 4.5 * np.concatenate([np.cos(angle), np.sin(angle)], axis=1)
        positions = np.concatenate(
            [
                jittered[kind == 0],
                jittered[kind == 1],
                jittered[kind == 2] + offset[kind == 2],
                jittered[kind == 2] - offset[kind == 2],
            ]
        )
        peaks = np.concatenate(
            [
                np.full(np.sum(kind == 0), 2000.0),
                np.full(np.sum(kind == 1), 2.0e5),
                np.full(2 * np.sum(kind == 2), 2000.0),
            ]
        )
        image, positions, truth = simulate_bead_image(
            fine_field,
            positions,
            FRAME,
            peak_photons=peaks,
            background=10.0,
            oversample=OVERSAMPLE,
            seed=seed * 10 + i,
        )
        frames.append(np.clip(image, 0, 65535).astype(np.uint16))
        n_good, n_sat = np.sum(kind == 0), np.sum(kind == 1)
        good.append(np.c_[np.full(n_good, i), positions[:n_good]])
        saturated.append(np.c_[np.full(n_sat, i), positions[n_good : n_good + n_sat]])
        pairs.append(np.c_[np.full(8, i), positions[n_good + n_sat :]])
    return dict(
        frames=frames,
        truth=truth,
        good=np.concatenate(good),
        saturated=np.concatenate(saturated),
        pairs=np.concatenate(pairs),
    )


def _fine_gaussian():
    s = OVERSAMPLE
    return data.gaussian_psf_field(
        grid_shape=GRID,
        kernel_size=s * KERNEL,
        sigma_center=s * 1.0,
        sigma_edge=s * 2.5,
    )


def _fine_zernike(coma=0.0):
    s = OVERSAMPLE
    return data.zernike_psf_field(
        grid_shape=GRID, kernel_size=s * KERNEL, airy_radius=s * 2.5, coma=coma
    )


@pytest.fixture(scope="module", params=["gaussian", "zernike"])
def bead_set(request):
    fine = _fine_gaussian() if request.param == "gaussian" else _fine_zernike()
    beads = _bead_set(fine, seed=1 if request.param == "gaussian" else 2)
    field, report = PSFField.from_beads(beads["frames"], GRID, KERNEL)
    return dict(beads, field=field, report=report, kind=request.param)


def _nearest(points, targets):
    """Distance from each target (image, row, col) to the nearest point of its
    image."""
    distances = []
    for image, row, col in targets:
        same = points[points[:, 0] == image]
        d = np.hypot(same[:, 1] - row, same[:, 2] - col) if len(same) else [np.inf]
        distances.append(np.min(d))
    return np.array(distances)


# === Accuracy against known fields ===


def test_node_psfs_match_the_true_field(bead_set):
    errors = _relative_errors(bead_set["field"], bead_set["truth"])
    assert np.median(errors) <= 0.10, errors
    assert errors.max() <= 0.25, errors


def test_blur_with_the_estimate_matches_the_true_blur(bead_set):
    scene = data.microscopy_scene(FRAME, seed=3)
    reference = data.blur_fast(scene, bead_set["truth"])
    estimate = data.blur_fast(scene, bead_set["field"])
    assert _psnr(reference, estimate) >= 40.0


def test_field_is_pinned_and_normalised(bead_set):
    field = bead_set["field"]
    assert field.image_shape == FRAME
    assert field.grid_shape == GRID and field.kernel_size == KERNEL
    assert field.psfs.min() >= 0
    np.testing.assert_allclose(field.psfs.sum(axis=(2, 3)), 1.0, atol=1e-9)


def test_every_isolated_bead_is_used_and_located(bead_set):
    report, good = bead_set["report"], bead_set["good"]
    assert int(report.beads_used.sum()) == len(good)
    assert report.beads_used.min() >= 3
    distances = _nearest(report.positions, good)
    assert distances.max() < 0.5
    assert np.median(distances) < 0.05


def test_saturated_and_touching_beads_are_rejected(bead_set):
    report = bead_set["report"]
    bad = np.concatenate([bead_set["saturated"], bead_set["pairs"]])
    rejected = report.rejected_positions
    # Only a touching bead pushed towards the border can meet the edge.
    assert _nearest(bad, rejected["edge"]).max(initial=0) < 3
    assert report.rejected["saturated"] >= len(bead_set["saturated"])
    assert report.rejected["crowded"] + report.rejected["edge"] >= len(
        bead_set["pairs"]
    )
    assert _nearest(rejected["saturated"], bead_set["saturated"]).max() < 3
    edge_or_crowded = np.concatenate([rejected["crowded"], rejected["edge"]])
    assert _nearest(edge_or_crowded, bead_set["pairs"]).max() < 3
    # No bead that entered the solve sits on a rejected one.
    assert _nearest(bad, report.positions).min() > 10
    assert report.filled_nodes == []
    assert np.all(np.isfinite(report.residual))
    assert report.beads_found.sum() >= report.beads_used.sum() + len(bad)


def test_joint_solve_beats_cell_averaging():
    beads = _bead_set(_fine_zernike(), seed=2)
    joint, _ = PSFField.from_beads(beads["frames"], GRID, KERNEL)
    average, _ = PSFField.from_beads(
        beads["frames"], GRID, KERNEL, solver="cell_average"
    )
    joint_errors = _relative_errors(joint, beads["truth"])
    average_errors = _relative_errors(average, beads["truth"])
    assert np.median(joint_errors) < 0.5 * np.median(average_errors)
    assert joint_errors.max() < average_errors.max()


def _centroid_centred(field):
    """Each PSF moved (FFT phase ramp, zero-padded) so that its centroid is the
    kernel centre: the estimator's convention for beads of unknown position."""
    k, r, pad = field.kernel_size, field.radius, 8
    offsets = np.arange(-r, r + 1)
    freq = np.fft.fftfreq(k + 2 * pad)
    psfs = np.empty_like(field.psfs)
    for index in np.ndindex(field.grid_shape):
        psf = field.psfs[index]
        cy, cx = psf.sum(axis=1) @ offsets, psf.sum(axis=0) @ offsets
        ramp = np.exp(2j * np.pi * (cy * freq[:, None] + cx * freq[None, :]))
        moved = np.fft.ifft2(np.fft.fft2(np.pad(psf, pad)) * ramp).real
        psfs[index] = np.maximum(moved[pad:-pad, pad:-pad], 0)
    return PSFField(psfs, image_shape=field.image_shape, normalize=True)


def test_coma_psfs_come_out_centred_on_their_centroid():
    # Coma moves a PSF's centroid off its optical axis; beads of unknown
    # position cannot tell, and the estimate is the centroid-centred truth.
    beads = _bead_set(_fine_zernike(coma=0.2), seed=3)
    field, _ = PSFField.from_beads(beads["frames"], GRID, KERNEL)
    centred = _relative_errors(field, _centroid_centred(beads["truth"]))
    assert np.median(centred) <= 0.10, centred
    assert centred.max() <= 0.25, centred
    raw = _relative_errors(field, beads["truth"])
    assert np.median(raw) > 2 * np.median(centred)


def test_bead_simulation_matches_the_field_at_pixel_positions():
    # The renderer itself, against `psf_at` of the binned field.
    fine = _fine_zernike()
    positions = np.array([[40.0, 50.0], [130.0, 200.0]])
    image, _, truth = simulate_bead_image(
        fine, positions, FRAME, peak_photons=1e9, background=0.0, oversample=3
    )
    r = KERNEL // 2
    for row, col in positions.astype(int):
        patch = image[row - r : row + r + 1, col - r : col + r + 1]
        expected = truth.psf_at(row, col, FRAME)
        np.testing.assert_allclose(patch / patch.sum(), expected, atol=2e-4)
    assert bin_psf_field(fine, 3).kernel_size == KERNEL


# === Small synthetic images ===


def _blobs(shape, positions, peak=1000.0, sigma=1.5, background=20.0, seed=0):
    """Gaussian beads (a NumPy loop) plus Poisson noise, float counts."""
    rows, cols = np.mgrid[: shape[0], : shape[1]]
    expected = np.full(shape, background, np.float64)
    for row, col in positions:
        expected += peak * np.exp(
            -0.5 * ((rows - row) ** 2 + (cols - col) ** 2) / sigma**2
        )
    return np.random.default_rng(seed).poisson(expected).astype(np.float64)


def _grid_positions(shape, step, offset):
    return [
        (r, c)
        for r in np.arange(offset, shape[0] - offset + 1, step)
        for c in np.arange(offset, shape[1] - offset + 1, step)
    ]


def test_a_dark_frame_is_subtracted():
    shape = (96, 96)
    positions = _grid_positions(shape, 24, 12.3)
    offset = np.linspace(100.0, 300.0, shape[1])[None, :] * np.ones(shape)
    image = _blobs(shape, positions, background=5.0) + offset
    field, report = PSFField.from_beads(image, (2, 2), 11, dark=offset)
    assert int(report.beads_used.sum()) == len(positions)
    assert abs(report.background[0] - 5.0) < 1.0
    truth = data.gaussian_psf(11, sigma=1.5)
    errors = np.linalg.norm(field.psfs - truth, axis=(2, 3)) / np.linalg.norm(truth)
    assert errors.max() < 0.05


def test_faint_beads_and_hot_pixels_are_rejected():
    shape = (96, 96)
    positions = _grid_positions(shape, 24, 12.3)
    image = _blobs(shape, positions)
    dim = _blobs(shape, [(24.0, 48.0)], peak=15.0, background=0.0, seed=1)
    image += dim
    image[72, 48] += 800.0  # a hot pixel: bright, but no PSF
    field, report = PSFField.from_beads(image, (2, 2), 9)
    assert int(report.beads_used.sum()) == len(positions)
    assert report.rejected["faint"] == 1 and report.rejected["outlier"] == 1
    np.testing.assert_allclose(
        report.rejected_positions["faint"][0, 1:], (24, 48), atol=1
    )
    np.testing.assert_array_equal(report.rejected_positions["outlier"][0], (0, 72, 48))
    truth = data.gaussian_psf(9, sigma=1.5)
    errors = np.linalg.norm(field.psfs - truth, axis=(2, 3)) / np.linalg.norm(truth)
    assert errors.max() < 0.05


def test_beads_near_the_edge_are_used_when_their_kernel_fits():
    shape = (64, 64)
    # kernel 9: a bead at row 4 fits, at row 2 it does not.
    positions = [(4.2, 12.0), (4.0, 52.0), (59.0, 12.0), (59.3, 52.0), (2.0, 32.0)]
    image = _blobs(shape, positions, peak=4000.0, sigma=1.2)
    field, report = PSFField.from_beads(image, (2, 2), 9)
    assert int(report.beads_used.sum()) == 4 and report.rejected["edge"] == 1
    np.testing.assert_array_equal(report.rejected_positions["edge"][0], (0, 2, 32))
    truth = data.gaussian_psf(9, sigma=1.2)
    errors = np.linalg.norm(field.psfs - truth, axis=(2, 3)) / np.linalg.norm(truth)
    assert errors.max() < 0.05


def test_sparse_nodes_are_filled_and_listed():
    shape = (96, 96)
    # Beads everywhere except the bottom-right quadrant.
    positions = [p for p in _grid_positions(shape, 16, 12) if p[0] < 40 or p[1] < 40]
    image = _blobs(shape, positions)
    with pytest.warns(UserWarning, match=r"filled from their neighbours: \[\(1, 1\)\]"):
        field, report = PSFField.from_beads(image, (2, 2), 9)
    assert report.filled_nodes == [(1, 1)]
    assert np.isnan(report.residual[1, 1])
    assert report.beads_used[1, 1] == 0
    np.testing.assert_allclose(field.psfs.sum(axis=(2, 3)), 1.0, atol=1e-9)


def test_report_round_trips_through_json_and_npz(tmp_path):
    shape = (64, 64)
    image = _blobs(shape, _grid_positions(shape, 20, 12))
    field, report = PSFField.from_beads(image, (2, 2), 9)
    again = BeadReport.from_json(report.to_json())
    np.testing.assert_array_equal(again.beads_used, report.beads_used)
    np.testing.assert_allclose(again.positions, report.positions)
    assert again.rejected == report.rejected
    assert again.grid_shape == (2, 2)
    assert again.smoothness == report.smoothness > 0
    assert "beads found" in report.summary()
    path = tmp_path / "field.npz"
    field.save(path, extras={"bead_report": report.to_json()})
    loaded = PSFField.load(path)
    np.testing.assert_array_equal(loaded.psfs, field.psfs)
    assert loaded.image_shape == shape
    with np.load(path) as archive:
        assert BeadReport.from_json(str(archive["bead_report"])).kernel_size == 9


# === Errors ===


def test_no_bead_found_names_the_threshold():
    image = np.random.default_rng(0).poisson(20.0, (64, 64)).astype(np.float64)
    with pytest.raises(ValueError, match=r"`threshold`.*no bead found.*threshold=5 "):
        PSFField.from_beads(image, (2, 2), 9)


def test_every_bead_saturated():
    shape = (64, 64)
    image = np.clip(_blobs(shape, _grid_positions(shape, 20, 12), peak=500), 0, 255)
    with pytest.raises(
        ValueError, match=r"`saturation`.*below the saturation level.*saturation=255"
    ):
        PSFField.from_beads(image.astype(np.uint8), (2, 2), 9)


def test_explicit_saturation_level_applies_to_float_images():
    shape = (64, 64)
    image = _blobs(shape, _grid_positions(shape, 20, 12), peak=500)
    with pytest.raises(ValueError, match=r"saturation=300: all 9 beads"):
        PSFField.from_beads(np.minimum(image, 300.0), (2, 2), 9, saturation=300)


def test_images_of_different_sizes():
    with pytest.raises(
        ValueError,
        match=r"`images`.*images of one frame size.*images\[0\]\.shape=\(64, 64\), "
        r"images\[1\]\.shape=\(64, 65\)",
    ):
        PSFField.from_beads([np.ones((64, 64)), np.ones((64, 65))], (2, 2), 9)


def test_a_3d_stack_is_refused_with_what_is_supported():
    with pytest.raises(
        ValueError, match=r"`images`.*a 3D array is not supported: pass `list\(stack\)`"
    ):
        PSFField.from_beads(np.ones((3, 64, 64)), (2, 2), 9)


@pytest.mark.parametrize(
    "images, match",
    [
        ([], "an empty list"),
        ("beads.tif", "images of type str"),
        ([np.ones(64)], r"images\[0\]\.shape=\(64,\)"),
        (np.ones((64, 64), bool), "integer or floating-point image"),
    ],
)
def test_images_of_the_wrong_kind(images, match):
    with pytest.raises(ValueError, match=match):
        PSFField.from_beads(images, (2, 2), 9)


def test_nan_values():
    image = np.ones((64, 64))
    image[3, 4] = np.nan
    with pytest.raises(ValueError, match=r"`images`.*finite values.*1 non-finite"):
        PSFField.from_beads(image, (2, 2), 9)


def test_negative_values():
    image = np.ones((64, 64))
    image[3, 4] = -2.0
    with pytest.raises(
        ValueError, match=r"`images\[1\]`.*non-negative raw camera values.*minimum -2"
    ):
        PSFField.from_beads([np.ones((64, 64)), image], (2, 2), 9)


def test_a_grid_finer_than_the_beads_support():
    shape = (64, 64)
    image = _blobs(shape, [(20, 20), (44, 44)])
    with pytest.raises(
        ValueError,
        match=r"`grid_shape`.*a grid the beads can support.*62 of 64 nodes.*"
        r"grid_shape=\(8, 8\)",
    ):
        PSFField.from_beads(image, (8, 8), 9)


def test_no_usable_bead_lists_the_rejections():
    shape = (64, 64)
    image = _blobs(shape, [(30, 30), (30, 36)])
    with pytest.raises(
        ValueError,
        match=r"`images`.*at least one bead away from the frame edge.*"
        r"2 beads found, rejected: edge 0, saturated 0, crowded 2",
    ):
        PSFField.from_beads(image, (1, 1), 9)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(kernel_size=8), "`kernel_size`. Expected an odd integer >= 3"),
        (dict(kernel_size=65), r"`kernel_size`. Expected a PSF size that fits"),
        (dict(grid_shape=(0, 2)), "`grid_shape`. Expected a tuple of 2 positive"),
        (dict(grid_shape=(65, 2)), "`grid_shape`. Expected at most one node per"),
        (dict(threshold=0), "`threshold`. Expected a positive number"),
        (dict(solver="mean"), "`solver`. Expected one of 'joint', 'cell_average'"),
        (dict(dark=np.zeros((3, 3))), "`dark`. Expected a number or a 2D dark frame"),
        (dict(saturation=-1), "`saturation`. Expected a positive number"),
        (dict(refine=-1), "`refine`. Expected a non-negative integer"),
        (dict(smoothness="max"), "`smoothness`. Expected a non-negative number or 'a"),
        (dict(smoothness=-1.0), "`smoothness`. Expected a non-negative number or 'a"),
    ],
)
def test_invalid_arguments(kwargs, match):
    arguments = dict(images=np.ones((64, 64)), grid_shape=(2, 2), kernel_size=9)
    arguments.update(kwargs)
    with pytest.raises(ValueError, match=match):
        PSFField.from_beads(**arguments)


def test_save_refuses_reserved_extra_names(tmp_path):
    field = PSFField.shift_invariant(np.ones((3, 3)), normalize=True)
    with pytest.raises(ValueError, match="`extras`. Expected names other than"):
        field.save(tmp_path / "f.npz", extras={"psfs": np.zeros(1)})
