"""Shared machinery of LocallyConnected1D/2D (not public API).

The layer gathers every receptive field with `kernel_size` strided slices (no
gather, no `extract_patches`: plain slices lower to XLA and TFLite everywhere),
flattens each to `prod(kernel_size) * channels` values and contracts it with the
kernel of its own output position by one `einsum`.
"""

import math

import keras
from keras import ops

from coordgate_keras.utils import argument_validation as av

_LETTERS = "hwd"


def output_size(size, kernel, stride, padding):
    if padding == "same":
        return -(-size // stride)
    return (size - kernel) // stride + 1


class LocallyConnectedBase(keras.layers.Layer):
    """`rank`-D locally connected layer; subclasses fix `rank`."""

    rank = None

    def __init__(
        self,
        filters,
        kernel_size,
        strides=1,
        padding="valid",
        data_format=None,
        activation=None,
        use_bias=True,
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        kernel_regularizer=None,
        bias_regularizer=None,
        activity_regularizer=None,
        kernel_constraint=None,
        bias_constraint=None,
        **kwargs,
    ):
        super().__init__(activity_regularizer=activity_regularizer, **kwargs)
        self.filters = av.positive_int(filters, "filters")
        self.kernel_size = av.int_tuple(kernel_size, "kernel_size", self.rank)
        self.strides = av.int_tuple(strides, "strides", self.rank)
        self.padding = av.choice(padding, "padding", ("valid", "same"))
        self.data_format = av.data_format(data_format)
        self.activation = keras.activations.get(activation)
        self.use_bias = av.boolean(use_bias, "use_bias")
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)
        self.kernel_regularizer = keras.regularizers.get(kernel_regularizer)
        self.bias_regularizer = keras.regularizers.get(bias_regularizer)
        self.kernel_constraint = keras.constraints.get(kernel_constraint)
        self.bias_constraint = keras.constraints.get(bias_constraint)
        self.input_spec = keras.InputSpec(ndim=self.rank + 2)

    def _split_shape(self, input_shape):
        if self.data_format == "channels_last":
            return tuple(input_shape[1:-1]), input_shape[-1]
        return tuple(input_shape[2:]), input_shape[1]

    def _output_sizes(self, spatial):
        return tuple(
            output_size(n, k, s, self.padding)
            for n, k, s in zip(spatial, self.kernel_size, self.strides)
        )

    def build(self, input_shape):
        name = type(self).__name__
        spatial, channels = self._split_shape(input_shape)
        if None in spatial or channels is None:
            raise ValueError(
                f"Invalid input shape for {name}. Expected static spatial sizes and "
                "channels (every position has its own kernel). "
                f"Received: input_shape={tuple(input_shape)}"
            )
        outputs = self._output_sizes(spatial)
        if min(outputs) < 1:
            raise ValueError(
                f"Invalid input shape for {name}. Expected spatial sizes of at least "
                f"kernel_size={self.kernel_size} with padding='valid'. "
                f"Received: input_shape={tuple(input_shape)}"
            )
        patch = math.prod(self.kernel_size) * channels
        positions = math.prod(outputs)
        self.kernel = self.add_weight(
            name="kernel",
            shape=outputs + (patch, self.filters),
            initializer=_per_position(self.kernel_initializer, positions),
            regularizer=self.kernel_regularizer,
            constraint=self.kernel_constraint,
        )
        self.bias = None
        if self.use_bias:
            self.bias = self.add_weight(
                name="bias",
                shape=outputs + (self.filters,),
                initializer=self.bias_initializer,
                regularizer=self.bias_regularizer,
                constraint=self.bias_constraint,
            )
        axis = -1 if self.data_format == "channels_last" else 1
        self.input_spec = keras.InputSpec(ndim=self.rank + 2, axes={axis: channels})

    def call(self, inputs):
        x = inputs
        if self.data_format == "channels_first":
            x = ops.moveaxis(x, 1, -1)
        spatial = tuple(x.shape[1:-1])
        outputs = self._output_sizes(spatial)
        if self.padding == "same":
            pads = []
            for n, k, s, o in zip(spatial, self.kernel_size, self.strides, outputs):
                total = max((o - 1) * s + k - n, 0)
                pads.append([total // 2, total - total // 2])
            x = ops.pad(x, [[0, 0]] + pads + [[0, 0]])

        patches = []
        for offsets in _offsets(self.kernel_size):
            index = [slice(None)]
            for start, s, o in zip(offsets, self.strides, outputs):
                index.append(slice(start, start + (o - 1) * s + 1, s))
            patches.append(x[tuple(index)])
        # (batch, *outputs, prod(kernel_size), channels) -> flatten each patch.
        x = ops.stack(patches, axis=self.rank + 1)
        x = ops.reshape(x, (-1,) + outputs + (self.kernel.shape[-2],))

        letters = _LETTERS[: self.rank]
        x = ops.einsum(f"b{letters}p,{letters}pf->b{letters}f", x, self.kernel)
        if self.use_bias:
            x = x + self.bias
        if self.activation is not None:
            x = self.activation(x)
        if self.data_format == "channels_first":
            x = ops.moveaxis(x, -1, 1)
        return x

    def compute_output_shape(self, input_shape):
        spatial, _ = self._split_shape(input_shape)
        outputs = tuple(
            None if n is None else o
            for n, o in zip(
                spatial,
                self._output_sizes(tuple(1 if n is None else n for n in spatial)),
            )
        )
        if self.data_format == "channels_last":
            return (input_shape[0],) + outputs + (self.filters,)
        return (input_shape[0], self.filters) + outputs

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "filters": self.filters,
                "kernel_size": self.kernel_size,
                "strides": self.strides,
                "padding": self.padding,
                "data_format": self.data_format,
                "activation": keras.activations.serialize(self.activation),
                "use_bias": self.use_bias,
                "kernel_initializer": keras.initializers.serialize(
                    self.kernel_initializer
                ),
                "bias_initializer": keras.initializers.serialize(self.bias_initializer),
                "kernel_regularizer": keras.regularizers.serialize(
                    self.kernel_regularizer
                ),
                "bias_regularizer": keras.regularizers.serialize(self.bias_regularizer),
                "kernel_constraint": keras.constraints.serialize(
                    self.kernel_constraint
                ),
                "bias_constraint": keras.constraints.serialize(self.bias_constraint),
            }
        )
        return config


def _offsets(kernel_size):
    if not kernel_size:
        return [()]
    return [
        (i,) + rest for i in range(kernel_size[0]) for rest in _offsets(kernel_size[1:])
    ]


def _per_position(initializer, positions):
    """Scales a fan-based initializer to the fans of one position's kernel.

    Keras computes the fans of a `(*outputs, patch, filters)` kernel as
    `patch * positions` and `filters * positions`; each position's kernel really
    has fans `patch` and `filters`, so the values are `sqrt(positions)` too small.
    """
    if not isinstance(initializer, keras.initializers.VarianceScaling):
        return initializer
    scale = math.sqrt(positions)

    def initialize(shape, dtype=None):
        return initializer(shape, dtype=dtype) * scale

    return initialize
