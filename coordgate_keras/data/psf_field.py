"""A grid of point-spread functions covering an image."""

import os
import zipfile
import zlib

import numpy as np

from coordgate_keras.utils import argument_validation as av
from coordgate_keras.utils import atomic_io

_FORMAT_VERSION = 1
_SUM_TOLERANCE = 1e-4


def cell_centres(num_pixels, num_cells):
    """Pixel coordinates of the centres of `num_cells` equal cells along an axis
    of `num_pixels` (pixel centres are integers): where grid nodes sit."""
    return (np.arange(num_cells) + 0.5) * num_pixels / num_cells - 0.5


def axis_weights(num_pixels, num_nodes, positions=None):
    """Bilinear (hat-function) interpolation weights along one image axis.

    Node `i` sits at the centre of the `i`-th of `num_nodes` equal cells, i.e. at
    pixel coordinate `(i + 0.5) * num_pixels / num_nodes - 0.5` (pixel centres are
    integers). Between two nodes the weights are linear; outside the outermost
    nodes the nearest node gets weight 1 (constant extrapolation). The weights are
    non-negative and sum to 1 at every pixel.

    Args:
        num_pixels: int. Image size along the axis.
        num_nodes: int. Number of PSF grid nodes along the axis.
        positions: optional 1D array of (sub-)pixel coordinates. Defaults to
            every pixel, `0 .. num_pixels - 1`.

    Returns:
        A float64 array of shape `(num_nodes, len(positions))`.
    """
    if positions is None:
        positions = np.arange(num_pixels)
    positions = np.asarray(positions, dtype=np.float64).reshape(-1)
    weights = np.zeros((num_nodes, positions.size))
    if num_nodes == 1:
        weights[0] = 1.0
        return weights
    t = (positions + 0.5) * num_nodes / num_pixels - 0.5
    t = np.clip(t, 0.0, num_nodes - 1.0)
    lower = np.minimum(np.floor(t).astype(int), num_nodes - 2)
    frac = t - lower
    columns = np.arange(positions.size)
    weights[lower, columns] = 1.0 - frac
    weights[lower + 1, columns] = frac
    return weights


