"""Coordinate grids shared by the layers (machinery, not public API).

A grid is static (a NumPy array, so it becomes a constant in traced and exported
graphs) whenever every spatial size is a Python int, and a tensor built from the
dynamic shape otherwise.
"""

import numpy as np
from keras import ops


def is_static(sizes):
    return all(isinstance(n, int) for n in sizes)


def spatial_sizes(x, axes):
    """Sizes of `axes`: Python ints where static, scalar tensors only where not.

    Reading the static shape first keeps `Shape` ops out of traced graphs when the
    spatial size is known but the batch is not.
    """
    static = tuple(x.shape)
    if all(static[a] is not None for a in axes):
        return tuple(int(static[a]) for a in axes)
    dynamic = ops.shape(x)
    return tuple(dynamic[a] if static[a] is None else int(static[a]) for a in axes)


def linspace(n, dtype="float32"):
    """`n` points from -1 to 1, endpoints included (`[-1]` when `n == 1`)."""
    if isinstance(n, int):
        return np.linspace(-1.0, 1.0, n, dtype=dtype)
    step = 2.0 / ops.maximum(ops.cast(n, dtype) - 1.0, 1.0)
    return ops.arange(n, dtype=dtype) * step - 1.0


def coordinate_grid(sizes, with_r=False, dtype="float32"):
    """Grid of shape `(*sizes, len(sizes) [+ 1])`, channel `i` varying along axis `i`.

    With `with_r`, a last channel holds the Euclidean distance from the centre in
    these normalised coordinates.
    """
    sizes = tuple(sizes)
    rank = len(sizes)
    if is_static(sizes):
        axes = np.meshgrid(*[linspace(n, dtype) for n in sizes], indexing="ij")
        grid = np.stack(axes, axis=-1)
        if with_r:
            radius = np.sqrt(np.sum(np.square(grid), axis=-1, keepdims=True))
            grid = np.concatenate([grid, radius], axis=-1)
        return grid
    channels = []
    for axis, n in enumerate(sizes):
        shape = [1] * rank
        shape[axis] = -1
        channels.append(ops.broadcast_to(ops.reshape(linspace(n, dtype), shape), sizes))
    grid = ops.stack(channels, axis=-1)
    if with_r:
        radius = ops.sqrt(ops.sum(ops.square(grid), axis=-1, keepdims=True))
        grid = ops.concatenate([grid, radius], axis=-1)
    return grid


def interpolation_matrix(n, m, dtype="float32"):
    """`(n, m)` weights that linearly interpolate `m` grid nodes at `n` points.

    Nodes and points both span [-1, 1] with endpoints included (align-corners), the
    same convention as `linspace`, so row `i` samples the node grid at `linspace(n)[i]`.
    """
    nodes = np.arange(m, dtype=dtype)
    if isinstance(n, int):
        t = (linspace(n, dtype) + 1.0) * (0.5 * (m - 1))
        return np.maximum(1.0 - np.abs(t[:, None] - nodes[None, :]), 0.0)
    t = (linspace(n, dtype) + 1.0) * (0.5 * (m - 1))
    return ops.relu(1.0 - ops.abs(t[:, None] - nodes[None, :]))
