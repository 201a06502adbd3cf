import keras
from keras import ops

from coordgate_keras.layers import _coords, _frame
from coordgate_keras.utils import argument_validation as av


@keras.saving.register_keras_serializable(package="coordgate_keras")
class AddCoords(keras.layers.Layer):
    """Appends normalised coordinate channels to a 1D, 2D or 3D feature map.

    The CoordConv input transform (Liu et al., 2018). For each spatial axis a channel
    is appended whose value runs linearly from -1 at the first index to 1 at the last,
    endpoints included, along that axis alone; each axis uses its own length as the
    divisor, so non-square inputs are handled correctly. Channels are appended after
    the input channels in axis order: row then column (then depth for 3D inputs),
    followed by the radius channel when `with_r=True`.

    When the spatial size is static, the coordinates are computed once as NumPy
    constants (they fold to constants in exported graphs); otherwise they are built
    from the dynamic shape.

    Args:
        with_r: bool. Also append the Euclidean distance from the centre,
            `sqrt(sum_i c_i**2)`, in the normalised coordinates (0 at the centre,
            `sqrt(rank)` at the corners).
        data_format: string, `"channels_last"` or `"channels_first"`. Defaults to
            `keras.config.image_data_format()`.
        frame_shape: tuple of ints or None. The spatial shape of the whole frame
            (sensor) that inputs are windows of. With it the layer is called as
            `layer([x, origin])` and appends the frame's coordinates at the window:
            `layer([window, origin])` is exactly that window of
            `layer([frame, zeros])`. None (the default): coordinates span the input.
        **kwargs: Base layer keyword arguments, such as `name` and `dtype`.

    Call arguments:
        inputs: tensor of rank 3, 4 or 5 (batch, spatial dims..., channels), or with
            the channels first. With `frame_shape`, a list `[x, origin]`: `origin`
            an integer tensor `(batch, rank)`, the index of `x`'s first element in
            the frame (per sample). Windows off the frame are refused in eager
            calls; in traced graphs the values cannot be checked.

    Input shape:
        `(batch, *spatial, channels)` for `"channels_last"`.

    Output shape:
        `(batch, *spatial, channels + rank + with_r)`.

    Example:

    >>> import numpy as np
    >>> from coordgate_keras.layers import AddCoords
    >>> y = AddCoords()(np.zeros((1, 2, 3, 1), "float32"))
    >>> np.asarray(y)[0, :, :, 1].tolist()  # row coordinate
    [[-1.0, -1.0, -1.0], [1.0, 1.0, 1.0]]

    Reference:
        - [Liu et al., 2018](https://arxiv.org/abs/1807.03247)
    """

    def __init__(self, with_r=False, data_format=None, frame_shape=None, **kwargs):
        super().__init__(**kwargs)
        self.with_r = av.boolean(with_r, "with_r")
        self.data_format = av.data_format(data_format)
        self.frame_shape = _frame.frame_shape_argument(frame_shape)

    def _spatial_axes(self, ndim):
        if self.data_format == "channels_last":
            return list(range(1, ndim - 1))
        return list(range(2, ndim))

    def build(self, input_shape):
        input_shape = _frame.check_build_shapes(self, input_shape, self._spatial_axes)
        if len(input_shape) not in (3, 4, 5):
            raise ValueError(
                "Invalid input shape for AddCoords. Expected a tensor of rank 3, 4 "
                "or 5 (batch, 1 to 3 spatial dims, channels). "
                f"Received: input_shape={tuple(input_shape)}"
            )
        self.input_spec = keras.InputSpec(ndim=len(input_shape))
        if self.frame_shape is not None:
            self.input_spec = [self.input_spec, keras.InputSpec(ndim=2)]

    def call(self, inputs):
        inputs, origin = _frame.split_inputs(self, inputs)
        spatial_axes = self._spatial_axes(len(inputs.shape))
        sizes = _coords.spatial_sizes(inputs, spatial_axes)
        channel_axis = -1 if self.data_format == "channels_last" else 1
        if origin is not None:
            origin = _frame.check_origin(self, origin, sizes)
            grid = _frame.coordinate_grid(self.frame_shape, origin, sizes, self.with_r)
            grid = ops.cast(grid, inputs.dtype)
            if self.data_format == "channels_first":
                grid = ops.moveaxis(grid, -1, 1)
            return ops.concatenate([inputs, grid], axis=channel_axis)
        grid = _coords.coordinate_grid(sizes, self.with_r)
        grid = ops.cast(grid, inputs.dtype)
        if self.data_format == "channels_first":
            grid = ops.moveaxis(grid, -1, 0)
        grid = ops.expand_dims(grid, 0)
        batch = _coords.spatial_sizes(inputs, [0])
        grid = ops.broadcast_to(grid, batch + tuple(ops.shape(grid)[1:]))
        return ops.concatenate([inputs, grid], axis=channel_axis)

    def compute_output_shape(self, input_shape):
        if self.frame_shape is not None:
            input_shape = input_shape[0]
        input_shape = list(input_shape)
        channel_axis = -1 if self.data_format == "channels_last" else 1
        if input_shape[channel_axis] is not None:
            extra = len(input_shape) - 2 + int(self.with_r)
            input_shape[channel_axis] += extra
        return tuple(input_shape)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "with_r": self.with_r,
                "data_format": self.data_format,
                "frame_shape": self.frame_shape,
            }
        )
        return config
