"""Shared machinery of CoordConv1D/2D/3D (not public API)."""

import keras

from coordgate_keras.layers import _frame, _layout
from coordgate_keras.layers.add_coords import AddCoords
from coordgate_keras.utils import argument_validation as av


def conv_arguments(filters, kernel_size, rank, kwargs):
    """Checks the integer arguments of a `ConvND` before Keras sees them.

    Keras' own checks take `True` for 1 filter and blame `groups` for
    `filters=2.5`, and refuse NumPy integers; these take NumPy integers and
    give Python ints (which serialise to JSON).

    Returns:
        `(filters, kernel_size, kwargs)`, normalised.
    """
    filters = av.positive_int(filters, "filters")
    kernel_size = av.int_tuple(kernel_size, "kernel_size", rank)
    kwargs = dict(kwargs)
    for key in ("strides", "dilation_rate"):
        if key in kwargs:
            kwargs[key] = av.int_tuple(kwargs[key], key, rank)
    if "groups" in kwargs:
        kwargs["groups"] = av.positive_int(kwargs["groups"], "groups")
    return filters, kernel_size, kwargs


class CoordConvMixin:
    """Prepends `AddCoords` to a Keras `ConvND`; put it before the conv in the MRO."""

    def _init_with_r(self, with_r, frame_shape=None):
        self.with_r = av.boolean(with_r, "with_r")
        self.frame_shape = _frame.frame_shape_argument(frame_shape)
        if self.frame_shape is not None:
            # The conv's own spec (one input) would refuse `[x, origin]` before
            # `build` sets the pair's.
            self.input_spec = None

    def _spatial_axes(self, ndim):
        if self.data_format == "channels_last":
            return list(range(1, ndim - 1))
        return list(range(2, ndim))

    def build(self, input_shape):
        shapes = input_shape
        input_shape = _frame.check_build_shapes(self, input_shape, self._spatial_axes)
        channel_axis = -1 if self.data_format == "channels_last" else 1
        if len(input_shape) != self.rank + 2:
            raise ValueError(
                f"Invalid input shape for {type(self).__name__}. Expected a tensor of "
                f"rank {self.rank + 2}. Received: input_shape={tuple(input_shape)}"
            )
        channels = input_shape[channel_axis]
        if channels is None:
            raise ValueError(
                f"Invalid input shape for {type(self).__name__}. The channel "
                f"dimension must be known. Received: input_shape={tuple(input_shape)}"
            )
        self.add_coords = AddCoords(
            with_r=self.with_r,
            data_format=self.data_format,
            frame_shape=self.frame_shape,
            dtype=self.dtype_policy,
            name="add_coords",
        )
        self.add_coords.build(shapes)
        augmented = list(input_shape)
        augmented[channel_axis] = channels + self.rank + int(self.with_r)
        super().build(tuple(augmented))
        # The conv built itself for the augmented channels; the layer's own input
        # is the un-augmented tensor.
        self.input_spec = keras.InputSpec(
            ndim=self.rank + 2, axes={channel_axis: channels}
        )
        if self.frame_shape is not None:
            self.input_spec = [self.input_spec, keras.InputSpec(ndim=2)]

    def call(self, inputs):
        return super().call(self.add_coords(inputs))

    def compute_output_shape(self, input_shape):
        # The conv's own `build` asks with the augmented (single) shape.
        if _frame.is_shape_list(input_shape):
            input_shape = input_shape[0]
        return super().compute_output_shape(input_shape)

    def convolution_op(self, inputs, kernel):
        return _layout.conv(
            inputs,
            kernel,
            self.data_format,
            strides=list(self.strides),
            padding=self.padding,
            dilation_rate=self.dilation_rate,
        )

    def get_config(self):
        config = super().get_config()
        config["with_r"] = self.with_r
        config["frame_shape"] = self.frame_shape
        return config
