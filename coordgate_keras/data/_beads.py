"""Machinery of `PSFField.from_beads`: a PSF field from images of point sources.

The steps, in order (each one's parameters are those of `PSFField.from_beads`):

1. Background and noise, per image: after subtracting `dark`, the median is
   the background and 1.4826 times the median absolute deviation the noise
   standard deviation (both robust to the beads, which cover few pixels).
2. Candidates: local maxima of the image smoothed by a Gaussian of 1 pixel,
   at least `threshold` noise standard deviations (of the smoothed image)
   above the background. A weaker maximum within `min_separation` of a
   stronger one whose smoothed peak is below `neighbour_fraction` of it is
   taken for a side lobe of that bead, not a bead.
3. Rejection, with counts by reason: `edge` (the bead's patch leaves the
   frame), `saturated` (a raw pixel of the patch reaches `saturation`),
   `crowded` (another bead within `min_separation`: their PSFs overlap),
   `faint` (patch sum below 10 noise standard deviations of that sum) and,
   after the first solve, `outlier` (misfit over 5 times, RMS, what its noise
   and the median misfit explain: merged pairs, hot pixels, debris).
4. Sub-pixel centring: the intensity centroid in a `kernel_size` window,
   iterated; each patch is then shifted by its fractional offset (Fourier
   shift of a slightly larger patch) onto the pixel grid and divided by its
   sum (unit flux).
5. Joint solve: in the field model the PSF of a bead at `p` is
   `sum_k w_k(p) h_k` (`axis_weights`), so the aligned patches `P` satisfy
   `P = W H` for the node PSFs `H`. `H` minimises
   `|W H - P|^2 + smoothness * sum_(k~l) |h_k - h_l|^2` (neighbouring nodes)
   under `h_k >= 0, sum h_k = 1` (accelerated projected gradient from the
   unconstrained solution). `smoothness="auto"` sets it to the misfit per
   pixel of a lightly smoothed first fit over the mean squared difference of
   neighbouring nodes (the MAP weight for Gaussian noise and Gaussian
   node-to-node changes): strong for noisy beads, weak for bright ones.
6. Refinement (`refine` rounds): each bead is re-registered to the fitted
   model (Gauss-Newton on its sub-pixel shift), each node PSF is re-centred on
   its centroid (which fixes the one translation beads of unknown position
   cannot tell), and the solve is repeated.
7. Nodes whose bead support `sum_b w_k(p_b)` is below `min_beads` are filled
   by harmonic interpolation from the others (a warning lists them); when
   more than half are, the grid is refused.
"""

import dataclasses
import warnings

import numpy as np

from coordgate_keras.data import bead_report as bead_report_lib
from coordgate_keras.data.psf_field import axis_weights
from coordgate_keras.utils import argument_validation as av

_MAD_TO_SIGMA = 1.4826
_SMOOTH_SIGMA = 1.0
_MARGIN = 3
_REASONS = ("edge", "saturated", "crowded", "faint", "outlier")
# A bead whose patch sum is below this many noise standard deviations of that
# sum is noise (or a speck), not a bead.
_MIN_FLUX_SNR = 10.0
# A bead whose misfit exceeds this many times (RMS) what its noise and the
# median misfit explain is not a single point source (merged pair, debris).
_OUTLIER_FACTOR = 5.0
_SOLVERS = ("joint", "cell_average")
# The neighbour weight of the first fit of `smoothness="auto"`.
_AUTO_START = 0.01


# === Input checks ===


