"""Procedural microscopy-like scenes: cells, filaments and point beads."""

import numpy as np

from coordgate_keras.utils import argument_validation as av

# Object densities per 256 x 256 pixels; object sizes are in pixels and do not
# scale with the image (a larger image shows a larger field of view).
_REFERENCE_AREA = 256 * 256
_SPOT_SIGMA = 0.75


def _gaussian_blur(image, sigma):
    """Separable Gaussian blur with zero padding (a few taps, cheap)."""
    r = int(np.ceil(3 * sigma))
    taps = np.exp(-0.5 * (np.arange(-r, r + 1) / sigma) ** 2)
    taps /= taps.sum()
    for axis in (0, 1):
        padded = np.pad(image, [(r, r) if a == axis else (0, 0) for a in (0, 1)])
        n = image.shape[axis]
        image = sum(
            t * np.take(padded, np.arange(i, i + n), axis=axis)
            for i, t in enumerate(taps)
        )
    return image


def _splat(shape, rows, cols, weights):
    """Adds point masses at sub-pixel positions with bilinear splatting."""
    height, width = shape
    r0, c0 = np.floor(rows).astype(int), np.floor(cols).astype(int)
    fr, fc = rows - r0, cols - c0
    flat = np.zeros(height * width)
    for dr, dc, w in (
        (0, 0, (1 - fr) * (1 - fc)),
        (0, 1, (1 - fr) * fc),
        (1, 0, fr * (1 - fc)),
        (1, 1, fr * fc),
    ):
        rr, cc = r0 + dr, c0 + dc
        inside = (rr >= 0) & (rr < height) & (cc >= 0) & (cc < width)
        flat += np.bincount(
            rr[inside] * width + cc[inside],
            weights=(weights * w)[inside],
            minlength=flat.size,
        )
    return flat.reshape(shape)


def _add_cells(image, rng, count):
    height, width = image.shape
    for _ in range(count):
        cy, cx = rng.uniform(0, height), rng.uniform(0, width)
        a = rng.uniform(6.0, 22.0)
        b = a * rng.uniform(0.5, 1.0)
        angle = rng.uniform(0, np.pi)
        body, nucleus = rng.uniform(0.1, 0.45), rng.uniform(0.0, 0.35)
        edge = rng.uniform(0.8, 2.0)
        r0, r1 = max(int(cy - a - 4), 0), min(int(cy + a + 5), height)
        c0, c1 = max(int(cx - a - 4), 0), min(int(cx + a + 5), width)
        if r0 >= r1 or c0 >= c1:
            continue
        y, x = np.mgrid[r0:r1, c0:c1]
        u = (x - cx) * np.cos(angle) + (y - cy) * np.sin(angle)
        v = -(x - cx) * np.sin(angle) + (y - cy) * np.cos(angle)
        radius = np.hypot(u / a, v / b)
        # Logistic edge of width `edge` pixels.
        image[r0:r1, c0:c1] += body / (1 + np.exp((radius - 1) * b / edge))
        shift = rng.uniform(-0.3, 0.3, size=2)
        radius_n = np.hypot(u / a - shift[0], v / b - shift[1]) / 0.4
        image[r0:r1, c0:c1] += nucleus / (1 + np.exp((radius_n - 1) * 0.4 * b / edge))


def _filament_points(rng, shape, count):
    rows, cols, weights = [], [], []
    height, width = shape
    for _ in range(count):
        length = rng.uniform(30.0, 200.0)
        steps = int(length / 0.5)
        heading = rng.uniform(0, 2 * np.pi) + np.cumsum(rng.normal(0, 0.04, steps))
        start = rng.uniform((0, 0), (height, width))
        rows.append(start[0] + 0.5 * np.cumsum(np.sin(heading)))
        cols.append(start[1] + 0.5 * np.cumsum(np.cos(heading)))
        # Line density giving a peak of `intensity` after the spot blur.
        intensity = rng.uniform(0.15, 0.7)
        weights.append(
            np.full(steps, 0.5 * intensity * np.sqrt(2 * np.pi) * _SPOT_SIGMA)
        )
    if not rows:
        return np.zeros(0), np.zeros(0), np.zeros(0)
    return np.concatenate(rows), np.concatenate(cols), np.concatenate(weights)


