"""Frame geometry of the coordinate layers (machinery, not public API).

A layer built with `frame_shape` sees a window of a larger frame: it is called
as `layer([x, origin])`, `origin` of shape `(batch, rank)` holding the index of
`x`'s first element inside the frame, and uses the coordinates the frame has
there. Along an axis of frame size `N` the coordinate of index `i` is
`linspace(-1, 1, N)[i]`, read from that table (gathered), not recomputed, so a
window's coordinates are bit-identical to the same window of the whole frame's.
"""

import keras
import numpy as np
from keras import ops

from coordgate_keras.layers import _coords
from coordgate_keras.utils import argument_validation as av


def frame_shape_argument(value, name="frame_shape"):
    """None, or a tuple of 1 to 3 positive ints (the rank is checked in `build`)."""
    if value is None:
        return None
    sizes = av._as_tuple(value)
    if (
        sizes is None
        or not 1 <= len(sizes) <= 3
        or not all(av.is_int(n) and n > 0 for n in sizes)
    ):
        raise av.invalid_value(
            value, name, "None or a tuple of 1 to 3 positive integers (one per axis)"
        )
    return tuple(int(n) for n in sizes)


def split_inputs(layer, inputs):
    """`(x, origin)` of a frame layer, `(x, None)` of a plain one; checks the form."""
    is_pair = isinstance(inputs, (list, tuple))
    if layer.frame_shape is None:
        if is_pair:
            raise ValueError(
                f"`{layer.name}` was built without `frame_shape`, so it takes one "
                "tensor, not `[x, origin]`. Pass `frame_shape=` to use origins. "
                f"Received: inputs of length {len(inputs)}"
            )
        return inputs, None
    if not (is_pair and len(inputs) == 2):
        received = (
            f"a list of {len(inputs)}"
            if is_pair
            else f"a tensor of shape {tuple(inputs.shape)}"
        )
        raise ValueError(
            f"`{layer.name}` has `frame_shape={layer.frame_shape}`, so it is called "
            f"as `layer([x, origin])`, origin of shape (batch, "
            f"{len(layer.frame_shape)}). Received: {received}"
        )
    return inputs[0], inputs[1]


def check_build_shapes(layer, input_shape, spatial_axes_of):
    """Splits `[x_shape, origin_shape]` and checks them against `frame_shape`.

    Returns:
        The shape of `x`.
    """
    if layer.frame_shape is None:
        if is_shape_list(input_shape):
            raise ValueError(
                f"`{layer.name}` was built without `frame_shape`, so it takes one "
                "tensor, not `[x, origin]`. Pass `frame_shape=` to use origins. "
                f"Received: input_shape={input_shape}"
            )
        return tuple(input_shape)
    if not (is_shape_list(input_shape) and len(input_shape) == 2):
        raise ValueError(
            f"`{layer.name}` has `frame_shape={layer.frame_shape}`, so it is called "
            "as `layer([x, origin])`. Received: input_shape="
            f"{tuple(input_shape) if input_shape is not None else None}"
        )
    x_shape, origin_shape = tuple(input_shape[0]), tuple(input_shape[1])
    axes = spatial_axes_of(len(x_shape))
    rank = len(axes)
    if len(layer.frame_shape) != rank:
        raise av.invalid_value(
            layer.frame_shape,
            "frame_shape",
            f"one size per spatial axis of the input ({rank})",
            received=f"frame_shape={layer.frame_shape} for input_shape={x_shape}",
        )
    for axis, size in zip(axes, layer.frame_shape):
        if x_shape[axis] is not None and x_shape[axis] > size:
            raise av.invalid_value(
                layer.frame_shape,
                "frame_shape",
                "a frame at least as large as the input window",
                received=f"frame_shape={layer.frame_shape} for input_shape={x_shape}",
            )
    if len(origin_shape) != 2 or origin_shape[-1] not in (None, rank):
        raise av.invalid_value(
            origin_shape,
            "origin",
            f"a tensor of shape (batch, {rank}): one index per spatial axis",
            received=f"origin.shape={origin_shape}",
        )
    return x_shape