def check_bead_images(images):
    """`images` as a list of 2D integer or float arrays of one frame size,
    finite and >= 0 (not copied), else a Keras-style error naming them."""
    expected = (
        "a 2D image (height, width) or a list of 2D images of one frame size "
        "(a 3D array is not supported: pass `list(stack)` for separate "
        "exposures of one focal plane; 3D PSFs are not estimated)"
    )
    if isinstance(images, np.ndarray):
        if images.ndim != 2:
            raise av.invalid_value(
                None, "images", expected, f"images.shape={images.shape}"
            )
        frames = [images]
    elif isinstance(images, (list, tuple)):
        frames = list(images)
        if not frames:
            raise av.invalid_value(None, "images", expected, "an empty list")
    else:
        raise av.invalid_value(
            None, "images", expected, f"images of type {type(images).__name__}"
        )
    checked = []
    for i, frame in enumerate(frames):
        name = "images" if isinstance(images, np.ndarray) else f"images[{i}]"
        frame = np.asarray(frame)
        if frame.ndim != 2 or 0 in frame.shape:
            raise av.invalid_value(None, name, expected, f"{name}.shape={frame.shape}")
        if not (
            np.issubdtype(frame.dtype, np.integer)
            or np.issubdtype(frame.dtype, np.floating)
        ):
            raise av.invalid_value(
                None,
                name,
                "an integer or floating-point image of raw camera values",
                f"{name} of dtype {frame.dtype}",
            )
        if frame.shape != np.shape(frames[0]):
            raise av.invalid_value(
                None,
                "images",
                "images of one frame size",
                f"images[0].shape={np.shape(frames[0])}, "
                f"images[{i}].shape={frame.shape}",
            )
        if np.issubdtype(frame.dtype, np.floating):
            av.float_array(frame, name)
        if frame.min() < 0:
            raise av.invalid_value(
                None,
                name,
                "non-negative raw camera values (pass a camera offset as `dark` "
                "instead of subtracting it)",
                f"{name} with minimum {float(frame.min()):.6g}",
            )
        checked.append(frame)
    return checked


def _default_saturation(frames, saturation):
    if saturation is not None:
        return av.number(saturation, "saturation", minimum=0, min_inclusive=False)
    # Integer frames saturate at their dtype's maximum; float ones are unknown.
    if all(np.issubdtype(f.dtype, np.integer) for f in frames):
        return float(min(np.iinfo(f.dtype).max for f in frames))
    return None


def _dark_frame(dark, image_shape):
    if dark is None:
        return 0.0
    if np.ndim(dark) == 0:
        return av.number(dark, "dark")
    dark = np.asarray(dark)
    if dark.shape != tuple(image_shape) or not (
        np.issubdtype(dark.dtype, np.integer) or np.issubdtype(dark.dtype, np.floating)
    ):
        raise av.invalid_value(
            None,
            "dark",
            f"a number or a 2D dark frame of the images' size {tuple(image_shape)}",
            f"dark.shape={dark.shape}, dtype {dark.dtype}",
        )
    dark = dark.astype(np.float64)
    av.float_array(dark, "dark")
    return dark


# === Image processing (NumPy only) ===


def _gaussian_kernel(sigma):
    r = int(np.ceil(3 * sigma))
    g = np.exp(-0.5 * (np.arange(-r, r + 1) / sigma) ** 2)
    return g / g.sum()


def _convolve_separable(image, kernel):
    r = kernel.size // 2
    padded = np.pad(image, r, mode="reflect")
    rows = sum(
        kernel[i] * padded[i : i + image.shape[0], :] for i in range(kernel.size)
    )
    return sum(kernel[i] * rows[:, i : i + image.shape[1]] for i in range(kernel.size))


def _max_filter(image, radius):
    windows = np.lib.stride_tricks.sliding_window_view
    padded = np.pad(image, radius, mode="constant", constant_values=-np.inf)
    rows = windows(padded, 2 * radius + 1, axis=0).max(axis=-1)
    return windows(rows, 2 * radius + 1, axis=1).max(axis=-1)


def _centroid(image, row, col, radius, iterations=3):
    """Intensity centroid in a `2 radius + 1` window, re-centred each time."""
    height, width = image.shape
    offsets = np.arange(-radius, radius + 1)
    for _ in range(iterations):
        r0, c0 = int(round(row)), int(round(col))
        if not (radius <= r0 < height - radius and radius <= c0 < width - radius):
            break
        window = image[r0 - radius : r0 + radius + 1, c0 - radius : c0 + radius + 1]
        total = window.sum()
        if total <= 0:
            break
        new_row = r0 + (window.sum(axis=1) @ offsets) / total
        new_col = c0 + (window.sum(axis=0) @ offsets) / total
        # A centroid that runs away (noise, a neighbour) keeps the peak.
        if abs(new_row - r0) > radius / 2 or abs(new_col - c0) > radius / 2:
            break
        row, col = new_row, new_col
    return row, col