def microscopy_scene(
    image_shape=(256, 256),
    seed=None,
    cells_per_256=12.0,
    filaments_per_256=8.0,
    beads_per_256=25.0,
):
    """A procedural fluorescence-microscopy-like image.

    Sums a dim background, cells (soft-edged ellipses, 6-22 px, each with a
    brighter off-centre nucleus), filaments (smooth random curves, about 1.5 px
    wide) and point beads (sub-pixel points, 0.75 px Gaussian), each with a
    random intensity, then divides by the maximum if it exceeds 1. Object
    counts are Poisson with the given means per 256 x 256 pixels, so any size
    works. Deterministic for a given `seed`.

    Args:
        image_shape: tuple `(height, width)`. Defaults to `(256, 256)`.
        seed: optional non-negative int or sequence of them (e.g.
            `(dataset_seed, index)`), passed to `numpy.random.default_rng`.
        cells_per_256: float. Mean number of cells per 256 x 256. Defaults to 12.
        filaments_per_256: float. Mean number of filaments. Defaults to 8.
        beads_per_256: float. Mean number of beads. Defaults to 25.

    Returns:
        A float32 array `(height, width)` with values in `[0, 1]`.

    Example:

    >>> from coordgate_keras.data import microscopy_scene
    >>> scene = microscopy_scene((64, 96), seed=0)
    >>> scene.shape, bool(scene.min() >= 0 and scene.max() <= 1)
    ((64, 96), True)
    """
    image_shape = av.shape(image_shape, "image_shape", rank=2)
    densities = {
        "cells_per_256": cells_per_256,
        "filaments_per_256": filaments_per_256,
        "beads_per_256": beads_per_256,
    }
    for name, value in densities.items():
        av.number(value, name, minimum=0)
    rng = np.random.default_rng(seed)
    scale = image_shape[0] * image_shape[1] / _REFERENCE_AREA
    image = np.full(image_shape, rng.uniform(0.0, 0.05))
    _add_cells(image, rng, rng.poisson(cells_per_256 * scale))

    rows, cols, weights = _filament_points(
        rng, image_shape, rng.poisson(filaments_per_256 * scale)
    )
    num_beads = rng.poisson(beads_per_256 * scale)
    bead_rows = rng.uniform(0, image_shape[0], num_beads)
    bead_cols = rng.uniform(0, image_shape[1], num_beads)
    bead_weights = rng.uniform(0.3, 1.0, num_beads) * 2 * np.pi * _SPOT_SIGMA**2
    spots = _splat(
        image_shape,
        np.concatenate([rows, bead_rows]),
        np.concatenate([cols, bead_cols]),
        np.concatenate([weights, bead_weights]),
    )
    image += _gaussian_blur(spots, _SPOT_SIGMA)
    image /= max(1.0, image.max())
    return image.astype(np.float32)


def microscopy_scenes(num_images, image_shape=(256, 256), seed=0, **kwargs):
    """A batch of `microscopy_scene`s, image `i` drawn with seed `(seed, i)`.

    Args:
        num_images: int. Number of images.
        image_shape: tuple `(height, width)`. Defaults to `(256, 256)`.
        seed: int. Base seed. Defaults to 0.
        **kwargs: passed to `microscopy_scene` (object densities).

    Returns:
        A float32 array `(num_images, height, width, 1)` in `[0, 1]`.

    Example:

    >>> from coordgate_keras.data import microscopy_scenes
    >>> microscopy_scenes(4, (32, 32), seed=1).shape
    (4, 32, 32, 1)
    """
    num_images = av.positive_int(num_images, "num_images")
    seed = av.seed(seed, "seed")
    return np.stack(
        [
            microscopy_scene(image_shape, seed=(seed, i), **kwargs)
            for i in range(num_images)
        ]
    )[..., None]
