"""What `PSFField.from_beads` found, rejected and fitted."""

import dataclasses
import json

import numpy as np

_ARRAYS = ("beads_found", "beads_used", "support", "residual", "positions", "flux")


@dataclasses.dataclass
class BeadReport:
    """The bead census and fit quality of `PSFField.from_beads`.

    Cells are the `grid_shape` equal cells of the frame, node `(i, j)` sitting
    at the centre of cell `(i, j)`.

    Attributes:
        grid_shape: tuple `(grid_rows, grid_cols)`.
        kernel_size: int.
        image_shape: tuple `(height, width)` of the bead images.
        beads_found: int array `grid_shape`: candidate beads per cell.
        beads_used: int array `grid_shape`: beads that entered the solve.
        rejected: dict of counts by reason, `edge`, `saturated`, `crowded`,
            `faint`, `outlier` (see `PSFField.from_beads`).
        support: float array `grid_shape`: `sum_b w_k(p_b)`, the bead count
            each node's PSF rests on (interpolation weights summed).
        residual: float array `grid_shape`: relative RMS misfit of the beads
            around each node, `sqrt(sum_b w_kb |P_b - model_b|^2 /
            sum_b w_kb |P_b|^2)`; NaN for filled nodes. Noise alone gives a
            floor that falls with the photon count.
        filled_nodes: list of `(i, j)` nodes filled from their neighbours.
        smoothness: float. The neighbour weight of the solve (the value
            `smoothness="auto"` chose; 0 for `solver="cell_average"`).
        background: list of floats, per image (after `dark`).
        noise: list of floats, noise standard deviation per image.
        threshold: list of floats, the detection level per image (above the
            background, on the smoothed image).
        positions: float array `(beads, 3)`: image index, row, col of each bead
            used (sub-pixel, centroid convention).
        flux: float array `(beads,)`: background-subtracted sum of each used
            bead's `kernel_size` patch.
        rejected_positions: dict reason -> float array `(n, 3)` (image index,
            peak row, peak col).
    """

    grid_shape: tuple
    kernel_size: int
    image_shape: tuple
    beads_found: np.ndarray
    beads_used: np.ndarray
    rejected: dict
    support: np.ndarray
    residual: np.ndarray
    filled_nodes: list
    smoothness: float
    background: list
    noise: list
    threshold: list
    positions: np.ndarray
    flux: np.ndarray
    rejected_positions: dict

    def summary(self):
        """A few lines of text: counts, rejections, residuals, filled nodes."""
        used = int(self.beads_used.sum())
        lines = [
            f"beads found {int(self.beads_found.sum())}, used {used} "
            f"(per cell min {int(self.beads_used.min())}, "
            f"median {float(np.median(self.beads_used)):g}, "
            f"max {int(self.beads_used.max())})",
            "rejected: " + ", ".join(f"{k} {v}" for k, v in self.rejected.items()),
        ]
        finite = self.residual[np.isfinite(self.residual)]
        if finite.size:
            lines.append(
                f"fit residual per node: median {np.median(finite):.3f}, "
                f"max {finite.max():.3f}"
            )
        if self.filled_nodes:
            lines.append(f"filled from neighbours: {self.filled_nodes}")
        return "\n".join(lines)

    def to_json(self):
        """The report as a JSON string (NaN written as null)."""
        values = dataclasses.asdict(self)
        for name in _ARRAYS:
            values[name] = _nan_to_none(np.asarray(values[name]).tolist())
        values["rejected_positions"] = {
            k: np.asarray(v).tolist() for k, v in self.rejected_positions.items()
        }
        values["filled_nodes"] = [list(n) for n in self.filled_nodes]
        return json.dumps(values)

    @classmethod
    def from_json(cls, text):
        """Reads `to_json`'s output."""
        values = json.loads(text)
        # Reports written before the field existed.
        values.setdefault("smoothness", float("nan"))
        for name in _ARRAYS:
            array = np.array(values[name], dtype=np.float64)
            if name in ("beads_found", "beads_used"):
                array = array.astype(int)
            values[name] = array
        values["positions"] = values["positions"].reshape(-1, 3)
        values["rejected_positions"] = {
            k: np.array(v, dtype=np.float64).reshape(-1, 3)
            for k, v in values["rejected_positions"].items()
        }
        values["grid_shape"] = tuple(values["grid_shape"])
        values["image_shape"] = tuple(values["image_shape"])
        values["filled_nodes"] = [tuple(n) for n in values["filled_nodes"]]
        return cls(**values)


def _nan_to_none(value):
    if isinstance(value, list):
        return [_nan_to_none(v) for v in value]
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value