def _shift_patches(patches, shifts):
    """Moves the content of odd-sized square patches by `-shifts` (rows, cols)."""
    n = patches.shape[-1]
    freq = np.fft.fftfreq(n)
    rfreq = np.fft.rfftfreq(n)
    spectra = np.fft.rfft2(patches)
    phase_r = np.exp(2j * np.pi * shifts[:, 0, None] * freq[None, :])
    phase_c = np.exp(2j * np.pi * shifts[:, 1, None] * rfreq[None, :])
    spectra = spectra * phase_r[:, :, None] * phase_c[:, None, :]
    return np.fft.irfft2(spectra, s=(n, n))


def _gradients(patches):
    """Spatial derivatives (d/drow, d/dcol) of band-limited odd-sized patches."""
    n = patches.shape[-1]
    freq = np.fft.fftfreq(n)
    spectra = np.fft.fft2(patches)
    d_row = np.real(np.fft.ifft2(spectra * (2j * np.pi * freq)[:, None]))
    d_col = np.real(np.fft.ifft2(spectra * (2j * np.pi * freq)[None, :]))
    return d_row, d_col


# === Detection ===


def _background_noise(values):
    """Median and 1.4826 x MAD, with fallbacks for flat (noiseless) data."""
    level = float(np.median(values))
    sigma = _MAD_TO_SIGMA * float(np.median(np.abs(values - level)))
    if sigma <= 0:
        below = values[values <= level] - level
        sigma = float(np.sqrt(np.mean(below**2))) if below.size else 0.0
    if sigma <= 0:
        sigma = 1e-6 * max(float(np.abs(values).max()), 1e-12)
    return level, sigma


def _bead_mask(shape, beads, image, radius):
    mask = np.zeros(shape, bool)
    for row, col in zip(
        beads.peak_row[beads.image == image], beads.peak_col[beads.image == image]
    ):
        mask[
            max(row - radius, 0) : row + radius + 1,
            max(col - radius, 0) : col + radius + 1,
        ] = True
    return mask


@dataclasses.dataclass
class _Beads:
    """Candidate beads over all images (arrays of one length)."""

    image: np.ndarray
    peak_row: np.ndarray
    peak_col: np.ndarray
    peak: np.ndarray
    reason: list