def check_origin(layer, origin, sizes, alignment=1):
    """Casts `origin` to int32; refuses floats and, eagerly, windows off the frame.

    Values are checked only where they are concrete (eager calls); inside a traced
    graph they cannot be read. There an index off the frame is an error of the
    gather on TensorFlow's CPU and is clamped to the frame on JAX and on GPUs.
    """
    dtype = keras.backend.standardize_dtype(origin.dtype)
    if "int" not in dtype:
        raise av.invalid_value(
            dtype,
            "origin",
            "an integer tensor (pixel indices, int32)",
            received=f"origin.dtype={dtype}",
        )
    values = concrete(origin)
    if values is not None:
        check_window(values, sizes, layer.frame_shape, f"`{layer.name}`", alignment)
    return ops.cast(origin, "int32")


def check_window(origin, sizes, frame_shape, where, alignment=1):
    """Raises unless every row of `origin` (NumPy) puts a window of `sizes` inside.

    `sizes` may hold None (unknown window size): those axes are checked for
    `origin < frame` only.
    """
    origin = np.asarray(origin)
    rank = len(frame_shape)
    if origin.ndim != 2 or origin.shape[-1] != rank:
        raise av.invalid_value(
            origin.shape,
            "origin",
            f"a tensor of shape (batch, {rank})",
            received=f"origin.shape={origin.shape}",
        )
    for axis in range(rank):
        n = sizes[axis]
        n = n if isinstance(n, (int, np.integer)) else 1
        last = frame_shape[axis] - n
        column = origin[:, axis]
        bad = column[(column < 0) | (column > last) | (column % alignment != 0)]
        if bad.size:
            step = f" in steps of {alignment}" if alignment > 1 else ""
            raise av.invalid_value(
                origin.tolist(),
                "origin",
                f"indices along axis {axis} from 0 to {last}{step} (a window of "
                f"{n} inside the frame of {frame_shape[axis]} at {where})",
                received=f"origin={origin.tolist()}",
            )


def concrete(tensor):
    """The values of an eager tensor as NumPy, or None inside a traced graph."""
    if isinstance(tensor, np.ndarray):
        return tensor
    try:
        return np.asarray(ops.convert_to_numpy(tensor))
    except Exception:  # symbolic (tf.function, XLA, JAX tracer): values unknown
        return None


def axis_values(table, start, n, dtype="float32"):
    """`table[start + i]` for `i < n`, per sample: shape `(batch, n, ...)`.

    Args:
        table: NumPy float32 array `(N, ...)`, the values along one frame axis.
        start: int32 tensor `(batch,)`.
        n: the window's size along the axis (int or scalar tensor).
        dtype: the result's dtype (the table is gathered in float32, then cast).
    """
    offsets = np.arange(n, dtype="int32") if isinstance(n, int) else ops.arange(n)
    indices = ops.expand_dims(start, -1) + ops.cast(offsets, "int32")[None]
    values = ops.take(ops.convert_to_tensor(table), indices, axis=0)
    return ops.cast(values, dtype)


def coordinate_grid(frame_shape, origin, sizes, with_r=False, dtype="float32"):
    """Per-sample coordinates of windows: `(batch, *sizes, rank [+ 1])`.

    The window of `coordinate_grid(frame_shape, zeros, frame_shape)` at `origin`
    is exactly `coordinate_grid(frame_shape, origin, sizes)`.
    """
    rank = len(sizes)
    batch = ops.shape(origin)[0]
    channels = []
    for axis, (frame, n) in enumerate(zip(frame_shape, sizes)):
        values = axis_values(_coords.linspace(frame), origin[:, axis], n, dtype)
        shape = [-1] + [1] * rank
        shape[axis + 1] = n if isinstance(n, int) else -1
        channels.append(
            ops.broadcast_to(ops.reshape(values, shape), (batch,) + tuple(sizes))
        )
    grid = ops.stack(channels, axis=-1)
    if with_r:
        radius = ops.sqrt(ops.sum(ops.square(grid), axis=-1, keepdims=True))
        grid = ops.concatenate([grid, radius], axis=-1)
    return grid


def is_shape_list(value):
    return (
        isinstance(value, (list, tuple))
        and len(value) > 0
        and all(isinstance(v, (list, tuple)) or v is None for v in value)
        and any(isinstance(v, (list, tuple)) for v in value)
    )