class PSFField:
    """A regular grid of point-spread functions (PSFs) over an image.

    The image is divided into `grid_rows x grid_cols` equal cells and PSF `(i, j)`
    belongs to the centre of cell `(i, j)`. The PSF of any other source pixel is
    the bilinear interpolation of the four surrounding grid PSFs (constant beyond
    the outermost nodes); see `axis_weights`. Because the grid is defined in
    fractions of the image, a field can blur images of any size unless
    `image_shape` pins it to the sensor it was measured on.

    Each PSF is a square, odd-sized, non-negative kernel that sums to 1; its
    centre pixel `kernel_size // 2` is the optical axis of that source point.
    Measured PSFs (e.g. from scanning a bead, as in MultiWienerNet) can be
    plugged in with `PSFField(measured, normalize=True)` and stored with
    `save`.

    Args:
        psfs: array-like of shape `(grid_rows, grid_cols, kernel_size,
            kernel_size)`. Finite, non-negative values.
        image_shape: optional tuple `(height, width)`. The image size the field
            belongs to; if given, blurring images of another size is an error.
            Defaults to `None` (any size).
        normalize: bool. If `True`, each PSF is divided by its sum; if `False`
            (default), each PSF must already sum to 1 (within 1e-4).

    Example:

    >>> import numpy as np
    >>> from coordgate_keras.data import PSFField
    >>> psfs = np.zeros((2, 2, 3, 3))
    >>> psfs[..., 1, 1] = 1.0  # identity PSFs
    >>> field = PSFField(psfs)
    >>> field.grid_shape, field.kernel_size
    ((2, 2), 3)
    """

    def __init__(self, psfs, image_shape=None, normalize=False):
        psfs = np.array(psfs, dtype=np.float64)
        av.array_rank(
            psfs.shape,
            "psfs",
            (4,),
            "an array of shape (grid_rows, grid_cols, kernel_size, kernel_size)",
        )
        if psfs.shape[2] != psfs.shape[3] or psfs.shape[2] % 2 == 0:
            raise av.invalid_value(
                None,
                "psfs",
                "square PSFs of odd size (kernel_size x kernel_size, the centre "
                "pixel being the optical axis)",
                f"psfs.shape={psfs.shape}",
            )
        av.float_array(psfs, "psfs")
        if psfs.min() < 0:
            raise av.invalid_value(
                None,
                "psfs",
                "non-negative values (clip measured PSFs at zero after background "
                "subtraction)",
                f"psfs.min()={psfs.min():.6g}",
            )
        sums = psfs.sum(axis=(2, 3))
        if normalize:
            if sums.min() <= 0:
                raise av.invalid_value(
                    None,
                    "psfs",
                    "every PSF to have a positive sum so it can be normalised",
                    f"a PSF with sum {sums.min():.6g}",
                )
            psfs = psfs / sums[..., None, None]
        elif np.max(np.abs(sums - 1.0)) > _SUM_TOLERANCE:
            raise av.invalid_value(
                None,
                "psfs",
                "each PSF to sum to 1 (pass `normalize=True` to rescale)",
                f"PSF sums in [{sums.min():.6g}, {sums.max():.6g}]",
            )
        if image_shape is not None:
            image_shape = av.shape(image_shape, "image_shape", rank=2)
        psfs.setflags(write=False)
        self._psfs = psfs
        self.image_shape = image_shape
        if image_shape is not None:
            self.check_image_shape(image_shape, name="image_shape")

    # === Properties ===

    @property
    def psfs(self):
        """Read-only float64 array `(grid_rows, grid_cols, k, k)`."""
        return self._psfs

    @property
    def grid_shape(self):
        return self._psfs.shape[:2]

    @property
    def kernel_size(self):
        return self._psfs.shape[2]

    @property
    def radius(self):
        return self._psfs.shape[2] // 2

    def __repr__(self):
        return (
            f"PSFField(grid_shape={self.grid_shape}, kernel_size={self.kernel_size}, "
            f"image_shape={self.image_shape})"
        )

    # === Geometry ===

    def check_image_shape(self, image_shape, name="images"):
        """Raises a `ValueError` if images of `image_shape` cannot be blurred.

        Args:
            image_shape: tuple `(height, width)`.
            name: str. Argument name used in the error message.
        """
        height, width = image_shape
        if self.image_shape is not None and tuple(image_shape) != self.image_shape:
            raise av.invalid_value(
                None,
                name,
                f"images of height and width {self.image_shape}, the `image_shape` "
                "of the PSF field",
                f"height and width {tuple(image_shape)}",
            )
        if self.kernel_size > min(height, width):
            raise av.invalid_value(
                None,
                "psf_field",
                f"PSFs no larger than the image (kernel_size <= {min(height, width)}"
                f" for images of height and width {tuple(image_shape)})",
                f"psf_field.kernel_size={self.kernel_size}",
            )
        if self.grid_shape[0] > height or self.grid_shape[1] > width:
            raise av.invalid_value(
                None,
                "psf_field",
                "a PSF grid with at most one node per pixel (grid_shape <= "
                f"{tuple(image_shape)})",
                f"psf_field.grid_shape={self.grid_shape}",
            )

    def check_window(self, image_shape, origin, name="images"):
        """Checks a window of the frame: `origin=(top, left)`, size `image_shape`.

        Needs `image_shape` pinned on the field (the frame the window is cut
        from). Returns `origin` as a tuple of two ints.
        """
        if self.image_shape is None:
            raise av.invalid_value(
                origin,
                "origin",
                "None for a PSF field without `image_shape` (a window's position "
                "needs the frame the field is pinned to: PSFField(..., "
                "image_shape=(H, W)))",
            )
        values = av._as_tuple(origin)
        if values is None or len(values) != 2 or not all(av.is_int(v) for v in values):
            raise av.invalid_value(
                origin, "origin", "a tuple (top, left) of 2 integers"
            )
        values = tuple(int(v) for v in values)
        frame = self.image_shape
        if any(o < 0 or o + n > f for o, n, f in zip(values, image_shape, frame)):
            raise av.invalid_value(
                origin,
                "origin",
                f"a window of {tuple(image_shape)} inside the frame {frame}: top "
                f"from 0 to {frame[0] - image_shape[0]}, left from 0 to "
                f"{frame[1] - image_shape[1]}",
            )
        if self.kernel_size > min(image_shape):
            raise av.invalid_value(
                None,
                "psf_field",
                f"PSFs no larger than the window (kernel_size <= {min(image_shape)})",
                f"psf_field.kernel_size={self.kernel_size}",
            )
        return values

    def window_weights(self, image_shape, origin=None):
        """Per-axis interpolation weights `(wy, wx)` of an image or a window.

        Without `origin`, those of a whole image of `image_shape`; with it, those
        of the frame (`self.image_shape`) at the window's pixels.
        """
        (gy, gx), (height, width) = self.grid_shape, image_shape
        if origin is None:
            return axis_weights(height, gy), axis_weights(width, gx)
        (top, left), (frame_h, frame_w) = origin, self.image_shape
        return (
            axis_weights(frame_h, gy, positions=top + np.arange(height)),
            axis_weights(frame_w, gx, positions=left + np.arange(width)),
        )

    def node_positions(self, image_shape):
        """Pixel coordinates of the grid nodes for an image of `image_shape`.

        Args:
            image_shape: tuple `(height, width)`.

        Returns:
            Tuple `(rows, cols)` of float arrays of lengths `grid_rows` and
            `grid_cols`.
        """
        (gy, gx), (height, width) = self.grid_shape, image_shape
        return cell_centres(height, gy), cell_centres(width, gx)

    def interpolation_weights(self, image_shape):
        """Bilinear weight maps `w_ij(p)` of every grid node.

        Args:
            image_shape: tuple `(height, width)`.

        Returns:
            A float64 array of shape `(grid_rows, grid_cols, height, width)`,
            non-negative, summing to 1 over the grid axes at every pixel.
        """
        image_shape = av.shape(image_shape, "image_shape", rank=2)
        self.check_image_shape(image_shape, name="image_shape")
        wy = axis_weights(image_shape[0], self.grid_shape[0])
        wx = axis_weights(image_shape[1], self.grid_shape[1])
        return wy[:, None, :, None] * wx[None, :, None, :]

    def psf_at(self, row, col, image_shape):
        """The interpolated PSF of source point `(row, col)`.

        Args:
            row: float. Pixel row, `0 <= row < height` (sub-pixel allowed).
            col: float. Pixel column, `0 <= col < width`.
            image_shape: tuple `(height, width)`.

        Returns:
            A float64 array `(kernel_size, kernel_size)` summing to 1.
        """
        image_shape = av.shape(image_shape, "image_shape", rank=2)
        self.check_image_shape(image_shape, name="image_shape")
        if not (0 <= row < image_shape[0] and 0 <= col < image_shape[1]):
            raise av.invalid_value(
                None,
                "row, col",
                f"a pixel inside the image of height and width {image_shape}",
                f"row={row}, col={col}",
            )
        wy = axis_weights(image_shape[0], self.grid_shape[0], [row])[:, 0]
        wx = axis_weights(image_shape[1], self.grid_shape[1], [col])[:, 0]
        return np.einsum("i,j,ijab->ab", wy, wx, self._psfs)

    def sample_psfs(self, image_shape, grid_shape=(2, 2)):
        """PSFs of a few field positions as an image-size stack (MultiWienerNet).

        MultiWienerNet (Yanny et al., 2022) starts its learnable Wiener filters
        from PSFs measured at a sparse set of field positions. This samples the
        field at the centres of a `grid_shape` grid of equal image cells
        (`psf_at`) and centres each kernel in an image-size array, the layout
        of `MultiWienerDeconvolution(psfs=...)`.

        Args:
            image_shape: tuple `(height, width)`.
            grid_shape: tuple `(rows, cols)` of sample positions. Defaults to
                `(2, 2)` (four PSFs, MultiWienerNet's default count here).

        Returns:
            A float32 array `(height, width, rows * cols)`, row-major over the
            sample grid; each PSF sums to 1 and has its centre at
            `(height // 2, width // 2)`.
        """
        image_shape = av.shape(image_shape, "image_shape", rank=2)
        self.check_image_shape(image_shape, name="image_shape")
        grid_shape = av.shape(grid_shape, "grid_shape", rank=2)
        height, width = image_shape
        if grid_shape[0] > height or grid_shape[1] > width:
            raise av.invalid_value(
                grid_shape,
                "grid_shape",
                f"at most one sample per pixel (<= {tuple(image_shape)})",
            )
        k, r = self.kernel_size, self.radius
        top, left = height // 2 - r, width // 2 - r
        stack = np.zeros((height, width, grid_shape[0] * grid_shape[1]), np.float32)
        for i, row in enumerate(cell_centres(height, grid_shape[0])):
            for j, col in enumerate(cell_centres(width, grid_shape[1])):
                psf = self.psf_at(row, col, image_shape)
                stack[top : top + k, left : left + k, i * grid_shape[1] + j] = psf
        return stack

    def low_rank(self, rank):
        """Singular-value decomposition of the PSF stack (MultiWienerNet basis).

        Writes each grid PSF as `h_ij = sum_r coefficients[i, j, r] * basis[r]`
        and keeps the `rank` leading terms. With `rank = grid_rows * grid_cols`
        the decomposition is exact; a smaller rank is an approximation whose
        error depends on how much the PSFs vary (see
        `benchmarks/blur_fast_vs_exact.py`).

        Args:
            rank: int. Number of basis PSFs, `1 <= rank <= min(grid_rows *
                grid_cols, kernel_size**2)`.

        Returns:
            Tuple `(basis, coefficients)` of float64 arrays with shapes
            `(rank, k, k)` and `(grid_rows, grid_cols, rank)`.
        """
        (gy, gx), k = self.grid_shape, self.kernel_size
        max_rank = min(gy * gx, k * k)
        rank = av.positive_int(rank, "rank")
        if rank > max_rank:
            raise av.invalid_value(
                None,
                "rank",
                f"an integer between 1 and {max_rank} (the number of PSFs or "
                "kernel pixels)",
                f"rank={rank}",
            )
        u, s, vt = np.linalg.svd(
            self._psfs.reshape(gy * gx, k * k), full_matrices=False
        )
        basis = vt[:rank].reshape(rank, k, k)
        coefficients = (u[:, :rank] * s[:rank]).reshape(gy, gx, rank)
        return basis, coefficients

    # === Constructors and files ===

    @classmethod
    def shift_invariant(cls, psf, grid_shape=(1, 1), normalize=False):
        """A field whose PSF is the same everywhere (an ordinary convolution).

        Args:
            psf: array-like `(kernel_size, kernel_size)`.
            grid_shape: tuple `(grid_rows, grid_cols)`. Defaults to `(1, 1)`.
            normalize: bool. Divide the PSF by its sum. Defaults to `False`.

        Returns:
            A `PSFField`.
        """
        psf = np.asarray(psf, dtype=np.float64)
        av.array_rank(psf.shape, "psf", (2,), "a 2D array (kernel_size, kernel_size)")
        grid_shape = av.shape(grid_shape, "grid_shape", rank=2)
        return cls(np.broadcast_to(psf, grid_shape + psf.shape), normalize=normalize)

    @classmethod
    def from_beads(
        cls,
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
        """Measures the field from images of sub-resolution beads (point sources).

        The images hold beads (or any point sources) scattered over one frame
        size, one or many per image. Beads are found, screened and centred, and
        the node PSFs are solved *jointly*: in this field model a bead at `p`
        is imaged with `sum_k w_k(p) h_k` (bilinear `axis_weights`), so each
        bead informs the (up to four) nodes around it in proportion to its
        weights, instead of one cell's average. The steps:

        1. background = median, noise = 1.4826 x median absolute deviation of
           each image after subtracting `dark` (a uniform background per image;
           pass a non-uniform one as `dark`);
        2. candidates = local maxima of the 1-pixel-Gaussian-smoothed image at
           least `threshold` noise standard deviations above the background;
           a maximum weaker than `neighbour_fraction` of a brighter one within
           `min_separation` is taken for its side lobe;
        3. rejected, counted by reason: `edge` (patch leaves the frame),
           `saturated` (a raw pixel of the patch reaches `saturation`),
           `crowded` (another bead within `min_separation`), `faint` (patch
           sum below 10 noise standard deviations of that sum), and after the
           first solve `outlier` (misfit over 5 times, RMS, what noise and the
           median misfit explain: merged pairs, hot pixels, debris);
        4. centred on the intensity centroid, shifted onto the pixel grid by a
           Fourier shift, scaled to unit sum;
        5. solved for non-negative, unit-sum node PSFs minimising
           `|W H - P|^2 + smoothness * sum_(neighbours k, l) |h_k - h_l|^2`
           (`smoothness` chosen from the data by default);
        6. `refine` times: each node PSF is re-centred on its centroid, each
           bead re-registered to the fitted model, and the solve repeated.

        Beads of unknown position fix a PSF only up to a translation; the
        estimate puts each node PSF's centroid on the kernel centre. Optics
        with odd aberrations (coma) have PSFs whose centroid is off their
        optical axis; their estimate is translated by that offset (a small
        distortion, harmless for deblurring). Nodes whose bead support
        `sum_b w_k(p_b)` is below `min_beads` are filled by harmonic
        interpolation of the others, with a `UserWarning`; more than half of
        them is an error (the grid is finer than the beads support).

        Args:
            images: a 2D array `(height, width)` or a list of 2D arrays of one
                frame size: raw camera values (integer or float, finite,
                non-negative). 3D arrays are refused: pass `list(stack)` for
                several exposures of one focal plane (3D PSFs are not
                estimated).
            grid_shape: tuple `(grid_rows, grid_cols)` of the field.
            kernel_size: int. Odd PSF size, `>= 3`; large enough to hold the
                widest PSF with its tails.
            dark: optional number or 2D array of the frame size, subtracted
                from every image first (camera offset, dark frame).
            saturation: optional number. Raw value at which the camera
                saturates. Defaults to the dtype's maximum for integer images
                (e.g. 65535 for uint16) and no check for float images.
            threshold: float. Detection threshold in noise standard deviations
                of the smoothed image. Defaults to 5.
            min_separation: optional float. Two beads closer than this (pixels)
                are both rejected as `crowded`. Defaults to `kernel_size`
                (their PSF patches overlap).
            neighbour_fraction: float in `[0, 1]`. A local maximum weaker than
                this fraction of a brighter one within `min_separation` counts
                as part of it. Defaults to 0.05.
            smoothness: float `>= 0` or `"auto"` (default). Weight of the
                neighbouring-node penalty in bead units (0: none). `"auto"`
                takes the misfit per pixel of a first fit over the mean squared
                difference of neighbouring nodes: strong for noisy beads, weak
                for bright ones (see `benchmarks/psf_from_beads.py`); the value
                used is in the report.
            min_beads: float. Least bead support of a node not to be filled
                from its neighbours. Defaults to 0.5.
            refine: int `>= 0`. Re-centring and re-registration rounds.
                Defaults to 2.
            solver: `"joint"` (default) or `"cell_average"`: each node the mean
                of the beads in its cell (for comparison).

        Returns:
            Tuple `(field, report)`: a `PSFField` pinned to the frame size
            (`image_shape`) and a `BeadReport`.

        Example:

        >>> import numpy as np
        >>> from coordgate_keras.data import PSFField
        >>> image = np.full((64, 64), 10, np.uint16)
        >>> for row, col in [(16, 16), (16, 48), (48, 16), (48, 48)]:
        ...     image[row - 1 : row + 2, col - 1 : col + 2] += 200
        ...     image[row, col] += 400
        >>> field, report = PSFField.from_beads(image, (2, 2), kernel_size=9)
        >>> field.grid_shape, field.image_shape, int(report.beads_used.sum())
        ((2, 2), (64, 64), 4)
        """
        from coordgate_keras.data import _beads

        psfs, image_shape, report = _beads.estimate(
            images,
            grid_shape,
            kernel_size,
            dark=dark,
            saturation=saturation,
            threshold=threshold,
            min_separation=min_separation,
            neighbour_fraction=neighbour_fraction,
            smoothness=smoothness,
            min_beads=min_beads,
            refine=refine,
            solver=solver,
        )
        return cls(psfs, image_shape=image_shape, normalize=True), report

    def save(self, path, extras=None):
        """Writes the field to an `.npz` file, atomically.

        The data go to a temporary file in the destination folder which then
        replaces `path` (`os.replace`), so an interrupted save never leaves a
        half-written file behind.

        Args:
            path: str or path-like. Destination file, conventionally `*.npz`.
            extras: optional dict `{name: array}` stored beside the field
                (e.g. `bead_report`, a `BeadReport.to_json()` string); `load`
                ignores them. Names `psfs`, `image_shape` and `format_version`
                are reserved.
        """
        extras = dict(extras or {})
        reserved = {"psfs", "image_shape", "format_version"} & set(extras)
        if reserved:
            raise av.invalid_value(
                None,
                "extras",
                "names other than 'psfs', 'image_shape' and 'format_version'",
                f"extras with keys {sorted(extras)}",
            )
        image_shape = np.asarray(
            self.image_shape if self.image_shape is not None else [], dtype=np.int64
        )
        atomic_io.atomic_write(
            path,
            lambda f: np.savez(
                f,
                psfs=self._psfs,
                image_shape=image_shape,
                format_version=np.int64(_FORMAT_VERSION),
                **{name: np.asarray(value) for name, value in extras.items()},
            ),
        )

    @classmethod
    def load(cls, path, normalize=False):
        """Reads a field written by `save`, or any `.npz` holding `psfs`.

        Args:
            path: str or path-like. An `.npz` file with an array `psfs` of
                shape `(grid_rows, grid_cols, k, k)` and optionally
                `image_shape` (two integers).
            normalize: bool. Divide each PSF by its sum (useful for measured
                PSFs). Defaults to `False`.

        Returns:
            A `PSFField`.
        """
        path = os.fspath(path)
        errors = (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error)
        # An open file of our own: NumPy leaks its own on a corrupt archive.
        with open(path, "rb") as f:
            try:
                archive = np.load(f, allow_pickle=False)
            except errors as error:
                raise _unreadable(path, error) from None
            if not isinstance(archive, np.lib.npyio.NpzFile):
                raise av.invalid_value(
                    path,
                    "path",
                    "an .npz archive holding an array named 'psfs'",
                    f"path={path!r}, a single .npy array",
                )
            with archive:
                if "psfs" not in archive.files:
                    raise av.invalid_value(
                        path,
                        "path",
                        "an .npz file holding an array named 'psfs' of shape "
                        "(grid_rows, grid_cols, kernel_size, kernel_size)",
                        f"path={path!r} with arrays {sorted(archive.files)}",
                    )
                try:
                    psfs = archive["psfs"]
                    image_shape = None
                    if "image_shape" in archive.files and archive["image_shape"].size:
                        image_shape = tuple(int(v) for v in archive["image_shape"])
                except errors as error:
                    raise _unreadable(path, error) from None
        return cls(psfs, image_shape=image_shape, normalize=normalize)


def _unreadable(path, error):
    return av.invalid_value(
        path,
        "path",
        "an .npz file written by `PSFField.save` or `np.savez`",
        f"path={path!r}, which could not be read ({error})",
    )


def check_psf_field(value, name="psf_field"):
    """Raises unless `value` is a `PSFField`; returns it."""
    if not isinstance(value, PSFField):
        raise av.invalid_value(value, name, "a `coordgate_keras.data.PSFField`")
    return value