def _detect(signals, noise, params):
    gauss = _gaussian_kernel(_SMOOTH_SIGMA)
    noise_gain = float(np.sqrt(np.sum(np.outer(gauss, gauss) ** 2)))
    radius = params["radius"]
    image_idx, rows, cols, peaks, thresholds, maxima = [], [], [], [], [], []
    for i, signal in enumerate(signals):
        smooth = _convolve_separable(signal, gauss)
        level = params["threshold"] * noise[i] * noise_gain
        thresholds.append(level)
        maxima.append(float(smooth.max()))
        local = smooth == _max_filter(smooth, max(2, radius // 4))
        r, c = np.nonzero(local & (smooth >= level) & (smooth > 0))
        order = np.argsort(-smooth[r, c], kind="stable")
        r, c = r[order], c[order]
        kept_r, kept_c, kept_p = [], [], []
        separation2 = params["min_separation"] ** 2
        for rr, cc in zip(r, c):
            p = smooth[rr, cc]
            if kept_r:
                d2 = (np.asarray(kept_r) - rr) ** 2 + (np.asarray(kept_c) - cc) ** 2
                near = d2 < separation2
                # Side lobes and plateaus of a brighter bead are not beads.
                if np.any(
                    near & (np.asarray(kept_p) * params["neighbour_fraction"] > p)
                ):
                    continue
                if np.any(near & (d2 <= 2)):
                    continue
            kept_r.append(rr)
            kept_c.append(cc)
            kept_p.append(p)
        image_idx += [i] * len(kept_r)
        rows += kept_r
        cols += kept_c
        peaks += kept_p
    beads = _Beads(
        image=np.asarray(image_idx, int),
        peak_row=np.asarray(rows, int),
        peak_col=np.asarray(cols, int),
        peak=np.asarray(peaks, float),
        reason=[None] * len(rows),
    )
    return beads, thresholds, maxima


def _reject(beads, frames, signals, noise, params, saturation, image_shape):
    height, width = image_shape
    half = params["radius"]
    r = params["radius"]
    separation2 = params["min_separation"] ** 2
    for b in range(len(beads.peak)):
        i, row, col = beads.image[b], beads.peak_row[b], beads.peak_col[b]
        if not (half <= row < height - half and half <= col < width - half):
            beads.reason[b] = "edge"
            continue
        window = frames[i][row - r : row + r + 1, col - r : col + r + 1]
        if saturation is not None and window.max() >= saturation:
            beads.reason[b] = "saturated"
            continue
        same = beads.image == i
        d2 = (beads.peak_row - row) ** 2 + (beads.peak_col - col) ** 2
        if np.count_nonzero(same & (d2 < separation2)) > 1:
            beads.reason[b] = "crowded"
            continue
        flux = signals[i][row - r : row + r + 1, col - r : col + r + 1].sum()
        if flux < _MIN_FLUX_SNR * noise[i] * (2 * r + 1):
            beads.reason[b] = "faint"


# === Solve ===


def _laplacian(grid_shape):
    gy, gx = grid_shape
    k = gy * gx
    lap = np.zeros((k, k))
    for i in range(gy):
        for j in range(gx):
            for di, dj in ((0, 1), (1, 0)):
                if i + di < gy and j + dj < gx:
                    a, b = i * gx + j, (i + di) * gx + j + dj
                    lap[a, a] += 1
                    lap[b, b] += 1
                    lap[a, b] -= 1
                    lap[b, a] -= 1
    return lap


def _project_simplex(h):
    """Euclidean projection of each row of `h` onto {x >= 0, sum x = 1}."""
    u = -np.sort(-h, axis=1)
    css = np.cumsum(u, axis=1) - 1.0
    ind = np.arange(1, h.shape[1] + 1)
    cond = u - css / ind > 0
    rho = h.shape[1] - 1 - np.argmax(cond[:, ::-1], axis=1)
    theta = css[np.arange(h.shape[0]), rho] / (rho + 1)
    return np.maximum(h - theta[:, None], 0.0)


def _solve(weights, patches, lap, smoothness, iterations=300, tolerance=1e-7):
    """Node PSFs `H` (nodes, pixels) minimising the regularised fit on the
    simplex; unsupported nodes are shaped by the smoothness term only."""
    gram = weights.T @ weights + smoothness * lap
    rhs = weights.T @ patches
    # A tiny ridge keeps nodes that no bead touches solvable.
    ridge = 1e-9 * max(np.trace(gram), 1.0) * np.eye(gram.shape[0])
    h = np.linalg.solve(gram + ridge, rhs)
    h = _project_simplex(h)
    step = 1.0 / max(np.linalg.eigvalsh(gram)[-1], 1e-12)
    y, t = h.copy(), 1.0
    for _ in range(iterations):
        h_next = _project_simplex(y - step * (gram @ y - rhs))
        t_next = 0.5 * (1 + np.sqrt(1 + 4 * t * t))
        y = h_next + ((t - 1) / t_next) * (h_next - h)
        change = np.max(np.abs(h_next - h))
        h, t = h_next, t_next
        if change < tolerance * np.max(h):
            break
    return h


def _auto_smoothness(weights, patches, lap, empty):
    """`sigma^2 / tau^2`: the misfit per pixel of a lightly smoothed fit over the
    mean squared difference per pixel of neighbouring nodes (the MAP weight
    under Gaussian noise and Gaussian node-to-node changes)."""
    h = _solve(weights, patches, lap, _AUTO_START)
    misfit = np.mean((patches - weights @ h) ** 2)
    rows, cols = np.nonzero(np.triu(lap < 0))
    keep = ~empty[rows] & ~empty[cols]
    if not keep.any():
        return _AUTO_START
    change = np.mean((h[rows[keep]] - h[cols[keep]]) ** 2)
    return float(misfit / max(change, 1e-300))


def _harmonic_fill(h, empty, lap):
    """Replaces the rows `empty` of `h` by the harmonic interpolation of the rest."""
    if not empty.any():
        return h
    full = ~empty
    h = h.copy()
    h[empty] = np.linalg.solve(
        lap[np.ix_(empty, empty)], -lap[np.ix_(empty, full)] @ h[full]
    )
    h = np.maximum(h, 0.0)
    return h / h.sum(axis=1, keepdims=True)


# === Main ===


def estimate(
    images,
    grid_shape,
    kernel_size,
    dark=None,
    saturation=None,
    threshold=5.0,
    min_separation=None,
    neighbour_fraction=0.05,
    smoothness="auto",
    min_beads=0.5,
    refine=2,
    solver="joint",
):
    """See `PSFField.from_beads`; returns `(psfs, image_shape, report)`."""
    frames = check_bead_images(images)
    image_shape = frames[0].shape
    grid_shape = av.shape(grid_shape, "grid_shape", rank=2)
    if not av.is_int(kernel_size) or kernel_size < 3 or kernel_size % 2 == 0:
        raise av.invalid_value(kernel_size, "kernel_size", "an odd integer >= 3")
    kernel_size = int(kernel_size)
    if kernel_size > min(image_shape):
        raise av.invalid_value(
            kernel_size,
            "kernel_size",
            f"a PSF size that fits the images (<= {min(image_shape)} for frames "
            f"{tuple(image_shape)})",
        )
    radius = kernel_size // 2
    params = dict(
        radius=radius,
        threshold=av.number(threshold, "threshold", minimum=0, min_inclusive=False),
        min_separation=av.number(
            kernel_size if min_separation is None else min_separation,
            "min_separation",
            minimum=0,
        ),
        neighbour_fraction=av.number(
            neighbour_fraction, "neighbour_fraction", minimum=0, maximum=1
        ),
    )
    if not (isinstance(smoothness, str) and smoothness == "auto"):
        try:
            smoothness = av.number(smoothness, "smoothness", minimum=0)
        except ValueError:
            raise av.invalid_value(
                smoothness, "smoothness", "a non-negative number or 'auto'"
            ) from None
    min_beads = av.number(min_beads, "min_beads", minimum=0)
    refine = av.non_negative_int(refine, "refine")
    av.choice(solver, "solver", _SOLVERS)
    saturation = _default_saturation(frames, saturation)
    dark_frame = _dark_frame(dark, image_shape)
    if grid_shape[0] > image_shape[0] or grid_shape[1] > image_shape[1]:
        raise av.invalid_value(
            grid_shape,
            "grid_shape",
            f"at most one node per pixel (<= {tuple(image_shape)})",
        )

    # === Background, noise and candidates ===
    # Twice: the second estimate leaves out the first pass's beads, whose
    # tails would bias the median of a densely populated frame.
    signals = [frame.astype(np.float64) - dark_frame for frame in frames]
    masks = [None] * len(frames)
    for _ in range(2):
        background, noise = [], []
        for x, mask in zip(signals, masks):
            level, sigma = _background_noise(x if mask is None else x[~mask])
            background.append(level)
            noise.append(sigma)
        centred = [x - level for x, level in zip(signals, background)]
        beads, thresholds, maxima = _detect(centred, noise, params)
        masks = [_bead_mask(x.shape, beads, i, radius) for i, x in enumerate(signals)]
        masks = [m if np.mean(m) < 0.8 else None for m in masks]
    signals = centred

    if not len(beads.peak):
        brightest = int(np.argmax(np.asarray(maxima) / np.asarray(thresholds)))
        raise av.invalid_value(
            None,
            "threshold",
            "a detection threshold that at least one bead exceeds: no bead found",
            f"threshold={params['threshold']:g} noise standard deviations "
            f"({thresholds[brightest]:.4g} above the background "
            f"{background[brightest]:.4g} of images[{brightest}] after smoothing, "
            f"whose highest point is {maxima[brightest]:.4g} above it)",
        )
    _reject(beads, frames, signals, noise, params, saturation, image_shape)
    used = np.array([reason is None for reason in beads.reason])
    counts = {reason: beads.reason.count(reason) for reason in _REASONS}
    if not used.any():
        if counts["saturated"] == len(beads.peak):
            raise av.invalid_value(
                saturation,
                "saturation",
                "beads whose patches stay below the saturation level (shorten "
                "the exposure, or pass the camera's real `saturation`)",
                f"saturation={saturation:g}: all {len(beads.peak)} beads found "
                "reach it",
            )
        raise av.invalid_value(
            None,
            "images",
            "at least one bead away from the frame edge, not saturated, with "
            f"no other bead within min_separation={params['min_separation']:g} "
            f"and a sum of at least {_MIN_FLUX_SNR:g} noise standard deviations",
            f"{len(beads.peak)} beads found, rejected: "
            + ", ".join(f"{k} {v}" for k, v in counts.items()),
        )

    # === Centring and patches ===
    index = np.nonzero(used)[0]
    positions = np.array(
        [
            _centroid(
                signals[beads.image[b]], beads.peak_row[b], beads.peak_col[b], radius
            )
            for b in index
        ]
    )
    gy, gx = grid_shape
    lap = _laplacian(grid_shape)
    patch_radius = radius + _MARGIN
    k2 = kernel_size * kernel_size

    # The Fourier shift's margin may pass the frame edge: zeros there (the
    # background-subtracted expectation), cropped away after the shift.
    padded = [np.pad(x, _MARGIN) for x in signals]

    def aligned_patches(index, positions):
        centres = np.round(positions).astype(int)
        # Keep patches inside the frame (positions may drift while refining).
        centres[:, 0] = np.clip(centres[:, 0], radius, image_shape[0] - radius - 1)
        centres[:, 1] = np.clip(centres[:, 1], radius, image_shape[1] - radius - 1)
        big = np.empty((index.size, 2 * patch_radius + 1, 2 * patch_radius + 1))
        for n, b in enumerate(index):
            r0, c0 = centres[n] + _MARGIN
            big[n] = padded[beads.image[b]][
                r0 - patch_radius : r0 + patch_radius + 1,
                c0 - patch_radius : c0 + patch_radius + 1,
            ]
        shifted = _shift_patches(big, positions - centres)
        crop = shifted[:, _MARGIN:-_MARGIN, _MARGIN:-_MARGIN].reshape(-1, k2)
        flux = crop.sum(axis=1)
        return crop / np.where(flux > 0, flux, 1.0)[:, None], flux

    def design(positions):
        if solver == "cell_average":
            cell_r = np.clip((positions[:, 0] + 0.5) * gy // image_shape[0], 0, gy - 1)
            cell_c = np.clip((positions[:, 1] + 0.5) * gx // image_shape[1], 0, gx - 1)
            w = np.zeros((positions.shape[0], gy * gx))
            w[np.arange(len(w)), (cell_r * gx + cell_c).astype(int)] = 1.0
            return w
        wy = axis_weights(image_shape[0], gy, positions[:, 0])
        wx = axis_weights(image_shape[1], gx, positions[:, 1])
        return (wy[:, None, :] * wx[None, :, :]).reshape(gy * gx, -1).T

    def unsupported(weights, count):
        support = weights.sum(axis=0)
        empty = support < max(min_beads, 1e-12)
        if empty.sum() > (gy * gx) / 2:
            raise av.invalid_value(
                grid_shape,
                "grid_shape",
                f"a grid the beads can support: at most half its nodes with fewer "
                f"than min_beads={min_beads:g} beads nearby ({int(empty.sum())} of "
                f"{gy * gx} nodes have fewer, from {count} usable beads); use a "
                "coarser grid or more beads",
            )
        return support, empty

    reg = 0.0 if solver == "cell_average" else smoothness
    weights = design(positions)
    support, empty = unsupported(weights, index.size)
    noise_of = np.asarray(noise)[beads.image[index]]
    for round_ in range(refine + 1):
        patches, flux = aligned_patches(index, positions)
        if reg == "auto" and round_ == 0:
            reg = _auto_smoothness(weights, patches, lap, empty)
        h = _solve(weights, patches, lap, reg)
        if round_ == 0:
            # Misfit against what noise and the typical model error explain.
            misfit = ((patches - weights @ h) ** 2).sum(axis=1)
            expected = (noise_of * kernel_size / np.maximum(flux, 1e-300)) ** 2
            z = misfit / (expected + np.median(misfit))
            keep = z <= _OUTLIER_FACTOR**2
            if not keep.all() and keep.any():
                for b in index[~keep]:
                    beads.reason[b] = "outlier"
                    used[b] = False
                index, positions = index[keep], positions[keep]
                patches, flux, noise_of = patches[keep], flux[keep], noise_of[keep]
                weights = design(positions)
                support, empty = unsupported(weights, index.size)
                h = _solve(weights, patches, lap, reg)
        h = _harmonic_fill(h, empty, lap)
        if round_ == refine:
            break
        # Re-centre every node PSF on its centroid, then re-register beads.
        nodes = h.reshape(-1, kernel_size, kernel_size)
        offsets = np.arange(-radius, radius + 1)
        centroids = np.stack(
            [nodes.sum(axis=2) @ offsets, nodes.sum(axis=1) @ offsets], axis=1
        )
        pad = ((0, 0), (_MARGIN, _MARGIN), (_MARGIN, _MARGIN))
        nodes = _shift_patches(np.pad(nodes, pad), centroids)[
            :, _MARGIN:-_MARGIN, _MARGIN:-_MARGIN
        ]
        model = (weights @ nodes.reshape(-1, k2)).reshape(-1, kernel_size, kernel_size)
        d_row, d_col = _gradients(np.pad(model, pad))
        d_row = d_row[:, _MARGIN:-_MARGIN, _MARGIN:-_MARGIN]
        d_col = d_col[:, _MARGIN:-_MARGIN, _MARGIN:-_MARGIN]
        residual = patches.reshape(model.shape) - model
        # patch(x) ~ model(x - d): residual ~ -d . grad(model).
        jtj = np.stack(
            [
                np.stack(
                    [(d_row * d_row).sum((1, 2)), (d_row * d_col).sum((1, 2))], -1
                ),
                np.stack(
                    [(d_col * d_row).sum((1, 2)), (d_col * d_col).sum((1, 2))], -1
                ),
            ],
            -2,
        )
        jtr = -np.stack(
            [(d_row * residual).sum((1, 2)), (d_col * residual).sum((1, 2))], -1
        )
        step = np.linalg.solve(jtj + 1e-12 * np.eye(2), jtr[..., None])[..., 0]
        positions = positions + np.clip(step, -1.0, 1.0)
        weights = design(positions)

    # === Report ===
    sq_res = ((patches - weights @ h) ** 2).sum(axis=1)
    sq_data = (patches**2).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        residual = np.sqrt((weights.T @ sq_res) / (weights.T @ sq_data))
    residual[empty] = np.nan
    cell = np.stack(
        [
            np.clip(beads.peak_row * gy // image_shape[0], 0, gy - 1),
            np.clip(beads.peak_col * gx // image_shape[1], 0, gx - 1),
        ],
        axis=1,
    )
    found = np.zeros(grid_shape, int)
    used_cells = np.zeros(grid_shape, int)
    np.add.at(found, (cell[:, 0], cell[:, 1]), 1)
    np.add.at(used_cells, (cell[used, 0], cell[used, 1]), 1)
    filled = [tuple(int(v) for v in divmod(int(k), gx)) for k in np.nonzero(empty)[0]]
    counts = {reason: beads.reason.count(reason) for reason in _REASONS}
    rejected_positions = {
        reason: np.array(
            [
                (beads.image[b], beads.peak_row[b], beads.peak_col[b])
                for b in range(len(beads.peak))
                if beads.reason[b] == reason
            ],
            dtype=np.float64,
        ).reshape(-1, 3)
        for reason in _REASONS
    }
    report = bead_report_lib.BeadReport(
        grid_shape=grid_shape,
        kernel_size=kernel_size,
        image_shape=tuple(int(v) for v in image_shape),
        beads_found=found,
        beads_used=used_cells,
        rejected=counts,
        support=support.reshape(grid_shape),
        residual=residual.reshape(grid_shape),
        filled_nodes=filled,
        smoothness=float(reg),
        background=background,
        noise=noise,
        threshold=thresholds,
        positions=np.concatenate(
            [beads.image[index, None].astype(np.float64), positions], axis=1
        ),
        flux=flux,
        rejected_positions=rejected_positions,
    )
    if filled:
        warnings.warn(
            f"{len(filled)} of {gy * gx} PSF grid nodes have fewer than "
            f"min_beads={min_beads:g} beads nearby and were filled from their "
            f"neighbours: {filled}",
            UserWarning,
            stacklevel=3,
        )
    return h.reshape(gy, gx, kernel_size, kernel_size), tuple(image_shape), report
