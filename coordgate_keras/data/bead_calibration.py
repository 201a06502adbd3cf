"""Bead images on disk -> PSF field file, and the field's picture.

What `coordgate-keras psf estimate` and `coordgate-keras psf show` call:

    estimate_field_file(["beads_1.tif", "beads_2.tif"], (8, 8), 31, "field.npz",
                        plot="field.png")
    show_field_file("field.npz", "field.png")

The `.npz` is a `PSFField.save` file (it plugs into `coordgate-train --set
"psf={kind: file, path: field.npz}"` and the demo's `--psf`) with the
`BeadReport` as JSON under `bead_report`, which `show_field_file` draws.
"""

import os

import numpy as np

from coordgate_keras.data.bead_report import BeadReport
from coordgate_keras.data.psf_field import PSFField
from coordgate_keras.utils import argument_validation as av
from coordgate_keras.utils import atomic_io

_REPORT_KEY = "bead_report"
_MARKERS = {"edge": "s", "saturated": "x", "crowded": "^"}


def read_bead_images(paths):
    """Raw camera frames from `.npy` files or single-channel image files.

    Image files are read with Pillow as they are stored (8- or 16-bit,
    32-bit integer or float), without scaling: the estimator wants raw
    values and the dtype's maximum as saturation level. Multi-page files give
    one frame per page.

    Args:
        paths: list of str or path-like.

    Returns:
        A list of 2D NumPy arrays.
    """
    if isinstance(paths, (str, os.PathLike)) or not len(paths):
        raise av.invalid_value(paths, "beads", "a non-empty list of image paths")
    frames = []
    for path in paths:
        path = os.fspath(path)
        if path.lower().endswith(".npy"):
            try:
                frame = np.load(path, allow_pickle=False)
            except ValueError as error:
                raise _unreadable(path, error) from None
            _check_frame(frame, path)
            frames.append(frame)
            continue
        from PIL import Image, UnidentifiedImageError

        try:
            with Image.open(path) as image:
                for page in range(getattr(image, "n_frames", 1)):
                    image.seek(page)
                    if image.mode not in ("L", "I;16", "I;16B", "I;16L", "I", "F"):
                        raise av.invalid_value(
                            path,
                            "beads",
                            "single-channel (grayscale) images",
                            f"{path!r} of mode {image.mode!r}",
                        )
                    frames.append(np.array(image))
        except (UnidentifiedImageError, OSError) as error:
            if isinstance(error, FileNotFoundError):
                raise
            raise _unreadable(path, error) from None
    return frames


def _check_frame(frame, path):
    if frame.ndim != 2:
        raise av.invalid_value(
            path,
            "beads",
            "2D frames (height, width); a 3D array is not supported: save "
            "separate exposures as separate files (3D PSFs are not estimated)",
            f"{path!r} of shape {frame.shape}",
        )


def _unreadable(path, error):
    return av.invalid_value(
        path,
        "beads",
        "a .npy array or an image file Pillow reads (TIFF, PNG)",
        f"{path!r}, which could not be read ({error})",
    )


def estimate_field_file(
    beads, grid_shape, kernel_size, out, plot=None, dark=None, **options
):
    """Reads bead images, runs `PSFField.from_beads`, writes the field.

    Args:
        beads: list of paths (see `read_bead_images`).
        grid_shape: tuple `(grid_rows, grid_cols)`.
        kernel_size: int. Odd PSF size.
        out: path of the `.npz` to write (atomically), with the report.
        plot: optional path of a PNG (`plot_psf_field`).
        dark: optional path of a dark frame (`.npy` or image file).
        **options: further `PSFField.from_beads` arguments.

    Returns:
        Tuple `(field, report)`.
    """
    frames = read_bead_images(beads)
    if dark is not None:
        (dark,) = read_bead_images([dark])
    field, report = PSFField.from_beads(
        frames, grid_shape, kernel_size, dark=dark, **options
    )
    field.save(out, extras={_REPORT_KEY: report.to_json()})
    if plot is not None:
        plot_psf_field(field, plot, report=report)
    return field, report


def show_field_file(path, out):
    """Draws the field of a `.npz` file, with its bead report when it has one.

    Returns:
        Tuple `(field, report)`; `report` is None for fields not made from
        beads.
    """
    field = PSFField.load(path)
    report = None
    with np.load(os.fspath(path), allow_pickle=False) as archive:
        if _REPORT_KEY in archive.files:
            try:
                report = BeadReport.from_json(str(archive[_REPORT_KEY]))
            except (ValueError, KeyError, TypeError) as error:
                raise av.invalid_value(
                    path,
                    "field",
                    f"a `{_REPORT_KEY}` written by `psf estimate` (a BeadReport "
                    "as JSON)",
                    f"{os.fspath(path)!r}, whose report could not be read "
                    f"({type(error).__name__}: {error})",
                ) from None
    plot_psf_field(field, out, report=report)
    return field, report


def plot_psf_field(field, out, report=None):
    """A PNG montage of the grid PSFs (square-root scale), plus bead positions
    and per-cell counts when a `BeadReport` is given. Written atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    gy, gx = field.grid_shape
    k = field.kernel_size
    montage = np.zeros((gy * (k + 1) - 1, gx * (k + 1) - 1))
    for i in range(gy):
        for j in range(gx):
            psf = field.psfs[i, j]
            montage[i * (k + 1) : i * (k + 1) + k, j * (k + 1) : j * (k + 1) + k] = (
                np.sqrt(psf / psf.max())
            )
    panels = 2 if report is not None else 1
    fig, axes = plt.subplots(1, panels, figsize=(6 * panels, 6), squeeze=False)
    axes = axes[0]
    axes[0].imshow(montage, cmap="magma", interpolation="nearest")
    axes[0].set_title(f"PSFs of the {gy}x{gx} grid, kernel {k} (sqrt, each / max)")
    axes[0].set_axis_off()
    if report is not None:
        _draw_beads(axes[1], report)
    fig.tight_layout()
    try:
        atomic_io.atomic_write(
            out, lambda f: fig.savefig(f, format="png", dpi=100, bbox_inches="tight")
        )
    finally:
        plt.close(fig)


def _draw_beads(ax, report):
    height, width = report.image_shape
    gy, gx = report.grid_shape
    ax.set_xlim(-0.5, width - 0.5)
    ax.set_ylim(height - 0.5, -0.5)
    ax.set_aspect("equal")
    for i in range(1, gy):
        ax.axhline(i * height / gy - 0.5, color="0.8", lw=0.8)
    for j in range(1, gx):
        ax.axvline(j * width / gx - 0.5, color="0.8", lw=0.8)
    positions = report.positions
    ax.plot(positions[:, 2], positions[:, 1], ".", ms=3, color="tab:blue", label="used")
    for reason, marker in _MARKERS.items():
        points = report.rejected_positions.get(reason, np.zeros((0, 3)))
        if len(points):
            ax.plot(points[:, 2], points[:, 1], marker, ms=4, label=reason)
    filled = set(report.filled_nodes)
    for i in range(gy):
        for j in range(gx):
            ax.text(
                (j + 0.5) * width / gx - 0.5,
                (i + 0.12) * height / gy - 0.5,
                f"{report.beads_used[i, j]}/{report.beads_found[i, j]}",
                ha="center",
                va="top",
                fontsize=8,
                color="tab:red" if (i, j) in filled else "0.3",
            )
    ax.set_title("beads used / found per cell (red: filled nodes)")
    ax.legend(loc="upper right", fontsize=7)
